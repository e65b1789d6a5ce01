-- Alert rules: definition-time errors, and the lifecycle evaluation by
-- evaluation (every 15 s), with the states derived by hand from the rules:
-- pending at the first evaluation where the condition holds, firing at the
-- first one at least "for" later, resolved at the first one at least
-- keep_firing_for after the condition stopped; a pending alert whose
-- condition stops is dropped.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_kpi;
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/helpers.sql
SET extra_float_digits = 0;

-- bad input: an ERROR at definition time naming the field
SELECT pg_temp.try($$SELECT kpi.add_alert_rule('r', 'lat', 'median', '1 minute', '>', 300)$$);
SELECT pg_temp.try($$SELECT kpi.add_alert_rule('r', 'lat', 'avg', '1 minute', '=>', 300)$$);
SELECT pg_temp.try($$SELECT kpi.add_alert_rule('r', 'lat', 'avg', '0 minutes', '>', 300)$$);
SELECT pg_temp.try($$SELECT kpi.add_alert_rule('r', 'lat', 'avg', '1 minute', '>', 300, "for" => '-1 minute')$$);
SELECT pg_temp.try($$SELECT kpi.add_alert_rule('r', 'lat', 'avg', '1 minute', '>', 500, 300)$$);
SELECT pg_temp.try($$SELECT kpi.add_alert_rule('r', 'lat', 'avg', '1 minute', '>', 300, resolve_threshold => 400)$$);
SELECT pg_temp.try($$SELECT kpi.add_alert_rule('r', 'lat', 'avg', '1 minute', '>')$$);
SELECT pg_temp.try($$SELECT kpi.add_alert_rule('r', 'lat', 'p150', '1 minute', '>', 1)$$);
SELECT pg_temp.try($$SELECT kpi.add_alert_rule('', 'lat', 'avg', '1 minute', '>', 1)$$);
SELECT pg_temp.try($$SELECT kpi.add_alert_rule('r', 'lat', 'avg', '1 minute', '>', 1, tags => '[]')$$);
SELECT pg_temp.try($$SELECT kpi.drop_alert_rule('nope')$$);
SELECT pg_temp.try($$SELECT kpi.add_alert_rule('r', 'lat', 'avg', '1 minute', '>', 1, annotations => '{"summary": "{{valu}} ms"}')$$);
SELECT pg_temp.try($$SELECT kpi.add_alert_rule('r', 'lat', 'avg', '1 minute', '>', 1, annotations => '{"summary": "{{value} ms"}')$$);
SELECT pg_temp.try($$SELECT kpi.add_alert_rule('r', 'lat', 'avg', '1 minute', '>', 1, annotations => '{"summary": 42}')$$);
-- quotes and SQL in names, tags and templates are data
SELECT kpi_internal.render_template($t${{rule}}: {{labels.host}} {{labels.gone}}'; DROP TABLE kpi.metrics; --$t$,
                                    $n$O'Brien "x"$n$, 'm', 1.5, 2, 'warning', '{"host": "a''b"}') AS rendered;
-- a window (or zscore baseline) longer than the raw rows are kept, unless a rollup it can read keeps them
BEGIN;
SELECT kpi.add_retention('metrics', '7 days') > 0 AS kept_7_days;
SELECT pg_temp.try($$SELECT kpi.add_alert_rule('r', 'lat', 'avg', '30 days', '>', 1)$$);
SELECT pg_temp.try($$SELECT kpi.add_alert_rule('r', 'lat', 'zscore', '1 hour', '>', 3, baseline => '14 days')$$);
SELECT kpi.add_rollup('1 hour', metrics => 'lat%', group_by_tags => '{host}') > 0 AS rollup;
SELECT kpi.add_alert_rule('r', 'lat', 'zscore', '1 hour', '>', 3, baseline => '14 days', group_by => '{host}') > 0 AS added;
SELECT pg_temp.try($$SELECT kpi.add_alert_rule('r2', 'lat', 'last', '30 days', '>', 1)$$);
SELECT pg_temp.try($$SELECT kpi.add_alert_rule('r2', 'lat', 'avg', '30 days', '>', 1, group_by => '{region}')$$);
SELECT kpi.add_retention('1 hour', '7 days') > 0 AS summaries_kept_7_days;
SELECT pg_temp.try($$SELECT kpi.add_alert_rule('r2', 'lat', 'avg', '30 days', '>', 1)$$);
ROLLBACK;
SELECT split_part(pg_temp.try($$SELECT * FROM kpi.evaluate_alerts(now() + interval '1 hour')$$), ', got', 1) AS future_at;

BEGIN;
CREATE TEMP TABLE hist (i int, rule text, host text, state text, severity kpi.severity_level, value float8);
-- host a rises into warning, then critical, then falls; host b flaps
SELECT kpi.add_alert_rule('HighLatency', 'lat', 'avg', '15 seconds', '>', 300, 500, "for" => '30 seconds',
                          keep_firing_for => '15 seconds', group_by => '{host}',
                          annotations => '{"summary": "{{labels.host}}: latency {{value}} ms above {{threshold}}"}') > 0 AS added;
SELECT pg_temp.try($$SELECT kpi.add_alert_rule('HighLatency', 'lat', 'avg', '1 minute', '>', 1)$$);
INSERT INTO kpi.metrics (metric, value, ts, tags)
SELECT 'lat', v.value, date_trunc('hour', now()) - interval '2 hours' + v.i * interval '15 seconds', jsonb_build_object('host', v.host)
FROM (VALUES (0, 'a', 100), (1, 'a', 350), (2, 'a', 360), (3, 'a', 370), (4, 'a', 600), (5, 'a', 610),
             (6, 'a', 200), (7, 'a', 200), (8, 'a', 200),
             (0, 'b', 350), (1, 'b', 100), (2, 'b', 350), (3, 'b', 350), (4, 'b', 350), (5, 'b', 100),
             (6, 'b', 100), (7, 'b', 100), (8, 'b', 100)) v(i, host, value);
DO $$
BEGIN
    FOR i IN 0..8 LOOP
        INSERT INTO hist
        SELECT i, e.rule, e.series->>'host', e.state, e.severity, e.value
        FROM kpi.evaluate_alerts(date_trunc('hour', now()) - interval '2 hours' + i * interval '15 seconds') e;
    END LOOP;
END $$;
-- a: pending at 1, firing at 3 (30 s later), critical at 4, still firing at 6 (keep_firing_for), resolved at 7
-- b: pending at 0, dropped at 1, pending again at 2, firing at 4, resolved at 6
SELECT i, host, state, severity, value FROM hist ORDER BY host, i;
-- what kpi.alerts keeps: one alert per firing episode, none for the dropped pending one
SELECT labels->>'host' AS host, state, severity, occurrences, source, message,
       (fired_at - started_at) AS pending_for, (resolved_at - fired_at) AS fired_for
FROM kpi.alerts ORDER BY labels->>'host', started_at;
-- the outbox and NOTIFY payloads: a: fired, turned critical, resolved; b: fired, resolved
SELECT n.event, n.payload->>'rule' AS rule, n.payload->'series' AS series, n.payload->>'state' AS state,
       n.payload->>'severity' AS severity
FROM kpi.notifications n ORDER BY n.payload->'series'->>'host', n.id;
ROLLBACK;

-- hysteresis: with > 300 and resolve_threshold 250, 280 keeps the alert firing
BEGIN;
CREATE TEMP TABLE hist (i int, state text, value float8);
SELECT kpi.add_alert_rule('Hyst', 'lat', 'max', '15 seconds', '>', 300, resolve_threshold => 250) > 0 AS added;
INSERT INTO kpi.metrics (metric, value, ts)
SELECT 'lat', v.value, date_trunc('hour', now()) - interval '2 hours' + v.i * interval '15 seconds'
FROM (VALUES (0, 350), (1, 280), (2, 260), (3, 240), (4, 240)) v(i, value);
DO $$
BEGIN
    FOR i IN 0..4 LOOP
        INSERT INTO hist SELECT i, e.state, e.value
        FROM kpi.evaluate_alerts(date_trunc('hour', now()) - interval '2 hours' + i * interval '15 seconds') e;
    END LOOP;
END $$;
SELECT * FROM hist ORDER BY i;
ROLLBACK;

-- absent, percentiles, the metric's own thresholds, and a failing rule that the others survive
BEGIN;
INSERT INTO kpi.metric_definitions (metric, optimal, good, warning, critical) VALUES ('rt', 100, 200, 500, 1000);
SELECT kpi.add_alert_rule('NoHeartbeat', 'heartbeat', 'absent', '1 minute', '<', critical => 1) > 0 AS added;
SELECT kpi.add_alert_rule('P95', 'rt', 'p95', '1 minute', '>', 400) > 0 AS added;
SELECT kpi.add_alert_rule('FromDefinition', 'rt', 'avg', '1 minute', '>') > 0 AS added;
SELECT kpi.add_alert_rule('Broken', 'rt', 'avg', '1 minute', '>', 1) > 0 AS added;
ALTER TABLE kpi.alert_rules DISABLE TRIGGER alert_rules_check;
UPDATE kpi.alert_rules SET aggregate = 'bogus' WHERE name = 'Broken';
ALTER TABLE kpi.alert_rules ENABLE TRIGGER alert_rules_check;
INSERT INTO kpi.metrics (metric, value, ts)
SELECT 'rt', g * 10, date_trunc('hour', now()) - interval '2 hours' - g * interval '0.5 seconds' FROM generate_series(1, 100) g;
SET LOCAL client_min_messages = error;
SELECT rule, series, state, severity, value
FROM kpi.evaluate_alerts(date_trunc('hour', now()) - interval '2 hours') ORDER BY rule;
SELECT name, last_error IS NOT NULL AS failed FROM kpi.alert_rules ORDER BY name;
SELECT kpi.drop_alert_rule('P95');
SELECT state, count(*) FROM kpi.alerts WHERE source = 'rule' GROUP BY 1 ORDER BY 1;
ROLLBACK;

-- ratio (5xx over all requests), zscore against a baseline, alter, and backtests
BEGIN;
INSERT INTO kpi.metrics (metric, value, ts, tags)
SELECT m, v, date_trunc('hour', now()) - interval '2 hours' - g * interval '1 second', '{"svc": "api"}'
FROM generate_series(1, 50) g, (VALUES ('http_5xx', 1.0), ('http_requests', 10.0)) x(m, v);
SELECT kpi.add_alert_rule('ErrorRatio', 'http_5xx', 'ratio', '1 minute', '>', 0.05, denominator_metric => 'http_requests',
                          group_by => '{svc}') > 0 AS added;
SELECT pg_temp.try($$SELECT kpi.add_alert_rule('NoDenominator', 'http_5xx', 'ratio', '1 minute', '>', 0.05)$$);
-- a baseline of 10 quiet hours, then a jump: z = (window mean - baseline mean) / baseline stddev
INSERT INTO kpi.metrics (metric, value, ts)
SELECT 'q', 100 + (g % 2) * 2, date_trunc('hour', now()) - interval '2 hours' - interval '1 minute' - g * interval '1 minute'
FROM generate_series(1, 600) g;
INSERT INTO kpi.metrics (metric, value, ts)
SELECT 'q', 110, date_trunc('hour', now()) - interval '2 hours' - g * interval '10 seconds' FROM generate_series(0, 5) g;
SELECT kpi.add_alert_rule('Jump', 'q', 'zscore', '1 minute', '>', 3, baseline => '10 hours') > 0 AS added;
SELECT rule, series, state, severity, round(value::numeric, 3) AS value
FROM kpi.evaluate_alerts(date_trunc('hour', now()) - interval '2 hours') ORDER BY rule;
-- alter: a higher threshold, checked as at creation
SELECT name, warning FROM kpi.alter_alert_rule('ErrorRatio', warning => 0.2);
SELECT pg_temp.try($$SELECT kpi.alter_alert_rule('ErrorRatio', comparator => '~')$$);
SELECT pg_temp.try($$SELECT kpi.alter_alert_rule('Nope', enabled => false)$$);
ROLLBACK;

-- backtest: what HighLatency would have done over the series above, with kpi.alerts untouched
BEGIN;
SELECT kpi.add_alert_rule('HighLatency', 'lat', 'avg', '15 seconds', '>', 300, 500, "for" => '30 seconds',
                          keep_firing_for => '15 seconds', group_by => '{host}') > 0 AS added;
INSERT INTO kpi.metrics (metric, value, ts, tags)
SELECT 'lat', v.value, date_trunc('hour', now()) - interval '2 hours' + v.i * interval '15 seconds', jsonb_build_object('host', v.host)
FROM (VALUES (0, 'a', 100), (1, 'a', 350), (2, 'a', 360), (3, 'a', 370), (4, 'a', 600), (5, 'a', 610),
             (6, 'a', 200), (7, 'a', 200), (8, 'a', 200),
             (0, 'b', 350), (1, 'b', 100), (2, 'b', 350), (3, 'b', 350), (4, 'b', 350), (5, 'b', 100),
             (6, 'b', 100), (7, 'b', 100), (8, 'b', 100)) v(i, host, value);
SELECT (extract(epoch FROM b.at - (date_trunc('hour', now()) - interval '2 hours')) / 15)::int AS i,
       b.series->>'host' AS host, b.state, b.severity
FROM kpi.backtest_rule('HighLatency', date_trunc('hour', now()) - interval '2 hours',
                       date_trunc('hour', now()) - interval '2 hours' + interval '2 minutes') b
ORDER BY host, i;
SELECT count(*) AS alerts_written FROM kpi.alerts WHERE source = 'rule';
-- the same rule given inline, before it exists
SELECT count(*) AS firing_evaluations
FROM kpi.backtest_rule('{"metric": "lat", "aggregate": "avg", "window": "15 seconds", "comparator": ">",
                         "warning": 300, "for": "30 seconds", "group_by": ["host"]}'::jsonb,
                       date_trunc('hour', now()) - interval '2 hours',
                       date_trunc('hour', now()) - interval '2 hours' + interval '2 minutes') b
