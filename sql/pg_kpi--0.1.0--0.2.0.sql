-- pg_kpi 0.1.0 -> 0.2.0. Every change to the extension's SQL after the 0.1.0
-- release (git tag v0.1.0, install script frozen in sql/pg_kpi--0.1.0.sql)
-- goes here too, so that ALTER EXTENSION pg_kpi UPDATE gives the same schema
-- as a fresh install (tests/integration/test_upgrade.py compares them).
-- Released upgrade scripts are never edited.
\echo Use "ALTER EXTENSION pg_kpi UPDATE TO '0.2.0'" to load this file. \quit

-- An sql job runs its command as the job worker's role (kpi.worker_role, or
-- the bootstrap superuser): only a superuser, or a member of that role, may
-- write one, so that no one runs SQL with more rights than their own.
CREATE FUNCTION kpi_internal.check_sql_job_writer() RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    wr text := nullif(current_setting('kpi.worker_role', true), '');
BEGIN
    IF (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
        RETURN;
    END IF;
    IF wr IS NOT NULL AND EXISTS (SELECT FROM pg_roles r WHERE r.rolname = wr) AND pg_has_role(current_user, wr, 'MEMBER') THEN
        RETURN;
    END IF;
    RAISE EXCEPTION 'kpi.jobs: % may not create or change an sql job', current_user
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = format('An sql job runs its command as the job worker''s role (%s).',
                              coalesce(wr, 'the bootstrap superuser')),
              HINT = CASE WHEN wr IS NULL THEN 'Ask a superuser to add it, or set kpi.worker_role to a role you are a member of.'
                          ELSE format('Ask a superuser, or a member of %s, to add it.', wr) END;
END
$$;
COMMENT ON FUNCTION kpi_internal.check_sql_job_writer() IS
    'Internal: raises 42501 unless the current user may write an sql job (a superuser, or a member of kpi.worker_role)';

CREATE OR REPLACE FUNCTION kpi_internal.jobs_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- a new row's rollup or retention policy is not checked: kpi.add_rollup and
    -- kpi.add_retention make them together, and pg_restore loads kpi.jobs before the
    -- tables that reference it (their job_id keys); an UPDATE must name an existing one
    IF TG_OP = 'INSERT' OR NEW.kind IS DISTINCT FROM OLD.kind OR NEW.config IS DISTINCT FROM OLD.config THEN
        PERFORM kpi_internal.check_job(NEW.kind, NEW.config, refs => TG_OP = 'UPDATE');
        IF NEW.kind = 'sql' THEN
            PERFORM kpi_internal.check_sql_job_writer();
        END IF;
    END IF;
    IF NEW.schedule_cron IS NOT NULL THEN
        -- a cron schedule written without a zone is in the writer's TimeZone
        NEW.schedule_timezone := coalesce(NEW.schedule_timezone, current_setting('TimeZone'));
        PERFORM kpi_internal.check_cron('kpi.jobs', 'schedule_cron', NEW.schedule_cron);
        PERFORM kpi_internal.check_timezone('kpi.jobs', 'schedule_timezone', NEW.schedule_timezone);
    END IF;
    RETURN NEW;
END
$$;

-- Functions that write with the extension's rights (SECURITY DEFINER, other
-- than trigger functions, which only fire as triggers): rule evaluation,
-- quiet-alert resolution and the job bookkeeping are for kpi_admin (and the
-- job worker) only.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname IN ('kpi', 'kpi_internal') AND p.prosecdef AND p.prorettype <> 'pg_catalog.trigger'::pg_catalog.regtype
    LOOP
        EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO kpi_admin', f);
    END LOOP;
END
$$;

-- Job kinds name the functions the worker calls (as its role, by default the
-- bootstrap superuser): only the extension and superusers register them.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON kpi.job_kinds FROM kpi_admin;

-- upgrade: kpi_internal.severity_chart_svg (Rust)
CREATE  FUNCTION kpi_internal."severity_chart_svg"(
	"from" double precision, /* f64 */
	"to" double precision, /* f64 */
	"step" double precision, /* f64 */
	"times" double precision[], /* Vec < Option < f64 > > */
	"p50" double precision[], /* Vec < Option < f64 > > */
	"p95" double precision[], /* Vec < Option < f64 > > */
	"optimal" double precision, /* Option < f64 > */
	"good" double precision, /* Option < f64 > */
	"warning" double precision, /* Option < f64 > */
	"critical" double precision, /* Option < f64 > */
	"higher_is_better" bool, /* bool */
	"width" INT DEFAULT 760, /* i32 */
	"height" INT DEFAULT 220 /* i32 */
) RETURNS TEXT /* String */
IMMUTABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'severity_chart_svg_wrapper';
-- end: kpi_internal.severity_chart_svg (Rust)

