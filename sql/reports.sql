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
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
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
        -- the buckets that start before at
        FROM a CROSS JOIN generate_series(a.lo, $4 - interval '1 microsecond', $3) b(bk)
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
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
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

-- The statistics of several metrics (all series) over exactly [from_ts,
-- to_ts), in one query: per metric, the whole buckets inside the range from
-- the coarsest covering rollup (summaries below its watermark), the ends and
-- everything without a rollup from raw rows; counts, sums, extremes and the
-- pooled variance are exact, percentiles come from the merged sketches. With
-- points > 0, means holds the means of about that many equal steps (NULL for
-- a step without rows), for a sparkline.
CREATE FUNCTION kpi_internal.range_stats_many(metrics text[], from_ts timestamptz, to_ts timestamptz,
                                              points integer DEFAULT 0, sketches boolean DEFAULT true)
RETURNS TABLE (metric text, count bigint, sum float8, min float8, max float8, mean float8, stddev float8,
               sketch kpi.sketch, trend kpi.trend, means float8[], counts bigint[])
-- jit off: the plan's cost is high enough to JIT-compile it, which takes longer than running it
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $fn$
DECLARE
    step interval;
BEGIN
    -- no rows for bounds that make no period (the callers check them and say why)
    IF from_ts IS NULL OR to_ts IS NULL OR NOT isfinite(from_ts) OR NOT isfinite(to_ts) OR from_ts >= to_ts THEN
        RETURN;
    END IF;
    -- at most `points` steps of whole seconds from from_ts
    step := CASE WHEN points > 0
                 THEN make_interval(secs => greatest(1, ceil(extract(epoch FROM to_ts - from_ts) / points))) END;
    -- EXECUTE plans with the bounds as values: only the partitions of
    -- kpi.metrics in [from, to) are planned, and each metric's raw reads are
    -- index ranges
    RETURN QUERY EXECUTE replace(replace($q$
    WITH RECURSIVE ms AS (
        SELECT DISTINCT x.metric FROM unnest($1::text[]) x(metric) WHERE x.metric IS NOT NULL
    ),
    r AS MATERIALIZED (
        -- the coarsest covering rollup with at least two buckets in the range
        SELECT ms.metric,
               (SELECT ro.resolution FROM kpi.rollups ro
                WHERE ro.group_by_tags = '{}' AND ro.watermark IS NOT NULL AND ms.metric LIKE ro.metrics
                  AND ro.resolution * 2 <= $3 - $2
                  -- no coarser than a sparkline step, so every step has its buckets
                  AND ($4 IS NULL OR ro.resolution <= $4)
                ORDER BY ro.resolution DESC LIMIT 1) AS res
        FROM ms
    ),
    -- the watermark below which each metric's summaries are complete: the
    -- highest of the rollups at its resolution whose whole chain of sources
    -- covers it (kpi_internal.covering_watermark, for all metrics at once)
    chain AS (
        SELECT r.metric, ro.id AS top, ro.source_rollup AS next, r.metric LIKE ro.metrics AS ok
        FROM r JOIN kpi.rollups ro
          ON ro.resolution = r.res AND ro.group_by_tags = '{}' AND ro.watermark IS NOT NULL
        UNION ALL
        SELECT c.metric, c.top, s.source_rollup, c.metric LIKE s.metrics
        FROM chain c JOIN kpi.rollups s ON s.id = c.next
    ),
    wm AS (
        SELECT c.metric, max(ro.watermark) AS w
        FROM (SELECT c.metric, c.top FROM chain c GROUP BY 1, 2 HAVING bool_and(c.ok)) c
        JOIN kpi.rollups ro ON ro.id = c.top
        GROUP BY c.metric
    ),
    b AS (
        -- whole buckets of res inside the range: [lo, hi)
        SELECT r.metric, r.res, x.lo, greatest(x.lo, kpi.bucket(r.res, $3)) AS hi,
               coalesce(wm.w, '-infinity') AS w
        FROM r LEFT JOIN wm ON wm.metric = r.metric,
        LATERAL (SELECT CASE WHEN kpi.bucket(r.res, $2) = $2 THEN $2 ELSE kpi.bucket(r.res, $2) + r.res END AS lo) x
        WHERE r.res IS NOT NULL
    ),
    meta AS MATERIALIZED (
        -- summaries for [lo, mid), raw rows for [from, lo) and [mid, to);
        -- a metric without a rollup is all raw rows
        SELECT r.metric, r.res, coalesce(b.lo, $3) AS lo,
               coalesce(greatest(b.lo, least(b.hi, b.w)), $3) AS mid
        FROM r LEFT JOIN b ON b.metric = r.metric
    ),
    parts AS (
        -- OFFSET 0 keeps each metric's summaries an index range (not one join over all summaries)
        SELECT meta.metric, s.*
        FROM meta,
        LATERAL (SELECT s.bucket AS t, s.count, s.sum, s.avg, s.min, s.max, s.stddev, s.sketch, s.trend
                 FROM kpi.summaries s
                 WHERE s.metric = meta.metric AND s.resolution = meta.res AND s.series = '{}'
                   AND s.bucket >= meta.lo AND s.bucket < meta.mid
                 OFFSET 0) s
        UNION ALL
        SELECT meta.metric, x.*
        FROM meta,
        LATERAL (SELECT CASE WHEN $4 IS NOT NULL THEN date_bin($4, m.ts, $2) END AS t, count(*), sum(m.value),
                        avg(m.value), min(m.value), max(m.value), stddev_samp(m.value), @RAWSKETCH@,
                        kpi.trend_agg(m.ts, m.value)
                 FROM (SELECT m.ts, m.value FROM kpi.metrics m
                       WHERE m.metric = meta.metric AND m.ts >= $2 AND m.ts < $3 AND m.ts < meta.lo
                       UNION ALL
                       SELECT m.ts, m.value FROM kpi.metrics m
                       WHERE m.metric = meta.metric AND m.ts >= $2 AND m.ts < $3 AND m.ts >= meta.mid) m
                 GROUP BY 1) x
    ),
    t AS (
        SELECT p.metric, sum(p.count)::bigint AS n, sum(p.sum) AS s, min(p.min) AS lo, max(p.max) AS hi,
               @SKETCH@ AS sk, kpi.trend_agg(p.trend) AS tr
        FROM parts p WHERE p.count > 0 GROUP BY p.metric
    ),
    v AS (
        SELECT p.metric, sum((p.count - 1) * coalesce(p.stddev, 0) ^ 2 + p.count * (p.avg - t.s / t.n) ^ 2) AS ss
        FROM parts p JOIN t ON t.metric = p.metric WHERE p.count > 0 GROUP BY p.metric
    ),
    steps AS (
        SELECT p.metric, date_bin($4, p.t, $2) AS st, sum(p.sum) / sum(p.count) AS avg, sum(p.count)::bigint AS n
        FROM parts p WHERE $4 IS NOT NULL AND p.count > 0 GROUP BY 1, 2
    ),
    sp AS (
        SELECT ms.metric, array_agg(steps.avg ORDER BY g.st) AS means, array_agg(coalesce(steps.n, 0) ORDER BY g.st) AS counts
        FROM ms CROSS JOIN generate_series($2, $3 - interval '1 microsecond', $4) g(st)
        LEFT JOIN steps ON steps.metric = ms.metric AND steps.st = g.st
        WHERE $4 IS NOT NULL
        GROUP BY ms.metric
    )
    SELECT ms.metric, coalesce(t.n, 0), t.s, t.lo, t.hi, t.s / t.n,
           CASE WHEN t.n >= 2 THEN sqrt(greatest(0, v.ss / (t.n - 1))) END, t.sk, t.tr, sp.means, sp.counts
    FROM ms LEFT JOIN t ON t.metric = ms.metric LEFT JOIN v ON v.metric = ms.metric
    LEFT JOIN sp ON sp.metric = ms.metric
    ORDER BY ms.metric
    $q$, '@SKETCH@', CASE WHEN sketches THEN 'kpi.sketch_agg(p.sketch)' ELSE 'NULL::kpi.sketch' END),
        '@RAWSKETCH@', CASE WHEN sketches THEN 'kpi.sketch_agg(m.value)' ELSE 'NULL::kpi.sketch' END)
    USING metrics, from_ts, to_ts, step;
