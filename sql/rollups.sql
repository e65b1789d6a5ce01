-- Rollups: incremental, time-bucketed summaries of kpi.metrics (or of a finer
-- rollup), each row with a mergeable sketch and trend state.
--
-- Exactly once: statement-level triggers on kpi.metrics log the time range of
-- every INSERT, UPDATE, DELETE and TRUNCATE in kpi_internal.metric_changes (in the
-- writer's transaction, so a range becomes visible exactly when its rows do).
-- A run locks its rollup, moves the visible ranges into per-rollup
-- invalidations, rematerializes the invalidated buckets below the watermark
-- and then materializes complete buckets above it. Every materialization
-- recomputes whole buckets from their source (delete, then insert), so a
-- bucket is never counted twice, and a row that a run could not see leaves a
-- range behind that the next run processes.

-- one bucket's summary, returned by kpi.rollup_agg
CREATE TYPE kpi.rollup_part AS (
    count bigint, sum float8, avg float8, min float8, max float8, stddev float8,
    sketch kpi.sketch, trend kpi.trend
);
-- one time bucket's summary, returned (as an array) by kpi_internal.rollup_buckets
CREATE TYPE kpi_internal.rollup_bucket AS (
    bucket timestamptz, count bigint, sum float8, avg float8, min float8, max float8, stddev float8,
    sketch kpi.sketch, trend kpi.trend
);

-- everything a summary row holds, in one pass (the rollups' materialization)
CREATE FUNCTION kpi_internal.rollup_trans(internal, timestamptz, float8) RETURNS internal
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'kpi_rollup_trans';
CREATE FUNCTION kpi_internal.rollup_final(internal) RETURNS kpi.rollup_part
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'kpi_rollup_final';
CREATE AGGREGATE kpi.rollup_agg(ts timestamptz, value float8) (
    SFUNC = kpi_internal.rollup_trans, STYPE = internal, SSPACE = 400, FINALFUNC = kpi_internal.rollup_final,
    COMBINEFUNC = kpi_internal.rollup_combine, SERIALFUNC = kpi_internal.rollup_serialize, DESERIALFUNC = kpi_internal.rollup_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE kpi.rollup_agg(timestamptz, float8) IS
    'count, sum, avg, min, max, sample stddev, sketch and trend of the values in one pass (kpi.rollup_part)';

-- the same per time bucket of the given resolution (aligned as kpi.bucket): the
-- rollups' materialization groups raw rows by metric and series only, and the
-- aggregate splits them into buckets (no per-row date_bin, a small hash table)
CREATE FUNCTION kpi_internal.rollup_buckets_trans(internal, timestamptz, float8, interval) RETURNS internal
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'kpi_rollup_buckets_trans';
CREATE FUNCTION kpi_internal.rollup_buckets_final(internal) RETURNS kpi_internal.rollup_bucket[]
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'kpi_rollup_buckets_final';
CREATE AGGREGATE kpi_internal.rollup_buckets(ts timestamptz, value float8, resolution interval) (
    SFUNC = kpi_internal.rollup_buckets_trans, STYPE = internal, SSPACE = 20000, FINALFUNC = kpi_internal.rollup_buckets_final,
    COMBINEFUNC = kpi_internal.rollup_buckets_combine, SERIALFUNC = kpi_internal.rollup_buckets_serialize,
    DESERIALFUNC = kpi_internal.rollup_buckets_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE kpi_internal.rollup_buckets(timestamptz, float8, interval) IS
    'internal: kpi.rollup_agg per time bucket of the resolution, as kpi_internal.rollup_bucket[] in time order';

CREATE TABLE kpi.summaries (
    metric      text NOT NULL,
    series      jsonb NOT NULL DEFAULT '{}',
    resolution  interval NOT NULL,
    bucket      timestamptz NOT NULL,
    count       bigint NOT NULL,
    sum         double precision,
    avg         double precision,
    min         double precision,
    max         double precision,
    stddev      double precision,
    sketch      kpi.sketch,
    trend       kpi.trend,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (metric, resolution, series, bucket)
);
-- runs delete and read whole bucket ranges of one resolution
CREATE INDEX summaries_resolution_bucket ON kpi.summaries (resolution, bucket);
COMMENT ON TABLE kpi.summaries IS
    'Materialized buckets of the rollups: series holds the grouping tags (''{}'' for all series); stddev is the sample standard deviation';

CREATE TABLE kpi.rollups (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resolution         interval NOT NULL,
    source_resolution  interval,
    source_rollup      bigint REFERENCES kpi.rollups (id),
    metrics            text NOT NULL,
    group_by_tags      text[] NOT NULL DEFAULT '{}',
    lag                interval NOT NULL,
    watermark          timestamptz,
    job_id             bigint REFERENCES kpi.jobs (id) ON DELETE SET NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rollups_source CHECK ((source_resolution IS NULL) = (source_rollup IS NULL))
);
COMMENT ON TABLE kpi.rollups IS
    'Rollup definitions. Buckets before watermark are materialized in kpi.summaries; kpi.series reads raw rows above it.';

CREATE TABLE kpi_internal.rollup_invalidations (
    rollup_id  bigint NOT NULL REFERENCES kpi.rollups (id) ON DELETE CASCADE,
    lo         timestamptz NOT NULL,
    hi         timestamptz NOT NULL
);
CREATE INDEX rollup_invalidations_rollup_idx ON kpi_internal.rollup_invalidations (rollup_id);
COMMENT ON TABLE kpi_internal.rollup_invalidations IS 'Internal: ranges of a rollup to rematerialize below its watermark (late or changed rows)';

-- the bucket of ts (UTC-aligned, origin 2000-01-01)
CREATE FUNCTION kpi.bucket(resolution interval, ts timestamptz) RETURNS timestamptz
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql
    RETURN date_bin(resolution, ts, '2000-01-01 00:00:00+00'::timestamptz);
COMMENT ON FUNCTION kpi.bucket(interval, timestamptz) IS 'Start of the bucket of the given resolution holding ts (buckets are aligned to 2000-01-01 00:00 UTC)';

CREATE FUNCTION kpi_internal.check_resolution(func text, arg text, res interval) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF res IS NULL THEN
        RAISE EXCEPTION '%: % must not be NULL', func, arg USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF res <= interval '0' THEN
        RAISE EXCEPTION '%: % must be positive, got %', func, arg, res USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF extract(month FROM res) <> 0 OR extract(year FROM res) <> 0 THEN
        RAISE EXCEPTION '%: % must not contain months or years, got %', func, arg, res USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Buckets have a fixed length; use days, for example ''30 days''.';
    END IF;
    IF res < interval '1 second' OR extract(epoch FROM res) <> trunc(extract(epoch FROM res)) THEN
        RAISE EXCEPTION '%: % must be a whole number of seconds, got %', func, arg, res USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

-- the expression building a row's series from its tags, for dynamic SQL
CREATE FUNCTION kpi_internal.series_expr(keys text[], tags_expr text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN cardinality(keys) = 0 THEN '''{}''::jsonb'
           ELSE 'jsonb_build_object(' ||
                (SELECT string_agg(format('%L, %s->%L', k, tags_expr, k), ', ' ORDER BY k) FROM unnest(keys) k) || ')'
           END
$$;

-- whether a summary row's series has exactly the grouping keys
CREATE FUNCTION kpi_internal.series_keys_match(series jsonb, keys text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- every grouping key is present (a missing tag is stored as JSON null) and no other
    SELECT series ?& keys AND series - keys = '{}'::jsonb
$$;

-- Whether a rollup's summaries hold a metric: its pattern and the patterns of
-- its whole chain of sources match the metric.
CREATE FUNCTION kpi_internal.rollup_covers(rollup bigint, metric text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH RECURSIVE chain AS (
        SELECT ro.source_rollup AS next, $2 LIKE ro.metrics AS ok FROM kpi.rollups ro WHERE ro.id = $1
        UNION ALL
        SELECT s.source_rollup, $2 LIKE s.metrics FROM chain c JOIN kpi.rollups s ON s.id = c.next
    )
    SELECT coalesce(bool_and(chain.ok), false) FROM chain
$$;
COMMENT ON FUNCTION kpi_internal.rollup_covers(bigint, text) IS 'Internal: whether a rollup (and its chain of sources) covers a metric';

CREATE FUNCTION kpi.add_rollup(
    resolution interval,
    source_resolution interval DEFAULT NULL,
    metrics text DEFAULT '%',
    group_by_tags text[] DEFAULT '{}',
    lag interval DEFAULT '1 minute',
    schedule interval DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    src kpi.rollups;
    keys text[];
    rid bigint;
    jid bigint;
BEGIN
    PERFORM kpi_internal.check_resolution('kpi.add_rollup', 'resolution', resolution);
    IF metrics IS NULL OR metrics = '' THEN
        RAISE EXCEPTION 'kpi.add_rollup: metrics must be a LIKE pattern such as ''%%'' or ''api_%%''' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF lag IS NULL OR lag < interval '0' THEN
        RAISE EXCEPTION 'kpi.add_rollup: lag must be a non-negative interval, got %', coalesce(lag::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM kpi_internal.check_schedule('kpi.add_rollup', schedule);
    IF group_by_tags IS NULL OR array_position(group_by_tags, NULL) IS NOT NULL
       OR array_position(group_by_tags, '') IS NOT NULL THEN
        RAISE EXCEPTION 'kpi.add_rollup: group_by_tags must be an array of non-empty tag names' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    keys := ARRAY(SELECT DISTINCT k FROM unnest(group_by_tags) k ORDER BY k);
    IF source_resolution IS NOT NULL THEN
        PERFORM kpi_internal.check_resolution('kpi.add_rollup', 'source_resolution', source_resolution);
        IF source_resolution >= resolution
           OR extract(epoch FROM resolution)::numeric % extract(epoch FROM source_resolution)::numeric <> 0 THEN
            RAISE EXCEPTION 'kpi.add_rollup: source_resolution % must be finer than resolution % and divide it', source_resolution, resolution
                USING ERRCODE = 'invalid_parameter_value', HINT = 'A rollup merges whole finer buckets, for example 1 minute -> 1 hour -> 1 day.';
        END IF;
        -- the source must hold every metric of this rollup: the same pattern, '%',
        -- or a single metric name its pattern matches
        SELECT * INTO src FROM kpi.rollups r
        WHERE r.resolution = source_resolution AND r.group_by_tags = keys
          AND (r.metrics = '%' OR r.metrics = add_rollup.metrics
               OR (position('%' IN add_rollup.metrics) = 0 AND add_rollup.metrics LIKE r.metrics))
        ORDER BY (r.metrics = '%') DESC, r.id LIMIT 1;
        IF NOT FOUND THEN
            IF EXISTS (SELECT 1 FROM kpi.rollups r WHERE r.resolution = source_resolution AND r.group_by_tags = keys) THEN
                RAISE EXCEPTION 'kpi.add_rollup: no rollup at resolution % grouped by % holds every metric LIKE %',
                    source_resolution, keys, quote_literal(metrics) USING ERRCODE = 'invalid_parameter_value',
                    DETAIL = 'The rollups there cover metrics LIKE ' || (
                        SELECT string_agg(quote_literal(r.metrics), ', ' ORDER BY r.id) FROM kpi.rollups r
                        WHERE r.resolution = source_resolution AND r.group_by_tags = keys) || '.',
                    HINT = 'Pass the source''s pattern as metrics, or add a finer rollup that covers these metrics first.';
            END IF;
            RAISE EXCEPTION 'kpi.add_rollup: there is no rollup at resolution % grouped by % to read from',
                source_resolution, keys USING ERRCODE = 'undefined_object',
                HINT = 'Add the finer rollup first, with the same group_by_tags.';
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM kpi.rollups r WHERE r.resolution = add_rollup.resolution
               AND r.group_by_tags = keys AND r.metrics = add_rollup.metrics) THEN
        RAISE EXCEPTION 'kpi.add_rollup: a rollup of % at % grouped by % already exists', metrics, resolution, keys
            USING ERRCODE = 'duplicate_object';
    END IF;
    IF source_resolution IS NULL THEN
        -- writers that decided before this commit that no rollup reads kpi.metrics
        -- must finish first, so that the first run sees their rows
        LOCK TABLE kpi.metrics IN SHARE MODE;
    END IF;
    INSERT INTO kpi.rollups (resolution, source_resolution, source_rollup, metrics, group_by_tags, lag)
    VALUES (resolution, source_resolution, src.id, metrics, keys, lag)
    RETURNING id INTO rid;
    jid := kpi.add_job('rollup', jsonb_build_object('rollup_id', rid),
                       coalesce(schedule, greatest(least(resolution / 2, interval '1 hour'), interval '1 second')));
    UPDATE kpi.rollups SET job_id = jid WHERE id = rid;
    RETURN rid;
END
$$;
COMMENT ON FUNCTION kpi.add_rollup(interval, interval, text, text[], interval, interval) IS
    'Adds a rollup of metrics LIKE the pattern into kpi.summaries at the resolution, from kpi.metrics (source_resolution NULL) or from a finer rollup; returns its id';

CREATE FUNCTION kpi.drop_rollup(rollup_id bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r kpi.rollups;
BEGIN
    SELECT * INTO r FROM kpi.rollups WHERE id = rollup_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'kpi.drop_rollup: no rollup with id %', coalesce(rollup_id::text, 'NULL') USING ERRCODE = 'undefined_object';
    END IF;
    IF EXISTS (SELECT 1 FROM kpi.rollups d WHERE d.source_rollup = rollup_id) THEN
        RAISE EXCEPTION 'kpi.drop_rollup: rollup % is the source of rollup %', rollup_id,
            (SELECT min(id) FROM kpi.rollups d WHERE d.source_rollup = rollup_id) USING ERRCODE = 'dependent_objects_still_exist',
            HINT = 'Drop the coarser rollups first.';
    END IF;
    -- the summaries no other rollup of the same resolution and grouping covers
    DELETE FROM kpi.summaries s
    WHERE s.resolution = r.resolution AND s.metric LIKE r.metrics
      AND kpi_internal.series_keys_match(s.series, r.group_by_tags)
      AND NOT EXISTS (SELECT 1 FROM kpi.rollups o WHERE o.id <> r.id AND o.resolution = r.resolution
                      AND o.group_by_tags = r.group_by_tags AND s.metric LIKE o.metrics);
    DELETE FROM kpi.rollups WHERE id = rollup_id;
    DELETE FROM kpi.jobs WHERE id = r.job_id;
END
$$;
COMMENT ON FUNCTION kpi.drop_rollup(bigint) IS 'Drops a rollup, its job and the summaries no other rollup of its resolution and grouping covers';

-- recomputes the buckets in [lo, hi) of a rollup from its source; returns the rows written
CREATE FUNCTION kpi_internal.materialize(r kpi.rollups, lo timestamptz, hi timestamptz) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
    k bigint;
    q text;
    a timestamptz;
    b timestamptz;
    src kpi.rollups;
BEGIN
    IF lo >= hi THEN
        RETURN 0;
    END IF;
    DELETE FROM kpi.summaries s
    WHERE s.resolution = r.resolution AND s.bucket >= lo AND s.bucket < hi AND s.metric LIKE r.metrics
      AND kpi_internal.series_keys_match(s.series, r.group_by_tags);
    IF r.source_rollup IS NULL THEN
        -- the aggregate splits each metric's (and series') rows into buckets itself, so
        -- the executor hashes metric and series only; a constant '{}' series and a
        -- LIKE '%' filter are left out (a jsonb hash or a pattern match per raw row)
        q := format($q$
            INSERT INTO kpi.summaries (metric, series, resolution, bucket, count, sum, avg, min, max, stddev, sketch, trend, updated_at)
            SELECT x.metric, %s, $1, u.bucket, u.count, u.sum, u.avg, u.min, u.max, u.stddev, u.sketch, u.trend, now()
            FROM (SELECT m.metric, %s kpi_internal.rollup_buckets(m.ts, m.value, $1) AS parts
                  FROM kpi.metrics m
                  WHERE m.ts >= $2 AND m.ts < $3 %s
                  GROUP BY %s) x
            CROSS JOIN LATERAL unnest(x.parts) u $q$,
            CASE WHEN cardinality(r.group_by_tags) = 0 THEN '''{}''::jsonb' ELSE 'x.series' END,
            CASE WHEN cardinality(r.group_by_tags) = 0 THEN ''
                 ELSE kpi_internal.series_expr(r.group_by_tags, 'm.tags') || ' AS series,' END,
            CASE WHEN r.metrics = '%' THEN '' ELSE 'AND m.metric LIKE $4' END,
            CASE WHEN cardinality(r.group_by_tags) = 0 THEN '1' ELSE '1, 2' END);
        -- at most 50,000 buckets per statement keep each series' array of buckets small
        n := 0;
        a := lo;
        WHILE a < hi LOOP
            b := CASE WHEN extract(epoch FROM hi - a) <= extract(epoch FROM r.resolution) * 50000 THEN hi
                      ELSE a + r.resolution * 50000 END;
            EXECUTE q USING r.resolution, a, b, r.metrics;
            GET DIAGNOSTICS k = ROW_COUNT;
            n := n + k;
            a := b;
        END LOOP;
    ELSE
        SELECT * INTO src FROM kpi.rollups WHERE id = r.source_rollup;
        -- stddev from the parts' counts, means and standard deviations (centred, no sums of squares)
        INSERT INTO kpi.summaries (metric, series, resolution, bucket, count, sum, avg, min, max, stddev, sketch, trend, updated_at)
        SELECT p.metric, p.series, r.resolution, p.b, sum(p.count)::bigint, sum(p.sum), max(p.mean), min(p.min), max(p.max),
               sqrt(greatest(sum(coalesce(p.stddev, 0) ^ 2 * (p.count - 1) + p.count * (p.avg - p.mean) ^ 2), 0)
                    / nullif(sum(p.count) - 1, 0)),
               kpi.sketch_agg(p.sketch), kpi.trend_agg(p.trend), now()
        FROM (SELECT s.*, date_bin(r.resolution, s.bucket, '2000-01-01 00:00:00+00'::timestamptz) AS b,
                     sum(s.count * s.avg) OVER w / sum(s.count) OVER w AS mean
              FROM kpi.summaries s
              WHERE s.resolution = src.resolution AND s.bucket >= lo AND s.bucket < hi
                AND s.metric LIKE r.metrics AND s.metric LIKE src.metrics
                AND kpi_internal.series_keys_match(s.series, r.group_by_tags)
              WINDOW w AS (PARTITION BY s.metric, s.series, date_bin(r.resolution, s.bucket, '2000-01-01 00:00:00+00'::timestamptz))
             ) p
        GROUP BY p.metric, p.series, p.b;
        GET DIAGNOSTICS n = ROW_COUNT;
    END IF;
    -- coarser rollups reading this one rematerialize the range when they pass it
    INSERT INTO kpi_internal.rollup_invalidations (rollup_id, lo, hi)
    SELECT d.id, lo, hi FROM kpi.rollups d WHERE d.source_rollup = r.id AND d.watermark > lo;
    RETURN n;
END
$$;

-- the time before which a rollup's source may have been expired
CREATE FUNCTION kpi_internal.source_horizon(r kpi.rollups) RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN r.source_rollup IS NULL THEN kpi_internal.horizon('metrics')
                ELSE kpi_internal.horizon(r.source_resolution::text) END
$$;

-- the first bucket boundary at or after ts (ts itself when infinite)
CREATE FUNCTION kpi_internal.ceil_bucket(res interval, ts timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN NOT isfinite(ts) OR kpi.bucket(res, ts) = ts THEN ts ELSE kpi.bucket(res, ts) + res END
$$;

-- the end of the complete buckets a run may materialize
CREATE FUNCTION kpi_internal.cutoff(r kpi.rollups) RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN r.source_rollup IS NULL THEN kpi.bucket(r.resolution, now() - r.lag)
                ELSE least(kpi.bucket(r.resolution, now() - r.lag),
                           (SELECT kpi.bucket(r.resolution, s.watermark) FROM kpi.rollups s WHERE s.id = r.source_rollup))
           END
$$;

-- the first bucket in [lo, hi) holding source rows or summary rows of the rollup (NULL if none)
CREATE FUNCTION kpi_internal.next_data(r kpi.rollups, lo timestamptz, hi timestamptz) RETURNS timestamptz
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src timestamptz;
    own timestamptz;
BEGIN
    IF r.source_rollup IS NULL THEN
        SELECT min(m.ts) INTO src FROM kpi.metrics m WHERE m.ts >= lo AND m.ts < hi AND m.metric LIKE r.metrics;
    ELSE
        SELECT min(s.bucket) INTO src FROM kpi.summaries s
        WHERE s.resolution = r.source_resolution AND s.bucket >= lo AND s.bucket < hi AND s.metric LIKE r.metrics;
    END IF;
    SELECT min(s.bucket) INTO own FROM kpi.summaries s
    WHERE s.resolution = r.resolution AND s.bucket >= lo AND s.bucket < hi AND s.metric LIKE r.metrics;
    RETURN kpi.bucket(r.resolution, least(src, own));
END
$$;

-- materializes [lo, hi) spending at most budget buckets and jumping over
-- stretches without data; returns how far it got
CREATE FUNCTION kpi_internal.materialize_range(r kpi.rollups, lo timestamptz, hi timestamptz, INOUT budget bigint,
                                       INOUT rows bigint, INOUT buckets bigint, OUT reached timestamptz)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a timestamptz := lo;
    b timestamptz;
    nxt timestamptz;
    nb bigint;
BEGIN
    WHILE a < hi AND budget > 0 LOOP
        IF hi - a > r.resolution * budget THEN
            -- far behind (a backfill, a TRUNCATE, a long quiet time): skip to the next data
            nxt := kpi_internal.next_data(r, a, hi);
            IF nxt IS NULL THEN
                a := hi;
                EXIT;
            END IF;
            a := greatest(a, nxt);
        END IF;
        b := least(hi, a + r.resolution * budget);
        nb := ceil(extract(epoch FROM b - a) / extract(epoch FROM r.resolution));
        rows := rows + kpi_internal.materialize(r, a, b);
        buckets := buckets + nb;
        budget := budget - nb;
        a := b;
    END LOOP;
    reached := a;
END
$$;

-- one run of a rollup: invalidated buckets below the watermark, then new complete
-- buckets, together at most kpi.rollup_batch_buckets buckets
CREATE FUNCTION kpi_internal.run_rollup(rollup_id bigint, OUT rows bigint, OUT buckets bigint, OUT more boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r kpi.rollups;
    budget bigint := coalesce(nullif(current_setting('kpi.rollup_batch_buckets', true), ''), '1440')::bigint;
    horizon timestamptz;
    cutoff timestamptz;
    rng record;
    m record;
    start_ts timestamptz;
BEGIN
    rows := 0; buckets := 0; more := false;
    SELECT * INTO r FROM kpi.rollups WHERE id = rollup_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'rollup % does not exist', rollup_id USING ERRCODE = 'undefined_object';
    END IF;
    IF r.source_rollup IS NULL THEN
        -- hand the writers' ranges to every rollup of raw rows
        WITH d AS (DELETE FROM kpi_internal.metric_changes RETURNING lo, hi)
        INSERT INTO kpi_internal.rollup_invalidations (rollup_id, lo, hi)
        SELECT x.id, d.lo, d.hi FROM d CROSS JOIN kpi.rollups x WHERE x.source_rollup IS NULL;
    END IF;
    horizon := kpi_internal.ceil_bucket(r.resolution, kpi_internal.source_horizon(r));
    cutoff := kpi_internal.cutoff(r);
    IF r.watermark IS NULL THEN
        -- nothing materialized yet: the forward pass sees every committed row
        DELETE FROM kpi_internal.rollup_invalidations i WHERE i.rollup_id = r.id;
    ELSE
        -- merge the invalidated ranges below the watermark into bucket-aligned islands
        FOR rng IN
            WITH d AS (DELETE FROM kpi_internal.rollup_invalidations i WHERE i.rollup_id = r.id RETURNING i.lo, i.hi),
            c AS (SELECT greatest(kpi.bucket(r.resolution, greatest(d.lo, '1900-01-01'::timestamptz)), horizon) AS lo,
                         least(kpi.bucket(r.resolution, least(d.hi, r.watermark)) + r.resolution, r.watermark) AS hi
                  FROM d WHERE d.lo < r.watermark AND d.hi >= horizon),
            c2 AS (SELECT c.lo, c.hi FROM c WHERE c.lo < c.hi),
            o AS (SELECT c2.lo, c2.hi,
                         CASE WHEN c2.lo <= max(c2.hi) OVER (ORDER BY c2.lo, c2.hi ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                              THEN 0 ELSE 1 END AS starts FROM c2),
            g AS (SELECT o.lo, o.hi, sum(o.starts) OVER (ORDER BY o.lo, o.hi) AS island FROM o)
            SELECT min(g.lo) AS lo, max(g.hi) AS hi FROM g GROUP BY g.island ORDER BY 1
        LOOP
            m := kpi_internal.materialize_range(r, rng.lo, rng.hi, budget, rows, buckets);
            budget := m.budget; rows := m.rows; buckets := m.buckets;
            IF m.reached < rng.hi THEN
                INSERT INTO kpi_internal.rollup_invalidations VALUES (r.id, m.reached, rng.hi);
                more := true;
            END IF;
        END LOOP;
    END IF;
    -- forward: complete buckets from the watermark up to the cutoff
    IF cutoff IS NULL THEN
        RETURN;
    END IF;
    start_ts := coalesce(r.watermark, greatest(horizon, '1900-01-01'::timestamptz));
    IF start_ts < cutoff THEN
        m := kpi_internal.materialize_range(r, start_ts, cutoff, budget, rows, buckets);
        rows := m.rows; buckets := m.buckets;
        start_ts := m.reached;
        more := more OR start_ts < cutoff;
    END IF;
    UPDATE kpi.rollups SET watermark = start_ts WHERE id = r.id AND watermark IS DISTINCT FROM start_ts;
END
$$;

CREATE FUNCTION kpi.refresh(rollup_id bigint, from_ts timestamptz, to_ts timestamptz) RETURNS bigint
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

-- summaries for BI tools, with percentiles read from the sketch
CREATE VIEW kpi.summary AS
SELECT s.metric, s.series, s.resolution, s.bucket, s.count, s.sum, s.avg, s.min, s.max, s.stddev,
       kpi.approx_percentile(s.sketch, 0.5) AS p50,
       kpi.approx_percentile(s.sketch, 0.95) AS p95,
       kpi.approx_percentile(s.sketch, 0.99) AS p99,
       kpi.slope(s.trend) AS slope_per_second,
       s.updated_at
FROM kpi.summaries s;
COMMENT ON VIEW kpi.summary IS 'kpi.summaries with p50/p95/p99 from each bucket''s sketch and the least-squares slope per second';

-- Summaries are read only from a rollup of this resolution and grouping whose
-- whole chain of sources covers the metric, below its watermark: the highest
-- such watermark (-infinity when none, and every bucket comes from raw rows).
CREATE FUNCTION kpi_internal.covering_watermark(metric text, resolution interval, group_by text[] DEFAULT '{}')
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    WITH RECURSIVE chain AS (
        SELECT ro.id AS top, ro.source_rollup AS next, $1 LIKE ro.metrics AS ok
        FROM kpi.rollups ro
        WHERE ro.resolution = $2 AND ro.group_by_tags = $3 AND ro.watermark IS NOT NULL
        UNION ALL
        SELECT c.top, s.source_rollup, $1 LIKE s.metrics
        FROM chain c JOIN kpi.rollups s ON s.id = c.next
    )
    SELECT coalesce(max(ro.watermark), '-infinity')
    FROM kpi.rollups ro
    WHERE ro.id IN (SELECT c.top FROM chain c GROUP BY c.top HAVING bool_and(c.ok))
$$;
COMMENT ON FUNCTION kpi_internal.covering_watermark(text, interval, text[]) IS
    'Internal: the watermark below which summaries of this resolution and grouping cover the metric (through their whole chain of sources); -infinity when none';

-- materialized buckets below the watermark, raw rows above it
-- The buckets of one metric and series between from_ts and to_ts, with
-- their sketches and trends (for kpi.series and the reports): materialized
-- summaries below the watermark of a rollup of this resolution and grouping
-- whose whole chain of sources covers the metric, raw rows above it (and
-- every bucket from raw rows without such a rollup). Arguments unchecked.
CREATE FUNCTION kpi_internal.series_buckets(metric text, resolution interval, from_ts timestamptz, to_ts timestamptz,
                                            tags jsonb DEFAULT '{}')
RETURNS TABLE (bucket timestamptz, count bigint, sum float8, avg float8, min float8, max float8, stddev float8,
               sketch kpi.sketch, trend kpi.trend, materialized boolean)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    w timestamptz;
    raw_from timestamptz;
BEGIN
    w := kpi_internal.covering_watermark(metric, resolution,
                                         ARRAY(SELECT k FROM jsonb_object_keys(coalesce(tags, '{}')) k ORDER BY k));
    -- a bucket that to_ts cuts is read from raw rows, up to to_ts: its summary
    -- holds rows after it
    w := least(w, CASE WHEN isfinite(to_ts) THEN kpi.bucket(resolution, to_ts) ELSE to_ts END);
    raw_from := greatest(kpi.bucket(resolution, from_ts), w);
    -- EXECUTE plans each call with its values, so only the partitions of
    -- kpi.metrics holding raw rows to read are planned (a generic plan would
    -- plan them all, which costs more than the query)
    RETURN QUERY EXECUTE $q$
    WITH mat AS (
        SELECT s.bucket, s.count, s.sum, s.avg, s.min, s.max, s.stddev, s.sketch, s.trend, true AS materialized
        FROM kpi.summaries s
        WHERE s.metric = $1 AND s.resolution = $2 AND s.series = coalesce($5, '{}')
          AND s.bucket >= kpi.bucket($2, $3) AND s.bucket < $4 AND s.bucket < $6
    ),
    raw AS (
        SELECT kpi.bucket($2, m.ts) AS bucket, count(*) AS count, sum(m.value) AS sum, avg(m.value) AS avg,
               min(m.value) AS min, max(m.value) AS max, stddev_samp(m.value) AS stddev,
               kpi.sketch_agg(m.value) AS sketch, kpi.trend_agg(m.ts, m.value) AS trend, false AS materialized
        FROM kpi.metrics m
        WHERE m.metric = $1 AND m.tags @> coalesce($5, '{}') AND m.ts >= $7 AND m.ts < $4
        GROUP BY 1
    )
    SELECT u.bucket, u.count, u.sum, u.avg, u.min, u.max, u.stddev, u.sketch, u.trend, u.materialized
    FROM (SELECT * FROM mat UNION ALL SELECT * FROM raw) u
    ORDER BY u.bucket
    $q$ USING metric, resolution, from_ts, to_ts, tags, w, raw_from;
END
$fn$;
COMMENT ON FUNCTION kpi_internal.series_buckets(text, interval, timestamptz, timestamptz, jsonb) IS
    'Internal: the buckets of one metric and series with sketches and trends, from summaries below the watermark and raw rows above';

CREATE FUNCTION kpi.series(metric text, resolution interval, from_ts timestamptz, to_ts timestamptz, tags jsonb DEFAULT '{}')
RETURNS TABLE (bucket timestamptz, count bigint, sum float8, avg float8, min float8, max float8, stddev float8,
               p50 float8, p95 float8, p99 float8, slope_per_second float8, materialized boolean)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    IF metric IS NULL THEN
        RAISE EXCEPTION 'kpi.series: metric must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM kpi_internal.check_resolution('kpi.series', 'resolution', resolution);
    IF tags IS NOT NULL AND jsonb_typeof(tags) <> 'object' THEN
        RAISE EXCEPTION 'kpi.series: tags must be a JSON object, got %', tags USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF from_ts IS NULL OR to_ts IS NULL THEN
        RAISE EXCEPTION 'kpi.series: from_ts and to_ts must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF from_ts > to_ts THEN
        RAISE EXCEPTION 'kpi.series: from_ts (%) is after to_ts (%)', from_ts, to_ts USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM kpi.metric_definitions d WHERE d.metric = series.metric)
       AND NOT EXISTS (SELECT 1 FROM kpi.metrics m WHERE m.metric = series.metric)
       AND NOT EXISTS (SELECT 1 FROM kpi.summaries s WHERE s.metric = series.metric) THEN
        RAISE NOTICE 'kpi.series: there is no metric "%" (no definition, no rows, no summaries)', metric
            USING HINT = 'Check the name for a typo.';
    END IF;
    RETURN QUERY
    SELECT u.bucket, u.count, u.sum, u.avg, u.min, u.max, u.stddev,
           kpi.approx_percentile(u.sketch, 0.5), kpi.approx_percentile(u.sketch, 0.95),
           kpi.approx_percentile(u.sketch, 0.99), kpi.slope(u.trend), u.materialized
    FROM kpi_internal.series_buckets(series.metric, series.resolution, series.from_ts, series.to_ts, series.tags) u
    ORDER BY u.bucket;
END
$$;
COMMENT ON FUNCTION kpi.series(text, interval, timestamptz, timestamptz, jsonb) IS
    'Buckets of one metric and series between from and to: materialized summaries below the rollup watermark, computed from raw rows above it';

-- the 'rollup' job kind: config {"rollup_id": n}, made by kpi.add_rollup
CREATE FUNCTION kpi_internal.run_rollup_job(config jsonb, OUT rows bigint, OUT buckets bigint, OUT more boolean)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT r.rows, r.buckets, r.more FROM kpi_internal.run_rollup((config->>'rollup_id')::bigint) r
$$;
COMMENT ON FUNCTION kpi_internal.run_rollup_job(jsonb) IS 'Internal: runs a rollup job';

CREATE FUNCTION kpi_internal.check_rollup_job(config jsonb, refs boolean) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF jsonb_typeof(config->'rollup_id') IS DISTINCT FROM 'number'
       OR (refs AND NOT EXISTS (SELECT 1 FROM kpi.rollups WHERE id = (config->>'rollup_id')::numeric)) THEN
        RAISE EXCEPTION 'rollup job config needs the "rollup_id" of an existing rollup, got %', config
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Rollup jobs are created by kpi.add_rollup.';
    END IF;
END
$$;
COMMENT ON FUNCTION kpi_internal.check_rollup_job(jsonb, boolean) IS 'Internal: checks a rollup job''s config';

SELECT kpi_internal.register_job_kind('rollup', 'kpi_internal.run_rollup_job(jsonb)', 'kpi_internal.check_rollup_job(jsonb, boolean)',
                              true, 'Materializes a rollup''s complete and invalidated buckets');

SELECT pg_catalog.pg_extension_config_dump('kpi.summaries', '');
SELECT pg_catalog.pg_extension_config_dump('kpi.rollups', '');
SELECT pg_catalog.pg_extension_config_dump('kpi.rollups_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('kpi_internal.rollup_invalidations', '');

-- internals
COMMENT ON FUNCTION kpi_internal.check_resolution(text, text, interval) IS 'Internal: a resolution is positive, whole seconds, without months or years';
COMMENT ON FUNCTION kpi_internal.series_expr(text[], text) IS 'Internal: the SQL expression of a row''s series for the grouping keys';
COMMENT ON FUNCTION kpi_internal.series_keys_match(jsonb, text[]) IS 'Internal: whether a summary''s series has exactly these grouping keys';
COMMENT ON FUNCTION kpi_internal.materialize(kpi.rollups, timestamptz, timestamptz) IS 'Internal: recomputes a rollup''s buckets in [lo, hi) from its source';
COMMENT ON FUNCTION kpi_internal.source_horizon(kpi.rollups) IS 'Internal: the time before which a rollup''s source has been expired';
COMMENT ON FUNCTION kpi_internal.ceil_bucket(interval, timestamptz) IS 'Internal: the first bucket boundary at or after ts';
COMMENT ON FUNCTION kpi_internal.cutoff(kpi.rollups) IS 'Internal: the end of the complete buckets a run may materialize';
COMMENT ON FUNCTION kpi_internal.next_data(kpi.rollups, timestamptz, timestamptz) IS 'Internal: the first bucket in [lo, hi) holding source or summary rows of the rollup (NULL if none)';
COMMENT ON FUNCTION kpi_internal.materialize_range(kpi.rollups, timestamptz, timestamptz, bigint, bigint, bigint) IS 'Internal: materializes [lo, hi) within a bucket budget, jumping over stretches without data; returns how far it got';
COMMENT ON FUNCTION kpi_internal.run_rollup(bigint) IS 'Internal: one run of a rollup: invalidated buckets below the watermark, then new complete buckets';

-- columns
COMMENT ON COLUMN kpi.summaries.metric IS 'Metric name';
COMMENT ON COLUMN kpi.summaries.series IS 'Values of the rollups grouping tags ({} for all series)';
COMMENT ON COLUMN kpi.summaries.resolution IS 'Bucket width';
COMMENT ON COLUMN kpi.summaries.bucket IS 'Bucket start (aligned to 2000-01-01 00:00 UTC)';
COMMENT ON COLUMN kpi.summaries.count IS 'Rows in the bucket';
COMMENT ON COLUMN kpi.summaries.sum IS 'Sum of the values';
COMMENT ON COLUMN kpi.summaries.avg IS 'Mean';
COMMENT ON COLUMN kpi.summaries.min IS 'Smallest value';
COMMENT ON COLUMN kpi.summaries.max IS 'Largest value';
COMMENT ON COLUMN kpi.summaries.stddev IS 'Sample standard deviation';
COMMENT ON COLUMN kpi.summaries.sketch IS 'Quantile sketch (kpi.approx_percentile)';
COMMENT ON COLUMN kpi.summaries.trend IS 'Least-squares trend state (kpi.slope)';
COMMENT ON COLUMN kpi.summaries.updated_at IS 'When the bucket was last materialized';
COMMENT ON COLUMN kpi.rollups.id IS 'Rollup id';
COMMENT ON COLUMN kpi.rollups.resolution IS 'Bucket width';
COMMENT ON COLUMN kpi.rollups.source_resolution IS 'Resolution of the finer rollup it reads (NULL: raw kpi.metrics)';
COMMENT ON COLUMN kpi.rollups.source_rollup IS 'The finer rollup it reads';
COMMENT ON COLUMN kpi.rollups.metrics IS 'LIKE pattern of the metrics it covers';
COMMENT ON COLUMN kpi.rollups.group_by_tags IS 'Tag keys it groups by (sorted)';
COMMENT ON COLUMN kpi.rollups.lag IS 'How long after a bucket ends before it is materialized';
COMMENT ON COLUMN kpi.rollups.watermark IS 'Buckets before it are materialized';
COMMENT ON COLUMN kpi.rollups.job_id IS 'The job that runs it';
COMMENT ON COLUMN kpi.rollups.created_at IS 'When the rollup was created';
COMMENT ON COLUMN kpi.summary.metric IS 'Metric name';
COMMENT ON COLUMN kpi.summary.series IS 'Grouping tag values';
COMMENT ON COLUMN kpi.summary.resolution IS 'Bucket width';
COMMENT ON COLUMN kpi.summary.bucket IS 'Bucket start';
COMMENT ON COLUMN kpi.summary.count IS 'Rows';
COMMENT ON COLUMN kpi.summary.sum IS 'Sum';
COMMENT ON COLUMN kpi.summary.avg IS 'Mean';
COMMENT ON COLUMN kpi.summary.min IS 'Minimum';
COMMENT ON COLUMN kpi.summary.max IS 'Maximum';
COMMENT ON COLUMN kpi.summary.stddev IS 'Sample standard deviation';
COMMENT ON COLUMN kpi.summary.p50 IS 'Median (from the sketch)';
COMMENT ON COLUMN kpi.summary.p95 IS '95th percentile (from the sketch)';
COMMENT ON COLUMN kpi.summary.p99 IS '99th percentile (from the sketch)';
COMMENT ON COLUMN kpi.summary.slope_per_second IS 'Least-squares slope per second';
COMMENT ON COLUMN kpi.summary.updated_at IS 'When the bucket was last materialized';
COMMENT ON TYPE kpi.rollup_part IS 'One buckets summary from kpi.rollup_agg: count, sum, avg, min, max, stddev, sketch, trend';
COMMENT ON TYPE kpi_internal.rollup_bucket IS 'Internal: one time buckets summary (kpi_internal.rollup_buckets)';
