-- Reports (first part of the reports feature): kpi.sparkline (src/reports.rs),
-- kpi.report (a compact per-bucket table for psql) and kpi.metric_trend (the
-- replaced analytics service's trend endpoint). Both read summaries when a
-- rollup covers the metric (at the coarsest resolution that divides the
-- asked bucket evenly, regrouped exactly) and raw rows otherwise, through
-- kpi_internal.series_buckets; their rows are whole buckets.

-- The coarsest resolution of a rollup that covers the metric without
-- grouping and divides `target` evenly, or `target` itself (raw rows).
CREATE FUNCTION kpi_internal.report_resolution(metric text, target interval) RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(
        (SELECT ro.resolution FROM kpi.rollups ro
         WHERE ro.group_by_tags = '{}' AND ro.watermark IS NOT NULL AND $1 LIKE ro.metrics
           AND ro.resolution <= $2
           AND extract(epoch FROM $2)::numeric % extract(epoch FROM ro.resolution)::numeric = 0
         ORDER BY ro.resolution DESC LIMIT 1),
        $2)
$$;
COMMENT ON FUNCTION kpi_internal.report_resolution(text, interval) IS
    'Internal: the coarsest covering rollup resolution that divides a report''s bucket evenly (else the bucket itself)';

-- A NOTICE when a report starts before the raw rows' retention horizon:
-- what summaries keep is reported, the raw rows before it are gone.
CREATE FUNCTION kpi_internal.note_expired(func text, from_ts timestamptz) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h timestamptz := (SELECT p.horizon FROM kpi.retention_policies p WHERE p.target = 'metrics');
BEGIN
    IF h IS NOT NULL AND from_ts < h THEN
        RAISE NOTICE '%: raw rows before % have been expired by retention', func, h
            USING HINT = 'Before it, only what rollups keep in kpi.summaries is reported.';
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION kpi_internal.note_expired(text, timestamptz) IS
    'Internal: a NOTICE when a report starts before the raw rows'' retention horizon';

-- A metric argument: not NULL; a NOTICE when nothing is known of it.
CREATE FUNCTION kpi_internal.check_metric(func text, metric text) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF metric IS NULL THEN
        RAISE EXCEPTION '%: metric must not be NULL', func USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM kpi.metric_definitions d WHERE d.metric = check_metric.metric)
       AND NOT EXISTS (SELECT 1 FROM kpi.metrics m WHERE m.metric = check_metric.metric)
       AND NOT EXISTS (SELECT 1 FROM kpi.summaries s WHERE s.metric = check_metric.metric) THEN
        RAISE NOTICE '%: there is no metric "%" (no definition, no rows, no summaries)', func, metric
            USING HINT = 'Check the name for a typo.';
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION kpi_internal.check_metric(text, text) IS 'Internal: checks a metric argument (22004 for NULL, a NOTICE when unknown)';

-- The checks every report makes; returns the first bucket.
CREATE FUNCTION kpi_internal.check_report(func text, metric text, range interval, bucket interval, at timestamptz,
                                          bucket_arg text DEFAULT 'bucket') RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF metric IS NULL OR range IS NULL OR bucket IS NULL OR at IS NULL THEN
        RAISE EXCEPTION '%: % must not be NULL', func,
            CASE WHEN bucket_arg IS NOT NULL THEN format('metric, range, %s and at', bucket_arg)
                 ELSE 'metric, range and at' END
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF at IN ('infinity', '-infinity') THEN
        RAISE EXCEPTION '%: at must be a finite time, got %', func, at USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF range <= interval '0' THEN
        RAISE EXCEPTION '%: range must be positive, got %', func, range USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM kpi_internal.check_resolution(func, bucket_arg, bucket);
    IF extract(epoch FROM range) / extract(epoch FROM bucket) > 100000 THEN
        RAISE EXCEPTION '%: range % holds more than 100000 buckets of %', func, range, bucket
            USING ERRCODE = 'invalid_parameter_value', HINT = format('Use a larger %s.', bucket_arg);
    END IF;
    PERFORM kpi_internal.check_metric(func, metric);
    PERFORM kpi_internal.note_expired(func, at - range);
    RETURN kpi.bucket(bucket, at - range);