END
$fn$;
COMMENT ON FUNCTION kpi_internal.range_stats_many(text[], timestamptz, timestamptz, integer, boolean) IS
    'Internal: count, sum, min, max, mean, stddev, sketch (unless sketches is false) and trend of each metric over exactly [from, to) in one query (summaries for whole buckets, raw rows at the ends), and the means and counts of at most points steps';

-- One metric's statistics over exactly [from_ts, to_ts) (kpi_internal.range_stats_many).
CREATE FUNCTION kpi_internal.range_stats(metric text, from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (count bigint, sum float8, min float8, max float8, mean float8, stddev float8, sketch kpi.sketch,
               trend kpi.trend)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    -- always one row (count 0 for no rows, or no metric)
    SELECT coalesce(x.count, 0), x.sum, x.min, x.max, x.mean, x.stddev, x.sketch, x.trend
    FROM (VALUES (1)) one LEFT JOIN LATERAL kpi_internal.range_stats_many(ARRAY[$1], $2, $3) x ON true
$$;
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

-- A report's cut-off argument: not NULL (22004), a finite number (22023), and
-- at least min when given.
CREATE FUNCTION kpi_internal.check_cutoff(func text, arg text, value float8, min float8 DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION '%: % must not be NULL', func, arg USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Leave the argument out to use its default.';
    END IF;
    IF value = 'NaN' OR value IN ('Infinity', '-Infinity') OR value < min THEN
        RAISE EXCEPTION '%: % must be a finite number%, got %', func, arg,
            CASE WHEN min IS NOT NULL THEN ' >= ' || min ELSE '' END, value
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION kpi_internal.check_cutoff(text, text, float8, float8) IS
    'Internal: checks a report''s cut-off argument (22004 for NULL, 22023 for NaN, infinite or below min)';

CREATE FUNCTION kpi_internal.check_cutoff(func text, arg text, value numeric, min numeric DEFAULT NULL) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT kpi_internal.check_cutoff(func, arg, value::float8, min::float8)
$$;
COMMENT ON FUNCTION kpi_internal.check_cutoff(text, text, numeric, numeric) IS
    'Internal: checks a report''s numeric cut-off argument';

-- alpha in (0, 1)
CREATE FUNCTION kpi_internal.check_alpha(func text, alpha float8) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF alpha IS NULL THEN
        RAISE EXCEPTION '%: alpha must not be NULL', func USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT (alpha > 0 AND alpha < 1) THEN
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
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
    WITH a AS MATERIALIZED (
        -- (the sparkline's step is derived, so there is no bucket argument to name)
        SELECT kpi_internal.check_report('kpi.metric_summary', $1, $2,
                                         make_interval(secs => greatest(1, floor(extract(epoch FROM $2) / 24))),
                                         $3, NULL) AS lo
    ),
    -- the statistics and the means of 24 steps, in one pass
    s AS (SELECT x.* FROM a, kpi_internal.range_stats_many(ARRAY[$1], $3 - $2, $3, 24) x)
    SELECT $1, $3 - $2, $3, s.count, s.min, s.max, s.mean, kpi.approx_percentile(s.sketch, 0.5), s.stddev,
           kpi.approx_percentile(s.sketch, 0.95), kpi.approx_percentile(s.sketch, 0.99),
           CASE WHEN s.count > 0 THEN kpi.sparkline(s.means) ELSE '' END
    FROM s
$$;
COMMENT ON FUNCTION kpi.metric_summary(text, interval, timestamptz) IS
    'The replaced analytics summary endpoint: count, min, max, mean, median, stddev, p95 and p99 of a metric over exactly [at - range, at), and a sparkline of its means';

CREATE FUNCTION kpi.compare_periods(metric text, a_from timestamptz, a_to timestamptz, b_from timestamptz,
                                    b_to timestamptz, alpha float8 DEFAULT 0.05)
RETURNS TABLE (a_count bigint, a_mean float8, a_p95 float8, b_count bigint, b_mean float8, b_p95 float8,
               mean_change float8, mean_change_pct float8, p95_change float8, t float8, df float8, p_value float8,
               significant boolean)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
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
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
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
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
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
    IF at > now() THEN
        RAISE EXCEPTION 'kpi.dashboard: at (%) is in the future', at USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Leave at out for the dashboard of now.';
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
                                     'watermark', ro.watermark, 'lag', now() - ro.watermark) ORDER BY ro.id)
                                 FROM kpi.rollups ro), '[]'),
            'job_failures_last_hour', (SELECT count(*) FROM kpi.job_runs r
                                       WHERE r.status = 'failed' AND r.started_at >= now() - interval '1 hour'),
            'paused_jobs', (SELECT count(*) FROM kpi.jobs j WHERE NOT j.enabled),
            'undelivered_notifications', (SELECT count(*) FROM kpi.deliveries d WHERE d.status = 'pending'),
            'oldest_undelivered_age', (SELECT now() - min(d.created_at) FROM kpi.deliveries d WHERE d.status = 'pending'),
            'failed_deliveries', (SELECT count(*) FROM kpi.deliveries d WHERE d.status = 'failed')))
    INTO out;
    RETURN out;