WHERE b.state = 'firing';
SELECT count(*) AS rules_kept FROM kpi.alert_rules WHERE name = '(backtest)';
SELECT pg_temp.try($$SELECT * FROM kpi.backtest_rule('{"metric": "lat", "aggregate": "median"}'::jsonb, now() - interval '1 hour', now())$$);
SELECT pg_temp.try($$SELECT * FROM kpi.backtest_rule('HighLatency', '2026-01-02 00:00+00', '2026-01-01 00:00+00')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.backtest_rule('Nope', now() - interval '1 hour', now())$$);
ROLLBACK;

-- the replaced systems' rules (examples/alert_rules.sql) load and evaluate
BEGIN;
SET LOCAL client_min_messages = warning;
\o /dev/null
\i :abs_srcdir/../../examples/alert_rules.sql
\o
SELECT name, aggregate, "window", comparator, warning, critical, "for", group_by FROM kpi.alert_rules ORDER BY name;
-- latency rising 0.1 s a minute for half an hour: the forecast 15 minutes ahead crosses 1.5 s
INSERT INTO kpi.metrics (metric, value, ts)
SELECT 'http_request_duration_seconds', 0.1 * g / 6, date_trunc('hour', now()) - interval '2 hours' - interval '30 minutes' + g * interval '10 seconds'
FROM generate_series(1, 180) g;
SELECT rule, series, state, severity, round(value::numeric, 2) AS value
FROM kpi.evaluate_alerts(date_trunc('hour', now()) - interval '2 hours') ORDER BY rule;
ROLLBACK;

