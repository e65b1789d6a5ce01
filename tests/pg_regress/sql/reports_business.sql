-- kpi.business_value_report: empty data, a seeded period with hand-checked
-- numbers, each recommendation on both sides of its cut-off, a period in
-- progress, and bad input.
SET client_min_messages = warning;
DROP DATABASE IF EXISTS kpi_regress_reports_business;
CREATE DATABASE kpi_regress_reports_business;
\c kpi_regress_reports_business
SET client_min_messages = warning;
CREATE EXTENSION pg_kpi;
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/helpers.sql
SET client_min_messages = notice;
SET timezone = 'UTC';

-- no revenue and no customers: zeros and empty lists, no error
SELECT r->'revenue' AS revenue, r->'customers' AS customers, r->'unit_economics' AS unit_economics,
       r->'segments' AS segments, r->'features' AS features, r->'top_customers' AS top,
       jsonb_array_length(r->'timeline') AS timeline_parts, r->'recommendations' AS recommendations
FROM kpi.business_value_report('2026-03-10', '2026-03-20') r;
SELECT * FROM kpi.business_table('2026-03-10', '2026-03-20');

-- Period [Mar 10, Mar 20); the previous equal period is [Feb 28, Mar 10).
--  a: enterprise, paying 100 a month since Feb 15 (renewed Mar 15)
--  b: smb, acquired Mar 12 at a cost of 100: 50 a month, 20 of usage on the export feature
--  c: startup, paid 80 for a month on Feb 10: paying on Mar 10, lapsed (+1 month +3 days grace) by Mar 20
--  d: not in kpi.customers: 25 (export) Feb 1, 200 Mar 1 (previous period), 30 (export) Mar 11
--  e: not in kpi.customers, first payment Mar 18: 40 on the ai feature
INSERT INTO kpi.customers (customer_id, segment, acquired_at, acquisition_cost) VALUES
  ('a', 'enterprise', '2026-01-01', 300), ('b', 'smb', '2026-03-12', 100), ('c', 'startup', '2026-01-05', 50);
INSERT INTO kpi.revenue_events (event_id, ts, customer_id, revenue_type, amount, subscription_id, billing_period, feature_id) VALUES
  ('a1', '2026-02-15', 'a', 'subscription', 100, 'sa', 'monthly', NULL),
  ('a2', '2026-03-15', 'a', 'subscription', 100, 'sa', 'monthly', NULL),
  ('b1', '2026-03-12', 'b', 'subscription', 50, 'sb', 'monthly', NULL),
  ('b2', '2026-03-14', 'b', 'usage', 20, NULL, NULL, 'export'),
  ('c1', '2026-02-10', 'c', 'subscription', 80, 'sc', 'monthly', NULL),
  ('d0', '2026-02-01', 'd', 'transaction', 25, NULL, NULL, 'export'),
  ('d1', '2026-03-01', 'd', 'transaction', 200, NULL, NULL, NULL),
  ('d2', '2026-03-11', 'd', 'transaction', 30, NULL, NULL, 'export'),
  ('e1', '2026-03-18', 'e', 'transaction', 40, NULL, NULL, 'ai');
CREATE TEMP TABLE r AS SELECT kpi.business_value_report('2026-03-10', '2026-03-20') AS r;
-- revenue 100 + 70 + 30 + 40 = 240 against 200: +20 %; MRR a 100 + b 50 = 150, ARR 1,800; ARPU 240 / 4
SELECT r->'revenue' AS revenue, r->>'currency' AS currency, r->'complete' AS complete FROM r;
-- active a, b, d, e; new b (acquired) and e (first payment); paying at the start a and c, c churned: 50 %
SELECT r->'customers' AS customers FROM r;
-- LTV (replaced formula, at Mar 20): a 200 / 0.2 = 1000; b 70 / 0.06 = 1166.67;
-- d 255 / (0.09 + 0.3 (1 - 230/255)) = 2135.47; e one payment = 40; mean 1085.535.
-- CAC: b's 100 (e has no known cost); LTV:CAC 10.86
SELECT r->'unit_economics' AS unit_economics FROM r;
SELECT s->>'segment' AS segment, s->'customers' AS customers, s->'revenue' AS revenue, s->'avg_revenue' AS avg,
       s->'share_pct' AS share_pct
FROM r, jsonb_array_elements(r->'segments') s;
-- export: b and d (2 of 4 active), 50 in the 30 days to Mar 20 against d's 25 before: +100 %; ai: e only
SELECT f->>'feature' AS feature, f->'revenue' AS revenue, f->'customers' AS customers, f->'adoption_pct' AS adoption_pct,
       f->'revenue_per_customer' AS per_customer, f->'growth_30d_pct' AS growth_30d_pct
FROM r, jsonb_array_elements(r->'features') f;
SELECT (t->>'from')::timestamptz AS part_from, t->'revenue' AS revenue, t->'new_customers' AS new_customers
FROM r, jsonb_array_elements(r->'timeline') t;
SELECT t->>'customer_id' AS customer, t->>'segment' AS segment, t->'revenue' AS revenue, t->'share_pct' AS share_pct
FROM r, jsonb_array_elements(r->'top_customers') t;
SELECT jsonb_array_length(kpi.business_value_report('2026-03-10', '2026-03-20', top_customers => 2)->'top_customers') AS top_2;
-- the same as a table for psql, with the timelines as sparklines
SELECT * FROM kpi.business_table('2026-03-10', '2026-03-20');
-- LTV:CAC agrees with kpi.customer_clv per customer
SELECT round(avg(kpi.customer_clv(c, '2026-03-19 23:59:59.999999+00')), 2) AS avg_customer_clv FROM unnest(ARRAY['a', 'b', 'd', 'e']) c;

