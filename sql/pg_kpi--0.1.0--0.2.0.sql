-- pg_kpi 0.1.0 -> 0.2.0. Every change to the extension's SQL after the 0.1.0
-- release (git tag v0.1.0, install script frozen in sql/pg_kpi--0.1.0.sql)
-- goes here too, so that ALTER EXTENSION pg_kpi UPDATE gives the same schema
-- as a fresh install (tests/integration/test_upgrade.py compares them).
-- Released upgrade scripts are never edited. This one is not released yet
-- (0.2.0 is "Unreleased" in CHANGELOG.md): it grows with each change until
-- 0.2.0 is tagged, and is frozen from then on.
\echo Use "ALTER EXTENSION pg_kpi UPDATE TO '0.2.0'" to load this file. \quit

-- An sql job runs its command as its owner (kpi_internal.run_sql_as, a
-- security-restricted operation), no longer as the job worker's role: only a
-- member of the owner may make or change such a job.
ALTER TABLE kpi.jobs ADD COLUMN owner name NOT NULL DEFAULT current_user;
COMMENT ON COLUMN kpi.jobs.owner IS 'The role an sql job''s command runs as (the creator by default; only its members may change the command or the owner)';

-- run_sql_as: see the Rust functions below
CREATE FUNCTION kpi_internal.check_job_owner(owner name, what text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles r WHERE r.rolname = owner) THEN
        RAISE EXCEPTION 'kpi.jobs: the owner % is not a role', quote_ident(owner) USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT pg_has_role(current_user, owner, 'MEMBER') THEN
        RAISE EXCEPTION 'kpi.jobs: % may not %', current_user, what
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('An sql job runs its command as its owner (%s).', quote_ident(owner)),
                  HINT = format('Only a member of %s may do this; your own jobs are owned by you.', quote_ident(owner));
    END IF;
END
$$;
COMMENT ON FUNCTION kpi_internal.check_job_owner(name, text) IS
    'Internal: raises 42501 unless the current user is a member of a job''s owner';

CREATE OR REPLACE FUNCTION kpi_internal.jobs_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- a new row's rollup or retention policy is not checked: kpi.add_rollup and
    -- kpi.add_retention make them together, and pg_restore loads kpi.jobs before the
    -- tables that reference it (their job_id keys); an UPDATE must name an existing one
    IF TG_OP = 'INSERT' OR NEW.kind IS DISTINCT FROM OLD.kind OR NEW.config IS DISTINCT FROM OLD.config THEN
        PERFORM kpi_internal.check_job(NEW.kind, NEW.config, refs => TG_OP = 'UPDATE');
        IF TG_OP = 'UPDATE' AND 'sql' IN (OLD.kind, NEW.kind) THEN
            PERFORM kpi_internal.check_job_owner(OLD.owner, format('change the command of job %s', OLD.id));
        END IF;
    END IF;
    IF TG_OP = 'INSERT' OR NEW.owner IS DISTINCT FROM OLD.owner THEN
        PERFORM kpi_internal.check_job_owner(NEW.owner, format('make %s the owner of a job', quote_ident(NEW.owner)));
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
DROP TRIGGER jobs_check ON kpi.jobs;
CREATE TRIGGER jobs_check BEFORE INSERT OR UPDATE OF kind, config, schedule_cron, schedule_timezone, owner ON kpi.jobs
    FOR EACH ROW EXECUTE FUNCTION kpi_internal.jobs_check();

CREATE OR REPLACE FUNCTION kpi_internal.execute_job(j kpi.jobs, OUT rows bigint, OUT buckets bigint, OUT more boolean)
LANGUAGE plpgsql AS $$
DECLARE
    fn regprocedure := (SELECT k.run FROM kpi.job_kinds k WHERE k.kind = j.kind);
BEGIN
    -- the running job's id, for kinds that record it (pg_kpi.job_id, local to the transaction)
    PERFORM set_config('pg_kpi.job_id', j.id::text, true);
    -- the role an sql job's command runs as
    PERFORM set_config('pg_kpi.job_owner', j.owner, true);
    EXECUTE format('SELECT r.rows, r.buckets, r.more FROM %s($1) r', fn::regproc)
        INTO rows, buckets, more USING j.config;
    rows := coalesce(rows, 0);
    buckets := coalesce(buckets, 0);
    more := coalesce(more, false);
