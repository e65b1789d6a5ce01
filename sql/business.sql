-- Revenue events, customers, and the business metrics computed from them.
-- Money is numeric end to end. Every function that reads revenue_events takes
-- an optional currency: without it, data in more than one currency is an ERROR.

CREATE TABLE kpi.customers (
    customer_id       text PRIMARY KEY CHECK (customer_id <> ''),
    segment           text CHECK (segment IN ('enterprise', 'smb', 'startup', 'individual', 'trial',
                                              'freemium', 'power_user', 'casual_user')),
    acquired_at       timestamptz NOT NULL DEFAULT now(),
    -- NaN sorts above Infinity in numeric, so "< 'Infinity'" also rejects it
    acquisition_cost  numeric CHECK (acquisition_cost >= 0 AND acquisition_cost < 'Infinity'),
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'trial', 'paused', 'churned')),
    billing_cycle     text CHECK (billing_cycle IN ('monthly', 'annual')),
    payment_method    text,
    created_at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE kpi.customers IS 'Customers: segment, acquisition date and cost (numeric), status, billing';

CREATE TABLE kpi.revenue_events (
    event_id         text PRIMARY KEY CHECK (event_id <> ''),
    ts               timestamptz NOT NULL DEFAULT now(),
    customer_id      text NOT NULL CHECK (customer_id <> ''),
    revenue_type     text NOT NULL CHECK (revenue_type IN ('subscription', 'usage', 'transaction', 'premium_feature',
                                                           'api', 'marketplace', 'professional_services', 'training')),
    amount           numeric NOT NULL CHECK (amount > '-Infinity' AND amount < 'Infinity'),
    currency         text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    subscription_id  text,
    product_id       text,
    feature_id       text,
    billing_period   text CHECK (billing_period IN ('monthly', 'annual')),
    metadata         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object')
);
CREATE INDEX revenue_events_ts_idx ON kpi.revenue_events (ts);
CREATE INDEX revenue_events_customer_ts_idx ON kpi.revenue_events (customer_id, ts);
CREATE INDEX revenue_events_feature_ts_idx ON kpi.revenue_events (feature_id, ts) WHERE feature_id IS NOT NULL;
COMMENT ON TABLE kpi.revenue_events IS
    'Revenue per customer (numeric amount, ISO currency). billing_period monthly/annual marks recurring revenue; NULL is one-off. Negative amounts are refunds.';

SELECT pg_catalog.pg_extension_config_dump('kpi.customers', '');
SELECT pg_catalog.pg_extension_config_dump('kpi.revenue_events', '');

-- Raises when a calculation would mix currencies; returns the single currency.
CREATE FUNCTION kpi.single_currency(currencies text[], func text) RETURNS text
    IMMUTABLE PARALLEL SAFE LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(currencies) > 1 THEN
        RAISE EXCEPTION '%: revenue in more than one currency (%)', func, array_to_string(currencies, ', ')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'pass the currency argument to compute one currency at a time';
    END IF;
    RETURN currencies[1];
END
$$;

-- MRR per customer on a day: the latest recurring billing event of each
-- subscription (subscription_id, or the customer when it has none) up to the
-- end of the day counts if its period (1 month, or 1 year at amount / 12)
-- reaches past the start of the day.
CREATE FUNCTION kpi.customer_mrr(at date DEFAULT current_date, currency text DEFAULT NULL)
RETURNS TABLE (customer_id text, mrr numeric, currency text)
STABLE PARALLEL SAFE LANGUAGE sql AS $$
    SELECT s.customer_id, trim_scale(sum(CASE s.billing_period WHEN 'annual' THEN s.amount / 12 ELSE s.amount END)), s.currency
    FROM (
        SELECT DISTINCT ON (coalesce(e.subscription_id, e.customer_id), e.currency)
               e.customer_id, e.amount, e.billing_period, e.currency, e.ts
        FROM kpi.revenue_events e
        WHERE e.billing_period IS NOT NULL
          AND e.ts < ($1 + 1)::timestamptz
          AND ($2 IS NULL OR e.currency = $2)
        ORDER BY coalesce(e.subscription_id, e.customer_id), e.currency, e.ts DESC, e.event_id DESC
    ) s
    WHERE s.ts + CASE s.billing_period WHEN 'annual' THEN interval '1 year' ELSE interval '1 month' END > $1::timestamptz
    GROUP BY s.customer_id, s.currency
    HAVING sum(CASE s.billing_period WHEN 'annual' THEN s.amount / 12 ELSE s.amount END) > 0
$$;

CREATE FUNCTION kpi.mrr(at date DEFAULT current_date, currency text DEFAULT NULL) RETURNS numeric
STABLE PARALLEL SAFE LANGUAGE plpgsql AS $$
DECLARE
    cur text[];
    total numeric;
