-- KPI targets: kpi.kpi_status and kpi.kpi_compliance with value, phase, range,
-- rate and degraded-mode targets (the replaced roadmap's KPIs), hand-checked;
-- empty data; contradictory targets and bad arguments.
SET client_min_messages = warning;
DROP DATABASE IF EXISTS kpi_regress_targets;
CREATE DATABASE kpi_regress_targets;
\c kpi_regress_targets
SET client_min_messages = warning;
CREATE EXTENSION pg_kpi;
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/helpers.sql
SET client_min_messages = notice;
SET timezone = 'UTC';

-- no KPIs: no rows, a compliance of NULL
SELECT count(*) AS kpis FROM kpi.kpi_status();
SELECT * FROM kpi.kpi_compliance();

-- The roadmap: uptime 99.5 -> 99.9 (stretch 99.95); API p95 350 -> 250 by June 30 -> 150; MTTR
-- 45 -> 30 (stretch 15); sprint velocity from 35 into 40-60 points (stretch 65); technical debt
-- -5 % a quarter; features shipped +50 % a year; recovery time objective 300 s (1800 s degraded).
INSERT INTO kpi.metric_definitions (metric, unit, direction, baseline, target, stretch, measurement_window) VALUES
 ('uptime', '%', 'higher_is_better', 99.5, 99.9, 99.95, '1 hour'),
 ('api_p95', 'ms', 'lower_is_better', 350, 150, NULL, '1 hour'),
 ('mttr', 'min', 'lower_is_better', 45, 30, 15, '1 hour'),
 ('velocity', 'points', 'higher_is_better', 35, NULL, NULL, '1 hour'),
 ('tech_debt', '%', 'lower_is_better', 15, NULL, NULL, '1 hour'),
 ('features', 'count', 'higher_is_better', NULL, NULL, NULL, '1 hour'),
 ('rto', 's', 'lower_is_better', NULL, 300, NULL, '1 hour');
INSERT INTO kpi.kpi_targets (metric, phase, due_at, target) VALUES ('api_p95', 'phase 1', '2026-06-30', 250);
INSERT INTO kpi.kpi_targets (metric, target_low, target_high, stretch) VALUES ('velocity', 40, 60, 65);
INSERT INTO kpi.kpi_targets (metric, rate, rate_period) VALUES ('tech_debt', -0.05, '3 months'), ('features', 0.5, '1 year');
INSERT INTO kpi.kpi_targets (metric, mode, target) VALUES ('rto', 'degraded', 1800), ('uptime', 'degraded', 99);
-- one value a minute for the 6 hours before 2026-05-01 12:00 (api_p95 falls 0.2 ms a minute from
-- 360), and the values a quarter and a year before for the rate targets
INSERT INTO kpi.metrics (metric, value, ts)
SELECT m, v + slope * g, '2026-05-01 06:00+00'::timestamptz + g * interval '1 minute'
FROM (VALUES ('uptime', 99.7, 0.0), ('api_p95', 360, -0.2), ('mttr', 12, 0.0), ('velocity', 50, 0.0),
             ('tech_debt', 14, 0.0), ('features', 70, 0.0), ('rto', 900, 0.0)) x(m, v, slope),
     generate_series(0, 359) g;
INSERT INTO kpi.metrics (metric, value, ts) VALUES
 ('tech_debt', 15, '2026-02-01 11:30+00'), ('features', 40, '2025-05-01 11:30+00');

-- api_p95: the last hour's mean is 360 - 0.2 x 329.5 = 294.1; target 250 (phase 1, due June 30):
-- progress (294.1 - 350) / (250 - 350) = 55.9 %; falling 0.2 ms a minute over 6 hours: -72 ms
-- against a mean of 324.1, -22.2 %.
-- uptime 99.7: half way from 99.5 to 99.9. mttr 12 beats the stretch 15: (12 - 45) / (30 - 45) = 220 %.
-- velocity 50 is inside 40-60: (50 - 35) / (40 - 35) = 300 %. tech_debt: 15 a quarter before, so
-- the target is 14.25 and 14 meets it: (14 - 15) / (14.25 - 15) = 133.3 %. features: 40 a year
-- before, target 60, 70 meets it: 150 %. rto 900 s against 300 s, no baseline: not met.
SELECT metric, round(current::numeric, 2) AS current, samples, baseline, target, target_low AS low,
       target_high AS high, stretch, phase, due_at::date AS due, round(progress_pct::numeric, 1) AS progress,
       status, trend, round(change_pct::numeric, 1) AS change_pct
FROM kpi.kpi_status('2026-05-01 12:00+00');
SELECT * FROM kpi.kpi_compliance('2026-05-01 12:00+00');
-- degraded mode: only the KPIs with a degraded target, against it (looser, no baseline)
SELECT metric, baseline, target, progress_pct, status FROM kpi.kpi_status('2026-05-01 12:00+00', 'degraded');
-- recovery objectives pass or fail by direction: a recovery point of 45 s against 60 s (lower is
-- better) passes, a failover capacity of 70 % against 80 % (higher is better) fails
INSERT INTO kpi.metric_definitions (metric, unit, direction, target, measurement_window) VALUES
  ('rpo', 's', 'lower_is_better', 60, '1 hour'), ('failover_capacity', '%', 'higher_is_better', 80, '1 hour');
INSERT INTO kpi.metrics (metric, value, ts) VALUES ('rpo', 45, '2026-05-01 11:30+00'), ('failover_capacity', 70, '2026-05-01 11:30+00');
SELECT metric, current, target, status FROM kpi.kpi_status('2026-05-01 12:00+00') WHERE metric IN ('rpo', 'failover_capacity');
DELETE FROM kpi.metric_definitions WHERE metric IN ('rpo', 'failover_capacity');
-- after the phase's deadline the final target applies; no data there: no status
SELECT metric, target, phase, current, status FROM kpi.kpi_status('2026-07-01 12:00+00') WHERE metric = 'api_p95';
-- the trend arrow follows trend_threshold_pct
SELECT metric, trend FROM kpi.kpi_status('2026-05-01 12:00+00', trend_threshold_pct => 30) WHERE metric = 'api_p95';

-- contradictory targets: an ERROR naming the field
SELECT pg_temp.try($$INSERT INTO kpi.metric_definitions (metric, direction, baseline, target) VALUES ('x', 'lower_is_better', 350, 400)$$);
SELECT pg_temp.try($$INSERT INTO kpi.metric_definitions (metric, direction, baseline, target, stretch) VALUES ('x', 'higher_is_better', 99.5, 99.9, 99.8)$$);
SELECT pg_temp.try($$UPDATE kpi.metric_definitions SET direction = 'higher_is_better' WHERE metric = 'mttr'$$);
SELECT pg_temp.try($$INSERT INTO kpi.kpi_targets (metric, target_low, target_high) VALUES ('uptime', 99.9, 99.8)$$);
SELECT pg_temp.try($$INSERT INTO kpi.kpi_targets (metric, target_low) VALUES ('uptime', 99.9)$$);
SELECT pg_temp.try($$INSERT INTO kpi.kpi_targets (metric, phase, target, target_low, target_high) VALUES ('uptime', 'p', 99.9, 99.8, 99.95)$$);
SELECT pg_temp.try($$INSERT INTO kpi.kpi_targets (metric, phase, rate, rate_period) VALUES ('tech_debt', 'up', 0.05, '3 months')$$);
SELECT pg_temp.try($$INSERT INTO kpi.kpi_targets (metric, phase, rate) VALUES ('features', 'half', 0.5)$$);
SELECT pg_temp.try($$INSERT INTO kpi.kpi_targets (metric, phase, due_at, target) VALUES ('api_p95', 'phase 0', '2026-03-31', 200)$$);
SELECT pg_temp.try($$INSERT INTO kpi.kpi_targets (metric, phase, due_at, target) VALUES ('api_p95', 'phase 2', '2026-09-30', 100)$$);
SELECT pg_temp.try($$INSERT INTO kpi.kpi_targets (metric, phase, due_at, target) VALUES ('api_p95', 'late', 'infinity', 200)$$);
SELECT pg_temp.try($$INSERT INTO kpi.kpi_targets (metric, target) VALUES ('nope', 1)$$);
SELECT pg_temp.try($$INSERT INTO kpi.kpi_targets (metric, mode, target) VALUES ('uptime', 'panic', 99)$$);
-- consistent phases are accepted
INSERT INTO kpi.kpi_targets (metric, phase, due_at, target) VALUES ('api_p95', 'phase 0', '2026-03-31', 300);
-- targets follow their definition
UPDATE kpi.metric_definitions SET metric = 'latency_p95' WHERE metric = 'api_p95';
SELECT metric, phase FROM kpi.kpi_targets WHERE metric LIKE '%p95' ORDER BY due_at;
DELETE FROM kpi.metric_definitions WHERE metric = 'latency_p95';
SELECT count(*) AS left_over FROM kpi.kpi_targets WHERE metric IN ('api_p95', 'latency_p95');
-- a stretch inside a range, two phases due together, definition changes that break a phase (and one that does not)
SELECT pg_temp.try($$INSERT INTO kpi.kpi_targets (metric, phase, target_low, target_high, stretch) VALUES ('uptime', 'r', 99.6, 99.9, 99.7)$$);
INSERT INTO kpi.kpi_targets (metric, phase, due_at, target) VALUES ('mttr', 'phase 1', '2026-06-30', 40);
SELECT pg_temp.try($$INSERT INTO kpi.kpi_targets (metric, phase, due_at, target) VALUES ('mttr', 'phase 1b', '2026-06-30', 35)$$);
SELECT pg_temp.try($$UPDATE kpi.metric_definitions SET target = 42 WHERE metric = 'mttr'$$);
SELECT pg_temp.try($$UPDATE kpi.metric_definitions SET baseline = 38 WHERE metric = 'mttr'$$);
SELECT pg_temp.try($$UPDATE kpi.metric_definitions SET direction = 'higher_is_better', baseline = 10, target = 50, stretch = 60 WHERE metric = 'mttr'$$);
-- a rate target against a reference that is not positive has no target
UPDATE kpi.metrics SET value = -20 WHERE metric = 'features' AND ts = '2025-05-01 11:30+00';
SELECT metric, baseline, target, status FROM kpi.kpi_status('2026-05-01 12:00+00') WHERE metric = 'features';
-- bad arguments
SELECT pg_temp.try($$SELECT * FROM kpi.kpi_status(NULL)$$);
SELECT pg_temp.try($$SELECT * FROM kpi.kpi_status('infinity')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.kpi_status(now(), 'panic')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.kpi_status(now(), 'normal', 1)$$);
SELECT pg_temp.try($$SELECT * FROM kpi.kpi_status(now(), 'normal', 6, 'NaN')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.kpi_compliance(NULL)$$);
SELECT pg_temp.try($$SELECT * FROM kpi.kpi_compliance(now(), 'panic')$$);

-- TRUNCATE of the definitions empties the targets
TRUNCATE kpi.metric_definitions;
SELECT count(*) AS targets_left FROM kpi.kpi_targets;

\c postgres
DROP DATABASE kpi_regress_targets;