END
$$;
COMMENT ON FUNCTION kpi_internal.check_report(text, text, interval, interval, timestamptz, text) IS
    'Internal: checks a report''s arguments (22004, 22023, a NOTICE for an unknown metric) and returns its first bucket; bucket_arg names the bucket argument (NULL: the report has none)';

CREATE FUNCTION kpi.report(metric text, range interval DEFAULT '24 hours', bucket interval DEFAULT '1 hour',
                           at timestamptz DEFAULT now())
RETURNS TABLE (bucket timestamptz, count bigint, p50 numeric, p95 numeric, p99 numeric, spark text,
               severity kpi.severity_level)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    WITH a AS MATERIALIZED (
        SELECT kpi_internal.check_report('kpi.report', $1, $2, $3, $4) AS lo,
               kpi_internal.report_resolution($1, $3) AS res,
               EXISTS (SELECT 1 FROM kpi.metric_definitions d WHERE d.metric = $1 AND d.active) AS defined
    ),
    g AS (
        SELECT kpi.bucket($3, s.bucket) AS bk, sum(s.count)::bigint AS n, kpi.sketch_agg(s.sketch) AS sk
        FROM a, kpi_internal.series_buckets($1, a.res, a.lo, $4) s
        GROUP BY 1
    ),
    p AS (
        SELECT b.bk, coalesce(g.n, 0) AS n, kpi.approx_percentiles(g.sk, ARRAY[0.5, 0.95, 0.99]) AS ps, a.defined
        FROM a CROSS JOIN generate_series(a.lo, $4, $3) b(bk)
        LEFT JOIN g ON g.bk = b.bk
    )
    SELECT p.bk, p.n,
           kpi_internal.format_number(p.ps[1])::numeric, kpi_internal.format_number(p.ps[2])::numeric,
           kpi_internal.format_number(p.ps[3])::numeric,
           kpi_internal.bar(p.ps[2], max(p.ps[2]) OVER (), 10),
           CASE WHEN p.defined AND p.ps[2] IS NOT NULL THEN kpi.severity($1, p.ps[2]) END
    FROM p
    ORDER BY p.bk
$$;
COMMENT ON FUNCTION kpi.report(text, interval, interval, timestamptz) IS
    'A compact table of one metric for psql: per bucket from the one holding at - range, count, p50, p95, p99 (six significant digits), a bar of p95 and its severity';