-- The values engine against plain SQL: rules of different groupings and tag
-- filters on two metrics read in one pass per range (a metric read twice
-- takes a second pass); every aggregate equals its independent computation.
BEGIN;
INSERT INTO kpi.metrics (metric, value, ts, tags)
SELECT CASE WHEN g % 2 = 0 THEN 'pa' ELSE 'pb' END, (g * 37 % 101)::float8 + 0.25,
       timestamptz '2026-01-01 12:00:00+00' - g * interval '1 second',
       jsonb_build_object('host', 'h' || g % 3, 'region', CASE WHEN g % 5 = 0 THEN 'eu' ELSE 'us' END)
FROM generate_series(0, 299) g;
SELECT count(kpi.add_alert_rule(name => x.name, metric => x.metric, aggregate => x.agg, "window" => '2 minutes',
                                comparator => '>', warning => -1e9, group_by => x.gb, tags => x.tags,
                                denominator_metric => x.den))
FROM (VALUES ('VA', 'pa', 'avg', '{host}'::text[], '{}'::jsonb, NULL),
             ('VB', 'pb', 'max', '{region}', '{}', NULL),
             ('VC', 'pa', 'p90', '{}', '{"region": "eu"}', NULL),
             ('VD', 'pa', 'last', '{host}', '{}', NULL),
             ('VE', 'pb', 'stddev', '{}', '{}', NULL),
             ('VF', 'pa', 'rate', '{}', '{}', NULL),
             ('VG', 'pa', 'count', '{host,region}', '{}', NULL),
             ('VH', 'pa', 'ratio', '{host}', '{}', 'pb'),
             ('VI', 'pz', 'ratio', '{host}', '{}', 'pb'),
             ('VJ', 'pb', 'sum', '{host}', '{"region": "us"}', NULL),
             ('VK', 'pb', 'min', '{host}', '{}', NULL)) x(name, metric, agg, gb, tags, den);