END
$$;
COMMENT ON FUNCTION kpi.dashboard(timestamptz, interval, text, text, text, text) IS
    'The real-time dashboard as jsonb: health and the key metrics of the window before at, open alerts (counts and the 10 worst) and pg_kpi''s own health (ingest rate, rollup lag, job failures, undelivered notifications) as they are now';

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
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
    WITH c AS MATERIALIZED (
        SELECT kpi_internal.check_period('kpi.performance_report', 'the period', "from", "to")
           AND kpi_internal.check_cutoff('kpi.performance_report', 'p95_response_time_limit', p95_response_time_limit)
           AND kpi_internal.check_cutoff('kpi.performance_report', 'utilization_limit', utilization_limit)
           AND kpi_internal.check_cutoff('kpi.performance_report', 'error_rate_limit', error_rate_limit)
           AND kpi_internal.check_cutoff('kpi.performance_report', 'trend_strength_limit', trend_strength_limit, 0)
           AND kpi_internal.check_cutoff('kpi.performance_report', 'trend_threshold', trend_threshold, 0)
           -- a NOTICE for each metric nothing is known of
           AND coalesce((SELECT bool_and(kpi_internal.check_metric('kpi.performance_report', x))
                         FROM unnest(metrics) x WHERE x IS NOT NULL), true) AS ok
    ),
    m AS (
        SELECT DISTINCT x.metric
        FROM c, unnest(coalesce(metrics, ARRAY(SELECT d.metric FROM kpi.metric_definitions d WHERE d.active))) x(metric)
        WHERE x.metric IS NOT NULL
    ),
    s AS (
        SELECT st.metric, st.count, st.min, st.max, st.mean, st.stddev,
               kpi.approx_percentiles(st.sketch, ARRAY[0.5, 0.95, 0.99]) AS ps,
               kpi.slope(st.trend, '1 minute') AS per_minute, kpi.correlation(st.trend) AS r,
               kpi.forecast(st.trend, "to" + interval '1 hour') AS next_hour,
               kpi.prediction_interval(st.trend, "to" + interval '1 hour') AS pi,
               CASE WHEN st.count > 0 THEN kpi.sparkline(st.means) END AS spark
        FROM kpi_internal.range_stats_many(ARRAY(SELECT m.metric FROM m), "from", "to", 24) st
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
                                        'forecast_1h_high', t.pi[2]),
            'spark', t.spark) ORDER BY t.metric) FROM t), '[]'),
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
    'The performance report as jsonb: per metric count, min, max, mean, median, stddev, p95, p99, trend (with a forecast one hour ahead and its prediction interval) and a sparkline over [from, to), the alerts raised, and recommendations at the given cut-offs';

-- The performance report for psql: one row per metric, numbers to six
-- significant digits, a trend arrow, a sparkline of 24 means, the mean's
-- severity (metrics with a definition) and the recommendations.
CREATE FUNCTION kpi.performance_table("from" timestamptz, "to" timestamptz, metrics text[] DEFAULT NULL,
                                      response_time_metrics text[] DEFAULT ARRAY['api_response_time', 'database_query_time'],
                                      utilization_metrics text[] DEFAULT ARRAY['cpu_utilization', 'memory_utilization'],
                                      error_rate_metrics text[] DEFAULT ARRAY['error_rate'],
                                      p95_response_time_limit float8 DEFAULT 500,
                                      utilization_limit float8 DEFAULT 80,
                                      error_rate_limit float8 DEFAULT 1,
                                      trend_strength_limit float8 DEFAULT 0.5,
                                      trend_threshold float8 DEFAULT 0.1)
RETURNS TABLE (metric text, count bigint, mean numeric, p50 numeric, p95 numeric, p99 numeric, trend text,
               spark text, severity kpi.severity_level, recommendations text)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
    WITH r AS MATERIALIZED (SELECT kpi.performance_report($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) AS r)
    SELECT m->>'metric', (m->>'count')::bigint,
           kpi_internal.format_number((m->>'mean')::float8)::numeric,
           kpi_internal.format_number((m->>'median')::float8)::numeric,
           kpi_internal.format_number((m->>'p95')::float8)::numeric,
           kpi_internal.format_number((m->>'p99')::float8)::numeric,
           CASE m->'trend'->>'direction' WHEN 'increasing' THEN '↑ ' WHEN 'decreasing' THEN '↓ ' WHEN 'stable' THEN '→ ' END
               || (m->'trend'->>'direction'),
           m->>'spark',
           CASE WHEN d.metric IS NOT NULL AND m->'mean' <> 'null' THEN kpi.severity(d.metric, (m->>'mean')::float8) END,
           (SELECT string_agg(x->>'recommendation', '; ' ORDER BY x->>'kind') FROM jsonb_array_elements(r.r->'recommendations') x
            WHERE x->>'metric' = m->>'metric')
    FROM r, jsonb_array_elements(r.r->'metrics') m
    LEFT JOIN kpi.metric_definitions d ON d.metric = m->>'metric' AND d.active
    ORDER BY m->>'metric'
$$;
COMMENT ON FUNCTION kpi.performance_table(timestamptz, timestamptz, text[], text[], text[], text[], float8, float8, float8, float8, float8) IS
    'kpi.performance_report (same arguments) as a table for psql and BI: per metric count, mean, p50, p95, p99 (six significant digits), trend arrow, sparkline, severity of the mean and the recommendations';

CREATE VIEW kpi.performance_overview AS
    SELECT * FROM kpi.performance_table(now() - interval '24 hours', now());
