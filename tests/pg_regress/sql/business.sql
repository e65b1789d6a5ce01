-- Business formulas (numeric money) and customer models.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_kpi;
SET extra_float_digits = 0;
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/helpers.sql

-- ROI, break-even and payback (numeric in, numeric out; NULL where undefined)
SELECT kpi.roi(15000, 10000) AS gain, kpi.roi(5000, 10000) AS loss, kpi.roi(100, 0) AS no_investment,
       pg_typeof(kpi.roi(1, 2)) AS type;
SELECT kpi.break_even_days(10000, 250) AS days, kpi.break_even_days(10000, 0) AS never;
SELECT kpi.payback_period(array[400, 300, 600, 100]::numeric[], 1000) AS periods,
       round(kpi.payback_period(array[400, 300, 600, 100]::numeric[], 1000, 0.1), 6) AS discounted,
       kpi.payback_period(array[400, 300]::numeric[], 1000) AS never;
SELECT kpi.roi(0.1, 0.3) AS exact_decimal;   -- no binary floating point on money
SELECT pg_temp.try($$SELECT kpi.roi(1, -5)$$);
SELECT pg_temp.try($$SELECT kpi.roi('NaN', 5)$$);
SELECT pg_temp.try($$SELECT kpi.roi(1e40, 5)$$);
SELECT pg_temp.try($$SELECT kpi.payback_period(array[1, NULL]::numeric[], 5)$$);
SELECT pg_temp.try($$SELECT kpi.payback_period(array[1]::numeric[], 5, -2)$$);

-- CLV and churn
SELECT kpi.clv_simple(100, 0.05) AS clv_simple, kpi.clv_simple(100, 0) AS floored_at_1pct;
SELECT kpi.clv(50, 0.05, 0.8) AS margin_adjusted, round(kpi.clv(50, 0.05, 0.8, 0.01), 6) AS discounted,
       kpi.clv(50, 0, 1, 0) AS undefined;
SELECT kpi.churn_rate(200, 10) AS rate, kpi.churn_rate(0, 0) AS no_customers;
SELECT kpi.churn_probability(15, 0.8, 0.5, 0.6) AS p, kpi.churn_probability(90, 0, 1, 0) AS capped;
SELECT kpi.engagement_score(0.5, 4, true, 0.75) AS engagement;
SELECT round(kpi.annualize_churn(0.05)::numeric, 10) AS annual;
SELECT kpi.cac_payback_months(600, 50, 0.8) AS months, kpi.ltv_cac_ratio(1800, 600) AS ratio,
       kpi.ltv_cac_ratio(1800, 0) AS no_cac, kpi.growth(110, 100) AS growth, kpi.growth(5, 0) AS no_base;
SELECT pg_temp.try($$SELECT kpi.clv_simple(100, 1.5)$$);
SELECT pg_temp.try($$SELECT kpi.churn_rate(10, 11)$$);
SELECT pg_temp.try($$SELECT kpi.churn_probability(-1, 0, 0, 0)$$);
SELECT pg_temp.try($$SELECT kpi.annualize_churn('NaN')$$);

-- shifted-beta-geometric: Fader & Hardie (2007) "regular" cohort gives alpha 0.704, beta 1.182
CREATE TABLE cohort (period int, alive bigint);
INSERT INTO cohort VALUES (0, 1000), (1, 631), (2, 468), (3, 382), (4, 326), (5, 289), (6, 262), (7, 241);
SELECT round((m).alpha::numeric, 3) AS alpha, round((m).beta::numeric, 3) AS beta,
       round((m).log_likelihood::numeric, 3) AS ll, (m).n, (m).converged
FROM (SELECT kpi.sbg_fit(period, alive) AS m FROM cohort) x;
SELECT t, round(kpi.sbg_survival(m, t)::numeric, 4) AS survival, round(kpi.sbg_retention(m, t)::numeric, 4) AS retention,
       round(kpi.sbg_churn_probability(m, t)::numeric, 4) AS churn
FROM (SELECT kpi.sbg_fit(period, alive) AS m FROM cohort) x, generate_series(0, 3) t;
-- a homogeneous cohort has no finite maximum: the geometric limit, converged = false,
-- with its true log-likelihood (-17.1459; a fit at huge parameters once reported -16.96)
SELECT (m).converged, round((m).log_likelihood::numeric, 4) AS ll,
       round(((m).alpha / ((m).alpha + (m).beta))::numeric, 4) AS churn_per_period