-- recommendations on both sides of each cut-off (growth 20 %, churn 50 %, LTV:CAC 10.86, adoption 25 %)
SELECT x.args, coalesce(string_agg(rec->>'kind' || coalesce(':' || (rec->>'feature'), ''), ', '), '-') AS kinds
FROM (VALUES ('defaults', kpi.business_value_report('2026-03-10', '2026-03-20')),
             ('slow 20', kpi.business_value_report('2026-03-10', '2026-03-20', slow_growth_pct => 20)),
             ('slow 20.01', kpi.business_value_report('2026-03-10', '2026-03-20', slow_growth_pct => 20.01)),
             ('rapid 20', kpi.business_value_report('2026-03-10', '2026-03-20', rapid_growth_pct => 20)),
             ('rapid 19.99', kpi.business_value_report('2026-03-10', '2026-03-20', rapid_growth_pct => 19.99)),
             ('churn 50', kpi.business_value_report('2026-03-10', '2026-03-20', churn_rate_pct => 50)),
             ('ltv_cac 10.86', kpi.business_value_report('2026-03-10', '2026-03-20', ltv_cac_ratio => 10.86)),
             ('ltv_cac 10.87', kpi.business_value_report('2026-03-10', '2026-03-20', ltv_cac_ratio => 10.87)),
             ('adoption 25', kpi.business_value_report('2026-03-10', '2026-03-20', adoption_pct => 25)),
             ('adoption 25.01', kpi.business_value_report('2026-03-10', '2026-03-20', adoption_pct => 25.01))) x(args, r)
LEFT JOIN LATERAL jsonb_array_elements(x.r->'recommendations') rec ON true
GROUP BY x.args ORDER BY min(x.args);
-- [Mar 1, Mar 10) (d's 200) against [Feb 20, Mar 1) (nothing): no growth figure, no growth recommendation;
-- a decline: [Mar 20, Mar 30) has nothing against the 240 before it
SELECT r->'revenue'->'growth_pct' AS growth, r->'recommendations' AS recommendations
FROM kpi.business_value_report('2026-03-01', '2026-03-10') r;
SELECT r->'revenue'->'growth_pct' AS growth, r->'recommendations'->0->>'kind' AS recommendation
FROM kpi.business_value_report('2026-03-20', '2026-03-30') r;
SELECT r->'recommendations' AS recommendations FROM kpi.business_value_report('2026-03-20', '2026-03-30', at => '2026-03-30') r;

-- a period in progress is evaluated up to "at" (NOTICE) and compared with the same length before "from"
SELECT r->'evaluated_to' AS evaluated_to, r->'complete' AS complete, r->'revenue'->'previous_from' AS previous_from,
       r->'revenue'->'total' AS total
FROM kpi.business_value_report('2026-03-10', '2026-04-10', at => '2026-03-20') r;

-- one currency at a time
INSERT INTO kpi.revenue_events (event_id, ts, customer_id, revenue_type, amount, currency)
VALUES ('y1', '2026-03-11', 'y', 'transaction', 5000, 'JPY');
SELECT pg_temp.try($$SELECT kpi.business_value_report('2026-03-10', '2026-03-20')$$);
SELECT r->>'currency' AS currency, r->'revenue'->'total' AS total, r->'customers'->'active' AS active
FROM kpi.business_value_report('2026-03-10', '2026-03-20', currency => 'JPY') r;

-- bad input: an ERROR naming the argument
SELECT pg_temp.try($$SELECT kpi.business_value_report(NULL, '2026-03-20')$$);
SELECT pg_temp.try($$SELECT kpi.business_value_report('2026-03-20', '2026-03-10')$$);
SELECT pg_temp.try($$SELECT kpi.business_value_report('2026-03-20', '2026-03-20')$$);
SELECT pg_temp.try($$SELECT kpi.business_value_report('-infinity', '2026-03-20')$$);
SELECT pg_temp.try($$SELECT kpi.business_value_report('2026-03-10', 'infinity')$$);
SELECT pg_temp.try($$SELECT kpi.business_value_report('2026-03-10', '2026-03-20', at => '2100-01-01')$$);
SELECT pg_temp.try($$SELECT kpi.business_value_report('2026-03-10', '2026-03-20', at => '2026-03-01')$$);
SELECT pg_temp.try($$SELECT kpi.business_value_report('2026-03-10', '2026-03-20', top_customers => -1)$$);
SELECT pg_temp.try($$SELECT kpi.business_value_report('2026-03-10', '2026-03-20', churn_rate_pct => NULL)$$);
SELECT pg_temp.try($$SELECT kpi.business_value_report('2026-03-10', '2026-03-20', grace => '-1 day')$$);
SELECT pg_temp.try($$SELECT kpi.business_value_report('2026-03-10', '2026-03-20', slow_growth_pct => 'NaN')$$);
SELECT pg_temp.try($$SELECT kpi.business_value_report('2026-03-10', '2026-03-20', adoption_pct => -1)$$);
SELECT pg_temp.try($$SELECT kpi.business_value_report('2026-03-10', '2026-03-20', top_customers => NULL)$$);
SELECT pg_temp.try($$SELECT * FROM kpi.business_table('2026-03-20', '2026-03-10')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.business_table(NULL, '2026-03-10')$$);

\c postgres
DROP DATABASE kpi_regress_reports_business;