WITH w AS (
    SELECT * FROM kpi.metrics
    WHERE ts > timestamptz '2026-01-01 11:58:00+00' AND ts <= timestamptz '2026-01-01 12:00:00+00'
), expected(name, series, value) AS (
    SELECT 'VA', jsonb_build_object('host', tags->'host'), avg(value) FROM w WHERE metric = 'pa' GROUP BY 2
    UNION ALL SELECT 'VB', jsonb_build_object('region', tags->'region'), max(value) FROM w WHERE metric = 'pb' GROUP BY 2
    UNION ALL SELECT 'VC', '{}', percentile_cont(0.9) WITHIN GROUP (ORDER BY value) FROM w
              WHERE metric = 'pa' AND tags->>'region' = 'eu'
    UNION ALL SELECT 'VD', jsonb_build_object('host', tags->'host'), (array_agg(value ORDER BY ts DESC))[1] FROM w
              WHERE metric = 'pa' GROUP BY 2
    UNION ALL SELECT 'VE', '{}', stddev_samp(value) FROM w WHERE metric = 'pb'
    UNION ALL SELECT 'VF', '{}', count(*) / 120.0 FROM w WHERE metric = 'pa'
    UNION ALL SELECT 'VG', jsonb_build_object('host', tags->'host', 'region', tags->'region'), count(*) FROM w
              WHERE metric = 'pa' GROUP BY 2
    UNION ALL SELECT 'VH', jsonb_build_object('host', tags->'host'),
                     sum(value) FILTER (WHERE metric = 'pa') / sum(value) FILTER (WHERE metric = 'pb') FROM w GROUP BY 2
    UNION ALL SELECT 'VI', jsonb_build_object('host', tags->'host'), 0 FROM w WHERE metric = 'pb' GROUP BY 2
    UNION ALL SELECT 'VJ', jsonb_build_object('host', tags->'host'), sum(value) FROM w
              WHERE metric = 'pb' AND tags->>'region' = 'us' GROUP BY 2
    UNION ALL SELECT 'VK', jsonb_build_object('host', tags->'host'), min(value) FROM w WHERE metric = 'pb' GROUP BY 2
), got AS (
    SELECT r.name, v.series, v.value
    FROM kpi_internal.rule_values((SELECT array_agg(r ORDER BY r.id) FROM kpi.alert_rules r WHERE r.name LIKE 'V_'),
                                  ARRAY[timestamptz '2026-01-01 12:00:00+00']) v
    JOIN kpi.alert_rules r ON r.id = v.rule_id
)
SELECT count(*) AS values_compared,
       count(*) FILTER (WHERE g.value IS NULL OR e.value IS NULL
                        OR abs(g.value - e.value) > 1e-9 * greatest(1, abs(e.value))) AS mismatches