COMMENT ON VIEW kpi.performance_overview IS 'The last 24 hours of every active metric (kpi.performance_table)';
COMMENT ON COLUMN kpi.performance_overview.metric IS 'Metric';
COMMENT ON COLUMN kpi.performance_overview.count IS 'Values in the last 24 hours';
COMMENT ON COLUMN kpi.performance_overview.mean IS 'Mean';
COMMENT ON COLUMN kpi.performance_overview.p50 IS 'Median (sketch, 1 % relative error)';
COMMENT ON COLUMN kpi.performance_overview.p95 IS '95th percentile';
COMMENT ON COLUMN kpi.performance_overview.p99 IS '99th percentile';
COMMENT ON COLUMN kpi.performance_overview.trend IS 'Direction of the trend (↑ increasing, ↓ decreasing, → stable)';
COMMENT ON COLUMN kpi.performance_overview.spark IS 'Sparkline of 24 hourly means';
COMMENT ON COLUMN kpi.performance_overview.severity IS 'Severity of the mean (metrics with a definition)';
COMMENT ON COLUMN kpi.performance_overview.recommendations IS 'Recommendations at the replaced cut-offs';

-- The business value report (the replaced business value manager's period
-- report) over revenue events and customers in [from, least(to, at)): revenue
-- and its growth against the previous period of the same length, customers
-- (active = paid in the period, new = acquired in it, churned = paying at
-- "from" and lapsed by the end, as kpi.customer_churn_rate), MRR and ARR at the
-- end, average LTV (the replaced formula, kpi.customer_clv) of the active
-- customers, CAC (average acquisition cost of the new ones), segments,
-- features, a 10-part timeline, the top customers and recommendations at the
-- replaced cut-offs (arguments). Money at the currency's scale, percentages
-- and ratios to 2 decimals.
CREATE FUNCTION kpi.business_value_report("from" timestamptz, "to" timestamptz, currency text DEFAULT NULL,
                                          top_customers integer DEFAULT 10,
                                          slow_growth_pct numeric DEFAULT 10,
                                          rapid_growth_pct numeric DEFAULT 50,
                                          churn_rate_pct numeric DEFAULT 10,
                                          ltv_cac_ratio numeric DEFAULT 3,
                                          adoption_pct numeric DEFAULT 20,
                                          at timestamptz DEFAULT now(),
                                          grace interval DEFAULT '3 days')
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
#variable_conflict use_variable
DECLARE
    func constant text := 'kpi.business_value_report';
    e timestamptz;           -- the end evaluated: least("to", at)
    prev_from timestamptz;   -- the previous period: [prev_from, "from")
    cur text[];
    scale integer;
    rev numeric;
    prev_rev numeric;
    growth numeric;
    mrr_end numeric;
    n_active bigint;
    n_new bigint;
    new_ts timestamptz[];
    part_revenue numeric[];
    n_start bigint;
    n_churned bigint;
    churn numeric;
    avg_ltv numeric;
    avg_cac numeric;
    n_cac bigint;
    ratio numeric;
    segments jsonb;
    features jsonb;
    timeline jsonb;
    top jsonb;
    recs jsonb := '[]';
