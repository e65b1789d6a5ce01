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