-- kpi.metric_trend's own arguments (threshold >= 0, 0 < level < 1).
CREATE FUNCTION kpi_internal.check_trend_args(threshold float8, level float8) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF threshold IS NULL OR threshold < 0 OR threshold = 'NaN' THEN
        RAISE EXCEPTION 'kpi.metric_trend: threshold must be a number >= 0, got %', coalesce(threshold::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF level IS NULL OR NOT (level > 0 AND level < 1) THEN
        RAISE EXCEPTION 'kpi.metric_trend: level must be between 0 and 1 (exclusive), got %', coalesce(level::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION kpi_internal.check_trend_args(float8, float8) IS 'Internal: checks kpi.metric_trend''s threshold and level';

CREATE FUNCTION kpi.metric_trend(metric text, range interval DEFAULT '7 days', granularity interval DEFAULT '1 hour',
                                 at timestamptz DEFAULT now(), threshold float8 DEFAULT 0.1, level float8 DEFAULT 0.95)
RETURNS TABLE (metric text, points bigint, direction text, strength float8, slope float8, correlation float8,
               next_bucket timestamptz, next_value float8, next_low float8, next_high float8, spark text)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    WITH a AS MATERIALIZED (
        SELECT kpi_internal.check_report('kpi.metric_trend', $1, $2, $3, $4, 'granularity') AS lo,
               kpi_internal.report_resolution($1, $3) AS res,
               kpi_internal.check_trend_args($5, $6) AS ok
    ),
    g AS (
        SELECT kpi.bucket($3, s.bucket) AS bk, sum(s.sum) / sum(s.count) AS avg
        FROM a, kpi_internal.series_buckets($1, a.res, a.lo, $4) s
        GROUP BY 1
    ),
    t AS (
        SELECT kpi.trend_agg(g.bk, g.avg) AS tr, max(g.bk) + $3 AS nb,
               kpi.sparkline(array_agg(g.avg ORDER BY g.bk)) AS spark
        FROM g
    ),
    f AS (
        -- the change per bucket of granularity
        SELECT t.*, kpi.slope(t.tr) * extract(epoch FROM $3)::float8 AS per_step,
               kpi.prediction_interval(t.tr, t.nb, $6) AS pi
        FROM t, a
    )
    SELECT $1, coalesce(kpi.trend_count(f.tr), 0),
           CASE WHEN f.per_step > $5 THEN 'increasing' WHEN f.per_step < -$5 THEN 'decreasing'
                WHEN f.per_step IS NOT NULL THEN 'stable' END,
           -- six significant digits, as messages show numbers (least squares over
           -- epoch seconds carries noise in the last digits)
           kpi_internal.format_number(abs(f.per_step))::float8, kpi_internal.format_number(f.per_step)::float8,
           kpi_internal.format_number(kpi.correlation(f.tr))::float8, f.nb,
           kpi_internal.format_number(kpi.forecast(f.tr, f.nb))::float8,
           kpi_internal.format_number(f.pi[1])::float8, kpi_internal.format_number(f.pi[2])::float8,
           coalesce(f.spark, '')
    FROM f
$$;
COMMENT ON FUNCTION kpi.metric_trend(text, interval, interval, timestamptz, float8, float8) IS
    'The trend of a metric''s per-bucket means over range: direction (beyond threshold per bucket), strength, slope per bucket, correlation with time, the next bucket''s value with a prediction interval at level (six significant digits), and a sparkline';

COMMENT ON FUNCTION kpi.sparkline(float8[]) IS
    'A sparkline of the values, one Unicode block each from the lowest to the highest; NULL and non-finite values are gaps';
COMMENT ON FUNCTION kpi_internal.bar(float8, float8, integer) IS 'Internal: a bar of value against max, at most width characters, in eighths';

-- The statistics of one metric (all series) over exactly [from_ts, to_ts):
-- the whole buckets inside the range from the coarsest covering rollup
-- (summaries below its watermark), the ends and everything without a
-- rollup from raw rows; counts, sums, extremes and the pooled variance are
-- exact, percentiles come from the merged sketches.
CREATE FUNCTION kpi_internal.range_stats(metric text, from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (count bigint, sum float8, min float8, max float8, mean float8, stddev float8, sketch kpi.sketch,
               trend kpi.trend)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    res interval;
    lo timestamptz;
    hi timestamptz;
BEGIN
    -- the coarsest covering rollup with at least two buckets in the range
    SELECT ro.resolution INTO res
    FROM kpi.rollups ro
    WHERE ro.group_by_tags = '{}' AND ro.watermark IS NOT NULL AND metric LIKE ro.metrics
      AND ro.resolution * 2 <= to_ts - from_ts
    ORDER BY ro.resolution DESC LIMIT 1;
    IF res IS NULL THEN
        lo := to_ts;  -- everything from raw rows
        hi := to_ts;
    ELSE
        lo := kpi_internal.ceil_bucket(res, from_ts);
        hi := greatest(lo, kpi.bucket(res, to_ts));
    END IF;
    -- EXECUTE plans with the values: the raw rows' partitions outside
    -- [from, lo) and [hi, to) are pruned at plan time
    RETURN QUERY EXECUTE $q$
    WITH parts AS (
        SELECT s.count, s.sum, s.avg, s.min, s.max, s.stddev, s.sketch, s.trend
        FROM kpi_internal.series_buckets($1, $6, $4, $5) s
        WHERE $6 IS NOT NULL AND $4 < $5
        UNION ALL
        SELECT count(*), sum(m.value), avg(m.value), min(m.value), max(m.value), stddev_samp(m.value),
               kpi.sketch_agg(m.value), kpi.trend_agg(m.ts, m.value)
        FROM kpi.metrics m
        WHERE m.metric = $1 AND m.ts >= $2 AND m.ts < $4
        UNION ALL
        SELECT count(*), sum(m.value), avg(m.value), min(m.value), max(m.value), stddev_samp(m.value),
               kpi.sketch_agg(m.value), kpi.trend_agg(m.ts, m.value)
        FROM kpi.metrics m
        WHERE m.metric = $1 AND m.ts >= $5 AND m.ts < $3
    ),
    t AS (
        SELECT sum(p.count)::bigint AS n, sum(p.sum) AS s, min(p.min) AS lo, max(p.max) AS hi,
               kpi.sketch_agg(p.sketch) AS sk, kpi.trend_agg(p.trend) AS tr
        FROM parts p WHERE p.count > 0
    )
    SELECT coalesce(t.n, 0), t.s, t.lo, t.hi, t.s / t.n,
           CASE WHEN t.n >= 2 THEN sqrt(greatest(0, (
               SELECT sum((p.count - 1) * coalesce(p.stddev, 0) ^ 2 + p.count * (p.avg - t.s / t.n) ^ 2)
               FROM parts p WHERE p.count > 0) / (t.n - 1))) END,
           t.sk, t.tr
    FROM t
    $q$ USING metric, from_ts, to_ts, lo, hi, res;
END
$fn$;
COMMENT ON FUNCTION kpi_internal.range_stats(text, timestamptz, timestamptz) IS
    'Internal: count, sum, min, max, mean, stddev, sketch and trend of a metric over exactly [from, to), from summaries for whole buckets and raw rows at the ends';

-- A period's bounds: not NULL, finite, from before to.
CREATE FUNCTION kpi_internal.check_period(func text, arg text, from_ts timestamptz, to_ts timestamptz) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL THEN
        RAISE EXCEPTION '%: % bounds must not be NULL', func, arg USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT isfinite(from_ts) OR NOT isfinite(to_ts) THEN
        RAISE EXCEPTION '%: % bounds must be finite, got % to %', func, arg, from_ts, to_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF from_ts >= to_ts THEN
        RAISE EXCEPTION '%: % starts (%) at or after it ends (%)', func, arg, from_ts, to_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN kpi_internal.note_expired(func, from_ts);
END
$$;
COMMENT ON FUNCTION kpi_internal.check_period(text, text, timestamptz, timestamptz) IS 'Internal: checks a period''s bounds (22004, 22023)';

-- alpha in (0, 1)
CREATE FUNCTION kpi_internal.check_alpha(func text, alpha float8) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF alpha IS NULL OR NOT (alpha > 0 AND alpha < 1) THEN
        RAISE EXCEPTION '%: alpha must be between 0 and 1 (exclusive), got %', func, coalesce(alpha::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION kpi_internal.check_alpha(text, float8) IS 'Internal: checks a significance level';

CREATE FUNCTION kpi.metric_summary(metric text, range interval DEFAULT '24 hours', at timestamptz DEFAULT now())
RETURNS TABLE (metric text, from_ts timestamptz, to_ts timestamptz, count bigint, min float8, max float8, mean float8,
               median float8, stddev float8, p95 float8, p99 float8, spark text)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    WITH st AS (
        -- the sparkline's step: about 24 points over the range
        SELECT make_interval(secs => greatest(1, floor(extract(epoch FROM $2) / 24))) AS step
    ),
    a AS MATERIALIZED (
        -- (the step is derived, so there is no bucket argument to name)
        SELECT kpi_internal.check_report('kpi.metric_summary', $1, $2, st.step, $3, NULL) AS lo,
               kpi_internal.report_resolution($1, st.step) AS res, st.step
        FROM st
    ),
    s AS (SELECT x.* FROM a, kpi_internal.range_stats($1, $3 - $2, $3) x),
    sp AS (
        SELECT kpi.sparkline(array_agg(g.avg ORDER BY g.bk)) AS spark
        FROM (SELECT kpi.bucket(a.step, x.bucket) AS bk, sum(x.sum) / sum(x.count) AS avg
              FROM a, kpi_internal.series_buckets($1, a.res, a.lo, $3) x
              GROUP BY 1) g
    )
    SELECT $1, $3 - $2, $3, s.count, s.min, s.max, s.mean, kpi.approx_percentile(s.sketch, 0.5), s.stddev,
           kpi.approx_percentile(s.sketch, 0.95), kpi.approx_percentile(s.sketch, 0.99), coalesce(sp.spark, '')
    FROM s, sp
$$;
COMMENT ON FUNCTION kpi.metric_summary(text, interval, timestamptz) IS
    'The replaced analytics summary endpoint: count, min, max, mean, median, stddev, p95 and p99 of a metric over exactly [at - range, at), and a sparkline of its means';

CREATE FUNCTION kpi.compare_periods(metric text, a_from timestamptz, a_to timestamptz, b_from timestamptz,
                                    b_to timestamptz, alpha float8 DEFAULT 0.05)
RETURNS TABLE (a_count bigint, a_mean float8, a_p95 float8, b_count bigint, b_mean float8, b_p95 float8,
               mean_change float8, mean_change_pct float8, p95_change float8, t float8, df float8, p_value float8,
               significant boolean)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    WITH c AS MATERIALIZED (
        SELECT kpi_internal.check_period('kpi.compare_periods', 'period a', $2, $3)
           AND kpi_internal.check_period('kpi.compare_periods', 'period b', $4, $5)
           AND kpi_internal.check_alpha('kpi.compare_periods', $6)
           AND kpi_internal.check_metric('kpi.compare_periods', $1) AS ok
    ),
    a AS (SELECT x.* FROM c, kpi_internal.range_stats($1, $2, $3) x),
    b AS (SELECT x.* FROM c, kpi_internal.range_stats($1, $4, $5) x),
    w AS (SELECT kpi_internal.welch_test(a.count, a.mean, a.stddev ^ 2, b.count, b.mean, b.stddev ^ 2) AS x,
                 kpi.approx_percentile(a.sketch, 0.95) AS a95, kpi.approx_percentile(b.sketch, 0.95) AS b95, a.*,
                 b.count AS bn, b.mean AS bm
          FROM a, b)
    SELECT w.count, w.mean, w.a95, w.bn, w.bm, w.b95, w.bm - w.mean,
           CASE WHEN w.mean <> 0 THEN (w.bm - w.mean) / abs(w.mean) * 100 END, w.b95 - w.a95,
           w.x[1], w.x[2], w.x[3], w.x[3] < $6
    FROM w
$$;
COMMENT ON FUNCTION kpi.compare_periods(text, timestamptz, timestamptz, timestamptz, timestamptz, float8) IS
    'Compares a metric over two periods: counts, means and p95s, the change from a to b, and Welch''s t-test of the means (significant at alpha)';

CREATE FUNCTION kpi.metric_correlation(a text, b text, range interval DEFAULT '24 hours',
                                       granularity interval DEFAULT '1 hour', at timestamptz DEFAULT now(),
                                       alpha float8 DEFAULT 0.05)
RETURNS kpi.correlation
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    WITH c AS MATERIALIZED (
        SELECT kpi_internal.check_report('kpi.metric_correlation', $1, $3, $4, $5, 'granularity') AS lo,
               kpi_internal.check_report('kpi.metric_correlation', $2, $3, $4, $5, 'granularity') AS lo_b,
               kpi_internal.check_alpha('kpi.metric_correlation', $6) AS ok,
               kpi_internal.report_resolution($1, $4) AS res_a, kpi_internal.report_resolution($2, $4) AS res_b
    ),
    x AS (SELECT kpi.bucket($4, s.bucket) AS bk, sum(s.sum) / sum(s.count) AS v
          FROM c, kpi_internal.series_buckets($1, c.res_a, c.lo, $5) s GROUP BY 1),
    y AS (SELECT kpi.bucket($4, s.bucket) AS bk, sum(s.sum) / sum(s.count) AS v
          FROM c, kpi_internal.series_buckets($2, c.res_b, c.lo, $5) s GROUP BY 1)
    SELECT coalesce(kpi.correlation_test(x.v, y.v, $6), ROW(NULL, 0, NULL, NULL, NULL)::kpi.correlation)
    FROM x JOIN y USING (bk)
$$;
COMMENT ON FUNCTION kpi.metric_correlation(text, text, interval, interval, timestamptz, float8) IS
    'The replaced analytics correlation endpoint: Pearson r of two metrics'' per-bucket means over range, with its t-test (significant at alpha)';

-- The real-time dashboard as one jsonb document (the replaced portal's
-- dashboard): health, open alerts, the key metrics of the last `window`,
-- and pg_kpi's own health. The metric names are arguments (the replaced
-- portal's as defaults).
CREATE FUNCTION kpi.dashboard(at timestamptz DEFAULT now(), "window" interval DEFAULT '5 minutes',
                              response_time text DEFAULT 'api_response_time',
                              throughput text DEFAULT 'throughput_rps',
                              error_rate text DEFAULT 'error_rate',
                              availability text DEFAULT 'system_availability')
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rt record;
    tp record;
    er record;
    av record;
    tp_last float8;
    out jsonb;
BEGIN
    IF at IS NULL OR "window" IS NULL THEN
        RAISE EXCEPTION 'kpi.dashboard: at and window must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT isfinite(at) THEN
        RAISE EXCEPTION 'kpi.dashboard: at must be a finite time, got %', at USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF "window" <= interval '0' THEN
        RAISE EXCEPTION 'kpi.dashboard: window must be positive, got %', "window" USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO rt FROM kpi_internal.range_stats(response_time, at - "window", at);
    SELECT * INTO tp FROM kpi_internal.range_stats(throughput, at - "window", at);
    SELECT * INTO er FROM kpi_internal.range_stats(error_rate, at - "window", at);
    SELECT * INTO av FROM kpi_internal.range_stats(availability, at - "window", at);
    SELECT m.value INTO tp_last FROM kpi.metrics m
    WHERE m.metric = throughput AND m.ts >= at - "window" AND m.ts < at ORDER BY m.ts DESC LIMIT 1;
    -- one pass over the open alerts for the counts
    WITH open_alerts AS MATERIALIZED (
        SELECT a.severity::text AS severity, a.source, count(*) AS n FROM kpi.alerts a
        WHERE a.state = 'firing' GROUP BY 1, 2
    )
    SELECT jsonb_build_object(
        'at', at,
        'window', "window",
        'health', (SELECT jsonb_build_object('status', h.status, 'score', h.score, 'samples', h.samples)
                   FROM kpi.health("window", at) h WHERE h.metric IS NULL),
        'alerts', jsonb_build_object(
            'open', (SELECT coalesce(sum(x.n), 0) FROM open_alerts x),
            'by_severity', coalesce((SELECT jsonb_object_agg(x.severity, x.n)
                                     FROM (SELECT o.severity, sum(o.n) AS n FROM open_alerts o GROUP BY 1) x), '{}'),
            'by_source', coalesce((SELECT jsonb_object_agg(x.source, x.n)
                                   FROM (SELECT o.source, sum(o.n) AS n FROM open_alerts o GROUP BY 1) x), '{}'),
            'worst', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                   'id', w.id, 'severity', w.severity, 'metric', w.metric, 'source', w.source,
                                   'rule', (SELECT r.name FROM kpi.alert_rules r WHERE r.id = w.rule_id),
                                   'labels', w.labels, 'message', w.message, 'started_at', w.started_at,
                                   'acknowledged', w.acknowledged_at IS NOT NULL,
                                   'silenced', kpi_internal.silenced(w)) ORDER BY w.severity DESC, w.started_at)
                               FROM (SELECT a.* FROM kpi.alerts a WHERE a.state = 'firing'
                                     ORDER BY a.severity DESC, a.started_at LIMIT 10) w), '[]')),
        'metrics', jsonb_build_object(
            'response_time', jsonb_build_object('metric', response_time, 'count', rt.count, 'avg', rt.mean,
                                                'p95', kpi.approx_percentile(rt.sketch, 0.95)),
            'throughput', jsonb_build_object('metric', throughput, 'count', tp.count, 'current', tp_last,
                                             'peak', tp.max, 'avg', tp.mean),
            'error_rate', jsonb_build_object('metric', error_rate, 'count', er.count, 'avg', er.mean, 'max', er.max),
            'availability', jsonb_build_object('metric', availability, 'count', av.count, 'avg', av.mean,
                                               'min', av.min)),
        'pg_kpi', jsonb_build_object(
            -- rows of the defined metrics (one index probe each: kpi.metrics has no index on ts alone)
            'ingested_rows_per_second',
                (SELECT coalesce(sum(x.n), 0) FROM kpi.metric_definitions d,
                        LATERAL (SELECT count(*) AS n FROM kpi.metrics m
                                 WHERE m.metric = d.metric AND m.ts >= at - interval '1 minute' AND m.ts < at) x) / 60.0,
            'rollups', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                     'id', ro.id, 'resolution', ro.resolution, 'metrics', ro.metrics,
                                     'watermark', ro.watermark, 'lag', at - ro.watermark) ORDER BY ro.id)
                                 FROM kpi.rollups ro), '[]'),
            'job_failures_last_hour', (SELECT count(*) FROM kpi.job_runs r
                                       WHERE r.status = 'failed' AND r.started_at >= at - interval '1 hour'),
            'paused_jobs', (SELECT count(*) FROM kpi.jobs j WHERE NOT j.enabled),
            'undelivered_notifications', (SELECT count(*) FROM kpi.deliveries d WHERE d.status = 'pending'),
            'oldest_undelivered_age', (SELECT at - min(d.created_at) FROM kpi.deliveries d WHERE d.status = 'pending'),
            'failed_deliveries', (SELECT count(*) FROM kpi.deliveries d WHERE d.status = 'failed')))
    INTO out;
    RETURN out;