END
$$;

CREATE OR REPLACE FUNCTION kpi_internal.run_sql_job(config jsonb, OUT rows bigint, OUT buckets bigint, OUT more boolean)
LANGUAGE plpgsql AS $$
BEGIN
    rows := kpi_internal.run_sql_as(
        coalesce(nullif(current_setting('pg_kpi.job_owner', true), ''), current_user), config->>'command');
    buckets := 0; more := false;
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

-- upgrade: kpi.refresh(
CREATE OR REPLACE FUNCTION kpi.refresh(rollup_id bigint, from_ts timestamptz, to_ts timestamptz) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r kpi.rollups;
    budget bigint := coalesce(nullif(current_setting('kpi.rollup_batch_buckets', true), ''), '1440')::bigint;
    lo timestamptz;
    hi timestamptz;
    a timestamptz;
    b timestamptz;
    nxt timestamptz;
    total bigint;
    done bigint := 0;
    nrows bigint := 0;
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL THEN
        RAISE EXCEPTION 'kpi.refresh: from and to must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF from_ts > to_ts THEN
        RAISE EXCEPTION 'kpi.refresh: from (%) is after to (%)', from_ts, to_ts USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO r FROM kpi.rollups WHERE id = rollup_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'kpi.refresh: no rollup with id %', coalesce(rollup_id::text, 'NULL') USING ERRCODE = 'undefined_object';
    END IF;
    lo := greatest(kpi.bucket(r.resolution, greatest(from_ts, '1900-01-01'::timestamptz)),
                   kpi_internal.ceil_bucket(r.resolution, kpi_internal.source_horizon(r)));
    hi := least(to_ts, kpi_internal.cutoff(r));
    IF hi > kpi.bucket(r.resolution, hi) THEN
        hi := kpi.bucket(r.resolution, hi) + r.resolution;
    END IF;
    hi := least(hi, kpi_internal.cutoff(r));
    IF hi IS NULL OR lo >= hi THEN
        RAISE NOTICE 'kpi.refresh: nothing to refresh in rollup % between % and % (complete buckets end at %)',
            r.id, from_ts, to_ts, kpi_internal.cutoff(r);
        RETURN 0;
    END IF;
    total := ceil(extract(epoch FROM hi - lo) / extract(epoch FROM r.resolution));
    a := lo;
    WHILE a < hi LOOP
        -- stretches without source rows or summaries have nothing to recompute
        nxt := kpi_internal.next_data(r, a, hi);
        EXIT WHEN nxt IS NULL;
        a := greatest(a, nxt);
        b := least(hi, a + r.resolution * budget);
        nrows := nrows + kpi_internal.materialize(r, a, b);
        done := least(total, ceil(extract(epoch FROM b - lo) / extract(epoch FROM r.resolution))::bigint);
        a := b;
        IF total > budget AND a < hi THEN
            RAISE NOTICE 'kpi.refresh: rollup %: % of % buckets (up to %)', r.id, done, total, a;
        END IF;
    END LOOP;
    IF r.watermark IS NOT NULL AND lo <= r.watermark AND hi > r.watermark THEN
        UPDATE kpi.rollups SET watermark = hi WHERE id = r.id;
    END IF;
    IF nrows = 0 THEN
        RAISE NOTICE 'kpi.refresh: rollup % has no data between % and %; no summary was written', r.id, lo, hi
            USING HINT = 'The rollup covers metrics LIKE ' || quote_literal(r.metrics) || '; check the range and the metric names.';
    END IF;
    RETURN nrows;
END
$$;
COMMENT ON FUNCTION kpi.refresh(bigint, timestamptz, timestamptz) IS
    'Rematerializes the complete buckets of a rollup between from and to (backfill); returns the number of summary rows written (one per bucket and series with data)';
-- end: kpi.refresh(

-- upgrade: kpi_internal.check_period(func text, "from" anyelement
CREATE OR REPLACE FUNCTION kpi_internal.check_period(func text, "from" anyelement, "to" anyelement) RETURNS void
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
-- end: kpi_internal.check_period(func text, "from" anyelement

-- upgrade: kpi.mrr_movements(
CREATE OR REPLACE FUNCTION kpi.mrr_movements("from" date, "to" date, currency text DEFAULT NULL,
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
-- end: kpi.mrr_movements(

-- upgrade: kpi_internal.check_job_limits(
CREATE OR REPLACE FUNCTION kpi_internal.check_job_limits(func text, max_runtime interval, max_retries integer,
                                              retry_period interval) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF max_runtime IS NOT NULL AND max_runtime <= interval '0' THEN
        RAISE EXCEPTION '%: max_runtime must be a positive interval (or NULL for no limit), got %', func, max_runtime
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_retries IS NOT NULL AND max_retries < 0 THEN
        RAISE EXCEPTION '%: max_retries must be 0 or more (or NULL to retry forever), got %', func, max_retries
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF retry_period IS NOT NULL AND retry_period <= interval '0' THEN
        RAISE EXCEPTION '%: retry_period must be a positive interval, got %', func, retry_period
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;
COMMENT ON FUNCTION kpi_internal.check_job_limits(text, interval, integer, interval) IS
    'Internal: 22023 naming the argument for a non-positive max_runtime or retry_period or a negative max_retries';
-- end: kpi_internal.check_job_limits(

-- upgrade: kpi.add_job(
CREATE OR REPLACE FUNCTION kpi.add_job(
    kind text, config jsonb, schedule_interval interval DEFAULT NULL,
    max_runtime interval DEFAULT NULL, max_retries integer DEFAULT 10,
    retry_period interval DEFAULT '1 minute', next_run timestamptz DEFAULT NULL,
    schedule_cron text DEFAULT NULL, schedule_timezone text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    jid bigint;
    tz text;
BEGIN
    tz := kpi_internal.check_job_schedule('kpi.add_job', schedule_interval, schedule_cron, schedule_timezone);
    PERFORM kpi_internal.check_job_limits('kpi.add_job', max_runtime, max_retries, retry_period);
    PERFORM kpi_internal.check_job(kind, config);
    INSERT INTO kpi.jobs (kind, config, schedule_interval, schedule_cron, schedule_timezone, max_runtime, max_retries,
                          retry_period, next_run)
    VALUES (kind, config, schedule_interval, schedule_cron, tz, max_runtime, max_retries,
            coalesce(retry_period, interval '1 minute'),
            -- an interval job runs at once, a cron job at its first time
            coalesce(next_run, CASE WHEN schedule_cron IS NULL THEN now() ELSE kpi.cron_next(schedule_cron, now(), tz) END))
    RETURNING id INTO jid;
    RETURN jid;
END
$$;
COMMENT ON FUNCTION kpi.add_job(text, jsonb, interval, interval, integer, interval, timestamptz, text, text) IS
    'Adds a job run every schedule_interval (first now) or at the times of the cron expression schedule_cron in schedule_timezone (default: the session''s TimeZone). Kind sql: config {"command": "..."}; report: a report snapshot; rollup and retention jobs are created by kpi.add_rollup and kpi.add_retention';
-- end: kpi.add_job(

-- upgrade: kpi.alter_job(
CREATE OR REPLACE FUNCTION kpi.alter_job(
    job_id bigint, schedule_interval interval DEFAULT NULL, next_run timestamptz DEFAULT NULL,
    max_runtime interval DEFAULT NULL, max_retries integer DEFAULT NULL,
    retry_period interval DEFAULT NULL, config jsonb DEFAULT NULL, enabled boolean DEFAULT NULL,
    schedule_cron text DEFAULT NULL, schedule_timezone text DEFAULT NULL)
RETURNS kpi.jobs
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j kpi.jobs := kpi_internal.job_or_fail('kpi.alter_job', job_id);
    new_interval interval := j.schedule_interval;
    new_cron text := j.schedule_cron;
    new_tz text := j.schedule_timezone;
BEGIN
    -- a new interval replaces a cron schedule and the other way round; a new
    -- time zone alone keeps the cron expression
    IF schedule_interval IS NOT NULL AND schedule_cron IS NOT NULL THEN
        RAISE EXCEPTION 'kpi.alter_job: give schedule_interval or schedule_cron, not both' USING ERRCODE = 'invalid_parameter_value';
    ELSIF schedule_interval IS NOT NULL THEN
        new_interval := schedule_interval; new_cron := NULL; new_tz := NULL;
    ELSIF schedule_cron IS NOT NULL THEN
        new_interval := NULL; new_cron := schedule_cron; new_tz := coalesce(schedule_timezone, new_tz);
    ELSIF schedule_timezone IS NOT NULL THEN
        IF new_cron IS NULL THEN
            RAISE EXCEPTION 'kpi.alter_job: job % runs every %; schedule_timezone applies to schedule_cron only', job_id, new_interval
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        new_tz := schedule_timezone;
    END IF;
    new_tz := kpi_internal.check_job_schedule('kpi.alter_job', new_interval, new_cron, new_tz);
    PERFORM kpi_internal.check_job_limits('kpi.alter_job', max_runtime, max_retries, retry_period);
    IF config IS NOT NULL AND config IS DISTINCT FROM j.config
       AND (SELECT k.managed FROM kpi.job_kinds k WHERE k.kind = j.kind) THEN
        RAISE EXCEPTION 'kpi.alter_job: the config of a % job is managed by pg_kpi', j.kind USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Drop and re-add what created the job (a rollup or a retention policy) instead.';
    END IF;
    UPDATE kpi.jobs AS t SET
        schedule_interval = new_interval,
        schedule_cron = new_cron,
        schedule_timezone = new_tz,
        -- a new cron schedule or time zone moves the next run to its first time
        next_run = coalesce(alter_job.next_run,
                            CASE WHEN new_cron IS NOT NULL AND (new_cron, new_tz) IS DISTINCT FROM (t.schedule_cron, t.schedule_timezone)
                                 THEN kpi.cron_next(new_cron, now(), new_tz)
                                 WHEN new_cron IS NULL AND t.schedule_cron IS NOT NULL
                                 THEN least(t.next_run, now() + new_interval)
                                 ELSE t.next_run END),
        max_runtime = coalesce(alter_job.max_runtime, t.max_runtime),
        max_retries = coalesce(alter_job.max_retries, t.max_retries),
        retry_period = coalesce(alter_job.retry_period, t.retry_period),
        config = coalesce(alter_job.config, t.config),
        enabled = coalesce(alter_job.enabled, t.enabled)
    WHERE t.id = job_id
    RETURNING * INTO j;
    RETURN j;
END
$$;
COMMENT ON FUNCTION kpi.alter_job(bigint, interval, timestamptz, interval, integer, interval, jsonb, boolean, text, text) IS
    'Changes the given settings of a job; NULL arguments keep the current value. A schedule_interval replaces a cron schedule and a schedule_cron an interval; a new cron schedule or time zone moves next_run to its first time, a new interval to at most one interval from now';
-- end: kpi.alter_job(

-- upgrade: kpi_internal.apply_incidents(
CREATE OR REPLACE FUNCTION kpi_internal.apply_incidents(incidents kpi_internal.alert_incident[], source text DEFAULT 'threshold')
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    earlier text[];
    heads text[];
    merged text[];
    notes bigint;
    more bigint;
    todo text[];
    opened text[];
    folded text[];
BEGIN
    IF incidents IS NULL OR cardinality(incidents) = 0 THEN
        RETURN 0;
    END IF;
    -- One transaction-level advisory lock per fingerprint, taken in one global
    -- order before any row is locked or inserted: concurrent writers about the
    -- same series take turns, and no two can wait on each other's row locks
    -- and uncommitted inserts in opposite orders (a deadlock that lost alerts).
    PERFORM pg_advisory_xact_lock(7041129, x.k)
    FROM (SELECT DISTINCT hashtext(f.fingerprint) AS k FROM unnest(incidents) f ORDER BY 1) x;
    -- Incidents that end, cooldown included, before the open alert of their
    -- fingerprint started are over (late rows about an earlier time): they
    -- are stored as resolved and the open alert is left alone. The first of
    -- the others ("head", per fingerprint) may fold into the open alert.
    SELECT coalesce(array_agg(f.seq || ':' || f.fingerprint)
                        FILTER (WHERE o.started_at IS NOT NULL AND f.last_ts + f.cooldown < o.started_at), '{}')
    INTO earlier
    FROM unnest(incidents) f
    LEFT JOIN kpi.alerts o ON o.fingerprint = f.fingerprint AND o.state <> 'resolved';
    SELECT coalesce(array_agg(h.key), '{}') INTO heads
    FROM (SELECT min(f.seq) || ':' || f.fingerprint AS key
          FROM unnest(incidents) f
          WHERE NOT (f.seq || ':' || f.fingerprint = ANY (earlier))
          GROUP BY f.fingerprint) h;
    -- Fold each fingerprint's first incident into its open alert when it starts
    -- within the cooldown of the alert's last breach; otherwise the open alert
    -- is over and is resolved. Open alerts are locked first, so concurrent
    -- writers take turns per fingerprint.
    WITH m AS (
        SELECT a.id, a.severity AS old_severity, f.*,
               f.first_ts <= a.last_seen_at + f.cooldown AS merge
        FROM unnest(incidents) f
        JOIN kpi.alerts a ON a.fingerprint = f.fingerprint AND a.state <> 'resolved'
        WHERE f.seq || ':' || f.fingerprint = ANY (heads)
        ORDER BY f.metric, f.labels  -- the order every statement locks and inserts in
        FOR UPDATE OF a
    ), upd AS (
        UPDATE kpi.alerts a SET
            occurrences = CASE WHEN m.merge THEN least(a.occurrences::bigint + m.n, 2147483647)::integer
                               ELSE a.occurrences END,
            started_at = CASE WHEN m.merge THEN least(a.started_at, m.first_ts) ELSE a.started_at END,
            last_seen_at = CASE WHEN m.merge THEN greatest(a.last_seen_at, m.last_ts) ELSE a.last_seen_at END,
            severity = CASE WHEN m.merge THEN greatest(a.severity, m.severity) ELSE a.severity END,
            value = CASE WHEN m.merge AND m.severity > a.severity THEN m.value ELSE a.value END,
            threshold = CASE WHEN m.merge AND m.severity > a.severity THEN m.threshold ELSE a.threshold END,
            message = CASE WHEN m.merge AND m.severity > a.severity THEN m.message ELSE a.message END,
            recommendations = CASE WHEN m.merge AND m.severity > a.severity THEN m.recommendations
                                   ELSE a.recommendations END,
            state = CASE WHEN m.merge AND m.is_last THEN a.state ELSE 'resolved' END,
            resolved_at = CASE WHEN m.merge AND m.is_last THEN NULL
                               WHEN m.merge THEN greatest(a.last_seen_at, m.last_ts) + m.cooldown
                               ELSE a.last_seen_at + m.cooldown END
        FROM m
        WHERE a.id = m.id
        RETURNING a AS alert, a.fingerprint, m.seq, a.state, a.severity, m.merge, m.old_severity
    )
    SELECT coalesce(array_agg(u.seq || ':' || u.fingerprint) FILTER (WHERE u.merge), '{}'),
           count(kpi_internal.notify_alert(u.alert)) FILTER (WHERE u.state = 'resolved' OR u.severity > u.old_severity)
    INTO merged, notes
    FROM upd u;

    -- Every other incident becomes an alert: earlier ones already resolved,
    -- the last one firing. A concurrent session may have opened the same
    -- fingerprint meanwhile (the INSERT waits for it): then this incident
    -- folds into that alert like a head above, notifying only an escalation,
    -- never the alert's firing a second time. Should that alert be resolved
    -- in between, the incident is inserted again (a few rounds at most).
    todo := ARRAY(SELECT f.seq || ':' || f.fingerprint FROM unnest(incidents) f
                  WHERE NOT (f.seq || ':' || f.fingerprint = ANY (merged)));
    more := 0;
    FOR attempt IN 1..5 LOOP
        EXIT WHEN cardinality(todo) = 0;
        WITH ins AS (
            INSERT INTO kpi.alerts AS a (fingerprint, source, metric, labels, severity, state, value, threshold,
                                         occurrences, message, recommendations, started_at, last_seen_at, resolved_at)
            SELECT i.fingerprint, apply_incidents.source, i.metric, i.labels, i.severity,
                   CASE WHEN i.is_last AND NOT i.earlier THEN 'firing' ELSE 'resolved' END,
                   i.value, i.threshold, least(i.n, 2147483647)::integer, i.message, i.recommendations,
                   i.first_ts, i.last_ts, CASE WHEN i.is_last AND NOT i.earlier THEN NULL ELSE i.last_ts + i.cooldown END
            FROM (SELECT f.*, f.seq || ':' || f.fingerprint = ANY (earlier) AS earlier,
                         f.seq || ':' || f.fingerprint AS key
                  FROM unnest(incidents) f) i
            WHERE i.key = ANY (todo)
            ORDER BY i.metric, i.labels
            ON CONFLICT (fingerprint) WHERE state <> 'resolved' DO NOTHING
            RETURNING a AS alert, a.state, a.fingerprint
        )
        SELECT more + count(kpi_internal.notify_alert(ins.alert)) FILTER (WHERE ins.state <> 'resolved'),
               coalesce(array_agg(ins.fingerprint) FILTER (WHERE ins.state <> 'resolved'), '{}')
        INTO more, opened
        FROM ins;
        -- the firing incidents that met an open alert of another session
        todo := ARRAY(SELECT f.seq || ':' || f.fingerprint FROM unnest(incidents) f
                      WHERE f.seq || ':' || f.fingerprint = ANY (todo) AND f.is_last
                        AND NOT (f.seq || ':' || f.fingerprint = ANY (earlier))
                        AND NOT (f.fingerprint = ANY (opened)));
        EXIT WHEN cardinality(todo) = 0;
        WITH m AS (
            SELECT a.id, a.severity AS old_severity, f.*
            FROM unnest(incidents) f
            JOIN kpi.alerts a ON a.fingerprint = f.fingerprint AND a.state <> 'resolved'
            WHERE f.seq || ':' || f.fingerprint = ANY (todo)
            ORDER BY f.metric, f.labels
            FOR UPDATE OF a
        ), upd AS (
            UPDATE kpi.alerts a SET
                occurrences = least(a.occurrences::bigint + m.n, 2147483647)::integer,
                started_at = least(a.started_at, m.first_ts),
                last_seen_at = greatest(a.last_seen_at, m.last_ts),
                severity = greatest(a.severity, m.severity),
                value = CASE WHEN m.severity > a.severity THEN m.value ELSE a.value END,
                threshold = CASE WHEN m.severity > a.severity THEN m.threshold ELSE a.threshold END,
                message = CASE WHEN m.severity > a.severity THEN m.message ELSE a.message END,
                recommendations = CASE WHEN m.severity > a.severity THEN m.recommendations ELSE a.recommendations END
            FROM m
            WHERE a.id = m.id
            RETURNING a AS alert, a.severity, m.old_severity, m.seq || ':' || m.fingerprint AS key
        )
        SELECT more + count(kpi_internal.notify_alert(u.alert)) FILTER (WHERE u.severity > u.old_severity),
               coalesce(array_agg(u.key), '{}')
        INTO more, folded
        FROM upd u;
        -- an incident whose open alert was resolved in between: insert it again
        todo := ARRAY(SELECT k FROM unnest(todo) k WHERE NOT (k = ANY (folded)));
    END LOOP;
    RETURN notes + more;
END
$fn$;
COMMENT ON FUNCTION kpi_internal.apply_incidents(kpi_internal.alert_incident[], text) IS
    'Internal: folds incidents into kpi.alerts (cooldown, escalation, resolution, NOTIFY); the single entry point of every alert source';
-- end: kpi_internal.apply_incidents(

-- upgrade: kpi_internal.run_sql_as (Rust)
CREATE  FUNCTION kpi_internal."run_sql_as"(
	"owner" TEXT, /* & str */
	"command" TEXT /* & str */
) RETURNS bigint /* i64 */
STRICT VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'run_sql_as_wrapper';
COMMENT ON FUNCTION kpi_internal.run_sql_as(text, text) IS
    'Internal: runs an sql job''s command as its owner in a security-restricted operation (no SET ROLE back); returns the rows processed';
-- end: kpi_internal.run_sql_as (Rust)
