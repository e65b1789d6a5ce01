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

-- The replaced services wrote revenue types and segments in their own spellings
-- (RevenueType.SUBSCRIPTION_REVENUE, "small_medium_business", "Power User"...).
-- Rows are stored with pg_kpi's canonical names; unknown names are an error
-- that lists the accepted ones.
CREATE FUNCTION kpi.canonical_revenue_type(revenue_type text) RETURNS text
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql AS $$
    SELECT CASE n
        WHEN 'subscriptions' THEN 'subscription' WHEN 'recurring' THEN 'subscription'
        WHEN 'usage_based' THEN 'usage' WHEN 'metered' THEN 'usage'
        WHEN 'transactions' THEN 'transaction' WHEN 'transaction_fee' THEN 'transaction'
        WHEN 'transaction_fees' THEN 'transaction'
        WHEN 'premium_features' THEN 'premium_feature' WHEN 'premium' THEN 'premium_feature'
        WHEN 'api_access' THEN 'api' WHEN 'api_usage' THEN 'api' WHEN 'api_calls' THEN 'api'
        WHEN 'services' THEN 'professional_services' WHEN 'professional_service' THEN 'professional_services'
        WHEN 'consulting' THEN 'professional_services'
        ELSE n END
    FROM (SELECT regexp_replace(regexp_replace(lower(btrim($1)), '[\s-]+', '_', 'g'), '_revenue$', '') AS n) x
$$;
COMMENT ON FUNCTION kpi.canonical_revenue_type(text) IS
    'pg_kpi''s name for a revenue type written as the replaced services did (subscription_revenue -> subscription, usage_based -> usage, premium_features -> premium_feature, api_access -> api, ...); other names unchanged';

CREATE FUNCTION kpi.canonical_segment(segment text) RETURNS text
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql AS $$
    SELECT CASE n
        WHEN 'small_medium_business' THEN 'smb' WHEN 'small_and_medium_business' THEN 'smb'
        WHEN 'small_business' THEN 'smb' WHEN 'sme' THEN 'smb' WHEN 'mid_market' THEN 'smb'
        WHEN 'enterprises' THEN 'enterprise' WHEN 'startups' THEN 'startup'
        WHEN 'individuals' THEN 'individual' WHEN 'consumer' THEN 'individual'
        WHEN 'trial_user' THEN 'trial' WHEN 'free' THEN 'freemium' WHEN 'free_tier' THEN 'freemium'
        WHEN 'power_users' THEN 'power_user' WHEN 'poweruser' THEN 'power_user'
        WHEN 'casual_users' THEN 'casual_user' WHEN 'casual' THEN 'casual_user'
        ELSE n END
    FROM (SELECT regexp_replace(lower(btrim($1)), '[\s-]+', '_', 'g') AS n) x
$$;
COMMENT ON FUNCTION kpi.canonical_segment(text) IS
    'pg_kpi''s name for a customer segment written as the replaced services did (small_medium_business -> smb, "Power User" -> power_user, ...); other names unchanged';

CREATE FUNCTION kpi_internal.revenue_names() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'revenue_events' THEN
        NEW.revenue_type := kpi.canonical_revenue_type(NEW.revenue_type);
        IF NEW.revenue_type NOT IN ('subscription', 'usage', 'transaction', 'premium_feature', 'api',
                                    'marketplace', 'professional_services', 'training') THEN
            RAISE EXCEPTION 'kpi.revenue_events: unknown revenue_type "%"', NEW.revenue_type
                USING ERRCODE = 'check_violation',
                      HINT = 'Use one of subscription, usage, transaction, premium_feature, api, marketplace, professional_services, training (the replaced services'' spellings such as subscription_revenue are mapped).';
        END IF;
        NEW.currency := upper(NEW.currency);
    ELSIF NEW.segment IS NOT NULL THEN
        NEW.segment := kpi.canonical_segment(NEW.segment);
        IF NEW.segment NOT IN ('enterprise', 'smb', 'startup', 'individual', 'trial', 'freemium',
                               'power_user', 'casual_user') THEN
            RAISE EXCEPTION 'kpi.customers: unknown segment "%"', NEW.segment
                USING ERRCODE = 'check_violation',
                      HINT = 'Use one of enterprise, smb, startup, individual, trial, freemium, power_user, casual_user (spellings such as small_medium_business are mapped).';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION kpi_internal.revenue_names() IS
    'Internal trigger: stores revenue types and segments under their canonical names (kpi.canonical_revenue_type, kpi.canonical_segment)';
