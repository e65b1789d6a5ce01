-- Short report printed by scripts/run.sh.
\pset footer off
\echo 'Raw data'
SELECT count(*) AS rows, count(DISTINCT metric) AS metrics,
       min(ts)::timestamp(0) AS first, max(ts)::timestamp(0) AS last
FROM kpi.metrics;

\echo 'Last 24 hours per metric'
SELECT m.metric, d.unit, count(*) AS n,
       round(avg(m.value)::numeric, 2) AS mean,
       round(min(m.value)::numeric, 2) AS min,
       round(max(m.value)::numeric, 2) AS max,
       round(stddev(m.value)::numeric, 2) AS stddev
FROM kpi.metrics m
JOIN kpi.metric_definitions d USING (metric)
WHERE m.ts > now() - interval '24 hours'
GROUP BY m.metric, d.unit
ORDER BY m.metric;

\echo 'Latency percentiles and trend per metric (pg_kpi aggregates)'
SELECT metric,
       round((s).median::numeric, 2) AS median, round((s).p95::numeric, 2) AS p95,
       round((s).p99::numeric, 2) AS p99,
       round(kpi.approx_percentile(sk, 0.99)::numeric, 2) AS sketch_p99,
       kpi.direction(t, 0.0001) AS direction,
       round(kpi.slope(t, '1 hour')::numeric, 4) AS slope_per_hour
FROM (SELECT metric, kpi.summary_stats(value) AS s, kpi.sketch_agg(value) AS sk, kpi.trend_agg(ts, value) AS t
      FROM kpi.metrics WHERE ts > now() - interval '24 hours' GROUP BY metric) x
ORDER BY metric;

\echo 'Health over the last 5 minutes (kpi.health; the last row is the overall score)'
SELECT coalesce(metric, '(overall)') AS metric, samples, round(mean_value::numeric, 2) AS mean,
       severity, round(score::numeric, 1) AS score, status
FROM kpi.health();

\echo 'Open alerts raised by the kpi.metrics trigger (worst first)'
SELECT metric, labels->>'host' AS host, severity, occurrences,
       last_seen_at::timestamp(0) AS last_seen, message
FROM kpi.alerts WHERE state <> 'resolved'
ORDER BY severity DESC, metric, host
LIMIT 10;

\echo 'Alerts of the last 24 hours by metric and severity'
SELECT metric, severity, count(*) AS alerts, sum(occurrences) AS breaches
FROM kpi.alerts
WHERE started_at > now() - interval '24 hours'
GROUP BY metric, severity
ORDER BY metric, severity;
