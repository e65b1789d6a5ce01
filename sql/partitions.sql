-- Partitions of kpi.metrics: one per UTC day, made ahead of time and for the
-- days that land in the default partition, by the built-in 'partitions' job.

CREATE FUNCTION kpi.create_partitions(
    from_ts timestamptz DEFAULT now() - interval '1 day',
    to_ts timestamptz DEFAULT now() + interval '7 days')
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    day timestamptz;
    name text;
    created integer := 0;
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR NOT isfinite(from_ts) OR NOT isfinite(to_ts) THEN
        RAISE EXCEPTION 'kpi.create_partitions: from_ts and to_ts must be finite timestamps'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF to_ts - from_ts > interval '3660 days' THEN
        RAISE EXCEPTION 'kpi.create_partitions: the range % .. % spans more than 3660 days', from_ts, to_ts
            USING ERRCODE = 'program_limit_exceeded', HINT = 'Create partitions for a shorter range.';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('pg_kpi.partitions'));
    FOR day IN SELECT d FROM generate_series(date_bin('1 day', from_ts, '2000-01-01 00:00+00'),
                                          to_ts, interval '1 day') AS d
    LOOP
        name := 'metrics_p' || to_char(day AT TIME ZONE 'UTC', 'YYYYMMDD');
        CONTINUE WHEN to_regclass('kpi.' || name) IS NOT NULL;
        IF EXISTS (SELECT 1 FROM kpi.metrics_default WHERE ts >= day AND ts < day + interval '1 day') THEN
            -- move the default partition's rows of that day into the new partition
            EXECUTE format('CREATE TABLE kpi.%I (LIKE kpi.metrics INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
            EXECUTE format('WITH moved AS (DELETE FROM kpi.metrics_default WHERE ts >= $1 AND ts < $2 RETURNING *)
                            INSERT INTO kpi.%I SELECT * FROM moved', name) USING day, day + interval '1 day';
            EXECUTE format('ALTER TABLE kpi.metrics ATTACH PARTITION kpi.%I FOR VALUES FROM (%L) TO (%L)',
                           name, day, day + interval '1 day');
        ELSE
            EXECUTE format('CREATE TABLE kpi.%I PARTITION OF kpi.metrics FOR VALUES FROM (%L) TO (%L)',
                           name, day, day + interval '1 day');
        END IF;
        PERFORM kpi_internal.index_partition(format('kpi.%I', name)::regclass);
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;
COMMENT ON FUNCTION kpi.create_partitions(timestamptz, timestamptz) IS
    'Creates the missing UTC-day partitions of kpi.metrics covering from_ts .. to_ts (moving rows out of kpi.metrics_default); returns how many';

-- the partitions job: days ahead, plus the days that hold rows in the default
-- partition (only those days: three stray rows years apart make three
-- partitions, not one per day between them), at most max_days per run; more =
-- true when the default partition still holds rows of other days
CREATE FUNCTION kpi_internal.maintain_partitions(config jsonb, OUT rows bigint, OUT buckets bigint, OUT more boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ahead interval := coalesce((config->>'ahead')::interval, interval '7 days');
    max_days integer := coalesce((config->>'max_days')::integer, 100);
    days timestamptz[];
    day timestamptz;
BEGIN
    buckets := 0;
    rows := kpi.create_partitions(now() - interval '1 day', now() + ahead);
    SELECT array_agg(d ORDER BY d) INTO days
    FROM (SELECT DISTINCT date_bin('1 day', ts, '2000-01-01 00:00+00') AS d
          FROM kpi.metrics_default WHERE isfinite(ts) ORDER BY 1 LIMIT max_days + 1) x;
    more := coalesce(cardinality(days), 0) > max_days;
    FOREACH day IN ARRAY coalesce(days[1:max_days], '{}') LOOP
        rows := rows + kpi.create_partitions(day, day);
    END LOOP;
END
$$;
COMMENT ON FUNCTION kpi_internal.maintain_partitions(jsonb) IS
    'Internal: the partitions job (config "ahead", default 7 days; "max_days" per run, default 100)';

-- the partitions job's config: "ahead" a positive interval, "max_days" 1..100000
CREATE FUNCTION kpi_internal.check_partitions_job(config jsonb, refs boolean) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF config ? 'max_days' AND (jsonb_typeof(config->'max_days') IS DISTINCT FROM 'number'
                                OR (config->>'max_days')::numeric NOT BETWEEN 1 AND 100000) THEN
        RAISE EXCEPTION 'partitions job config "max_days" must be a number from 1 to 100000, got %', config->'max_days'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF config ? 'ahead' THEN
        BEGIN
            IF (config->>'ahead')::interval <= interval '0' THEN
                RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value';
            END IF;
        EXCEPTION WHEN others THEN
            RAISE EXCEPTION 'partitions job config "ahead" must be a positive interval, got %', config->'ahead'
                USING ERRCODE = 'invalid_parameter_value';
        END;
    END IF;
END
$$;
COMMENT ON FUNCTION kpi_internal.check_partitions_job(jsonb, boolean) IS 'Internal: checks a partitions job''s config';

SELECT kpi_internal.register_job_kind('partitions', 'kpi_internal.maintain_partitions(jsonb)', 'kpi_internal.check_partitions_job(jsonb, boolean)',
                              false, 'Creates the day partitions of kpi.metrics ahead and for rows in the default partition');
INSERT INTO kpi.jobs (kind, config, schedule_interval, builtin) VALUES ('partitions', '{"ahead": "7 days"}', '1 hour', true);