CREATE TRIGGER revenue_events_names BEFORE INSERT OR UPDATE OF revenue_type, currency ON kpi.revenue_events
    FOR EACH ROW EXECUTE FUNCTION kpi_internal.revenue_names();
CREATE TRIGGER customers_names BEFORE INSERT OR UPDATE OF segment ON kpi.customers
    FOR EACH ROW EXECUTE FUNCTION kpi_internal.revenue_names();

-- Raises when a calculation would mix currencies; returns the single currency.
CREATE FUNCTION kpi_internal.single_currency(currencies text[], func text) RETURNS text
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
COMMENT ON FUNCTION kpi_internal.single_currency(text[], text) IS
    'Internal: the one currency of currencies, or 22023 naming func when there are several';

-- One rule for every function that takes a period: both ends given and "from"
-- not after "to" (22023 naming both arguments).
CREATE FUNCTION kpi_internal.check_period(func text, "from" anyelement, "to" anyelement) RETURNS void
    STABLE PARALLEL SAFE LANGUAGE plpgsql AS $$
BEGIN
    IF "from" IS NULL OR "to" IS NULL THEN
        RAISE EXCEPTION '%: "from" and "to" must not be NULL', func
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF "from"::text IN ('infinity', '-infinity') OR "to"::text IN ('infinity', '-infinity') THEN
        RAISE EXCEPTION '%: "from" and "to" must be finite, got % to %', func, "from", "to"
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF "from" > "to" THEN
        RAISE EXCEPTION '%: "from" (%) is after "to" (%)', func, "from", "to"
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A period runs from "from" to "to"; swap the two arguments.';
    END IF;
END
$$;
COMMENT ON FUNCTION kpi_internal.check_period(text, anyelement, anyelement) IS
    'Internal: raises 22023 when "from" is after "to" or either is infinite (and 22004 when either is NULL)';

-- A day a business metric is evaluated at: not NULL, not in the future.
CREATE FUNCTION kpi_internal.check_at(func text, at date) RETURNS date
    STABLE PARALLEL SAFE LANGUAGE plpgsql AS $$
BEGIN
    IF at IS NULL THEN
        RAISE EXCEPTION '%: at must not be NULL', func USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF at > current_date THEN
        RAISE EXCEPTION '%: at (%) is in the future', func, at
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Today is %s; revenue that has not happened yet cannot be measured.', current_date),
                  HINT = 'Pass a day up to today, or leave at out to use today.';
    END IF;
    RETURN at;
END
$$;
COMMENT ON FUNCTION kpi_internal.check_at(text, date) IS 'Internal: raises 22023 when at is in the future; returns at';

CREATE FUNCTION kpi_internal.check_at(func text, at timestamptz) RETURNS timestamptz
    STABLE PARALLEL SAFE LANGUAGE plpgsql AS $$
BEGIN
    IF at IS NULL THEN
        RAISE EXCEPTION '%: at must not be NULL', func USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF at > now() THEN
        RAISE EXCEPTION '%: at (%) is in the future', func, at
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The transaction started at %s; revenue that has not happened yet cannot be measured.', now()),
                  HINT = 'Pass an instant up to now(), or leave at out to use now().';
    END IF;
    RETURN at;
END
$$;
COMMENT ON FUNCTION kpi_internal.check_at(text, timestamptz) IS 'Internal: raises 22023 when at is after now(); returns at';

CREATE FUNCTION kpi_internal.check_grace(func text, grace interval) RETURNS interval
    IMMUTABLE PARALLEL SAFE LANGUAGE plpgsql AS $$