BEGIN
    PERFORM kpi_internal.check_period(func, "from", "to");
    IF NOT isfinite("from") OR NOT isfinite("to") THEN
        RAISE EXCEPTION '%: "from" and "to" must be finite, got % to %', func, "from", "to"
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF "from" = "to" THEN
        RAISE EXCEPTION '%: the period is empty ("from" = "to" = %)', func, "from"
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM kpi_internal.check_at(func, at);
    PERFORM kpi_internal.check_grace(func, grace);
    IF "from" >= at THEN
        RAISE EXCEPTION '%: "from" (%) is not before at (%): the period has not started', func, "from", at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF top_customers IS NULL THEN
        RAISE EXCEPTION '%: top_customers must not be NULL', func USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF top_customers < 0 THEN
        RAISE EXCEPTION '%: top_customers must be >= 0, got %', func, coalesce(top_customers::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM kpi_internal.check_cutoff(func, 'slow_growth_pct', slow_growth_pct),
            kpi_internal.check_cutoff(func, 'rapid_growth_pct', rapid_growth_pct),
            kpi_internal.check_cutoff(func, 'churn_rate_pct', churn_rate_pct, 0),
            kpi_internal.check_cutoff(func, 'ltv_cac_ratio', ltv_cac_ratio, 0),
            kpi_internal.check_cutoff(func, 'adoption_pct', adoption_pct, 0);
    e := least("to", at);
    IF "to" > at THEN
        RAISE NOTICE '%: the period ends at % (after %); evaluated up to %, and compared with the same length before "from"',
            func, "to", at, at;
    END IF;
    prev_from := "from" - (e - "from");

    -- one pass over both periods: the currencies (one, or the one asked
    -- for), the previous period's revenue (part -1) and the revenue of each
    -- tenth of the period (parts 0..9; exact, extract(epoch) is numeric)
    WITH g AS (
        SELECT x.k, min(x.currency) AS lo_cur, max(x.currency) AS hi_cur, sum(x.amount) AS revenue
        FROM (SELECT CASE WHEN r.ts < "from" THEN -1
                          ELSE least(9, floor(extract(epoch FROM r.ts - "from") * 10 / extract(epoch FROM e - "from")))::int
                     END AS k, r.currency, r.amount
              FROM kpi.revenue_events r
              WHERE r.ts >= prev_from AND r.ts < e AND (currency IS NULL OR r.currency = currency)) x
        GROUP BY x.k
    )
    SELECT (SELECT CASE WHEN min(g.lo_cur) = max(g.hi_cur) THEN ARRAY[min(g.lo_cur)]
                        WHEN min(g.lo_cur) IS NOT NULL THEN ARRAY[min(g.lo_cur), max(g.hi_cur)] END FROM g),
           coalesce((SELECT sum(g.revenue) FROM g WHERE g.k >= 0), 0),
           coalesce((SELECT sum(g.revenue) FROM g WHERE g.k < 0), 0),
           ARRAY(SELECT coalesce(g.revenue, 0) FROM generate_series(0, 9) i LEFT JOIN g ON g.k = i ORDER BY i)
    INTO cur, rev, prev_rev, part_revenue;
    IF cardinality(cur) > 1 THEN
        -- name every currency in the error
        SELECT array_agg(DISTINCT r.currency) INTO cur FROM kpi.revenue_events r WHERE r.ts >= prev_from AND r.ts < e;
    END IF;
    cur := ARRAY[kpi_internal.single_currency(cur, func)];
    scale := kpi.currency_scale(coalesce(cur[1], currency, 'USD'));
    growth := CASE WHEN prev_rev > 0 THEN round((rev - prev_rev) / prev_rev * 100, 2) END;

    -- active customers, their LTV, segments and the top ones, the new ones and their acquisition cost
    WITH active AS (
        SELECT r.customer_id, sum(r.amount) AS revenue, min(r.ts) AS first_ts
        FROM kpi.revenue_events r
        WHERE r.ts >= "from" AND r.ts < e AND (currency IS NULL OR r.currency = currency)
        GROUP BY r.customer_id
        HAVING sum(r.amount) > 0
    ), ltv AS (
        -- each active customer's events up to the end, in one join
        SELECT kpi_internal.replaced_clv(count(*), sum(r.amount),
                                         coalesce(sum(r.amount) FILTER (WHERE r.ts > e - interval '30 days'), 0),
                                         min(r.ts), max(r.ts), e) AS v
        FROM active a JOIN kpi.revenue_events r ON r.customer_id = a.customer_id
        WHERE r.ts < e AND (currency IS NULL OR r.currency = currency)
        GROUP BY a.customer_id
    ), acquired AS (
        -- acquired in the period: kpi.customers.acquired_at, or the first
        -- payment of a customer kpi.customers does not list
        SELECT c.acquired_at AS ts, c.acquisition_cost FROM kpi.customers c
        WHERE c.acquired_at >= "from" AND c.acquired_at < e
        UNION ALL
        SELECT a.first_ts, NULL FROM active a
        WHERE NOT EXISTS (SELECT FROM kpi.customers c WHERE c.customer_id = a.customer_id)
          AND NOT EXISTS (SELECT FROM kpi.revenue_events r
                          WHERE r.customer_id = a.customer_id AND r.ts < "from"
                            AND (currency IS NULL OR r.currency = currency))
    ), seg AS (
        SELECT c.segment, count(*) AS n, sum(a.revenue) AS revenue
        FROM active a LEFT JOIN kpi.customers c USING (customer_id)
        GROUP BY c.segment
    )
    SELECT (SELECT count(*) FROM active), (SELECT avg(v) FROM ltv),
           (SELECT array_agg(n.ts) FROM acquired n),
           (SELECT avg(n.acquisition_cost) FROM acquired n), (SELECT count(n.acquisition_cost) FROM acquired n),
           (SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'segment', s.segment, 'customers', s.n, 'revenue', round(s.revenue, scale),
                       'avg_revenue', round(s.revenue / s.n, scale),
                       'share_pct', CASE WHEN rev > 0 THEN round(s.revenue / rev * 100, 2) END)
                       ORDER BY s.revenue DESC, s.segment NULLS LAST), '[]') FROM seg s),
           (SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'customer_id', t.customer_id, 'segment', c.segment, 'revenue', round(t.revenue, scale),
                       'share_pct', CASE WHEN rev > 0 THEN round(t.revenue / rev * 100, 2) END)
                       ORDER BY t.revenue DESC, t.customer_id), '[]')
            FROM (SELECT a.customer_id, a.revenue FROM active a ORDER BY a.revenue DESC, a.customer_id LIMIT top_customers) t
            LEFT JOIN kpi.customers c USING (customer_id))
    INTO n_active, avg_ltv, new_ts, avg_cac, n_cac, segments, top;
    n_new := coalesce(cardinality(new_ts), 0);
    ratio := CASE WHEN avg_cac > 0 THEN round(avg_ltv / avg_cac, 2) END;

    -- churn as kpi.customer_churn_rate: paying at "from", lapsed by the end
    WITH s AS MATERIALIZED (
        SELECT x.customer_id, x.currency FROM kpi.customer_mrr("from"::date, currency, grace) x
        WHERE cur[1] IS NULL OR x.currency = cur[1]
    ), f AS MATERIALIZED (
        SELECT x.customer_id, x.currency, x.mrr FROM kpi.customer_mrr(e::date, currency, grace) x
        WHERE cur[1] IS NULL OR x.currency = cur[1]
    )
    SELECT count(DISTINCT s.customer_id), count(DISTINCT s.customer_id) FILTER (WHERE f.customer_id IS NULL),
           (SELECT coalesce(sum(f.mrr), 0) FROM f)
    INTO n_start, n_churned, mrr_end
    FROM s LEFT JOIN f ON f.customer_id = s.customer_id AND f.currency = s.currency;
    churn := CASE WHEN n_start > 0 THEN round(n_churned::numeric / n_start * 100, 2) END;

    -- features: the period, and the replaced 30-day growth (the 30 days to
    -- the end against the 30 before)
    WITH fc AS (
        -- per feature and customer first (hashed), then per feature
        SELECT r.feature_id, r.customer_id,
               sum(r.amount) FILTER (WHERE r.ts >= "from") AS revenue,
               bool_or(r.ts >= "from" AND r.amount > 0) AS paid,
               sum(r.amount) FILTER (WHERE r.ts >= e - interval '30 days') AS last30,
               sum(r.amount) FILTER (WHERE r.ts < e - interval '30 days') AS prev30
        FROM kpi.revenue_events r
        WHERE r.feature_id IS NOT NULL AND r.ts >= least("from", e - interval '60 days') AND r.ts < e
          AND (currency IS NULL OR r.currency = currency)
        GROUP BY r.feature_id, r.customer_id
    ), f AS (
        SELECT fc.feature_id, sum(fc.revenue) AS revenue, count(*) FILTER (WHERE fc.paid) AS customers,
               sum(fc.last30) AS last30, sum(fc.prev30) AS prev30
        FROM fc GROUP BY fc.feature_id
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'feature', f.feature_id, 'revenue', round(coalesce(f.revenue, 0), scale), 'customers', f.customers,
               'adoption_pct', CASE WHEN n_active > 0 THEN round(f.customers::numeric / n_active * 100, 2) END,
               'revenue_per_customer', CASE WHEN f.customers > 0 THEN round(f.revenue / f.customers, scale) END,
               'growth_30d_pct', CASE WHEN f.prev30 > 0 THEN round((coalesce(f.last30, 0) - f.prev30) / f.prev30 * 100, 2) END)
               ORDER BY coalesce(f.revenue, 0) DESC, f.feature_id), '[]')
    INTO features
    FROM f
    WHERE f.revenue IS NOT NULL;

    -- 10 equal parts of the period evaluated
    WITH p AS (
        SELECT i, "from" + (e - "from") * i / 10 AS lo, "from" + (e - "from") * (i + 1) / 10 AS hi
        FROM generate_series(0, 9) i
    )
    SELECT jsonb_agg(jsonb_build_object(
               'from', p.lo, 'to', p.hi,
               'revenue', round(part_revenue[p.i + 1], scale),
               'new_customers', (SELECT count(*) FROM unnest(new_ts) t
                                 WHERE least(9, floor(extract(epoch FROM t - "from") * 10 / extract(epoch FROM e - "from")))::int = p.i))
               ORDER BY p.i)
    INTO timeline FROM p;

    -- recommendations at the cut-offs
    IF growth < 0 THEN
        recs := recs || jsonb_build_object('kind', 'revenue_decline', 'recommendation',
            format('Revenue fell %s %% against the previous period; look at churned and contracting customers', abs(growth)));
    ELSIF growth < slow_growth_pct THEN
        recs := recs || jsonb_build_object('kind', 'slow_growth', 'recommendation',
            format('Revenue grew %s %%, below %s %%; invest in acquisition and expansion', growth, slow_growth_pct));
    ELSIF growth > rapid_growth_pct THEN
        recs := recs || jsonb_build_object('kind', 'rapid_growth', 'recommendation',
            format('Revenue grew %s %%, above %s %%; make sure capacity and support keep up', growth, rapid_growth_pct));
    END IF;
    IF churn > churn_rate_pct THEN
        recs := recs || jsonb_build_object('kind', 'high_churn', 'recommendation',
            format('%s %% of the customers paying at the start churned, above %s %%; work on retention', churn, churn_rate_pct));
    END IF;
    IF ratio < ltv_cac_ratio THEN
        recs := recs || jsonb_build_object('kind', 'low_ltv_cac', 'recommendation',
            format('LTV:CAC is %s, below %s; lower acquisition cost or raise customer value', ratio, ltv_cac_ratio));
    END IF;
    recs := recs || coalesce((SELECT jsonb_agg(jsonb_build_object('kind', 'low_adoption', 'feature', x->>'feature',
                                  'recommendation', format('Feature %s is used by %s %% of the active customers, below %s %%; promote it or reconsider it',
                                                           x->>'feature', x->>'adoption_pct', adoption_pct)))
                              FROM jsonb_array_elements(features) x
                              WHERE (x->>'adoption_pct')::numeric < adoption_pct), '[]');

    RETURN jsonb_build_object(
        'from', "from", 'to', "to", 'evaluated_to', e, 'complete', "to" <= at, 'currency', cur[1],
        'revenue', jsonb_build_object('total', round(rev, scale), 'previous', round(prev_rev, scale),
                                      'previous_from', prev_from, 'growth_pct', growth,
                                      'mrr', round(mrr_end, scale), 'arr', round(mrr_end * 12, scale),
                                      'arpu', CASE WHEN n_active > 0 THEN round(rev / n_active, scale) END),
        'customers', jsonb_build_object('active', n_active, 'new', n_new, 'paying_at_start', n_start,
                                        'churned', n_churned, 'churn_rate_pct', churn),
        'unit_economics', jsonb_build_object('avg_ltv', round(avg_ltv, scale), 'avg_cac', round(avg_cac, scale),
                                             'ltv_cac_ratio', ratio, 'new_customers_with_cac', n_cac),
        'segments', segments,
        'features', features,
        'timeline', timeline,
        'top_customers', top,
        'recommendations', recs);
