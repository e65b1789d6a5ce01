-- Retention: what is deleted when. A policy per target (raw metrics by whole
-- day partitions, a summary resolution, resolved alerts, job history) and its
-- job; rollups never rematerialize buckets before the horizon a policy reached.

CREATE TABLE kpi.retention_policies (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target      text NOT NULL UNIQUE,
    keep        interval NOT NULL CHECK (keep > interval '0'),
    job_id      bigint REFERENCES kpi.jobs (id) ON DELETE SET NULL,
    horizon     timestamptz,
    builtin     boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE kpi.retention_policies IS
    'What is deleted when: target metrics (raw, whole day partitions), a summary resolution, alerts (resolved only), job_runs or report_snapshots. horizon: data before it has been expired.';
COMMENT ON COLUMN kpi.retention_policies.horizon IS
    'Rollups never rematerialize buckets before the horizon of their source, so expiring raw rows keeps the summaries';

-- the canonical target name, or an ERROR naming the accepted ones
CREATE FUNCTION kpi_internal.retention_target(target text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    res interval;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'kpi.add_retention: target must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF lower(btrim(target)) IN ('metrics', 'alerts', 'job_runs', 'report_snapshots') THEN
        RETURN lower(btrim(target));
    END IF;
    IF lower(btrim(target)) IN ('snapshots', 'reports') THEN
        RETURN 'report_snapshots';
    END IF;
    IF lower(btrim(target)) IN ('job history', 'job_history', 'jobs') THEN
        RETURN 'job_runs';
    END IF;
    BEGIN
        res := target::interval;
    EXCEPTION WHEN others THEN
        res := NULL;
    END;
    IF res IS NULL OR NOT EXISTS (SELECT 1 FROM kpi.rollups r WHERE r.resolution = res) THEN
        RAISE EXCEPTION 'kpi.add_retention: unknown target "%"', target USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'A target is ''metrics'' (raw rows), ''alerts'' (resolved alerts), ''job_runs'' (job history), ''report_snapshots'' or the resolution of an existing rollup.',
            HINT = 'SELECT resolution FROM kpi.rollups lists the summary resolutions.';
    END IF;
    RETURN res::text;
END
$$;

CREATE FUNCTION kpi.add_retention(target text, keep interval, schedule interval DEFAULT '1 hour')
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t text := kpi_internal.retention_target(target);
    pid bigint;
    jid bigint;
BEGIN
    IF keep IS NULL OR keep <= interval '0' THEN
        RAISE EXCEPTION 'kpi.add_retention: keep must be a positive interval, got %', coalesce(keep::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM kpi.retention_policies p WHERE p.target = t) THEN
        RAISE EXCEPTION 'kpi.add_retention: target "%" already has a retention policy', t USING ERRCODE = 'duplicate_object',
            HINT = 'Change it with UPDATE kpi.retention_policies SET keep = ... or drop it with kpi.drop_retention(id).';
    END IF;
    INSERT INTO kpi.retention_policies (target, keep) VALUES (t, keep) RETURNING id INTO pid;
    jid := kpi.add_job('retention', jsonb_build_object('retention_id', pid), schedule);
    UPDATE kpi.retention_policies SET job_id = jid WHERE id = pid;
    RETURN pid;
END
$$;
COMMENT ON FUNCTION kpi.add_retention(text, interval, interval) IS
    'Expires data older than keep: target ''metrics'', ''alerts'' (resolved), ''job_runs'' or a rollup resolution such as ''1 minute''; returns the policy id';

CREATE FUNCTION kpi.drop_retention(policy_id bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    jid bigint;
BEGIN
    DELETE FROM kpi.retention_policies WHERE id = policy_id RETURNING job_id INTO jid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'kpi.drop_retention: no retention policy with id %', policy_id USING ERRCODE = 'undefined_object';
    END IF;
    DELETE FROM kpi.jobs WHERE id = jid;
END
$$;
COMMENT ON FUNCTION kpi.drop_retention(bigint) IS 'Drops a retention policy and its job (data already deleted stays deleted)';

-- deletes up to kpi.retention_batch_rows rows (or drops expired partitions);
-- returns (rows, more)
CREATE FUNCTION kpi_internal.run_retention(config jsonb, OUT rows bigint, OUT buckets bigint, OUT more boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p kpi.retention_policies;
    cutoff timestamptz;
    batch integer := coalesce(nullif(current_setting('kpi.retention_batch_rows', true), ''), '10000')::integer;
    part record;
    n bigint;
    saved_lock_timeout text := current_setting('lock_timeout');
BEGIN
    rows := 0;
    buckets := 0;
    more := false;
    SELECT * INTO p FROM kpi.retention_policies WHERE id = (config->>'retention_id')::bigint FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'retention policy % does not exist', config->>'retention_id' USING ERRCODE = 'undefined_object';
    END IF;
    cutoff := now() - p.keep;
    IF p.target = 'metrics' THEN
        -- whole day partitions whose range ends at or before the cutoff
        FOR part IN
            SELECT c.oid::regclass AS rel,
                   to_timestamp(substr(c.relname, 10), 'YYYYMMDD')::timestamp AT TIME ZONE 'UTC' AS day
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'kpi.metrics'::regclass AND c.relname ~ '^metrics_p[0-9]{8}$'
            ORDER BY c.relname
        LOOP
            EXIT WHEN part.day + interval '1 day' > cutoff;
            BEGIN
                -- DROP needs a brief ACCESS EXCLUSIVE lock on kpi.metrics: never queue behind long queries
                PERFORM set_config('lock_timeout', '1s', true);
                EXECUTE format('SELECT count(*) FROM %s', part.rel) INTO n;
                EXECUTE format('DROP TABLE %s', part.rel);
                rows := rows + n;
            EXCEPTION WHEN lock_not_available THEN
                more := true;
                EXIT;
            END;
        END LOOP;
        PERFORM set_config('lock_timeout', saved_lock_timeout, true);
        -- rows that landed in the default partition
        DELETE FROM kpi.metrics_default WHERE ctid = ANY (ARRAY(
            SELECT ctid FROM kpi.metrics_default WHERE ts < cutoff LIMIT batch));
        GET DIAGNOSTICS n = ROW_COUNT;
        rows := rows + n;
        more := more OR n = batch;
    ELSIF p.target = 'alerts' THEN
        DELETE FROM kpi.alerts WHERE id = ANY (ARRAY(
            SELECT id FROM kpi.alerts WHERE state = 'resolved' AND resolved_at < cutoff LIMIT batch));
        GET DIAGNOSTICS rows = ROW_COUNT;
        more := rows = batch;
    ELSIF p.target = 'report_snapshots' THEN
        DELETE FROM kpi.report_snapshots WHERE id = ANY (ARRAY(
            SELECT id FROM kpi.report_snapshots WHERE taken_at < cutoff LIMIT batch));
        GET DIAGNOSTICS rows = ROW_COUNT;
        more := rows = batch;
    ELSIF p.target = 'job_runs' THEN
        DELETE FROM kpi.job_runs WHERE id = ANY (ARRAY(
            SELECT id FROM kpi.job_runs WHERE status <> 'running' AND finished_at < cutoff LIMIT batch));
        GET DIAGNOSTICS rows = ROW_COUNT;
        more := rows = batch;
    ELSE
        DELETE FROM kpi.summaries WHERE ctid = ANY (ARRAY(
            SELECT ctid FROM kpi.summaries WHERE resolution = p.target::interval AND bucket < cutoff LIMIT batch));
        GET DIAGNOSTICS rows = ROW_COUNT;
        more := rows = batch;
    END IF;
    UPDATE kpi.retention_policies SET horizon = greatest(horizon, cutoff) WHERE id = p.id;
END
$$;

-- the time before which a rollup's source has been expired (-infinity if never)
CREATE FUNCTION kpi_internal.horizon(target text) RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(max(horizon), '-infinity') FROM kpi.retention_policies WHERE target = $1
$$;

-- a retention job's config names its policy: {"retention_id": n}
CREATE FUNCTION kpi_internal.check_retention_job(config jsonb, refs boolean) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF jsonb_typeof(config->'retention_id') IS DISTINCT FROM 'number'
       OR (refs AND NOT EXISTS (SELECT 1 FROM kpi.retention_policies WHERE id = (config->>'retention_id')::numeric)) THEN
        RAISE EXCEPTION 'retention job config needs the "retention_id" of an existing retention policy, got %', config
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Retention jobs are created by kpi.add_retention.';
    END IF;
END
$$;
COMMENT ON FUNCTION kpi_internal.check_retention_job(jsonb, boolean) IS 'Internal: checks a retention job''s config';

SELECT kpi_internal.register_job_kind('retention', 'kpi_internal.run_retention(jsonb)', 'kpi_internal.check_retention_job(jsonb, boolean)',
                              true, 'Deletes what a retention policy expires, in batches');

-- built in: job history kept for 7 days
INSERT INTO kpi.retention_policies (target, keep, builtin) VALUES ('job_runs', interval '7 days', true);
INSERT INTO kpi.jobs (kind, config, schedule_interval, builtin)
    SELECT 'retention', jsonb_build_object('retention_id', id), '1 hour', true FROM kpi.retention_policies;
UPDATE kpi.retention_policies p SET job_id = j.id FROM kpi.jobs j WHERE j.kind = 'retention';

SELECT pg_catalog.pg_extension_config_dump('kpi.retention_policies', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('kpi.retention_policies_id_seq', '');

-- internals
COMMENT ON FUNCTION kpi_internal.retention_target(text) IS 'Internal: the canonical retention target name, or 22023';
COMMENT ON FUNCTION kpi_internal.run_retention(jsonb) IS 'Internal: runs a retention job: drops whole day partitions or deletes a batch';
COMMENT ON FUNCTION kpi_internal.horizon(text) IS 'Internal: the time before which a target has been expired (-infinity if never)';

-- columns
COMMENT ON COLUMN kpi.retention_policies.id IS 'Policy id';
COMMENT ON COLUMN kpi.retention_policies.target IS 'metrics, alerts, job_runs, report_snapshots or a rollup resolution such as 00:01:00';
COMMENT ON COLUMN kpi.retention_policies.keep IS 'Age after which data is deleted';
COMMENT ON COLUMN kpi.retention_policies.job_id IS 'The job that applies it';
COMMENT ON COLUMN kpi.retention_policies.builtin IS 'Created by the extension (not dumped)';
COMMENT ON COLUMN kpi.retention_policies.created_at IS 'When the policy was created';