BEGIN
    SELECT array_agg(DISTINCT c.currency), coalesce(sum(c.mrr), 0) INTO cur, total
    FROM kpi.customer_mrr(at, currency) c;
    PERFORM kpi.single_currency(cur, 'kpi.mrr');
    RETURN trim_scale(total);
END
$$;
COMMENT ON FUNCTION kpi.mrr(date, text) IS 'Monthly recurring revenue on a day: active monthly subscriptions plus annual ones / 12';

CREATE FUNCTION kpi.mrr_movements("from" date, "to" date, currency text DEFAULT NULL)
RETURNS TABLE (month date, new numeric, expansion numeric, contraction numeric, churned numeric,
               reactivation numeric, net_new numeric, mrr numeric)
STABLE PARALLEL SAFE LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    m date;
    cur text[];
BEGIN
    IF "from" IS NULL OR "to" IS NULL OR "from" > "to" THEN
        RAISE EXCEPTION 'kpi.mrr_movements: "from" must not be after "to"' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(DISTINCT e.currency) INTO cur FROM kpi.revenue_events e
    WHERE e.billing_period IS NOT NULL AND e.ts < ("to" + 1)::timestamptz
      AND (mrr_movements.currency IS NULL OR e.currency = mrr_movements.currency);
    PERFORM kpi.single_currency(cur, 'kpi.mrr_movements');
    m := date_trunc('month', "from")::date;
    WHILE m <= "to" LOOP
        RETURN QUERY
        WITH prev AS (SELECT p.customer_id, p.mrr FROM kpi.customer_mrr(m - 1, mrr_movements.currency) p),
             cur AS (SELECT c.customer_id, c.mrr FROM kpi.customer_mrr((m + interval '1 month')::date - 1, mrr_movements.currency) c),
             j AS (
                 SELECT coalesce(p.mrr, 0) AS before, coalesce(c.mrr, 0) AS after,
                        EXISTS (SELECT FROM kpi.revenue_events e
                                WHERE e.customer_id = coalesce(c.customer_id, p.customer_id)
                                  AND e.billing_period IS NOT NULL AND e.ts < m::timestamptz
                                  AND (mrr_movements.currency IS NULL OR e.currency = mrr_movements.currency)) AS paid_before
                 FROM prev p FULL JOIN cur c ON c.customer_id = p.customer_id
             ), s AS (
                 SELECT coalesce(sum(after) FILTER (WHERE before = 0 AND after > 0 AND NOT paid_before), 0) AS new,
                        coalesce(sum(after - before) FILTER (WHERE before > 0 AND after > before), 0) AS expansion,
                        coalesce(sum(before - after) FILTER (WHERE before > 0 AND after > 0 AND after < before), 0) AS contraction,
                        coalesce(sum(before) FILTER (WHERE before > 0 AND after = 0), 0) AS churned,
                        coalesce(sum(after) FILTER (WHERE before = 0 AND after > 0 AND paid_before), 0) AS reactivation,
                        coalesce(sum(after), 0) AS mrr
                 FROM j
             )
        SELECT m, trim_scale(s.new), trim_scale(s.expansion), trim_scale(s.contraction), trim_scale(s.churned),
               trim_scale(s.reactivation), trim_scale(s.new + s.expansion + s.reactivation - s.contraction - s.churned),
               trim_scale(s.mrr)
        FROM s;
        m := (m + interval '1 month')::date;
    END LOOP;
END
$$;
COMMENT ON FUNCTION kpi.mrr_movements(date, date, text) IS
    'Per month from..to: MRR movements between consecutive month ends (new, expansion, contraction, churned, reactivation, net new) and the month-end MRR';

-- Net and gross revenue retention of the customers paying at "from" (new business excluded).
CREATE FUNCTION kpi.revenue_retention("from" date, "to" date, currency text, gross boolean) RETURNS numeric
STABLE PARALLEL SAFE LANGUAGE plpgsql AS $$
DECLARE
    cur text[];
    r numeric;
BEGIN
    SELECT array_agg(DISTINCT s.currency),
           sum(CASE WHEN gross THEN least(coalesce(e.mrr, 0), s.mrr) ELSE coalesce(e.mrr, 0) END)
             / nullif(sum(s.mrr), 0)
    INTO cur, r
    FROM kpi.customer_mrr("from", revenue_retention.currency) s
    LEFT JOIN kpi.customer_mrr("to", revenue_retention.currency) e
           ON e.customer_id = s.customer_id AND e.currency = s.currency;
    PERFORM kpi.single_currency(cur, CASE WHEN gross THEN 'kpi.grr' ELSE 'kpi.nrr' END);
    RETURN r;