-- upgrade: kpi_internal.check_bi_period(
CREATE OR REPLACE FUNCTION kpi_internal.check_bi_period(func text, from_ts timestamptz, to_ts timestamptz) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT isfinite(from_ts) OR NOT isfinite(to_ts) THEN
        RAISE EXCEPTION '%: "from" and "to" must be finite, got % to %', func, from_ts, to_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF from_ts < '0001-01-01 00:00:00+00' OR to_ts >= '100000-01-01 00:00:00+00' THEN
        RAISE EXCEPTION '%: "from" and "to" must lie between the years 1 and 99999, got % to %', func, from_ts, to_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF from_ts >= to_ts THEN
        RAISE EXCEPTION '%: "from" (%) is not before "to" (%)', func, from_ts, to_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION kpi_internal.check_bi_period(text, timestamptz, timestamptz) IS
    'Internal: checks a [from, to) period argument (finite, years 1 to 99999, from before to; 22023 otherwise)';
-- end: kpi_internal.check_bi_period(

-- upgrade: kpi_internal.timeseries(
CREATE OR REPLACE FUNCTION kpi_internal.timeseries(m text, "from" timestamptz, "to" timestamptz, points integer, tags jsonb)
RETURNS TABLE (bk timestamptz, n bigint, mean float8, p50 float8, p95 float8, p99 float8, lo float8, hi float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    width float8;
    res interval;
    step interval;
BEGIN
    IF m IS NULL OR "from" IS NULL OR "to" IS NULL OR points IS NULL OR tags IS NULL THEN
        RAISE EXCEPTION 'kpi.timeseries: metric, from, to, points and tags must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM kpi_internal.check_bi_period('kpi.timeseries', "from", "to");
    IF points <= 0 THEN
        RAISE EXCEPTION 'kpi.timeseries: points must be positive, got %', points USING ERRCODE = 'invalid_parameter_value',
            HINT = 'About 500 points fill a wide panel; more than 10000 are capped to 10000.';
    END IF;
    IF jsonb_typeof(tags) <> 'object' THEN
        RAISE EXCEPTION 'kpi.timeseries: tags must be a JSON object, got %', left(tags::text, 200)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM kpi_internal.require_metric('kpi.timeseries', 'metric', m);
    PERFORM kpi_internal.note_expired('kpi.timeseries', "from");
    -- at least 1 second, at most 10000 points
    width := greatest(1, (extract(epoch FROM "to") - extract(epoch FROM "from"))::float8 / least(points, 10000));
    -- the coarsest rollup of this grouping that covers the metric and is no
    -- wider than a bucket; when every one is wider, the finest (a bucket is
    -- never finer than the summaries: a zoomed-in panel keeps reading them
    -- after the raw rows have expired)
    SELECT ro.resolution INTO res
    FROM kpi.rollups ro
    WHERE ro.group_by_tags = ARRAY(SELECT k FROM jsonb_object_keys(tags) k ORDER BY k)
      AND ro.watermark IS NOT NULL AND m LIKE ro.metrics
    ORDER BY extract(epoch FROM ro.resolution) <= width DESC,
             CASE WHEN extract(epoch FROM ro.resolution) <= width THEN -extract(epoch FROM ro.resolution)
                  ELSE extract(epoch FROM ro.resolution) END
    LIMIT 1;
    IF res IS NULL THEN
        step := make_interval(secs => ceil(width));
        res := step;
    ELSE
        step := res * ceil(width / extract(epoch FROM res)::float8);
    END IF;
    RETURN QUERY
    SELECT g.b, g.c, g.s / g.c, g.ps[1], g.ps[2], g.ps[3], g.l, g.h
    FROM (SELECT kpi.bucket(step, x.bucket) AS b, sum(x.count)::bigint AS c, sum(x.sum) AS s, min(x.min) AS l,
                 max(x.max) AS h, kpi.approx_percentiles(kpi.sketch_agg(x.sketch), ARRAY[0.5, 0.95, 0.99]) AS ps
          FROM kpi_internal.series_buckets(m, res, kpi.bucket(step, "from"), "to", tags) x
          GROUP BY 1) g
    WHERE g.c > 0
    ORDER BY g.b;
END
$$;
COMMENT ON FUNCTION kpi_internal.timeseries(text, timestamptz, timestamptz, integer, jsonb) IS 'Internal: the body of kpi.timeseries';
-- end: kpi_internal.timeseries(

-- upgrade: kpi.timeseries(
CREATE OR REPLACE FUNCTION kpi.timeseries(metric text, "from" timestamptz, "to" timestamptz, points integer DEFAULT 500,
                               tags jsonb DEFAULT '{}')
RETURNS TABLE ("time" timestamptz, metric text, series jsonb, count bigint, avg float8, p50 float8, p95 float8,
               p99 float8, min float8, max float8)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
    SELECT x.bk, $1, $5, x.n, x.mean, x.p50, x.p95, x.p99, x.lo, x.hi FROM kpi_internal.timeseries($1, $2, $3, $4, $5) x
$$;
COMMENT ON FUNCTION kpi.timeseries(text, timestamptz, timestamptz, integer, jsonb) IS
    'About points buckets (at most 10000) of a metric covering [from, to) for BI panels: time, metric, series, count, avg, p50, p95, p99, min, max, read from the coarsest rollup no wider than a bucket (never finer than the finest rollup; summaries below the watermark, raw rows above); whole buckets, the first being the one holding "from"';
-- end: kpi.timeseries(

-- upgrade: kpi_internal.rollup_behind(
CREATE OR REPLACE FUNCTION kpi_internal.rollup_behind(resolution interval, lag interval, watermark timestamptz) RETURNS float8
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT greatest(0, extract(epoch FROM kpi.bucket(resolution, now() - lag) - watermark))::float8
$$;
COMMENT ON FUNCTION kpi_internal.rollup_behind(interval, interval, timestamptz) IS
    'Internal: seconds a rollup''s watermark is behind the last bucket it could have materialized (NULL before its first run)';
-- end: kpi_internal.rollup_behind(

-- upgrade: kpi.prometheus_metrics(
CREATE OR REPLACE FUNCTION kpi.prometheus_metrics(at timestamptz DEFAULT now()) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    out text;
BEGIN
    IF at IS NULL THEN
        RAISE EXCEPTION 'kpi.prometheus_metrics: at must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT isfinite(at) THEN
        RAISE EXCEPTION 'kpi.prometheus_metrics: at must be a finite time, got %', at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH d AS (
        SELECT x.metric, x.measurement_window AS w FROM kpi.metric_definitions x WHERE x.active
    ),
    win AS (SELECT d.w, array_agg(d.metric) AS ms FROM d GROUP BY d.w),
    s AS (
        SELECT st.metric, st.count, st.sum, st.mean,
               kpi.approx_percentiles(st.sketch, ARRAY[0.5, 0.95, 0.99]) AS ps
        FROM win, LATERAL kpi_internal.range_stats_many(win.ms, at - win.w, at) st
    ),
    lines AS (
        SELECT 1 AS part, '' AS k, 0 AS o, E'# HELP kpi_metric Each active metric over its measurement window before the scrape (pg_kpi)\n# TYPE kpi_metric summary' AS line
        UNION ALL
        -- per metric: its quantiles, then _sum and _count
        SELECT 2, s.metric, q.i, format('kpi_metric{metric=%s,quantile="%s"} %s', kpi_internal.prom_label(s.metric), q.q,
                                        kpi_internal.prom_value(s.ps[q.i]))
        FROM s, (VALUES (1, '0.5'), (2, '0.95'), (3, '0.99')) q(i, q)
        WHERE s.count > 0
        UNION ALL
        SELECT 2, s.metric, 4, format('kpi_metric_sum{metric=%s} %s', kpi_internal.prom_label(s.metric),
                                      kpi_internal.prom_value(coalesce(s.sum, 0)))
        FROM s
        UNION ALL
        SELECT 2, s.metric, 5, format('kpi_metric_count{metric=%s} %s', kpi_internal.prom_label(s.metric), s.count)
        FROM s
        UNION ALL
        SELECT 4, '', 0, E'# HELP kpi_metric_mean The mean of each active metric over its measurement window\n# TYPE kpi_metric_mean gauge'
        UNION ALL
        SELECT 5, s.metric, 0, format('kpi_metric_mean{metric=%s} %s', kpi_internal.prom_label(s.metric), kpi_internal.prom_value(s.mean))
        FROM s WHERE s.count > 0
        UNION ALL
        SELECT 6, '', 0, E'# HELP ALERTS Open pg_kpi alerts (1 each), as Prometheus''s own ALERTS series\n# TYPE ALERTS gauge'
        UNION ALL
        SELECT 7, lpad(a.id::text, 20, '0'), 0,
               'ALERTS{' || concat_ws(',',
                   'alertname=' || kpi_internal.prom_label(coalesce(ar.name, a.metric)),
                   'alertstate=' || kpi_internal.prom_label(a.state),
                   'severity=' || kpi_internal.prom_label(a.severity::text),
                   'metric=' || kpi_internal.prom_label(a.metric),
                   -- each label name once (the first key that maps to it), none
                   -- empty, reserved (__*) or already set above
                   (SELECT string_agg(l.n || '=' || kpi_internal.prom_label(l.value), ',' ORDER BY l.n)
                    FROM (SELECT DISTINCT ON (x.n) x.n, x.value
                          FROM (SELECT kpi_internal.prom_label_name(e.key) AS n, e.key, e.value
                                FROM jsonb_each_text(a.labels) e) x
                          WHERE x.n <> '' AND x.n NOT LIKE '\_\_%'
                            AND x.n NOT IN ('alertname', 'alertstate', 'severity', 'metric')
                          ORDER BY x.n, x.key) l)) || '} 1'
        FROM kpi.alerts a LEFT JOIN kpi.alert_rules ar ON ar.id = a.rule_id
        WHERE a.state IN ('pending', 'firing')
        UNION ALL
        SELECT 8, '', 0, E'# HELP kpi_rollup_lag_seconds How far each rollup''s watermark is behind now\n# TYPE kpi_rollup_lag_seconds gauge'
        UNION ALL
        SELECT 9, lpad(ro.id::text, 20, '0'), 0,
               format('kpi_rollup_lag_seconds{rollup="%s",resolution=%s} %s', ro.id, kpi_internal.prom_label(ro.resolution::text),
                      kpi_internal.prom_value(extract(epoch FROM now() - ro.watermark)::float8))
        FROM kpi.rollups ro
        UNION ALL
        SELECT 9, '~', 0, E'# HELP kpi_rollup_behind_seconds How far each rollup is behind the last bucket it could have materialized\n# TYPE kpi_rollup_behind_seconds gauge'
        UNION ALL
        SELECT 9, '~' || lpad(ro.id::text, 20, '0'), 0,
               format('kpi_rollup_behind_seconds{rollup="%s",resolution=%s} %s', ro.id, kpi_internal.prom_label(ro.resolution::text),
                      kpi_internal.prom_value(kpi_internal.rollup_behind(ro.resolution, ro.lag, ro.watermark)))
        FROM kpi.rollups ro
        UNION ALL
        SELECT 10, '', 0, E'# HELP kpi_job_runs_last_hour Job runs of the last hour by kind and outcome\n# TYPE kpi_job_runs_last_hour gauge'
        UNION ALL
        SELECT 11, j.kind || ' ' || r.status, 0,
               format('kpi_job_runs_last_hour{kind=%s,status=%s} %s', kpi_internal.prom_label(j.kind), kpi_internal.prom_label(r.status), count(*))
        FROM kpi.job_runs r JOIN kpi.jobs j ON j.id = r.job_id
        WHERE r.started_at >= now() - interval '1 hour' AND r.status IN ('success', 'failed')
        GROUP BY j.kind, r.status
        UNION ALL
        SELECT 12, '', 0, E'# HELP kpi_rows_ingested_last_minute Rows of the defined metrics in the minute before the scrape\n# TYPE kpi_rows_ingested_last_minute gauge'
        UNION ALL
        SELECT 13, '', 0, 'kpi_rows_ingested_last_minute ' || (SELECT coalesce(sum(x.n), 0) FROM d,
                        LATERAL (SELECT count(*) AS n FROM kpi.metrics m WHERE m.metric = d.metric
                                 AND m.ts >= at - interval '1 minute' AND m.ts < at) x)
        UNION ALL
        SELECT 14, '', 0, E'# HELP kpi_notifications_undelivered Alert notifications waiting for delivery\n# TYPE kpi_notifications_undelivered gauge'
        UNION ALL
        SELECT 15, '', 0, 'kpi_notifications_undelivered ' || (SELECT count(*) FROM kpi.deliveries x WHERE x.status = 'pending')
        UNION ALL
        SELECT 16, '', 0, E'# HELP kpi_worker_up 1 while pg_kpi''s job worker runs for this database\n# TYPE kpi_worker_up gauge'
        UNION ALL
        SELECT 17, '', 0, 'kpi_worker_up ' || coalesce((SELECT (w.state = 'running')::int FROM kpi.worker_status() w
                                                        WHERE w.database = current_database()), 0)
    )
    SELECT string_agg(l.line, E'\n' ORDER BY l.part, l.k, l.o) || E'\n' INTO out FROM lines l;
    RETURN out;
END
$$;
COMMENT ON FUNCTION kpi.prometheus_metrics(timestamptz) IS
    'Prometheus text exposition: each active metric over its measurement window as a summary (quantiles, sum, count) and a mean gauge, open alerts as ALERTS{alertstate}, and pg_kpi''s health (rollup lag, job runs, rows ingested, undelivered notifications, worker up); label values escaped';
-- end: kpi.prometheus_metrics(

-- upgrade: kpi_internal.html_num(
CREATE OR REPLACE FUNCTION kpi_internal.html_num(v float8) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN v IS NULL THEN '&#8211;'
                WHEN v IN ('NaN', 'Infinity', '-Infinity') THEN v::text
                WHEN abs(v) >= 1000 OR v = trunc(v) THEN to_char(round(v::numeric), 'FM999,999,999,999,999,990')
                -- six significant digits, trailing zeros dropped: 99.9499 stays apart from 99.95
                ELSE trim_scale(round(v::numeric, greatest(0, 5 - floor(log(abs(v)::numeric))::int)))::text END
$$;
COMMENT ON FUNCTION kpi_internal.html_num(float8) IS 'Internal: a number as the HTML report shows it (six significant digits)';
-- end: kpi_internal.html_num(

-- upgrade: kpi.html_report(
CREATE OR REPLACE FUNCTION kpi.html_report("from" timestamptz, "to" timestamptz, metrics text[] DEFAULT NULL) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    at timestamptz;
    ms text[];
    tz text := current_setting('TimeZone');
    lf float8;
    lt float8;
    doc text;
    health text;
    targets text;
    sections text := '';
    sec text;
    d record;
    ts record;
    al record;
    alerts_html text;
    stats jsonb;
BEGIN
    IF "from" IS NULL OR "to" IS NULL THEN
        RAISE EXCEPTION 'kpi.html_report: "from" and "to" must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM kpi_internal.check_bi_period('kpi.html_report', "from", "to");
    IF "from" >= now() THEN
        RAISE EXCEPTION 'kpi.html_report: "from" (%) is in the future', "from" USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF metrics IS NULL THEN
        ms := ARRAY(SELECT x.metric FROM kpi.metric_definitions x WHERE x.active
                    ORDER BY x.category NULLS LAST, x.metric LIMIT 101);
    ELSE
        IF cardinality(metrics) = 0 THEN
            RAISE EXCEPTION 'kpi.html_report: metrics must not be empty' USING ERRCODE = 'invalid_parameter_value',
                HINT = 'Pass NULL for every active metric.';
        END IF;
        IF array_position(metrics, NULL) IS NOT NULL THEN
            RAISE EXCEPTION 'kpi.html_report: metrics must not contain NULL' USING ERRCODE = 'null_value_not_allowed';
        END IF;
        -- in the order given, each once
        ms := ARRAY(SELECT u.m FROM unnest(metrics) WITH ORDINALITY u(m, i) GROUP BY u.m ORDER BY min(u.i));
    END IF;
    IF cardinality(ms) > 100 THEN
        RAISE EXCEPTION 'kpi.html_report: at most 100 metrics fit a report, got %',
            CASE WHEN metrics IS NULL THEN 'more active ones' ELSE cardinality(ms)::text END
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass the metrics to show.';
    END IF;
    IF metrics IS NOT NULL THEN
        PERFORM kpi_internal.require_metric('kpi.html_report', 'metrics element', u.m) FROM unnest(ms) u(m);
    END IF;
    PERFORM kpi_internal.note_expired('kpi.html_report', "from");
    at := least("to", now());
    lf := kpi_internal.local_epoch("from");
    lt := kpi_internal.local_epoch("to");

    -- the period per metric, from summaries where they cover it
    SELECT jsonb_object_agg(st.metric, jsonb_build_object('count', st.count, 'mean', st.mean, 'p50', p.ps[1], 'p95', p.ps[2],
                                                          'max', st.max))
    INTO stats
    FROM kpi_internal.range_stats_many(ms, "from", at) st,
         LATERAL (SELECT kpi.approx_percentiles(st.sketch, ARRAY[0.5, 0.95]) AS ps) p;
    stats := coalesce(stats, '{}');

    -- health over the period: each metric's band by its mean, then the overall score
    SELECT string_agg(format('<tr><td>%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td><td><span class="b %s">%s</span></td></tr>',
                             kpi_internal.html(h.metric), kpi_internal.html_num(h.count), kpi_internal.html_num(h.mean),
                             kpi_internal.html_num(h.p95), kpi_internal.html_num(h.alerts),
                             coalesce(h.sev::text, 'unknown'), coalesce(h.sev::text, 'no data')), '' ORDER BY h.o)
           || format('<tr class="total"><td>overall</td><td class="n">%s</td><td></td><td></td><td class="n">%s</td><td>%s (score %s)</td></tr>',
                     kpi_internal.html_num(sum(h.count)), kpi_internal.html_num(sum(h.alerts)),
                     kpi_internal.html(kpi.health_status(kpi.health_score(h.sev))),
                     kpi_internal.html_num(kpi.health_score(h.sev)))
    INTO health
    FROM (SELECT u.m AS metric, u.o, (stats->u.m->>'count')::bigint AS count, (stats->u.m->>'mean')::float8 AS mean,
                 (stats->u.m->>'p95')::float8 AS p95,
                 kpi.severity((stats->u.m->>'mean')::float8, x.optimal, x.good, x.warning, x.critical, coalesce(x.direction, 'lower_is_better')) AS sev,
                 (SELECT count(*) FROM kpi.alerts a WHERE a.metric = u.m AND a.started_at < "to"
                     AND coalesce(a.resolved_at, 'infinity') > "from") AS alerts
          FROM unnest(ms) WITH ORDINALITY u(m, o)
          LEFT JOIN kpi.metric_definitions x ON x.metric = u.m) h;

    -- KPI targets at the end of the period
    SELECT string_agg(format('<tr><td>%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td><td>%s</td><td class="arrow">%s</td></tr>',
                             kpi_internal.html(k.metric), kpi_internal.html_num(k.current), kpi_internal.html_num(k.baseline),
                             CASE WHEN k.target IS NOT NULL THEN kpi_internal.html_num(k.target)
                                  ELSE kpi_internal.html_num(k.target_low) || ' &#8211; ' || kpi_internal.html_num(k.target_high) END,
                             CASE WHEN k.progress_pct IS NULL THEN '&#8211;' ELSE kpi_internal.html_num(k.progress_pct) || ' %' END,
                             kpi_internal.html(coalesce(k.status, 'no recent data')), kpi_internal.html(coalesce(k.trend, ''))),
                      '' ORDER BY array_position(ms, k.metric))
    INTO targets
    FROM kpi.kpi_status(at) k
    WHERE k.metric = ANY (ms);

    FOR d IN
        SELECT u.m AS metric, u.o, x.unit, x.description, x.optimal, x.good, x.warning, x.critical,
               coalesce(x.direction, 'lower_is_better') = 'higher_is_better' AS hib,
               (stats->u.m->>'count')::bigint AS count, (stats->u.m->>'mean')::float8 AS mean,
               (stats->u.m->>'p50')::float8 AS p50, (stats->u.m->>'p95')::float8 AS p95, (stats->u.m->>'max')::float8 AS max
        FROM unnest(ms) WITH ORDINALITY u(m, o)
        LEFT JOIN kpi.metric_definitions x ON x.metric = u.m
        ORDER BY u.o
    LOOP
        SELECT array_agg(kpi_internal.local_epoch(t.bk) ORDER BY t.bk) AS t, array_agg(t.p50 ORDER BY t.bk) AS p50,
               array_agg(t.p95 ORDER BY t.bk) AS p95,
               coalesce(min(t.gap), lt - lf) AS step
        INTO ts
        FROM (SELECT x.bk, x.p50, x.p95, extract(epoch FROM lead(x.bk) OVER (ORDER BY x.bk) - x.bk)::float8 AS gap
              FROM kpi_internal.timeseries(d.metric, "from", "to", 240, '{}') x) t;
        SELECT array_agg(kpi_internal.local_epoch(a.started_at)) AS s,
               array_agg(kpi_internal.local_epoch(coalesce(a.resolved_at, greatest(at, a.last_seen_at)))) AS e,
               array_agg(array_position(enum_range(NULL::kpi.severity_level), a.severity) - 1) AS r,
               count(*) AS n
        INTO al
        FROM kpi.alerts a
        WHERE a.metric = d.metric AND a.started_at < "to" AND coalesce(a.resolved_at, 'infinity') > "from";
        SELECT string_agg(format('<tr><td class="t">%s</td><td class="t">%s</td><td><span class="b %s">%s</span></td><td>%s</td><td class="n">%s</td><td>%s</td></tr>',
                                 to_char(a.started_at, 'YYYY-MM-DD HH24:MI'),
                                 coalesce(to_char(a.resolved_at, 'YYYY-MM-DD HH24:MI'), 'open'),
                                 a.severity, a.severity, kpi_internal.html(a.state), kpi_internal.html_num(a.value),
                                 kpi_internal.html(a.message)), '' ORDER BY a.started_at DESC)
        INTO alerts_html
        FROM (SELECT * FROM kpi.alerts a
              WHERE a.metric = d.metric AND a.started_at < "to" AND coalesce(a.resolved_at, 'infinity') > "from"
              ORDER BY a.started_at DESC LIMIT 10) a;
        sec := format('<section class="metric"><h2>%s%s</h2>%s<p class="facts">%s samples &#183; mean %s &#183; p50 %s &#183; p95 %s &#183; max %s%s</p>',
                      kpi_internal.html(d.metric),
                      CASE WHEN d.unit IS NOT NULL THEN ' <small>(' || kpi_internal.html(d.unit) || ')</small>' ELSE '' END,
                      CASE WHEN d.description IS NOT NULL THEN '<p class="desc">' || kpi_internal.html(d.description) || '</p>' ELSE '' END,
                      kpi_internal.html_num(coalesce(d.count, 0)), kpi_internal.html_num(d.mean), kpi_internal.html_num(d.p50),
                      kpi_internal.html_num(d.p95), kpi_internal.html_num(d.max),
                      CASE WHEN num_nonnulls(d.optimal, d.good, d.warning, d.critical) > 0
                           THEN ' &#183; thresholds (' || CASE WHEN d.hib THEN 'lower' ELSE 'upper' END || ' edges): '
                                || concat_ws(', ', 'optimal ' || kpi_internal.html_num(d.optimal), 'good ' || kpi_internal.html_num(d.good),
                                             'warning ' || kpi_internal.html_num(d.warning), 'critical ' || kpi_internal.html_num(d.critical))
                           ELSE '' END)
            || '<figure class="chart">'
            || kpi_internal.severity_chart_svg(lf, lt, ts.step, coalesce(ts.t, '{}'), coalesce(ts.p50, '{}'),
                                               coalesce(ts.p95, '{}'), d.optimal, d.good, d.warning, d.critical, d.hib)
            || '<figcaption><span class="k p50"></span> p50 <span class="k p95"></span> p95'
            || CASE WHEN d.warning IS NOT NULL THEN ' <span class="k warn"></span> warning' ELSE '' END
            || CASE WHEN d.critical IS NOT NULL THEN ' <span class="k crit"></span> critical' ELSE '' END
            || CASE WHEN num_nonnulls(d.optimal, d.good, d.warning, d.critical) > 0
                    THEN ' <span class="k emerg"></span> emergency' ELSE '' END
            || '</figcaption></figure>'
            || format('<h3>Alerts (%s)</h3>', al.n)
            || '<figure class="timeline">'
            || kpi_internal.alert_timeline_svg_of(lf, lt, coalesce(al.s, '{}'), coalesce(al.e, '{}'), coalesce(al.r, '{}'))
            || '</figure>'
            || CASE WHEN al.n = 0 THEN '<p class="none">No alerts in this period.</p>'
                    ELSE '<table><tr><th>started</th><th>resolved</th><th>severity</th><th>state</th><th>value</th><th>message</th></tr>'
                         || alerts_html || '</table>'
                         || CASE WHEN al.n > 10 THEN format('<p class="none">%s more in kpi.alerts.</p>', al.n - 10) ELSE '' END END
            || '</section>';
        sections := sections || sec;
    END LOOP;

    doc := '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        || '<meta http-equiv="Content-Security-Policy" content="default-src ''none''; style-src ''unsafe-inline''">'
        || '<meta name="viewport" content="width=device-width, initial-scale=1">'
        || format('<title>pg_kpi report %s &#8211; %s</title>', to_char("from", 'YYYY-MM-DD HH24:MI'), to_char("to", 'YYYY-MM-DD HH24:MI'))
        || '<style>'
        || 'body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222;margin:24px auto;max-width:820px;padding:0 12px}'
        || 'h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 4px;border-top:1px solid #ddd;padding-top:16px}'
        || 'h3{font-size:14px;margin:10px 0 2px}small{color:#666;font-weight:normal}.meta,.desc,.facts,.none{color:#555;font-size:13px;margin:2px 0}'
        || 'table{border-collapse:collapse;font-size:13px;margin:6px 0;width:100%}th,td{border-bottom:1px solid #eee;padding:3px 6px;text-align:left}'
        || 'th{background:#f6f6f6}td.t{white-space:nowrap}td.n{text-align:right;font-variant-numeric:tabular-nums}td.arrow{font-size:16px;text-align:center}'
        || 'tr.total td{font-weight:bold;border-top:1px solid #999}figure{margin:4px 0}figure svg{display:block;max-width:100%;height:auto}'
        || 'figcaption{font-size:12px;color:#555}.k{display:inline-block;width:14px;height:8px;margin-left:8px}'
        || '.k.p50{background:#1f77b4}.k.p95{background:#d62728}.k.warn{background:rgba(255,191,0,.35)}.k.crit{background:rgba(240,122,16,.35)}.k.emerg{background:rgba(224,32,32,.35)}'
        || '.b{border-radius:3px;padding:0 5px;font-size:12px}.b.optimal,.b.good{background:#dff0d8}.b.warning{background:#fcf0c8}'
        || '.b.critical{background:#fbd5b5}.b.emergency{background:#f2b8b8}.b.unknown{background:#eee}'
        || '</style></head><body>'
        || '<h1>pg_kpi report</h1>'
        || format('<p class="meta">%s &#8211; %s (%s) &#183; generated %s%s</p>',
                  to_char("from", 'YYYY-MM-DD HH24:MI'), to_char("to", 'YYYY-MM-DD HH24:MI'), kpi_internal.html(tz),
                  to_char(now(), 'YYYY-MM-DD HH24:MI'),
                  CASE WHEN "to" > now() THEN ' &#183; period in progress: data up to now' ELSE '' END)
        || '<h2>Health</h2>'
        || CASE WHEN cardinality(ms) = 0 THEN '<p class="none">No active metric definitions (kpi.metric_definitions).</p>'
                ELSE '<table><tr><th>metric</th><th>samples</th><th>mean</th><th>p95</th><th>alerts</th><th>band of the mean</th></tr>'
                     || health || '</table>' END
        || '<h2>KPI targets</h2>'
        || CASE WHEN targets IS NULL THEN '<p class="none">No KPI targets for these metrics (kpi.kpi_targets).</p>'
                ELSE '<table><tr><th>metric</th><th>current</th><th>baseline</th><th>target</th><th>progress</th><th>status</th><th>trend</th></tr>'
                     || targets || '</table>' END
        || sections
        || '</body></html>';
    RETURN doc;
END
$$;
COMMENT ON FUNCTION kpi.html_report(timestamptz, timestamptz, text[]) IS
    'One self-contained HTML document (inline CSS and SVG, no scripts, nothing fetched) about [from, to): health summary, KPI targets with trend arrows, and per metric a p50/p95 chart with the warning, critical and emergency bands of kpi.severity, the alert timeline and the alerts; metrics NULL = every active metric (at most 100)';
-- end: kpi.html_report(

-- upgrade: kpi_internal.duration_text(
CREATE OR REPLACE FUNCTION kpi_internal.duration_text(d interval) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN s <> trunc(s) OR s = 0 THEN trim_scale(s)::text || 's'
                WHEN s % 604800 = 0 THEN (s::bigint / 604800)::text || 'w'
                WHEN s % 86400 = 0 THEN (s::bigint / 86400)::text || 'd'
                WHEN s % 3600 = 0 THEN (s::bigint / 3600)::text || 'h'
                WHEN s % 60 = 0 THEN (s::bigint / 60)::text || 'm'
                ELSE s::bigint::text || 's' END
    FROM (SELECT extract(epoch FROM d) AS s) x
$$;
COMMENT ON FUNCTION kpi_internal.duration_text(interval) IS 'Internal: an interval as 90s, 1m, 1h, 1d or 1w';
-- end: kpi_internal.duration_text(

-- upgrade: kpi.metric_series
CREATE OR REPLACE VIEW kpi.metric_series AS
SELECT s.bucket AS "time", s.metric, s.series::text AS series, kpi_internal.duration_text(s.resolution) AS resolution,
       s.count, s.avg, s.p50, s.p95, s.p99, s.min, s.max
FROM kpi.summary s;
COMMENT ON VIEW kpi.metric_series IS
    'Rolled-up summaries for BI panels: time first, one row per bucket, metric and series (filter on metric, resolution and series: series {} is the whole metric, other series split it); for any range kpi.timeseries picks the resolution';
COMMENT ON COLUMN kpi.metric_series."time" IS 'Start of the bucket';
COMMENT ON COLUMN kpi.metric_series.metric IS 'Metric name';
COMMENT ON COLUMN kpi.metric_series.series IS 'The series'' grouping tags as JSON text ({} for the whole metric)';
COMMENT ON COLUMN kpi.metric_series.resolution IS 'The rollup''s bucket width as a duration (1m, 1h, 1d, 90s), the same whatever IntervalStyle';
COMMENT ON COLUMN kpi.metric_series.count IS 'Samples in the bucket';
COMMENT ON COLUMN kpi.metric_series.avg IS 'Mean of the bucket''s samples';
COMMENT ON COLUMN kpi.metric_series.p50 IS 'Median (from the bucket''s sketch, within 1 % relative error)';
COMMENT ON COLUMN kpi.metric_series.p95 IS '95th percentile (from the sketch)';
COMMENT ON COLUMN kpi.metric_series.p99 IS '99th percentile (from the sketch)';
COMMENT ON COLUMN kpi.metric_series.min IS 'Smallest sample';
COMMENT ON COLUMN kpi.metric_series.max IS 'Largest sample';
-- end: kpi.metric_series

-- upgrade: kpi.engine_health
CREATE OR REPLACE VIEW kpi.engine_health AS
SELECT now() AS "time", 'rollup lag'::text AS "check",
       format('%s rollup #%s', kpi_internal.duration_text(ro.resolution), ro.id) AS item,
       kpi_internal.rollup_behind(ro.resolution, ro.lag, ro.watermark) AS value, 'seconds behind'::text AS unit,
       CASE WHEN ro.watermark IS NULL THEN 'not run yet'
            WHEN kpi_internal.rollup_behind(ro.resolution, ro.lag, ro.watermark) > 600 THEN 'behind'
            ELSE 'ok' END AS status
FROM kpi.rollups ro
UNION ALL
SELECT now(), 'job failures last hour', j.kind, count(r.*) FILTER (WHERE r.status = 'failed')::float8, 'runs',
       CASE WHEN count(r.*) FILTER (WHERE r.status = 'failed') > 0 THEN 'failing' ELSE 'ok' END
FROM kpi.jobs j LEFT JOIN kpi.job_runs r ON r.job_id = j.id AND r.started_at > now() - interval '1 hour'
GROUP BY j.kind
UNION ALL
SELECT now(), 'delivery backlog', d.receiver, d.pending::float8, 'notifications',
       CASE WHEN d.oldest_undelivered_age > interval '5 minutes' THEN 'behind' ELSE 'ok' END
FROM kpi.delivery_status d;
COMMENT ON VIEW kpi.engine_health IS
    'pg_kpi''s own health, one row per check: rollup lag per rollup (seconds behind the last bucket it could have materialized), job failures of the last hour per job kind, delivery backlog per receiver';
COMMENT ON COLUMN kpi.engine_health."time" IS 'now(): when the row was computed';
COMMENT ON COLUMN kpi.engine_health."check" IS 'rollup lag, job failures last hour or delivery backlog';
COMMENT ON COLUMN kpi.engine_health.item IS 'The rollup, job kind or receiver checked';
COMMENT ON COLUMN kpi.engine_health.value IS 'Seconds behind the last bucket the rollup could have materialized (behind after 600), failed runs, or pending notifications';
COMMENT ON COLUMN kpi.engine_health.unit IS 'The unit of value';
COMMENT ON COLUMN kpi.engine_health.status IS 'ok, behind, failing or not run yet';
-- end: kpi.engine_health

-- upgrade: chart comments
COMMENT ON FUNCTION kpi_internal.metric_chart_svg_of(float8, float8, float8, float8[], float8[], float8[], float8, float8, boolean, integer, integer) IS
    'Internal: release 0.1.0''s chart of kpi.html_report (p50 and p95 over time, a band from warning to critical and one beyond), drawn by plotters';
COMMENT ON FUNCTION kpi_internal.severity_chart_svg(float8, float8, float8, float8[], float8[], float8[], float8, float8, float8, float8, boolean, integer, integer) IS
    'Internal: the SVG chart of kpi.html_report: p50 and p95 over time with the warning, critical and emergency bands of kpi.severity for the thresholds, drawn by plotters';
-- end: chart comments
