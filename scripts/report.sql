-- Short report printed by scripts/run.sh.
\pset footer off
\echo 'Raw data'
SELECT count(*) AS rows, count(DISTINCT metric) AS metrics,
       min(ts)::timestamp(0) AS first, max(ts)::timestamp(0) AS last
FROM kpi.metrics;

\echo 'Last 24 hours per metric (kpi.performance_overview: statistics, trend and sparkline of hourly means from summaries, severity of the mean, recommendations)'
SELECT metric, count, mean, p50, p95, p99, trend, spark, severity, recommendations
FROM kpi.performance_overview;

\echo 'API response time over the last 12 hours (kpi.report: whole hours, from summaries where a rollup covers them)'
SELECT bucket::timestamp(0) AS hour, count, p50, p95, p99, spark AS "p95 bar", severity
FROM kpi.report('api_response_time', '12 hours', '1 hour');

\echo 'Trends of the last 24 hours (kpi.metric_trend: hourly means, the next hour with a 95 % prediction interval)'
SELECT t.metric, t.direction, t.slope AS per_hour, t.correlation AS r, t.next_value AS next_hour,
       t.next_low AS low, t.next_high AS high, t.spark
FROM kpi.metric_definitions d, kpi.metric_trend(d.metric, '24 hours', '1 hour') t
ORDER BY t.metric;

\echo 'KPIs against their targets (kpi.kpi_status: the mean over each measurement window, progress from the baseline, the trend of the last 6 windows)'
SELECT metric, round(current::numeric, 2) AS current, baseline, target, stretch, phase, round(progress_pct::numeric, 1) AS progress_pct,
       status, trend
FROM kpi.kpi_status();
SELECT kpis, meeting_target, round(compliance_pct::numeric, 1) AS compliance_pct FROM kpi.kpi_compliance();

\echo 'Health over the last 5 minutes (kpi.health; the last row is the overall score)'
SELECT coalesce(metric, '(overall)') AS metric, samples, round(mean_value::numeric, 2) AS mean,
       severity, round(score::numeric, 1) AS score, status
FROM kpi.health();

\echo 'Alerts firing now (kpi.active_alerts, worst first)'
SELECT metric, labels->>'host' AS host, severity, occurrences,
       last_seen_at::timestamp(0) AS last_seen, message
FROM kpi.active_alerts
LIMIT 10;

\echo 'Alert rules evaluated now (kpi.evaluate_alerts: pending until the condition has held for "for")'
SELECT rule, series->>'host' AS host, state, severity, round(value::numeric, 1) AS value
FROM kpi.evaluate_alerts() ORDER BY rule, host;

\echo 'Alerts of the last 24 hours by metric and severity'
SELECT metric, severity, count(*) AS alerts, sum(occurrences) AS breaches
FROM kpi.alerts
WHERE started_at > now() - interval '24 hours'
GROUP BY metric, severity
ORDER BY metric, severity;

\echo 'Recurring revenue: the last three months (kpi.mrr_movements; the month in progress is evaluated up to today, subscriptions count until their paid period plus 3 days of grace end)'
SELECT to_char(month, 'YYYY-MM') || CASE WHEN complete THEN '' ELSE ' (to date)' END AS month,
       new, expansion, contraction, churned, reactivation, net_new, mrr
FROM kpi.mrr_movements((current_date - interval '2 months')::date, current_date);

\echo 'Business value of the last 30 days against the 30 before (kpi.business_overview; sparklines over 10 equal parts)'
SELECT * FROM kpi.business_overview;

\echo 'Business value recommendations (kpi.business_value_report at the replaced cut-offs)'
SELECT r->>'kind' AS kind, r->>'recommendation' AS recommendation
FROM jsonb_array_elements(kpi.business_value_report(now() - interval '30 days', now())->'recommendations') r;

\echo 'Retention over the last 90 days, ARPU of the last 30 days, a marketing investment of 20,000 over 90 days'
SELECT round(kpi.nrr(current_date - 90, current_date), 3) AS nrr, round(kpi.grr(current_date - 90, current_date), 3) AS grr,
       round(kpi.arpu(now() - interval '30 days', now()), 2) AS arpu_30d,
       round(kpi.customer_churn_rate(now() - interval '90 days', now())::numeric, 3) AS churn_90d,
       kpi.roi_report(20000, '90 days') ->> 'roi_percentage' AS roi_pct;

\echo 'Customer models fitted on weekly RFM data of premium-feature purchases (kpi.rfm_summary -> kpi.bgnbd_fit, kpi.gamma_gamma_fit)'
CREATE TEMP TABLE rfm AS SELECT * FROM kpi.rfm_summary('1 week', revenue_types => array['premium_feature']);
CREATE TEMP TABLE fitted AS
SELECT kpi.bgnbd_fit(frequency, recency, t) AS bg, kpi.gamma_gamma_fit(frequency, monetary::float8) AS gg FROM rfm;
SELECT round((bg).r::numeric, 3) AS r, round((bg).alpha::numeric, 3) AS alpha, round((bg).a::numeric, 3) AS a,
       round((bg).b::numeric, 3) AS b, (bg).converged AS bg_converged,
       round((gg).p::numeric, 3) AS p, round((gg).q::numeric, 3) AS q, round((gg).gamma::numeric, 3) AS gamma,
       (gg).converged AS gg_converged
FROM fitted;

\echo 'Top customers by 12-month CLV (BG/NBD x Gamma-Gamma)'
SELECT r.customer_id, r.frequency, round(r.t::numeric, 1) AS weeks, round(r.monetary, 2) AS avg_spend,
       round(kpi.p_alive(f.bg, r.frequency, r.recency, r.t)::numeric, 3) AS p_alive,
       round(kpi.clv_bgnbd(f.bg, f.gg, r.frequency, r.recency, r.t, r.monetary::float8)::numeric, 2) AS clv_12m
FROM rfm r, fitted f
ORDER BY clv_12m DESC NULLS LAST
LIMIT 5;

\echo 'p95 of api_response_time per hour for the last 6 hours (kpi.series: summaries below the watermark, raw rows above)'
SELECT to_char(bucket, 'HH24:MI') AS hour, count, round(avg::numeric, 1) AS avg, round(p95::numeric, 1) AS p95,
       round(max::numeric, 1) AS max, materialized
FROM kpi.series('api_response_time', '1 hour', now() - interval '6 hours', now());

\echo 'Summaries by resolution (kpi.summaries)'
SELECT resolution, count(DISTINCT metric) AS metrics, count(DISTINCT series) AS series, count(*) AS buckets,
       sum(count) AS rows_summarized
FROM kpi.summaries GROUP BY 1 ORDER BY 1;

\echo 'Jobs (kpi.job_status)'
SELECT id, kind, config, coalesce(schedule_interval::text, schedule_cron || ' ' || schedule_timezone) AS schedule,
       state, next_run::timestamp(0) AS next_run, runs_last_day, failures_last_day, last_duration
FROM kpi.job_status ORDER BY id;

\echo 'Report snapshots (kpi.report_snapshots: taken by report jobs, or kpi.take_report_snapshot)'
SELECT id, name, report, taken_at::timestamp(0) AS taken_at, period, pg_size_pretty(pg_column_size(body)::bigint) AS size
FROM kpi.report_snapshots ORDER BY id;
