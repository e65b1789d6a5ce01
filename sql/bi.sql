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