FROM (SELECT kpi.sbg_fit(period, alive) AS m
      FROM (VALUES (0, 17), (1, 17), (2, 17), (3, 16), (4, 15), (5, 14), (6, 13), (7, 13)) c(period, alive)) x;
SELECT pg_temp.try($$SELECT kpi.sbg_fit(p, a) FROM (VALUES (0, 10), (2, 5)) v(p, a)$$);
SELECT pg_temp.try($$SELECT kpi.sbg_fit(p, a) FROM (VALUES (0, 10), (1, 11), (2, 5)) v(p, a)$$);
SELECT pg_temp.try($$SELECT kpi.sbg_fit(p, a) FROM (VALUES (0, 10), (1, 5)) v(p, a)$$);

-- BG/NBD and Gamma-Gamma on simulated "buy till you die" customers: lognormal purchase
-- rates, a dropout chance after each repeat purchase, lognormal spend (deterministic seed)
SELECT setseed(0.31);
CREATE TABLE sim AS
WITH RECURSIVE c AS (
    SELECT g AS id, exp(-2.0 + 1.0 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS lam,
           0.02 + 0.4 * random() AS p, (30 + g % 10)::float8 AS t,
           exp(3 + 0.4 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS spend
    FROM generate_series(1, 3000) g
), walk AS (
    SELECT id, lam, p, t, spend, 0::float8 AS now, 0 AS x, 0::float8 AS total, true AS alive FROM c
    UNION ALL
    SELECT w.id, w.lam, w.p, w.t, w.spend, s.nt, w.x + 1,
           w.total + w.spend * exp(0.3 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())),
           random() >= w.p
    FROM walk w, LATERAL (SELECT w.now - ln(1 - random()) / w.lam AS nt) s
    WHERE w.alive AND s.nt <= w.t
)
SELECT id, t, max(x)::float8 AS frequency, max(now) AS recency,
       CASE WHEN max(x) = 0 THEN 0 ELSE max(total) / max(x) END AS monetary
FROM walk GROUP BY id, t;
SELECT round((m).r::numeric, 2) AS r, round((m).alpha::numeric, 2) AS alpha, round((m).a::numeric, 2) AS a,
       round((m).b::numeric, 2) AS b, round((m).log_likelihood::numeric, 1) AS ll, (m).n, (m).converged
FROM (SELECT kpi.bgnbd_fit(frequency, recency, t) AS m FROM sim) x;
SELECT round((m).p::numeric, 2) AS p, round((m).q::numeric, 2) AS q, round((m).gamma::numeric, 2) AS gamma,
       (m).n AS repeat_customers, (m).converged
FROM (SELECT kpi.gamma_gamma_fit(frequency, monetary) AS m FROM sim) x;
-- P(alive) is 1 for frequency 0; expected purchases grow with the horizon
WITH m AS (SELECT kpi.bgnbd_fit(frequency, recency, t) AS bg, kpi.gamma_gamma_fit(frequency, monetary) AS gg FROM sim)
SELECT kpi.p_alive(bg, 0, 0, 30) AS p_alive_new,
       kpi.p_alive(bg, 3, 29, 30) > kpi.p_alive(bg, 3, 5, 30) AS recent_is_more_alive,
       kpi.expected_purchases(bg, 10, 2, 20, 30) < kpi.expected_purchases(bg, 20, 2, 20, 30) AS monotone,
       kpi.expected_purchases(bg, 0) AS zero_horizon,
       round(kpi.expected_purchases(bg, 52)::numeric, 4) AS new_customer_year,
       (gg).n AS repeat_customers,
       kpi.expected_spend(gg, 2, 25) > 0 AS spend_positive,
       round(kpi.clv_bgnbd(bg, gg, 2, 20, 30, 25)::numeric, 2) AS clv_12_months
FROM m;
-- parallel and serial fits agree
CREATE TABLE sim_big AS SELECT s.* FROM sim s, generate_series(1, 20);
ANALYZE sim_big;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
CREATE TEMP TABLE par AS SELECT kpi.bgnbd_fit(frequency, recency, t) AS m, kpi.gamma_gamma_fit(frequency, monetary) AS g FROM sim_big;
SET max_parallel_workers_per_gather = 0;
SELECT (p.m).n = (s.m).n AS same_n, abs((p.m).log_likelihood - (s.m).log_likelihood) < 1e-6 * abs((s.m).log_likelihood) AS same_ll,
       (p.g).n = (s.g).n AS same_gg_n
FROM par p, (SELECT kpi.bgnbd_fit(frequency, recency, t) AS m, kpi.gamma_gamma_fit(frequency, monetary) AS g FROM sim_big) s;
RESET max_parallel_workers_per_gather; RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;
-- bad input names the field and the row
SELECT pg_temp.try($$SELECT kpi.bgnbd_fit(f, r, t) FROM (VALUES (1, 1, 5), (2, 7, 5)) v(f, r, t)$$);
SELECT pg_temp.try($$SELECT kpi.bgnbd_fit(1.5, 1, 3)$$);
SELECT pg_temp.try($$SELECT kpi.bgnbd_fit(0, 1, 3)$$);
SELECT pg_temp.try($$SELECT kpi.bgnbd_fit(-1, 0, 3)$$);
SELECT pg_temp.try($$SELECT kpi.bgnbd_fit(1, 1, 3) FROM generate_series(1, 3)$$);
SELECT pg_temp.try($$SELECT kpi.gamma_gamma_fit(1, 0)$$);
SELECT pg_temp.try($$SELECT kpi.p_alive((1, 1, 1, 1, 0, 1, true)::kpi.bgnbd, 0, 2, 3)$$);
SELECT pg_temp.try($$SELECT kpi.p_alive((1, -1, 1, 1, 0, 1, true)::kpi.bgnbd, 0, 0, 3)$$);
SELECT pg_temp.try($$SELECT kpi.expected_purchases((1, 1, 1, 1, 0, 1, true)::kpi.bgnbd, -1)$$);
SELECT pg_temp.try($$SELECT kpi.expected_purchases((1, 1, 1, 1, 0, 1, true)::kpi.bgnbd, 'NaN')$$);
SELECT pg_temp.try($$SELECT kpi.p_alive((NULL, 1, 1, 1, 0, 1, true)::kpi.bgnbd, 1, 1, 3)$$);
SELECT pg_temp.try($$SELECT kpi.expected_spend((6, 4, 15, 0, 1, true)::kpi.gamma_gamma, 1.5, 10)$$);
SELECT pg_temp.try($$SELECT kpi.expected_spend((6, 4, 15, 0, 1, true)::kpi.gamma_gamma, 2, 0)$$);
SELECT kpi.expected_spend((6, 4, 15, 0, 1, true)::kpi.gamma_gamma, 0, 0) AS population_mean,
       kpi.expected_spend((6, 0.5, 15, 0, 1, true)::kpi.gamma_gamma, 0, 0) AS undefined_mean;
SELECT pg_temp.try($$SELECT kpi.clv_bgnbd((1, 1, 1, 1, 0, 1, true)::kpi.bgnbd, (6, 4, 15, 0, 1, true)::kpi.gamma_gamma, 1, 1, 2, 10, months => -1)$$);
SELECT pg_temp.try($$SELECT kpi.clv_bgnbd((1, 1, 1, 1, 0, 1, true)::kpi.bgnbd, (6, 4, 15, 0, 1, true)::kpi.gamma_gamma, 1, 1, 2, 10, periods_per_month => 0)$$);
SELECT kpi.clv_bgnbd((1, 1, 1, 1, 0, 1, true)::kpi.bgnbd, (6, 4, 15, 0, 1, true)::kpi.gamma_gamma, NULL, 1, 2, 10) AS null_frequency_is_null;
SELECT pg_temp.try($$SELECT kpi.sbg_survival((0.7, 1.2, 0, 1, true)::kpi.sbg, -1)$$);
SELECT pg_temp.try($$SELECT kpi.sbg_retention((0, 1.2, 0, 1, true)::kpi.sbg, 1)$$);
SELECT pg_temp.try($$SELECT kpi.engagement_score(1.5, 1, false, 0)$$);
SELECT pg_temp.try($$SELECT kpi.cac_payback_months(-1, 50, 0.8)$$);
SELECT pg_temp.try($$SELECT kpi.clv(50, 0.05, 1.2)$$);
-- a fit that runs to the boundary of the parameter space says so
SELECT (m).converged FROM (
    SELECT kpi.bgnbd_fit((g % 5)::float8, CASE WHEN g % 5 = 0 THEN 0 ELSE g % 30 END, 30 + g % 9) AS m
    FROM generate_series(1, 400) g) x;

-- revenue data (rolled back at the end)
BEGIN;
SET LOCAL timezone = 'UTC';
TRUNCATE kpi.revenue_events, kpi.customers;
INSERT INTO kpi.customers (customer_id, segment, acquired_at, acquisition_cost, billing_cycle) VALUES
    ('a', 'smb', '2026-01-01', 300, 'monthly'), ('b', 'enterprise', '2026-01-01', 5000, 'annual'),
    ('c', 'startup', '2026-02-10', 200, 'monthly'), ('d', 'individual', '2026-01-01', 50, 'monthly');
INSERT INTO kpi.revenue_events (event_id, ts, customer_id, revenue_type, amount, subscription_id, billing_period, feature_id) VALUES
    -- a: 100/month, upgrades to 150 in March
    ('a1', '2026-01-01', 'a', 'subscription', 100, 'sa', 'monthly', NULL),
    ('a2', '2026-02-01', 'a', 'subscription', 100, 'sa', 'monthly', NULL),
    ('a3', '2026-03-01', 'a', 'subscription', 150, 'sa', 'monthly', NULL),
    -- b: 1200/year (100 MRR)
    ('b1', '2026-01-15', 'b', 'subscription', 1200, 'sb', 'annual', NULL),
    -- c: joins in February at 50, cancels after February
    ('c1', '2026-02-10', 'c', 'subscription', 50, 'sc', 'monthly', NULL),
    -- d: 80 in January, lapses in February, comes back in March at 60
    ('d1', '2026-01-01', 'd', 'subscription', 80, 'sd', 'monthly', NULL),
    ('d2', '2026-03-05', 'd', 'subscription', 60, 'sd', 'monthly', NULL),
    -- one-off revenue, not recurring
    ('x1', '2026-01-20', 'a', 'professional_services', 500, NULL, NULL, 'onboarding'),
    ('x2', '2026-02-20', 'b', 'premium_feature', 300, NULL, NULL, 'reports'),
    ('x3', '2026-03-20', 'b', 'premium_feature', 700, NULL, NULL, 'reports');
SELECT kpi.mrr('2026-01-31') AS jan, kpi.mrr('2026-02-27') AS feb, kpi.mrr('2026-03-31') AS mar, kpi.mrr('2025-12-31') AS before;
SELECT * FROM kpi.mrr_movements('2026-01-01', '2026-03-31');
SELECT round(kpi.nrr('2026-01-31', '2026-03-31'), 4) AS nrr, round(kpi.grr('2026-01-31', '2026-03-31'), 4) AS grr;
SELECT round(kpi.arpu('2026-01-01', '2026-02-01'), 2) AS arpu_jan;
SELECT kpi.customer_churn_rate('2026-02-15', '2026-03-31') AS churn_feb_mar;
SELECT kpi.customer_clv('b', '2026-04-01') AS clv_b, kpi.customer_clv('c', '2026-04-01') AS clv_c, kpi.customer_clv('nobody') AS clv_none;
SELECT kpi.roi_report(800, '60 days', 'reports', '2026-03-31') AS reports_feature;
SELECT kpi.payback_days(ts, amount, 1000, '2026-01-01') AS days_to_1000 FROM kpi.revenue_events;
SELECT * FROM kpi.rfm_summary('1 week', '2026-04-01') WHERE customer_id IN ('a', 'b');
SELECT count(*) AS premium_buyers, count(*) = (SELECT count(*) FROM kpi.rfm_summary('1 week', '2026-04-01', revenue_types => '{premium_feature}')) AS aliases_mapped
FROM kpi.rfm_summary('1 week', '2026-04-01', revenue_types => '{PREMIUM_FEATURES}');
SELECT (kpi.bgnbd_fit(frequency, recency, t)).n FROM kpi.rfm_summary('1 week', '2026-04-01');
-- mixed currencies are an error unless the caller filters
INSERT INTO kpi.revenue_events (event_id, ts, customer_id, revenue_type, amount, currency, billing_period)
VALUES ('e1', '2026-01-10', 'e', 'subscription', 90, 'EUR', 'monthly');
SELECT pg_temp.try($$SELECT kpi.mrr('2026-01-31')$$);
SELECT kpi.mrr('2026-01-31', 'EUR') AS eur, kpi.mrr('2026-01-31', 'USD') AS usd;
SELECT pg_temp.try($$SELECT * FROM kpi.rfm_summary('1 week', '2026-04-01')$$);
SELECT pg_temp.try($$SELECT kpi.roi_report(1, '0 days')$$);
SELECT pg_temp.try($$SELECT kpi.roi_report(-5, '30 days')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.mrr_movements('2026-03-01', '2026-01-01')$$);
SELECT pg_temp.try($$SELECT kpi.customer_churn_rate('2026-03-01', '2026-01-01')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.rfm_summary('0 days')$$);
-- no data: NULL where a ratio is undefined, 0 for an empty sum
SELECT kpi.nrr('2020-01-01', '2020-02-01', 'USD') AS nrr, kpi.grr('2020-01-01', '2020-02-01', 'USD') AS grr,
       kpi.arpu('2020-01-01', '2020-02-01', 'USD') AS arpu, kpi.mrr('2020-01-01', 'USD') AS mrr,
       kpi.customer_churn_rate('2020-01-01', '2020-02-01', 'USD') AS churn,
       kpi.payback_days(ts, amount, 1, '2020-01-01') AS payback
FROM kpi.revenue_events WHERE ts < '2020-01-01';
SELECT pg_temp.try($$INSERT INTO kpi.revenue_events (event_id, customer_id, revenue_type, amount) VALUES ('n', 'z', 'subscription', 'NaN')$$);
SELECT pg_temp.try($$INSERT INTO kpi.revenue_events (event_id, customer_id, revenue_type, amount, currency) VALUES ('n', 'z', 'subscription', 1, 'usd')$$);
SELECT pg_temp.try($$INSERT INTO kpi.revenue_events (event_id, customer_id, revenue_type, amount) VALUES ('n', 'z', 'gift', 1)$$);
SELECT pg_temp.try($$INSERT INTO kpi.customers (customer_id, acquisition_cost) VALUES ('n', 'NaN')$$);
-- one rule for reversed periods: 22023 naming both arguments
SELECT pg_temp.try($$SELECT kpi.nrr('2026-11-30', '2026-06-30')$$);
SELECT pg_temp.try($$SELECT kpi.grr('2026-11-30', '2026-06-30')$$);
SELECT pg_temp.try($$SELECT kpi.arpu('2026-11-30', '2026-06-30')$$);
SELECT pg_temp.try($$SELECT kpi.nrr(NULL, '2026-06-30')$$);
-- nothing is evaluated in the future; grace cannot be negative
SELECT pg_temp.try($$SELECT kpi.mrr('2100-01-01')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.mrr_movements('2026-01-01', '2026-03-31', at => '2100-01-01')$$);
SELECT pg_temp.try($$SELECT kpi.customer_clv('b', '2100-01-01')$$);
SELECT pg_temp.try($$SELECT kpi.roi_report(1, '30 days', at => '2100-01-01')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.rfm_summary('1 week', '2100-01-01')$$);
SELECT pg_temp.try($$SELECT kpi.mrr('2026-01-31', grace => '-1 day')$$);
SELECT pg_temp.try($$SELECT kpi.nrr('2026-01-31', '2026-03-31', grace => '-1 day')$$);
SELECT pg_temp.try($$SELECT kpi.nrr('2026-05-01', '2026-06-30', at => '2026-04-01')$$);
ROLLBACK;

-- A month in progress: subscriptions count until their paid period plus grace
-- (default 3 days) ends, and the month is evaluated up to "at", marked incomplete.
BEGIN;
SET LOCAL timezone = 'UTC';
TRUNCATE kpi.revenue_events, kpi.customers;
INSERT INTO kpi.revenue_events (event_id, ts, customer_id, revenue_type, amount, subscription_id, billing_period) VALUES
    -- renews on the 5th every month
    ('on1', '2026-01-05', 'on_time', 'subscription', 100, 'o', 'monthly'),
    ('on2', '2026-02-05', 'on_time', 'subscription', 100, 'o', 'monthly'),
    ('on3', '2026-03-05', 'on_time', 'subscription', 100, 'o', 'monthly'),
    -- renews one day late in March
    ('la1', '2026-01-05', 'late', 'subscription', 40, 'l', 'monthly'),
    ('la2', '2026-02-05', 'late', 'subscription', 40, 'l', 'monthly'),
    ('la3', '2026-03-06', 'late', 'subscription', 40, 'l', 'monthly'),
    -- cancels: nothing after February
    ('ca1', '2026-01-05', 'cancels', 'subscription', 60, 'c', 'monthly'),
    ('ca2', '2026-02-05', 'cancels', 'subscription', 60, 'c', 'monthly'),
    -- pays in the middle of the month, next renewal due after "at"
    ('mi1', '2026-02-20', 'mid', 'subscription', 30, 'm', 'monthly');
-- two days into March: the February renewals are not due yet, nobody has churned
SELECT * FROM kpi.mrr_movements('2026-02-01', '2026-03-31', at => '2026-03-02');
-- on March 6 the cancellation is within its grace, the late renewal has arrived
SELECT month, churned, mrr, complete FROM kpi.mrr_movements('2026-03-01', '2026-03-31', at => '2026-03-06');
-- on March 9 the grace is over: the cancellation is churn, the late renewal is not
SELECT month, churned, mrr, complete FROM kpi.mrr_movements('2026-03-01', '2026-03-31', at => '2026-03-09');
-- at month end
SELECT month, churned, mrr, complete FROM kpi.mrr_movements('2026-03-01', '2026-03-31', at => '2026-04-01');
-- without grace the cancellation is churn as soon as its paid period ends (March 5)
SELECT month, churned, mrr FROM kpi.mrr_movements('2026-03-01', '2026-03-31', at => '2026-03-06', grace => '0');
SELECT kpi.mrr('2026-03-06') AS mrr_mar_6, kpi.mrr('2026-03-06', grace => '0') AS no_grace;
SET client_min_messages = notice;
SELECT round(kpi.nrr('2026-02-28', '2026-03-31', at => '2026-03-09'), 4) AS nrr_to_date;
SELECT kpi.customer_churn_rate('2026-02-28', '2026-03-31', at => '2026-03-09') AS churn_to_date;
SET client_min_messages = warning;
-- later months are not returned
SELECT count(*) AS months FROM kpi.mrr_movements('2026-01-01', '2026-12-31', at => '2026-03-09');

-- the replaced services' revenue types and segments are mapped to pg_kpi's names
INSERT INTO kpi.revenue_events (event_id, ts, customer_id, revenue_type, amount, currency) VALUES
    ('al1', '2026-03-01', 'x', 'subscription_revenue', 1, 'usd'),
    ('al2', '2026-03-01', 'x', 'Usage-Based', 1, 'USD'),
    ('al3', '2026-03-01', 'x', 'PREMIUM_FEATURES', 1, 'USD'),
    ('al4', '2026-03-01', 'x', 'api_access', 1, 'USD');
SELECT event_id, revenue_type, currency FROM kpi.revenue_events WHERE event_id LIKE 'al%' ORDER BY 1;
INSERT INTO kpi.customers (customer_id, segment) VALUES ('s1', 'small_medium_business'), ('s2', 'Power User'), ('s3', 'enterprise');
SELECT customer_id, segment FROM kpi.customers ORDER BY 1;
SELECT pg_temp.try($$INSERT INTO kpi.customers (customer_id, segment) VALUES ('s4', 'whales')$$);
-- money at the currency's scale, ratios and days to 2 decimals
SELECT c, kpi.currency_scale(c) FROM unnest(ARRAY['USD', 'JPY', 'KWD', 'CLF', 'eur']) c;
INSERT INTO kpi.revenue_events (event_id, ts, customer_id, revenue_type, amount, currency) VALUES
    ('y1', '2026-03-01', 'y', 'transaction', 1000.4, 'JPY'), ('y2', '2026-03-20', 'y', 'transaction', 3000, 'JPY');
SELECT kpi.roi_report(2400, '30 days', at => '2026-03-25', currency => 'JPY');
ROLLBACK;