END
$$;

CREATE FUNCTION kpi.nrr("from" date, "to" date, currency text DEFAULT NULL) RETURNS numeric
STABLE PARALLEL SAFE LANGUAGE sql AS $$ SELECT kpi.revenue_retention($1, $2, $3, false) $$;
COMMENT ON FUNCTION kpi.nrr(date, date, text) IS
    'Net revenue retention: MRR at "to" of the customers paying at "from" / their MRR at "from"; NULL without starting MRR';

CREATE FUNCTION kpi.grr("from" date, "to" date, currency text DEFAULT NULL) RETURNS numeric
STABLE PARALLEL SAFE LANGUAGE sql AS $$ SELECT kpi.revenue_retention($1, $2, $3, true) $$;
COMMENT ON FUNCTION kpi.grr(date, date, text) IS
    'Gross revenue retention: like NRR without expansion (each customer counts at most its starting MRR), so <= 1';

CREATE FUNCTION kpi.arpu("from" timestamptz, "to" timestamptz, currency text DEFAULT NULL) RETURNS numeric
STABLE PARALLEL SAFE LANGUAGE plpgsql AS $$
DECLARE
    cur text[];
    r numeric;
BEGIN
    SELECT array_agg(DISTINCT e.currency), sum(e.amount) / nullif(count(DISTINCT e.customer_id), 0) INTO cur, r
    FROM kpi.revenue_events e
    WHERE e.ts >= "from" AND e.ts < "to" AND (arpu.currency IS NULL OR e.currency = arpu.currency);
    PERFORM kpi.single_currency(cur, 'kpi.arpu');
    RETURN r;
END
$$;
COMMENT ON FUNCTION kpi.arpu(timestamptz, timestamptz, text) IS
    'Average revenue per paying customer in ["from", "to"); NULL when nobody paid';

-- Customers paying (MRR > 0) on "from" whose subscriptions have lapsed by "to",
-- over the customers paying on "from"; customers who joined after "from" are not counted.
CREATE FUNCTION kpi.customer_churn_rate("from" timestamptz, "to" timestamptz, currency text DEFAULT NULL) RETURNS float8
STABLE PARALLEL SAFE LANGUAGE plpgsql AS $$
DECLARE
    cur text[];
    at_start bigint;
    lost bigint;
BEGIN
    IF "from" > "to" THEN
        RAISE EXCEPTION 'kpi.customer_churn_rate: "from" must not be after "to"' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(DISTINCT s.currency), count(DISTINCT s.customer_id),
           count(DISTINCT s.customer_id) FILTER (WHERE NOT EXISTS (
               SELECT FROM kpi.customer_mrr("to"::date, customer_churn_rate.currency) e
               WHERE e.customer_id = s.customer_id AND e.currency = s.currency))
    INTO cur, at_start, lost
    FROM kpi.customer_mrr("from"::date, customer_churn_rate.currency) s;
    PERFORM kpi.single_currency(cur, 'kpi.customer_churn_rate');
    RETURN kpi.churn_rate(at_start, lost);
END
$$;

-- The replaced service's per-customer LTV from its revenue events up to "at".
CREATE FUNCTION kpi.customer_clv(customer_id text, at timestamptz DEFAULT now(), currency text DEFAULT NULL) RETURNS numeric
STABLE PARALLEL SAFE LANGUAGE plpgsql AS $$
DECLARE
    cur text[];
    n bigint;
    total numeric;
    recent numeric;
    first_ts timestamptz;
    last_ts timestamptz;
    months numeric;
    age_months numeric;
    momentum float8;
BEGIN
    SELECT array_agg(DISTINCT e.currency), count(*), coalesce(sum(e.amount), 0),
           coalesce(sum(e.amount) FILTER (WHERE e.ts > at - interval '30 days'), 0), min(e.ts), max(e.ts)
    INTO cur, n, total, recent, first_ts, last_ts
    FROM kpi.revenue_events e
    WHERE e.customer_id = customer_clv.customer_id AND e.ts <= at
      AND (customer_clv.currency IS NULL OR e.currency = customer_clv.currency);
    PERFORM kpi.single_currency(cur, 'kpi.customer_clv');
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    IF n < 2 THEN
        RETURN total;
    END IF;
    months := greatest(1, floor(extract(epoch FROM last_ts - first_ts) / 86400 / 30));
    age_months := greatest(1, floor(extract(epoch FROM at - first_ts) / 86400 / 30));
    momentum := CASE WHEN total > 0 THEN (recent / (total / age_months))::float8 ELSE 0 END;
    RETURN round(kpi.clv_simple(total / months,
                 kpi.churn_probability(extract(epoch FROM at - last_ts) / 86400, greatest(momentum, 0), 0, 1)), 2);