END
$$;
COMMENT ON FUNCTION kpi.business_value_report(timestamptz, timestamptz, text, integer, numeric, numeric, numeric, numeric, numeric, timestamptz, interval) IS
    'The business value report as jsonb over [from, least(to, at)): revenue and growth against the previous equal period, active/new/churned customers and churn rate, MRR and ARR, average LTV and CAC and their ratio, segments, features (adoption, 30-day growth), a 10-part revenue and acquisition timeline, top customers, and recommendations at the given cut-offs';

-- The business value report for psql: one row per figure, with the previous
-- period's revenue and the timelines as sparklines.
CREATE FUNCTION kpi.business_table("from" timestamptz, "to" timestamptz, currency text DEFAULT NULL)
RETURNS TABLE (kpi text, value numeric, previous numeric, change_pct numeric, spark text)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
    WITH r AS MATERIALIZED (SELECT kpi.business_value_report($1, $2, $3) AS r),
    tl AS (
        SELECT kpi.sparkline(array_agg((t->>'revenue')::float8 ORDER BY n)) AS revenue,
               kpi.sparkline(array_agg((t->>'new_customers')::float8 ORDER BY n)) AS new_customers
        FROM r, jsonb_array_elements(r.r->'timeline') WITH ORDINALITY x(t, n)
    )
    SELECT x.kpi, x.value, x.previous, x.change_pct, x.spark
    FROM r, tl,
    LATERAL (VALUES
        (1, 'revenue', (r->'revenue'->>'total')::numeric, (r->'revenue'->>'previous')::numeric,
            (r->'revenue'->>'growth_pct')::numeric, tl.revenue),
        (2, 'mrr', (r->'revenue'->>'mrr')::numeric, NULL, NULL, NULL),
        (3, 'arr', (r->'revenue'->>'arr')::numeric, NULL, NULL, NULL),
        (4, 'arpu', (r->'revenue'->>'arpu')::numeric, NULL, NULL, NULL),
        (5, 'active customers', (r->'customers'->>'active')::numeric, NULL, NULL, NULL),
        (6, 'new customers', (r->'customers'->>'new')::numeric, NULL, NULL, tl.new_customers),
        (7, 'churned customers', (r->'customers'->>'churned')::numeric, NULL, NULL, NULL),
        (8, 'churn rate %', (r->'customers'->>'churn_rate_pct')::numeric, NULL, NULL, NULL),
        (9, 'average ltv', (r->'unit_economics'->>'avg_ltv')::numeric, NULL, NULL, NULL),
        (10, 'average cac', (r->'unit_economics'->>'avg_cac')::numeric, NULL, NULL, NULL),
        (11, 'ltv:cac', (r->'unit_economics'->>'ltv_cac_ratio')::numeric, NULL, NULL, NULL)
    ) x(n, kpi, value, previous, change_pct, spark)
    ORDER BY x.n
$$;
COMMENT ON FUNCTION kpi.business_table(timestamptz, timestamptz, text) IS
    'kpi.business_value_report as a table for psql and BI: revenue (with the previous period and growth), MRR, ARR, ARPU, customers, churn, LTV, CAC and LTV:CAC, with sparklines of the revenue and acquisition timelines';

CREATE VIEW kpi.business_overview AS
    SELECT * FROM kpi.business_table(now() - interval '30 days', now());
