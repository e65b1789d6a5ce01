-- BI and observability (first part): time series for Grafana's PostgreSQL
-- data source, Metabase and Superset, read from the coarsest rollup that
-- still gives the asked number of points.

-- About `points` buckets of one metric (one series, or all of them) over
-- [from, to): the bucket is the range / points rounded up to a whole
-- multiple of the coarsest covering rollup resolution no wider than it, so
-- summaries regroup exactly (raw rows only above the watermark); buckets are
-- aligned to the epoch like kpi.bucket, so panels of different ranges agree.
CREATE FUNCTION kpi_internal.timeseries(m text, "from" timestamptz, "to" timestamptz, points integer, tags jsonb)
RETURNS TABLE (bk timestamptz, n bigint, mean float8, p50 float8, p95 float8, p99 float8, lo float8, hi float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    width float8;
    res interval;
    step interval;
BEGIN
    IF m IS NULL OR "from" IS NULL OR "to" IS NULL OR points IS NULL THEN
        RAISE EXCEPTION 'kpi.timeseries: metric, from, to and points must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT isfinite("from") OR NOT isfinite("to") THEN
        RAISE EXCEPTION 'kpi.timeseries: "from" and "to" must be finite, got % to %', "from", "to"
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF "from" >= "to" THEN
        RAISE EXCEPTION 'kpi.timeseries: "from" (%) is not before "to" (%)', "from", "to"
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF points <= 0 THEN
        RAISE EXCEPTION 'kpi.timeseries: points must be positive, got %', points USING ERRCODE = 'invalid_parameter_value',
            HINT = 'About 500 points fill a wide panel; more than 10000 are capped to 10000.';
    END IF;
    IF tags IS NULL OR jsonb_typeof(tags) <> 'object' THEN
        RAISE EXCEPTION 'kpi.timeseries: tags must be a JSON object, got %', coalesce(tags::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM kpi_internal.check_metric('kpi.timeseries', m);
    PERFORM kpi_internal.note_expired('kpi.timeseries', "from");
    -- at least 1 second, at most 10000 points
    width := greatest(1, extract(epoch FROM "to" - "from")::float8 / least(points, 10000));
    -- the coarsest rollup of this grouping that covers the metric and is no wider than a bucket
    SELECT ro.resolution INTO res
    FROM kpi.rollups ro
    WHERE ro.group_by_tags = ARRAY(SELECT k FROM jsonb_object_keys(tags) k ORDER BY k)
      AND ro.watermark IS NOT NULL AND m LIKE ro.metrics AND extract(epoch FROM ro.resolution) <= width
    ORDER BY ro.resolution DESC LIMIT 1;
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

CREATE FUNCTION kpi.timeseries(metric text, "from" timestamptz, "to" timestamptz, points integer DEFAULT 500,
                               tags jsonb DEFAULT '{}')
RETURNS TABLE ("time" timestamptz, metric text, series jsonb, count bigint, avg float8, p50 float8, p95 float8,
               p99 float8, min float8, max float8)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
    SELECT x.bk, $1, $5, x.n, x.mean, x.p50, x.p95, x.p99, x.lo, x.hi FROM kpi_internal.timeseries($1, $2, $3, $4, $5) x
$$;
COMMENT ON FUNCTION kpi.timeseries(text, timestamptz, timestamptz, integer, jsonb) IS
    'About points buckets (at most 10000) of a metric over [from, to) for BI panels: time, metric, series, count, avg, p50, p95, p99, min, max, read from the coarsest rollup no wider than a bucket (summaries below the watermark, raw rows above); buckets start at the one holding "from"';

-- Prometheus text exposition format: a label value with \, " and newlines escaped.
-- (These three have no SET clause so that they inline: the exposition of
-- 10,000 alerts calls them 60,000 times; they use only pg_catalog functions,
-- which the search path always finds first.)
CREATE FUNCTION kpi_internal.prom_label(v text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT '"' || replace(replace(replace(v, E'\\', E'\\\\'), '"', E'\\"'), E'\n', E'\\n') || '"'
$$;
COMMENT ON FUNCTION kpi_internal.prom_label(text) IS 'Internal: a Prometheus label value, quoted and escaped';

-- a label name Prometheus accepts: [a-zA-Z_][a-zA-Z0-9_]*, other characters as _
CREATE FUNCTION kpi_internal.prom_label_name(n text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN x ~ '^[0-9]' THEN '_' || x ELSE x END
    FROM (SELECT regexp_replace(n, '[^a-zA-Z0-9_]', '_', 'g') AS x) y
$$;
COMMENT ON FUNCTION kpi_internal.prom_label_name(text) IS 'Internal: a Prometheus label name (invalid characters as _)';

-- a sample value: finite numbers as they are, NaN and infinities as Prometheus writes them
CREATE FUNCTION kpi_internal.prom_value(v float8) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN v IS NULL OR v = 'NaN' THEN 'NaN' WHEN v = 'Infinity' THEN '+Inf' WHEN v = '-Infinity' THEN '-Inf'
                ELSE v::text END
$$;
COMMENT ON FUNCTION kpi_internal.prom_value(float8) IS 'Internal: a Prometheus sample value';

-- Every active metric's last measurement window as a Prometheus summary
-- (quantiles 0.5, 0.95, 0.99, sum and count) and its mean as a gauge, the
-- open alerts as ALERTS{alertstate=...}, and pg_kpi's own health, in the
-- text exposition format (for a scrape through postgres_exporter or a file).
CREATE FUNCTION kpi.prometheus_metrics(at timestamptz DEFAULT now()) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    out text;
BEGIN
    IF at IS NULL OR NOT isfinite(at) THEN
        RAISE EXCEPTION 'kpi.prometheus_metrics: at must be a finite time, got %', coalesce(at::text, 'NULL')
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
                   (SELECT string_agg(kpi_internal.prom_label_name(l.key) || '=' || kpi_internal.prom_label(l.value), ',' ORDER BY l.key)
                    FROM jsonb_each_text(a.labels) l
                    WHERE kpi_internal.prom_label_name(l.key) NOT IN ('alertname', 'alertstate', 'severity', 'metric'))) || '} 1'
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
    )
    SELECT string_agg(l.line, E'\n' ORDER BY l.part, l.k, l.o) || E'\n' INTO out FROM lines l;
    RETURN out;
END
$$;
COMMENT ON FUNCTION kpi.prometheus_metrics(timestamptz) IS
    'Prometheus text exposition: each active metric over its measurement window as a summary (quantiles, sum, count) and a mean gauge, open alerts as ALERTS{alertstate}, and pg_kpi''s health (rollup lag, job runs, rows ingested, undelivered notifications); label values escaped';