END
$$;
COMMENT ON FUNCTION kpi.customer_clv(text, timestamptz, text) IS
    'Replaced LTV, rounded to 2 decimals: (revenue / max(1, 30-day months first..last event)) / max(0.01, churn probability from inactivity and revenue momentum); one event: its revenue';

-- Revenue, ROI and payback of an investment over the period ending at "at", as the replaced API returned.
CREATE FUNCTION kpi.roi_report(investment numeric, period interval, feature_id text DEFAULT NULL,
                               at timestamptz DEFAULT now(), currency text DEFAULT NULL) RETURNS jsonb
STABLE PARALLEL SAFE LANGUAGE plpgsql AS $$
DECLARE
    cur text[];
    total numeric;
    days numeric;
    per_day numeric;
    payback numeric;
BEGIN
    IF period IS NULL OR period <= interval '0' THEN
        RAISE EXCEPTION 'kpi.roi_report: period must be a positive interval' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(DISTINCT e.currency), coalesce(sum(e.amount), 0),
           kpi.payback_days(e.ts, e.amount, roi_report.investment, at - period)
    INTO cur, total, payback
    FROM kpi.revenue_events e
    WHERE e.ts >= at - period AND e.ts < at
      AND (roi_report.feature_id IS NULL OR e.feature_id = roi_report.feature_id)
      AND (roi_report.currency IS NULL OR e.currency = roi_report.currency);
    PERFORM kpi.single_currency(cur, 'kpi.roi_report');
    days := extract(epoch FROM period) / 86400;
    per_day := total / days;
    RETURN jsonb_build_object(
        'roi_percentage', kpi.roi(total, investment),
        'total_revenue', total,
        'payback_period_days', payback,
        'revenue_per_day', trim_scale(round(per_day, 6)),
        'break_even_point_days', trim_scale(round(kpi.break_even_days(investment, per_day), 6)),
        'currency', cur[1]);
END
$$;

-- Per customer, from revenue events with a positive amount up to observation_end,
-- bucketed to `period` from the customer's first purchase: frequency = buckets
-- with a purchase − 1, recency = last bucket, t = age, monetary = mean total of
-- the repeat buckets (0 without repeats); all in units of `period`.
CREATE FUNCTION kpi.rfm_summary(period interval DEFAULT '1 week', observation_end timestamptz DEFAULT now(),
                                currency text DEFAULT NULL, revenue_types text[] DEFAULT NULL)
RETURNS TABLE (customer_id text, frequency float8, recency float8, t float8, monetary numeric)
STABLE PARALLEL SAFE LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    p float8 := extract(epoch FROM period);
    cur text[];
BEGIN
    IF p IS NULL OR p <= 0 THEN
        RAISE EXCEPTION 'kpi.rfm_summary: period must be a positive interval' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(DISTINCT e.currency) INTO cur FROM kpi.revenue_events e
    WHERE e.ts <= observation_end AND e.amount > 0 AND (rfm_summary.currency IS NULL OR e.currency = rfm_summary.currency)
      AND (revenue_types IS NULL OR e.revenue_type = ANY (revenue_types));
    PERFORM kpi.single_currency(cur, 'kpi.rfm_summary');
    RETURN QUERY
    WITH ev AS (
        SELECT e.customer_id, e.ts, e.amount,
               min(e.ts) OVER (PARTITION BY e.customer_id) AS first_ts
        FROM kpi.revenue_events e
        WHERE e.ts <= observation_end AND e.amount > 0
          AND (rfm_summary.currency IS NULL OR e.currency = rfm_summary.currency)
          AND (revenue_types IS NULL OR e.revenue_type = ANY (revenue_types))
    ), b AS (
        SELECT ev.customer_id, ev.first_ts, floor(extract(epoch FROM ev.ts - ev.first_ts) / p)::bigint AS k,
               sum(ev.amount) AS total
        FROM ev GROUP BY 1, 2, 3
    )
    SELECT b.customer_id, (count(*) - 1)::float8, max(b.k)::float8,
           extract(epoch FROM observation_end - b.first_ts)::float8 / p,
           trim_scale(coalesce(avg(b.total) FILTER (WHERE b.k > 0), 0))
    FROM b
    GROUP BY b.customer_id, b.first_ts
    ORDER BY b.customer_id;
END
$$;
COMMENT ON FUNCTION kpi.rfm_summary(interval, timestamptz, text, text[]) IS
    'Frequency, recency, T and monetary value per customer, in units of period (optionally only some revenue types): the inputs of kpi.bgnbd_fit and kpi.gamma_gamma_fit';