COMMENT ON VIEW kpi.business_overview IS 'The business figures of the last 30 days against the 30 before (kpi.business_table; one currency)';
COMMENT ON COLUMN kpi.business_overview.kpi IS 'Figure';
COMMENT ON COLUMN kpi.business_overview.value IS 'Its value over the last 30 days (MRR, ARR: now)';
COMMENT ON COLUMN kpi.business_overview.previous IS 'Its value over the 30 days before';
COMMENT ON COLUMN kpi.business_overview.change_pct IS 'Change in %';
COMMENT ON COLUMN kpi.business_overview.spark IS 'Sparkline over 10 equal parts of the period';

-- ---------------------------------------------------------------------------
-- Report snapshots: the jsonb of a report function kept with when it was
-- taken and the period it covers; the 'report' job kind takes them on a
-- schedule (a cron expression such as '0 17 * * 5' for Fridays at 17:00).

CREATE TABLE kpi.report_snapshots (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name      text NOT NULL CHECK (name <> ''),
    report    text NOT NULL,
    job_id    bigint REFERENCES kpi.jobs (id) ON DELETE SET NULL,
    taken_at  timestamptz NOT NULL DEFAULT now(),
    period    tstzrange,
    args      jsonb NOT NULL DEFAULT '{}',
    body      jsonb NOT NULL
);
CREATE INDEX report_snapshots_name_taken_idx ON kpi.report_snapshots (name, taken_at DESC);
CREATE INDEX report_snapshots_job_idx ON kpi.report_snapshots (job_id) WHERE job_id IS NOT NULL;
COMMENT ON TABLE kpi.report_snapshots IS
    'Stored reports: the jsonb a report function returned, by name, with when it was taken and the period it covers (kpi.take_report_snapshot, report jobs)';
COMMENT ON COLUMN kpi.report_snapshots.id IS 'Snapshot id';
COMMENT ON COLUMN kpi.report_snapshots.name IS 'Name of the snapshot series (the job''s config.name)';
COMMENT ON COLUMN kpi.report_snapshots.report IS 'The report function (in schema kpi)';
COMMENT ON COLUMN kpi.report_snapshots.job_id IS 'The report job that took it (NULL: taken by hand, or the job is gone)';
COMMENT ON COLUMN kpi.report_snapshots.taken_at IS 'When it was taken';
COMMENT ON COLUMN kpi.report_snapshots.period IS 'The period reported, [from, to) (NULL for a report of one instant, such as kpi.dashboard)';
COMMENT ON COLUMN kpi.report_snapshots.args IS 'The report function''s other arguments';
COMMENT ON COLUMN kpi.report_snapshots.body IS 'The report';
SELECT pg_catalog.pg_extension_config_dump('kpi.report_snapshots', '');
SELECT pg_catalog.pg_extension_config_dump('kpi.report_snapshots_id_seq', '');