BEGIN
    IF grace IS NULL OR grace < interval '0' THEN
        RAISE EXCEPTION '%: grace must be an interval >= 0 (got %)', func, coalesce(grace::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'grace is how long after its paid period a subscription still counts as active, waiting for a late renewal (default 3 days).';
    END IF;
    RETURN grace;
END
$$;
COMMENT ON FUNCTION kpi_internal.check_grace(text, interval) IS 'Internal: raises 22023 when grace is NULL or negative; returns grace';

-- The day a period ending on "to" is evaluated at: least("to", at). A period
-- that has not ended yet is evaluated up to at, with a NOTICE saying so.
CREATE FUNCTION kpi_internal.period_end(func text, "from" date, "to" date, at date) RETURNS date
    STABLE PARALLEL SAFE LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kpi_internal.check_period(func, "from", "to");
    PERFORM kpi_internal.check_at(func, at);
    IF "from" > at THEN
        RAISE EXCEPTION '%: "from" (%) is after at (%): the period has not started', func, "from", at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF "to" > at THEN
        RAISE NOTICE '%: the period ends on % (after %); evaluated up to %, so the result is partial', func, "to", at, at;
    END IF;
    RETURN least("to", at);
END
$$;
COMMENT ON FUNCTION kpi_internal.period_end(text, date, date, date) IS
    'Internal: checks a period and returns least("to", at), with a NOTICE when the period has not ended';

-- MRR per customer on a day: the latest recurring billing event of each
-- subscription (subscription_id, or the customer when it has none) up to the
-- end of the day counts while its paid period (1 month, or 1 year at amount / 12)
-- plus the grace for a late renewal reaches past the start of the day.
CREATE FUNCTION kpi.customer_mrr(at date DEFAULT current_date, currency text DEFAULT NULL,
                                 grace interval DEFAULT '3 days')
RETURNS TABLE (customer_id text, mrr numeric, currency text)
STABLE PARALLEL SAFE LANGUAGE sql AS $$
    SELECT kpi_internal.check_at('kpi.customer_mrr', $1);
    SELECT kpi_internal.check_grace('kpi.customer_mrr', $3);
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
    WHERE s.ts + CASE s.billing_period WHEN 'annual' THEN interval '1 year' ELSE interval '1 month' END + $3
          > $1::timestamptz
    GROUP BY s.customer_id, s.currency
    HAVING sum(CASE s.billing_period WHEN 'annual' THEN s.amount / 12 ELSE s.amount END) > 0;
$$;
COMMENT ON FUNCTION kpi.customer_mrr(date, text, interval) IS
    'MRR per customer on a day: each subscription''s latest recurring charge counts until its paid period plus grace (default 3 days, for late renewals) has passed';

CREATE FUNCTION kpi.mrr(at date DEFAULT current_date, currency text DEFAULT NULL,
                        grace interval DEFAULT '3 days') RETURNS numeric
STABLE PARALLEL SAFE LANGUAGE plpgsql AS $$
DECLARE
    cur text[];
    total numeric;
BEGIN
    PERFORM kpi_internal.check_at('kpi.mrr', at);
    PERFORM kpi_internal.check_grace('kpi.mrr', grace);
    SELECT array_agg(DISTINCT c.currency), coalesce(sum(c.mrr), 0) INTO cur, total
    FROM kpi.customer_mrr(at, currency, grace) c;
    PERFORM kpi_internal.single_currency(cur, 'kpi.mrr');
    RETURN trim_scale(total);
END
$$;
COMMENT ON FUNCTION kpi.mrr(date, text, interval) IS
    'Monthly recurring revenue on a day (not in the future): active monthly subscriptions plus annual ones / 12; a subscription stays active for grace after its paid period';

CREATE FUNCTION kpi.mrr_movements("from" date, "to" date, currency text DEFAULT NULL,
                                  at date DEFAULT current_date, grace interval DEFAULT '3 days')
RETURNS TABLE (month date, new numeric, expansion numeric, contraction numeric, churned numeric,
               reactivation numeric, net_new numeric, mrr numeric, complete boolean)
STABLE PARALLEL SAFE LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    m date;
    month_end date;
    cur text[];
    first_ts timestamptz;
BEGIN
    PERFORM kpi_internal.check_period('kpi.mrr_movements', "from", "to");
    PERFORM kpi_internal.check_at('kpi.mrr_movements', at);
    PERFORM kpi_internal.check_grace('kpi.mrr_movements', grace);
    -- every event the last month's evaluation reads
    SELECT array_agg(DISTINCT e.currency) INTO cur FROM kpi.revenue_events e
    WHERE e.billing_period IS NOT NULL
      AND e.ts < (least((date_trunc('month', "to") + interval '1 month')::date - 1, at) + 1)::timestamptz
      AND (mrr_movements.currency IS NULL OR e.currency = mrr_movements.currency);
    PERFORM kpi_internal.single_currency(cur, 'kpi.mrr_movements');
    SELECT min(e.ts) INTO first_ts FROM kpi.revenue_events e
    WHERE e.billing_period IS NOT NULL
      AND (mrr_movements.currency IS NULL OR e.currency = mrr_movements.currency);
    m := date_trunc('month', "from")::date;
    -- months that have not started are not reported; the month in progress is
    -- evaluated at "at" and marked complete = false
    WHILE m <= "to" AND m <= at LOOP
        month_end := (m + interval '1 month')::date - 1;
        IF first_ts IS NULL OR month_end::timestamptz < first_ts - interval '1 day' THEN
            -- no subscription revenue yet: nothing moves (and no query runs)
            month := m; new := 0; expansion := 0; contraction := 0; churned := 0;
            reactivation := 0; net_new := 0; mrr := 0; complete := month_end <= at;
            RETURN NEXT;
            m := (m + interval '1 month')::date;
            CONTINUE;
        END IF;
        RETURN QUERY
        WITH prev AS (SELECT p.customer_id, p.mrr, p.currency FROM kpi.customer_mrr(m - 1, mrr_movements.currency, grace) p),
             cur AS (SELECT c.customer_id, c.mrr, c.currency FROM kpi.customer_mrr(least(month_end, at), mrr_movements.currency, grace) c),
             j AS (
                 SELECT coalesce(p.mrr, 0) AS before, coalesce(c.mrr, 0) AS after,
                        EXISTS (SELECT FROM kpi.revenue_events e
                                WHERE e.customer_id = coalesce(c.customer_id, p.customer_id)
                                  AND e.billing_period IS NOT NULL AND e.ts < m::timestamptz
                                  AND (mrr_movements.currency IS NULL OR e.currency = mrr_movements.currency)) AS paid_before
                 FROM prev p FULL JOIN cur c ON c.customer_id = p.customer_id AND c.currency = p.currency
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
               trim_scale(s.mrr), month_end <= at
        FROM s;
        m := (m + interval '1 month')::date;
    END LOOP;
END
$$;
COMMENT ON FUNCTION kpi.mrr_movements(date, date, text, date, interval) IS
    'Per month from..to: MRR movements between consecutive month ends (new, expansion, contraction, churned, reactivation, net new) and the month-end MRR; the month in progress is evaluated at "at" (default today) with complete = false, later months are not returned';

-- Net and gross revenue retention of the customers paying at "from" (new business excluded).
CREATE FUNCTION kpi_internal.revenue_retention("from" date, "to" date, currency text, gross boolean,
                                      at date DEFAULT current_date, grace interval DEFAULT '3 days') RETURNS numeric
STABLE PARALLEL SAFE LANGUAGE plpgsql AS $$
DECLARE
    func text := CASE WHEN gross THEN 'kpi.grr' ELSE 'kpi.nrr' END;
    cur text[];
    r numeric;
    until date;
BEGIN
    until := kpi_internal.period_end(func, "from", "to", at);
    PERFORM kpi_internal.check_grace(func, grace);
    SELECT array_agg(DISTINCT s.currency),
           sum(CASE WHEN gross THEN least(coalesce(e.mrr, 0), s.mrr) ELSE coalesce(e.mrr, 0) END)
             / nullif(sum(s.mrr), 0)
    INTO cur, r
    FROM kpi.customer_mrr("from", revenue_retention.currency, grace) s
    LEFT JOIN kpi.customer_mrr(until, revenue_retention.currency, grace) e
           ON e.customer_id = s.customer_id AND e.currency = s.currency;
    PERFORM kpi_internal.single_currency(cur, func);
    RETURN r;
END
$$;
COMMENT ON FUNCTION kpi_internal.revenue_retention(date, date, text, boolean, date, interval) IS
    'Shared body of kpi.nrr (gross = false) and kpi.grr (gross = true)';

CREATE FUNCTION kpi.nrr("from" date, "to" date, currency text DEFAULT NULL,
                        at date DEFAULT current_date, grace interval DEFAULT '3 days') RETURNS numeric
STABLE PARALLEL SAFE LANGUAGE sql AS $$ SELECT kpi_internal.revenue_retention($1, $2, $3, false, $4, $5) $$;
COMMENT ON FUNCTION kpi.nrr(date, date, text, date, interval) IS
    'Net revenue retention: MRR at least("to", at) of the customers paying at "from" / their MRR at "from"; NULL without starting MRR';

CREATE FUNCTION kpi.grr("from" date, "to" date, currency text DEFAULT NULL,
                        at date DEFAULT current_date, grace interval DEFAULT '3 days') RETURNS numeric
STABLE PARALLEL SAFE LANGUAGE sql AS $$ SELECT kpi_internal.revenue_retention($1, $2, $3, true, $4, $5) $$;
COMMENT ON FUNCTION kpi.grr(date, date, text, date, interval) IS
    'Gross revenue retention: like NRR without expansion (each customer counts at most its starting MRR), so <= 1';

CREATE FUNCTION kpi.arpu("from" timestamptz, "to" timestamptz, currency text DEFAULT NULL) RETURNS numeric
STABLE PARALLEL SAFE LANGUAGE plpgsql AS $$
DECLARE
    cur text[];
    r numeric;
BEGIN
    PERFORM kpi_internal.check_period('kpi.arpu', "from", "to");
    SELECT array_agg(DISTINCT e.currency), sum(e.amount) / nullif(count(DISTINCT e.customer_id), 0) INTO cur, r
    FROM kpi.revenue_events e
    WHERE e.ts >= "from" AND e.ts < "to" AND (arpu.currency IS NULL OR e.currency = arpu.currency);
    PERFORM kpi_internal.single_currency(cur, 'kpi.arpu');
    RETURN r;
END
$$;
COMMENT ON FUNCTION kpi.arpu(timestamptz, timestamptz, text) IS
    'Average revenue per paying customer in ["from", "to"); NULL when nobody paid';

-- Customers paying (MRR > 0) on "from" whose subscriptions have lapsed (paid
-- period plus grace over) by least("to", at), over the customers paying on
-- "from"; customers who joined after "from" are not counted.
CREATE FUNCTION kpi.customer_churn_rate("from" timestamptz, "to" timestamptz, currency text DEFAULT NULL,
                                        at timestamptz DEFAULT now(), grace interval DEFAULT '3 days') RETURNS float8
STABLE PARALLEL SAFE LANGUAGE plpgsql AS $$
DECLARE
    cur text[];
    at_start bigint;
    lost bigint;
    until date;
BEGIN
    until := kpi_internal.period_end('kpi.customer_churn_rate', "from"::date, "to"::date, at::date);
    PERFORM kpi_internal.check_grace('kpi.customer_churn_rate', grace);
    -- both days' MRR once, then an anti-join (not customer_mrr per customer)
    WITH e AS MATERIALIZED (SELECT x.customer_id, x.currency FROM kpi.customer_mrr(until, customer_churn_rate.currency, grace) x)
    SELECT array_agg(DISTINCT s.currency), count(DISTINCT s.customer_id),
           count(DISTINCT s.customer_id) FILTER (WHERE e.customer_id IS NULL)
    INTO cur, at_start, lost
    FROM kpi.customer_mrr("from"::date, customer_churn_rate.currency, grace) s
    LEFT JOIN e ON e.customer_id = s.customer_id AND e.currency = s.currency;
    PERFORM kpi_internal.single_currency(cur, 'kpi.customer_churn_rate');
    RETURN kpi.churn_rate(at_start, lost);
END
$$;
COMMENT ON FUNCTION kpi.customer_churn_rate(timestamptz, timestamptz, text, timestamptz, interval) IS
    'Share of the customers paying on "from" whose subscriptions lapsed (paid period plus grace over) by least("to", at); new customers are not counted';

-- The replaced LTV of one customer from the aggregates of its revenue events up
-- to "at": n events totalling total (recent in the 30 days before at), first
-- and last at first_ts and last_ts. Shared by kpi.customer_clv and
-- kpi.business_value_report.
CREATE FUNCTION kpi_internal.replaced_clv(n bigint, total numeric, recent numeric, first_ts timestamptz,
                                          last_ts timestamptz, at timestamptz) RETURNS numeric
IMMUTABLE PARALLEL SAFE LANGUAGE sql AS $$
    SELECT CASE
        WHEN n IS NULL OR n = 0 THEN NULL
        WHEN n < 2 THEN total
        ELSE round(kpi.clv_simple(
                 total / greatest(1, floor(extract(epoch FROM last_ts - first_ts) / 86400 / 30)),
                 kpi.churn_probability(
                     extract(epoch FROM at - last_ts)::float8 / 86400,
                     -- revenue momentum: the last 30 days against the average month since the first event
                     greatest(0, CASE WHEN total > 0
                                      THEN (recent / (total / greatest(1, floor(extract(epoch FROM at - first_ts) / 86400 / 30))))::float8
                                      ELSE 0 END),
                     0, 1)), 2)
    END
$$;
COMMENT ON FUNCTION kpi_internal.replaced_clv(bigint, numeric, numeric, timestamptz, timestamptz, timestamptz) IS
    'Internal: the replaced LTV from a customer''s event count, total, last-30-days revenue, first and last event times, at "at"';

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
BEGIN
    PERFORM kpi_internal.check_at('kpi.customer_clv', at);
    SELECT array_agg(DISTINCT e.currency), count(*), coalesce(sum(e.amount), 0),
           coalesce(sum(e.amount) FILTER (WHERE e.ts > at - interval '30 days'), 0), min(e.ts), max(e.ts)
    INTO cur, n, total, recent, first_ts, last_ts
    FROM kpi.revenue_events e
    WHERE e.customer_id = customer_clv.customer_id AND e.ts <= at
      AND (customer_clv.currency IS NULL OR e.currency = customer_clv.currency);
    PERFORM kpi_internal.single_currency(cur, 'kpi.customer_clv');
    RETURN kpi_internal.replaced_clv(n, total, recent, first_ts, last_ts, at);
END
$$;
COMMENT ON FUNCTION kpi.customer_clv(text, timestamptz, text) IS
    'Replaced LTV, rounded to 2 decimals: (revenue / max(1, 30-day months first..last event)) / max(0.01, churn probability from inactivity and revenue momentum); one event: its revenue';

-- ISO 4217 minor units: 2 unless listed (0 for the yen and others, 3 for the dinars).
CREATE FUNCTION kpi.currency_scale(currency text) RETURNS integer
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql AS $$
    SELECT CASE
        WHEN upper($1) IN ('BIF', 'CLP', 'DJF', 'GNF', 'ISK', 'JPY', 'KMF', 'KRW', 'PYG', 'RWF', 'UGX',
                           'UYI', 'VND', 'VUV', 'XAF', 'XOF', 'XPF') THEN 0
        WHEN upper($1) IN ('BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND') THEN 3
        WHEN upper($1) IN ('CLF', 'UYW') THEN 4
        ELSE 2 END
$$;
COMMENT ON FUNCTION kpi.currency_scale(text) IS
    'Decimal places of a currency''s minor unit (ISO 4217): 0 for JPY, KRW, ...; 3 for BHD, KWD, ...; 4 for CLF, UYW; otherwise 2';

-- Revenue, ROI and payback of an investment over the period ending at "at", as
-- the replaced API returned, rounded for reading: money to the currency's scale,
-- percentages and days to 2 decimals.
CREATE FUNCTION kpi.roi_report(investment numeric, period interval, feature_id text DEFAULT NULL,
                               at timestamptz DEFAULT now(), currency text DEFAULT NULL) RETURNS jsonb
STABLE PARALLEL SAFE LANGUAGE plpgsql AS $$
DECLARE
    cur text[];
    total numeric;
    days numeric;
    per_day numeric;
    payback numeric;
    scale integer;
BEGIN
    IF period IS NULL OR period <= interval '0' THEN
        RAISE EXCEPTION 'kpi.roi_report: period must be a positive interval' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF investment IS NULL OR investment < 0 OR investment = 'NaN' OR investment = 'Infinity' THEN
        RAISE EXCEPTION 'kpi.roi_report: investment must be a finite amount >= 0, got %', coalesce(investment::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM kpi_internal.check_at('kpi.roi_report', at);
    SELECT array_agg(DISTINCT e.currency), coalesce(sum(e.amount), 0),
           kpi.payback_days(e.ts, e.amount, roi_report.investment, at - period)
    INTO cur, total, payback
    FROM kpi.revenue_events e
    WHERE e.ts >= at - period AND e.ts < at
      AND (roi_report.feature_id IS NULL OR e.feature_id = roi_report.feature_id)
      AND (roi_report.currency IS NULL OR e.currency = roi_report.currency);
    PERFORM kpi_internal.single_currency(cur, 'kpi.roi_report');
    days := extract(epoch FROM period) / 86400;
    per_day := total / days;
    -- money at the currency's scale, ratios and days to 2 decimals
    scale := kpi.currency_scale(coalesce(cur[1], currency, 'USD'));
    RETURN jsonb_build_object(
        'roi_percentage', trim_scale(round(kpi.roi(total, investment), 2)),
        'total_revenue', round(total, scale),
        'payback_period_days', trim_scale(round(payback, 2)),
        'revenue_per_day', round(per_day, scale),
        'break_even_point_days', trim_scale(round(kpi.break_even_days(investment, per_day), 2)),
        'currency', cur[1]);
END
$$;
COMMENT ON FUNCTION kpi.roi_report(numeric, interval, text, timestamptz, text) IS
    'ROI (%), revenue, revenue per day, payback and break-even days of an investment over the period ending at "at" (optionally one feature), as jsonb; money at the currency''s scale';

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
    IF observation_end > now() THEN
        RAISE EXCEPTION 'kpi.rfm_summary: observation_end (%) is in the future', observation_end
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'T would count time that has not passed; pass an instant up to now().';
    END IF;
    SELECT array_agg(DISTINCT e.currency) INTO cur FROM kpi.revenue_events e
    WHERE e.ts <= observation_end AND e.amount > 0 AND (rfm_summary.currency IS NULL OR e.currency = rfm_summary.currency)
      AND (revenue_types IS NULL OR e.revenue_type = ANY (ARRAY(SELECT kpi.canonical_revenue_type(x) FROM unnest(revenue_types) x)));
    PERFORM kpi_internal.single_currency(cur, 'kpi.rfm_summary');
    RETURN QUERY
    WITH ev AS (
        SELECT e.customer_id, e.ts, e.amount,
               min(e.ts) OVER (PARTITION BY e.customer_id) AS first_ts
        FROM kpi.revenue_events e
        WHERE e.ts <= observation_end AND e.amount > 0
          AND (rfm_summary.currency IS NULL OR e.currency = rfm_summary.currency)
          AND (revenue_types IS NULL OR e.revenue_type = ANY (ARRAY(SELECT kpi.canonical_revenue_type(x) FROM unnest(revenue_types) x)))
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

CREATE AGGREGATE kpi.payback_days(ts timestamptz, amount numeric, investment numeric, start timestamptz) (
    SFUNC = kpi_internal.payback_days_trans, STYPE = internal, FINALFUNC = kpi_internal.payback_days_final,
    COMBINEFUNC = kpi_internal.payback_days_combine, SERIALFUNC = kpi_internal.payback_days_serialize,
    DESERIALFUNC = kpi_internal.payback_days_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE kpi.payback_days(timestamptz, numeric, numeric, timestamptz) IS
    'Days from start until the cumulative amount (rows at or after start, in time order) first reaches the investment; NULL if never';

-- the formulas of src/business.rs (money is numeric, computed exactly)
COMMENT ON FUNCTION kpi.roi(numeric, numeric) IS 'Return on investment in %: (revenue - investment) / investment x 100; NULL for a zero investment';
COMMENT ON FUNCTION kpi.break_even_days(numeric, numeric) IS 'Days until revenue_per_day covers the investment; NULL when revenue_per_day <= 0';
COMMENT ON FUNCTION kpi.payback_period(numeric[], numeric) IS
    'Periods until the cash flows recover the investment (whole periods plus the fraction of the last); NULL if never';
COMMENT ON FUNCTION kpi.payback_period(numeric[], numeric, float8) IS
    'Discounted payback in periods: the cash flow of period k divided by (1 + discount_rate)^k; NULL if never';
COMMENT ON FUNCTION kpi.clv_simple(numeric, float8) IS 'The replaced LTV formula: average monthly revenue / max(churn probability, 0.01)';
COMMENT ON FUNCTION kpi.clv(numeric, float8, float8, float8) IS
    'Customer lifetime value: arpu x gross_margin / (churn_rate + discount_rate) per period; NULL when both rates are 0';
COMMENT ON FUNCTION kpi.churn_rate(bigint, bigint) IS 'churned / customers at start (0..1); NULL for no customers';
COMMENT ON FUNCTION kpi.churn_probability(float8, float8, float8, float8) IS
    'Replaced churn heuristic: 0.3 min(days inactive/30, 1) + 0.3 max(0, 1 - momentum) + 0.2 support issues + 0.2 max(0, 1 - engagement), capped at 0.99';
COMMENT ON FUNCTION kpi.engagement_score(float8, integer, boolean, float8) IS
    'Engagement 0..1: 0.3 login frequency + 0.3 min(features used/10, 1) + 0.2 paid in the last 30 days + 0.2 support satisfaction';
COMMENT ON FUNCTION kpi.annualize_churn(float8) IS 'Annual churn from a monthly rate: 1 - (1 - monthly)^12';
COMMENT ON FUNCTION kpi.cac_payback_months(numeric, numeric, float8) IS
    'Months to earn back the acquisition cost: cac / (arpa x gross margin); NULL when never';
COMMENT ON FUNCTION kpi.ltv_cac_ratio(numeric, numeric) IS 'LTV / CAC; NULL for a zero CAC';
COMMENT ON FUNCTION kpi.growth(numeric, numeric) IS 'Growth ratio (current - previous) / previous, e.g. 0.12 for +12 %; NULL when previous is 0';

-- columns
COMMENT ON COLUMN kpi.customers.customer_id IS 'Customer id';
COMMENT ON COLUMN kpi.customers.segment IS 'enterprise, smb, startup, individual, trial, freemium, power_user or casual_user';
COMMENT ON COLUMN kpi.customers.acquired_at IS 'When the customer was acquired';
COMMENT ON COLUMN kpi.customers.acquisition_cost IS 'Cost of acquiring the customer (numeric money)';
COMMENT ON COLUMN kpi.customers.status IS 'active, trial, paused or churned';
COMMENT ON COLUMN kpi.customers.billing_cycle IS 'monthly or annual';
COMMENT ON COLUMN kpi.customers.payment_method IS 'Free text';
COMMENT ON COLUMN kpi.customers.created_at IS 'When the row was stored';
COMMENT ON COLUMN kpi.revenue_events.event_id IS 'Event id';
COMMENT ON COLUMN kpi.revenue_events.ts IS 'When the revenue happened';
COMMENT ON COLUMN kpi.revenue_events.customer_id IS 'Customer';
COMMENT ON COLUMN kpi.revenue_events.revenue_type IS 'subscription, usage, transaction, premium_feature, api, marketplace, professional_services or training';
COMMENT ON COLUMN kpi.revenue_events.amount IS 'Amount in currency (numeric; negative for refunds)';
COMMENT ON COLUMN kpi.revenue_events.currency IS 'ISO 4217 code (default USD)';
COMMENT ON COLUMN kpi.revenue_events.subscription_id IS 'Subscription a recurring charge belongs to';
COMMENT ON COLUMN kpi.revenue_events.product_id IS 'Product';
COMMENT ON COLUMN kpi.revenue_events.feature_id IS 'Feature the revenue is attributed to (ROI per feature)';
COMMENT ON COLUMN kpi.revenue_events.billing_period IS 'monthly or annual for recurring revenue; NULL for one-off';
COMMENT ON COLUMN kpi.revenue_events.metadata IS 'Free-form JSON object';