END
$$;
COMMENT ON FUNCTION kpi.dashboard(timestamptz, interval, text, text, text, text) IS
    'The real-time dashboard as jsonb: health, open alerts (counts and the 10 worst), the key metrics of the last window, and pg_kpi''s own health (ingest rate, rollup lag, job failures, undelivered notifications)';

-- The performance report (the replaced performance report): per metric the
-- statistics over exactly [from, to) and the trend of its values (slope per
-- minute: the replaced reports assume one sample a minute), the alerts
-- raised in the period, and recommendations at the replaced cut-offs, each
-- an argument. Metrics: the given ones, or every active definition.
CREATE FUNCTION kpi.performance_report("from" timestamptz, "to" timestamptz, metrics text[] DEFAULT NULL,
                                       response_time_metrics text[] DEFAULT ARRAY['api_response_time', 'database_query_time'],
                                       utilization_metrics text[] DEFAULT ARRAY['cpu_utilization', 'memory_utilization'],
                                       error_rate_metrics text[] DEFAULT ARRAY['error_rate'],
                                       p95_response_time_limit float8 DEFAULT 500,
                                       utilization_limit float8 DEFAULT 80,
                                       error_rate_limit float8 DEFAULT 1,
                                       trend_strength_limit float8 DEFAULT 0.5,
                                       trend_threshold float8 DEFAULT 0.1)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    WITH c AS MATERIALIZED (
        SELECT kpi_internal.check_period('kpi.performance_report', 'the period', "from", "to") AS ok
    ),
    m AS (
        SELECT DISTINCT x.metric
        FROM c, unnest(coalesce(metrics, ARRAY(SELECT d.metric FROM kpi.metric_definitions d WHERE d.active))) x(metric)
        WHERE x.metric IS NOT NULL
    ),
    s AS (
        SELECT m.metric, st.count, st.min, st.max, st.mean, st.stddev,
               kpi.approx_percentiles(st.sketch, ARRAY[0.5, 0.95, 0.99]) AS ps,
               kpi.slope(st.trend, '1 minute') AS per_minute, kpi.correlation(st.trend) AS r,
               kpi.forecast(st.trend, "to" + interval '1 hour') AS next_hour,
               kpi.prediction_interval(st.trend, "to" + interval '1 hour') AS pi
        FROM m, kpi_internal.range_stats(m.metric, "from", "to") st
    ),
    t AS (
        SELECT s.*,
               CASE WHEN s.per_minute > trend_threshold THEN 'increasing'
                    WHEN s.per_minute < -trend_threshold THEN 'decreasing'
                    WHEN s.per_minute IS NOT NULL THEN 'stable' END AS direction
        FROM s
    ),
    recs AS (
        SELECT x.metric, x.kind, x.text
        FROM t,
        LATERAL (VALUES
            (t.metric, 'p95_response_time', CASE WHEN t.metric = ANY (response_time_metrics) AND t.ps[2] > p95_response_time_limit
                 THEN format('%s: p95 %s is above %s; look for slow queries, missing caches and capacity',
                             t.metric, kpi_internal.format_number(t.ps[2]), kpi_internal.format_number(p95_response_time_limit)) END),
            (t.metric, 'utilization', CASE WHEN t.metric = ANY (utilization_metrics) AND t.mean > utilization_limit
                 THEN format('%s: mean %s is above %s; add capacity or spread the load',
                             t.metric, kpi_internal.format_number(t.mean), kpi_internal.format_number(utilization_limit)) END),
            (t.metric, 'error_rate', CASE WHEN t.metric = ANY (error_rate_metrics) AND t.mean > error_rate_limit
                 THEN format('%s: mean %s is above %s; look at the failing requests',
                             t.metric, kpi_internal.format_number(t.mean), kpi_internal.format_number(error_rate_limit)) END),
            (t.metric, 'rising_trend', CASE WHEN t.metric = ANY (response_time_metrics || error_rate_metrics)
                                              AND t.direction = 'increasing' AND abs(t.per_minute) > trend_strength_limit
                 THEN format('%s is rising by %s a minute; act before it breaches', t.metric,
                             kpi_internal.format_number(t.per_minute)) END)
        ) x(metric, kind, text)
        WHERE x.text IS NOT NULL
    )
    SELECT jsonb_build_object(
        'from', "from", 'to', "to",
        'metrics', coalesce((SELECT jsonb_agg(jsonb_build_object(
            'metric', t.metric, 'count', t.count, 'min', t.min, 'max', t.max, 'mean', t.mean, 'median', t.ps[1],
            'stddev', t.stddev, 'p95', t.ps[2], 'p99', t.ps[3],
            'trend', jsonb_build_object('direction', t.direction, 'strength', abs(t.per_minute),
                                        'slope_per_minute', t.per_minute, 'correlation', t.r,
                                        'forecast_1h', t.next_hour, 'forecast_1h_low', t.pi[1],
                                        'forecast_1h_high', t.pi[2])) ORDER BY t.metric) FROM t), '[]'),
        'alerts', jsonb_build_object(
            'raised', (SELECT coalesce(sum(x.n), 0) FROM (SELECT count(*) AS n FROM kpi.alerts a
                       WHERE a.started_at >= "from" AND a.started_at < "to") x),
            'by_severity', coalesce((SELECT jsonb_object_agg(x.severity, x.n) FROM (
                                        SELECT a.severity::text AS severity, count(*) AS n FROM kpi.alerts a
                                        WHERE a.started_at >= "from" AND a.started_at < "to" GROUP BY 1) x), '{}'),
            'by_metric', coalesce((SELECT jsonb_object_agg(x.metric, x.n) FROM (
                                      SELECT a.metric, count(*) AS n FROM kpi.alerts a
                                      WHERE a.started_at >= "from" AND a.started_at < "to" GROUP BY 1) x), '{}')),
        'recommendations', coalesce((SELECT jsonb_agg(jsonb_build_object('metric', r.metric, 'kind', r.kind,
                                                                         'recommendation', r.text)
                                                      ORDER BY r.metric, r.kind) FROM recs r), '[]'))
    FROM c
$$;
COMMENT ON FUNCTION kpi.performance_report(timestamptz, timestamptz, text[], text[], text[], text[], float8, float8, float8, float8, float8) IS
    'The performance report as jsonb: per metric count, min, max, mean, median, stddev, p95, p99 and trend (with a forecast one hour ahead and its prediction interval) over [from, to), the alerts raised, and recommendations at the given cut-offs';