FROM got g FULL JOIN expected e USING (name, series);
-- the same values drive kpi.evaluate_alerts: every series fires (the thresholds are far below)
SELECT count(*) AS firing FROM kpi.evaluate_alerts('2026-01-01 12:00:00+00') WHERE state = 'firing' AND rule LIKE 'V_';
ROLLBACK;

-- Long windows and baselines read a rollup's summaries (complete buckets below
-- its watermark) and raw rows at their ends: the same values as from raw rows
-- alone (percentiles within the sketch's 1 %), in evaluation and in backtest.
BEGIN;
SET LOCAL kpi.trigger_alerts = off;
INSERT INTO kpi.metrics (metric, value, ts, tags)
SELECT 'lat', 100 + 30 * sin(g / 500.0) + (g * 7919 % 97), timestamptz '2026-01-02 10:00:00+00' + g * interval '1 second',
       jsonb_build_object('host', 'h' || g % 3, 'dc', CASE WHEN g % 4 = 0 THEN 'a' ELSE 'b' END)
FROM generate_series(0, 7199) g;
SELECT count(kpi.add_alert_rule(name => x.n, metric => 'lat', aggregate => x.a, "window" => x.w::interval,
                                comparator => '>', warning => -1e9, group_by => x.gb::text[], tags => x.t::jsonb,
                                baseline => '1 hour', horizon => '10 minutes'))
FROM (VALUES ('S1', 'avg', '30 minutes', '{host}', '{}'), ('S2', 'p95', '30 minutes', '{host}', '{}'),
             ('S3', 'zscore', '5 minutes', '{host}', '{}'), ('S4', 'stddev', '45 minutes', '{}', '{"dc": "a"}'),
             ('S5', 'min', '30 minutes', '{dc}', '{}'), ('S6', 'max', '30 minutes', '{host,dc}', '{}'),
             ('S7', 'count', '30 minutes', '{}', '{}'), ('S8', 'sum', '30 minutes', '{host}', '{"dc": "b"}'),
             ('S9', 'forecast', '30 minutes', '{host}', '{}'), ('S10', 'rate', '1 hour', '{}', '{}')) x(n, a, w, gb, t);
CREATE TEMP TABLE raw_vals ON COMMIT DROP AS
SELECT r.name, v.series, v.value
FROM kpi_internal.rule_values((SELECT array_agg(r ORDER BY r.id) FROM kpi.alert_rules r WHERE r.name ~ '^S[0-9]+$'),
                              ARRAY[timestamptz '2026-01-02 11:47:23.5+00']) v
JOIN kpi.alert_rules r ON r.id = v.rule_id;
SELECT kpi.add_rollup('1 minute', group_by_tags => '{dc,host}', lag => '0') AS rollup \gset
SELECT kpi.refresh(:rollup, '2026-01-02 09:00+00', '2026-01-02 12:30+00') > 0 AS refreshed;
-- materialized up to 11:40: above it the rules read raw rows
UPDATE kpi.rollups SET watermark = '2026-01-02 11:40:00+00' WHERE id = :rollup;
WITH s AS (
    SELECT r.name, v.series, v.value
    FROM kpi_internal.rule_values((SELECT array_agg(r ORDER BY r.id) FROM kpi.alert_rules r WHERE r.name ~ '^S[0-9]+$'),
                                  ARRAY[timestamptz '2026-01-02 11:47:23.5+00']) v
    JOIN kpi.alert_rules r ON r.id = v.rule_id
)
SELECT name, count(*) AS series,
       bool_and(abs(s.value - r.value) <= CASE WHEN name = 'S2' THEN 0.01 ELSE 1e-9 END * greatest(abs(r.value), 1)) AS same,
       bool_and(s.value = r.value) AS bit_for_bit  -- the p95 from sketches is not: the summaries were read
FROM raw_vals r FULL JOIN s USING (name, series)
GROUP BY name ORDER BY name;
-- the backtest reads the same way at every step
SELECT count(*) AS steps, bool_and(abs(b.value - v.value) <= 1e-9 * greatest(abs(v.value), 1)) AS same_as_evaluation
FROM kpi.backtest_rule('S1', '2026-01-02 11:30+00', '2026-01-02 11:50+00', '5 minutes') b
JOIN LATERAL (SELECT x.value FROM kpi_internal.rule_values((SELECT array_agg(r) FROM kpi.alert_rules r WHERE r.name = 'S1'),
                                                           ARRAY[b.at]) x WHERE x.series = b.series) v ON true;
ROLLBACK;