-- A report argument given in JSON as the SQL literal it stands for: a string
-- as its text, an array as an array literal, anything else as its JSON text.
CREATE FUNCTION kpi_internal.report_arg_literal(value jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE jsonb_typeof(value)
               WHEN 'null' THEN NULL
               WHEN 'string' THEN value #>> '{}'
               WHEN 'array' THEN ARRAY(SELECT jsonb_array_elements_text(value))::text
               ELSE value::text END
$$;
COMMENT ON FUNCTION kpi_internal.report_arg_literal(jsonb) IS
    'Internal: the SQL literal of a report argument given in JSON (arrays become array literals)';

-- Checks a snapshot's report and arguments: report names a function of schema
-- kpi returning jsonb (with or without "kpi."); args is an object of its other
-- parameters, each a valid value of the parameter's type; period is needed
-- when it reports a period (it takes "from" and "to", or a period interval).
-- Returns the bare function name and how it takes its period or instant.
CREATE FUNCTION kpi_internal.check_report_call(func text, report text, period interval, args jsonb,
                                               OUT name text, OUT takes_period boolean, OUT takes_at boolean,
                                               OUT period_arg boolean)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    params text[];
    own text[];
    bad text;
    a record;
BEGIN
    IF report IS NULL OR btrim(report) = '' THEN
        RAISE EXCEPTION '%: report must name a report function, such as performance_report', func
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    name := regexp_replace(btrim(report), '^kpi\.', '');
    SELECT array_agg(DISTINCT x.n) INTO params
    FROM pg_proc p, unnest(p.proargnames) x(n)
    WHERE p.pronamespace = 'kpi'::regnamespace AND p.proname = name AND p.prorettype = 'jsonb'::regtype
      AND p.prokind = 'f';
    IF params IS NULL THEN
        RAISE EXCEPTION '%: report "%" is not a report function of schema kpi', func, report
            USING ERRCODE = 'undefined_function',
                  HINT = 'Reports returning jsonb: ' || (SELECT string_agg(DISTINCT p.proname, ', ' ORDER BY p.proname)
                                                         FROM pg_proc p
                                                         WHERE p.pronamespace = 'kpi'::regnamespace
                                                           AND p.prorettype = 'jsonb'::regtype AND p.prokind = 'f'
                                                           AND (p.proname LIKE '%report' OR p.proname = 'dashboard')) || '.';
    END IF;
    takes_period := 'from' = ANY (params) AND 'to' = ANY (params);
    takes_at := 'at' = ANY (params);
    period_arg := NOT takes_period AND 'period' = ANY (params);
    -- the arguments the snapshot itself gives
    own := ARRAY['from', 'to', 'at'] || CASE WHEN period_arg THEN ARRAY['period'] ELSE '{}' END;
    IF args IS NULL OR jsonb_typeof(args) <> 'object' THEN
        RAISE EXCEPTION '%: args must be a JSON object of the report''s arguments, got %', func, coalesce(args::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(k, ', ' ORDER BY k) INTO bad FROM jsonb_object_keys(args) k
    WHERE NOT k = ANY (params) OR k = ANY (own);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION '%: args has %, which kpi.% does not take from args', func, bad, name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Its arguments are %s; %s come from the snapshot.',
                                (SELECT string_agg(x, ', ' ORDER BY x) FROM unnest(params) x WHERE NOT x = ANY (own)),
                                array_to_string(ARRAY(SELECT x FROM unnest(own) x WHERE x = ANY (params)), ', '));
    END IF;
    -- each value must be one of its parameter's type
    FOR a IN
        SELECT DISTINCT ON (j.key) j.key, kpi_internal.report_arg_literal(j.value) AS lit, format_type(x.t, NULL) AS typ
        FROM jsonb_each(args) j
        JOIN (SELECT x.n, x.t FROM pg_proc p, unnest(p.proargnames, p.proargtypes::oid[]) x(n, t)
              WHERE p.pronamespace = 'kpi'::regnamespace AND p.proname = name AND p.prorettype = 'jsonb'::regtype) x
          ON x.n = j.key
        ORDER BY j.key
    LOOP
        BEGIN
            EXECUTE format('SELECT %L::%s', a.lit, a.typ);
        EXCEPTION WHEN data_exception OR invalid_text_representation THEN
            RAISE EXCEPTION '%: args.% (%) is not a valid %', func, a.key, coalesce(a.lit, 'NULL'), a.typ
                USING ERRCODE = 'invalid_parameter_value';
        END;
    END LOOP;
    IF (takes_period OR period_arg) AND (period IS NULL OR period <= interval '0') THEN
        RAISE EXCEPTION '%: kpi.% reports a period: period must be a positive interval, got %', func, name,
            coalesce(period::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The snapshot covers [at - period, at), such as period => ''7 days'' for a weekly report.';
    END IF;
END
$$;
COMMENT ON FUNCTION kpi_internal.check_report_call(text, text, interval, jsonb) IS
    'Internal: checks a report snapshot''s report function, period and arguments';

-- Takes a snapshot: runs the report over [at - period, at) (or at "at" for a
-- report of one instant), stores it, and NOTIFYs kpi_report_snapshots with
-- {"id", "name", "report", "taken_at"} when the transaction commits.
CREATE FUNCTION kpi.take_report_snapshot(name text, report text, period interval DEFAULT '1 day',
                                         args jsonb DEFAULT '{}', at timestamptz DEFAULT now(),
                                         job_id bigint DEFAULT NULL)
RETURNS kpi.report_snapshots
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c record;
    call text;
    body jsonb;
    snap kpi.report_snapshots;
BEGIN
    IF name IS NULL OR at IS NULL THEN
        RAISE EXCEPTION 'kpi.take_report_snapshot: name and at must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF btrim(name) = '' THEN
        RAISE EXCEPTION 'kpi.take_report_snapshot: name must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT isfinite(at) THEN
        RAISE EXCEPTION 'kpi.take_report_snapshot: at must be a finite time, got %', at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF job_id IS NOT NULL AND NOT EXISTS (SELECT FROM kpi.jobs j WHERE j.id = take_report_snapshot.job_id) THEN
        RAISE EXCEPTION 'kpi.take_report_snapshot: no job with id %', job_id USING ERRCODE = 'undefined_object',
            HINT = 'job_id is set by report jobs; leave it out for a snapshot taken by hand.';
    END IF;
    args := coalesce(args, '{}');
    c := kpi_internal.check_report_call('kpi.take_report_snapshot', report, period, args);
    -- named arguments, values as literals (arrays as array literals)
    SELECT string_agg(format('%I => %L', a.key, kpi_internal.report_arg_literal(a.value)), ', ')
    INTO call FROM jsonb_each(args) a;
    IF c.takes_period THEN
        call := concat_ws(', ', format('"from" => %L::timestamptz, "to" => %L::timestamptz', at - period, at), call);
    ELSE
        IF c.period_arg THEN
            call := concat_ws(', ', format('period => %L::interval', period), call);
        END IF;
        IF c.takes_at THEN
            call := concat_ws(', ', format('at => %L::timestamptz', at), call);
        END IF;
    END IF;
    EXECUTE format('SELECT kpi.%I(%s)', c.name, call) INTO body;
    INSERT INTO kpi.report_snapshots (name, report, job_id, taken_at, period, args, body)
    VALUES (btrim(take_report_snapshot.name), c.name, take_report_snapshot.job_id, at,
            CASE WHEN c.takes_period OR c.period_arg THEN tstzrange(at - period, at) END, args, coalesce(body, 'null'))
    RETURNING * INTO snap;
    PERFORM pg_notify('kpi_report_snapshots', json_build_object('id', snap.id, 'name', snap.name, 'report', snap.report,
                                                                'taken_at', snap.taken_at)::text);
    RETURN snap;
END
$$;
COMMENT ON FUNCTION kpi.take_report_snapshot(text, text, interval, jsonb, timestamptz, bigint) IS
    'Runs a report function of schema kpi (performance_report, business_value_report, dashboard, roi_report...) over [at - period, at) with args, stores it in kpi.report_snapshots and NOTIFYs kpi_report_snapshots';

-- The 'report' job kind: config {"name", "report", "period", "args"} takes a
-- snapshot at the minute the job runs.
CREATE FUNCTION kpi_internal.check_report_job(config jsonb, refs boolean) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bad text;
    p interval;
BEGIN
    SELECT string_agg(k, ', ') INTO bad FROM jsonb_object_keys(config) k WHERE k NOT IN ('name', 'report', 'period', 'args');
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'report job config: unknown key %', bad USING ERRCODE = 'invalid_parameter_value',
            HINT = 'A report job''s config has name, report, period and args, such as {"name": "weekly performance", "report": "performance_report", "period": "7 days"}.';
    END IF;
    IF jsonb_typeof(config->'name') IS DISTINCT FROM 'string' OR btrim(config->>'name') = '' THEN
        RAISE EXCEPTION 'report job config needs a non-empty string "name", got %', config
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF config ? 'period' THEN
        BEGIN
            p := (config->>'period')::interval;
        EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
            RAISE EXCEPTION 'report job config: period "%" is not an interval', config->>'period'
                USING ERRCODE = 'invalid_parameter_value';
        END;
    END IF;
    PERFORM kpi_internal.check_report_call('report job config', config->>'report', p, coalesce(config->'args', '{}'));
END
$$;
COMMENT ON FUNCTION kpi_internal.check_report_job(jsonb, boolean) IS 'Internal: checks a report job''s config';

CREATE FUNCTION kpi_internal.run_report_job(config jsonb, OUT rows bigint, OUT buckets bigint, OUT more boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM kpi.take_report_snapshot(config->>'name', config->>'report', (config->>'period')::interval,
                                     coalesce(config->'args', '{}'), date_trunc('minute', now()),
                                     nullif(current_setting('pg_kpi.job_id', true), '')::bigint);
    rows := 1; buckets := 0; more := false;
END
$$;
COMMENT ON FUNCTION kpi_internal.run_report_job(jsonb) IS 'Internal: runs a report job (one snapshot)';

SELECT kpi_internal.register_job_kind('report', 'kpi_internal.run_report_job(jsonb)',
                                      'kpi_internal.check_report_job(jsonb, boolean)', false,
                                      'Stores a report (config.report over the config.period before the minute it runs, with config.args) in kpi.report_snapshots under config.name and NOTIFYs kpi_report_snapshots');
