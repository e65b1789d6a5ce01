-- Jobs: rollups, retention and partition maintenance, run by the background
-- worker (shared_preload_libraries = 'pg_kpi'), by kpi.run_due_jobs() from any
-- external scheduler, or one at a time by kpi.run_job(id).

CREATE TABLE kpi.jobs (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind                 text NOT NULL CHECK (kind IN ('rollup', 'retention', 'partitions', 'alerts', 'sql')),
    config               jsonb NOT NULL DEFAULT '{}',
    schedule_interval    interval NOT NULL CHECK (schedule_interval >= interval '1 second'),
    next_run             timestamptz NOT NULL DEFAULT now(),
    enabled              boolean NOT NULL DEFAULT true,
    max_runtime          interval CHECK (max_runtime > interval '0'),
    max_retries          integer DEFAULT 10 CHECK (max_retries >= 0),
    retry_period         interval NOT NULL DEFAULT '1 minute' CHECK (retry_period > interval '0'),
    consecutive_failures integer NOT NULL DEFAULT 0,
    last_run             timestamptz,
    last_success         timestamptz,
    last_error           text,
    builtin              boolean NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_next_run_idx ON kpi.jobs (next_run) WHERE enabled;
COMMENT ON TABLE kpi.jobs IS
    'Scheduled work. After max_retries consecutive failures (default 10; NULL retries forever) the job is paused (enabled = false, state paused in kpi.job_status).';

CREATE TABLE kpi.job_runs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id       bigint NOT NULL REFERENCES kpi.jobs (id) ON DELETE CASCADE,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz,
    status       text NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'success', 'failed', 'skipped')),
    rows         bigint,
    buckets      bigint,
    sqlstate     text,
    error        text,
    pid          integer NOT NULL DEFAULT pg_backend_pid(),
    CONSTRAINT job_runs_finished CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE INDEX job_runs_job_started_idx ON kpi.job_runs (job_id, started_at);
CREATE INDEX job_runs_running_idx ON kpi.job_runs (pid) WHERE status = 'running';
CREATE INDEX job_runs_finished_idx ON kpi.job_runs (finished_at);
COMMENT ON TABLE kpi.job_runs IS 'One row per job run, with its outcome; kept as long as the job_runs retention policy says';

-- ---------------------------------------------------------------------------
-- Raw-table partitions: one per UTC day.

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
            USING ERRCODE = '22023';
    END IF;
    IF to_ts - from_ts > interval '3660 days' THEN
        RAISE EXCEPTION 'kpi.create_partitions: the range % .. % spans more than 3660 days', from_ts, to_ts
            USING ERRCODE = '54000', HINT = 'Create partitions for a shorter range.';
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
        PERFORM kpi._index_partition(format('kpi.%I', name)::regclass);
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
CREATE FUNCTION kpi._maintain_partitions(config jsonb, OUT rows bigint, OUT more boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ahead interval := coalesce((config->>'ahead')::interval, interval '7 days');
    max_days integer := coalesce((config->>'max_days')::integer, 100);
    days timestamptz[];
    day timestamptz;
BEGIN
    rows := kpi.create_partitions(now() - interval '1 day', now() + ahead);
    SELECT array_agg(d ORDER BY d) INTO days
    FROM (SELECT DISTINCT date_bin('1 day', ts, '2000-01-01 00:00+00') AS d
          FROM kpi.metrics_default ORDER BY 1 LIMIT max_days + 1) x;
    more := coalesce(cardinality(days), 0) > max_days;
    FOREACH day IN ARRAY coalesce(days[1:max_days], '{}') LOOP
        rows := rows + kpi.create_partitions(day, day);
    END LOOP;
END
$$;
COMMENT ON FUNCTION kpi._maintain_partitions(jsonb) IS
    'Internal: the partitions job (config "ahead", default 7 days; "max_days" per run, default 100)';

-- ---------------------------------------------------------------------------
-- Retention

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
    'What is deleted when: target metrics (raw, whole day partitions), a summary resolution, alerts (resolved only) or job_runs. horizon: data before it has been expired.';
COMMENT ON COLUMN kpi.retention_policies.horizon IS
    'Rollups never rematerialize buckets before the horizon of their source, so expiring raw rows keeps the summaries';

-- the canonical target name, or an ERROR naming the accepted ones
CREATE FUNCTION kpi._retention_target(target text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    res interval;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'kpi.add_retention: target must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF lower(btrim(target)) IN ('metrics', 'alerts', 'job_runs') THEN
        RETURN lower(btrim(target));
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
        RAISE EXCEPTION 'kpi.add_retention: unknown target "%"', target USING ERRCODE = '22023',
            DETAIL = 'A target is ''metrics'' (raw rows), ''alerts'' (resolved alerts), ''job_runs'' (job history) or the resolution of an existing rollup.',
            HINT = 'SELECT resolution FROM kpi.rollups lists the summary resolutions.';
    END IF;
    RETURN res::text;
END
$$;

CREATE FUNCTION kpi.add_retention(target text, keep interval, schedule interval DEFAULT '1 hour')
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t text := kpi._retention_target(target);
    pid bigint;
    jid bigint;
BEGIN
    IF keep IS NULL OR keep <= interval '0' THEN
        RAISE EXCEPTION 'kpi.add_retention: keep must be a positive interval, got %', coalesce(keep::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM kpi.retention_policies p WHERE p.target = t) THEN
        RAISE EXCEPTION 'kpi.add_retention: target "%" already has a retention policy', t USING ERRCODE = '42710',
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
        RAISE EXCEPTION 'kpi.drop_retention: no retention policy with id %', policy_id USING ERRCODE = '42704';
    END IF;
    DELETE FROM kpi.jobs WHERE id = jid;
END
$$;

-- deletes up to kpi.retention_batch_rows rows (or drops expired partitions);
-- returns (rows, more)
CREATE FUNCTION kpi._run_retention(config jsonb, OUT rows bigint, OUT more boolean)
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
    more := false;
    SELECT * INTO p FROM kpi.retention_policies WHERE id = (config->>'retention_id')::bigint FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'retention policy % does not exist', config->>'retention_id' USING ERRCODE = '42704';
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
CREATE FUNCTION kpi._horizon(target text) RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(max(horizon), '-infinity') FROM kpi.retention_policies WHERE target = $1
$$;

-- ---------------------------------------------------------------------------
-- Job definitions

-- raises a clear ERROR for a malformed config at definition time
-- refs: also check that the rollup or retention policy a config names exists
CREATE FUNCTION kpi._check_job(kind text, config jsonb, refs boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF config IS NULL OR jsonb_typeof(config) <> 'object' THEN
        RAISE EXCEPTION 'job config must be a JSON object, got %', coalesce(config::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    CASE kind
    WHEN 'rollup' THEN
        IF jsonb_typeof(config->'rollup_id') IS DISTINCT FROM 'number'
           OR (refs AND NOT EXISTS (SELECT 1 FROM kpi.rollups WHERE id = (config->>'rollup_id')::numeric)) THEN
            RAISE EXCEPTION 'rollup job config needs the "rollup_id" of an existing rollup, got %', config
                USING ERRCODE = '22023', HINT = 'Rollup jobs are created by kpi.add_rollup.';
        END IF;
    WHEN 'retention' THEN
        IF jsonb_typeof(config->'retention_id') IS DISTINCT FROM 'number'
           OR (refs AND NOT EXISTS (SELECT 1 FROM kpi.retention_policies WHERE id = (config->>'retention_id')::numeric)) THEN
            RAISE EXCEPTION 'retention job config needs the "retention_id" of an existing retention policy, got %', config
                USING ERRCODE = '22023', HINT = 'Retention jobs are created by kpi.add_retention.';
        END IF;
    WHEN 'alerts' THEN
        NULL;
    WHEN 'partitions' THEN
        IF config ? 'max_days' AND (jsonb_typeof(config->'max_days') IS DISTINCT FROM 'number'
                                    OR (config->>'max_days')::numeric NOT BETWEEN 1 AND 100000) THEN
            RAISE EXCEPTION 'partitions job config "max_days" must be a number from 1 to 100000, got %', config->'max_days'
                USING ERRCODE = '22023';
        END IF;
        IF config ? 'ahead' THEN
            BEGIN
                IF (config->>'ahead')::interval <= interval '0' THEN
                    RAISE EXCEPTION USING ERRCODE = '22023';
                END IF;
            EXCEPTION WHEN others THEN
                RAISE EXCEPTION 'partitions job config "ahead" must be a positive interval, got %', config->'ahead'
                    USING ERRCODE = '22023';
            END;
        END IF;
    WHEN 'sql' THEN
        IF jsonb_typeof(config->'command') IS DISTINCT FROM 'string' OR btrim(config->>'command') = '' THEN
            RAISE EXCEPTION 'sql job config needs a non-empty string "command", got %', config USING ERRCODE = '22023';
        END IF;
    ELSE
        RAISE EXCEPTION 'unknown job kind "%"', kind USING ERRCODE = '22023',
            HINT = 'Job kinds are rollup, retention, partitions, alerts and sql.';
    END CASE;
END
$$;

CREATE FUNCTION kpi._jobs_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- a new row's rollup or retention policy is not checked: kpi.add_rollup and
    -- kpi.add_retention make them together, and pg_restore loads kpi.jobs before the
    -- tables that reference it (their job_id keys); an UPDATE must name an existing one
    PERFORM kpi._check_job(NEW.kind, NEW.config, refs => TG_OP = 'UPDATE');
    RETURN NEW;
END
$$;
CREATE TRIGGER jobs_check BEFORE INSERT OR UPDATE OF kind, config ON kpi.jobs
    FOR EACH ROW EXECUTE FUNCTION kpi._jobs_check();

CREATE FUNCTION kpi._check_schedule(func text, schedule interval) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF schedule IS NOT NULL AND schedule < interval '1 second' THEN
        RAISE EXCEPTION '%: schedule interval must be at least 1 second, got %', func, schedule
            USING ERRCODE = '22023';
    END IF;
END
$$;

CREATE FUNCTION kpi.add_job(
    kind text, config jsonb, schedule_interval interval,
    max_runtime interval DEFAULT NULL, max_retries integer DEFAULT 10,
    retry_period interval DEFAULT '1 minute', next_run timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    jid bigint;
BEGIN
    IF schedule_interval IS NULL THEN
        RAISE EXCEPTION 'kpi.add_job: schedule_interval must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM kpi._check_schedule('kpi.add_job', schedule_interval);
    PERFORM kpi._check_job(kind, config);
    INSERT INTO kpi.jobs (kind, config, schedule_interval, max_runtime, max_retries, retry_period, next_run)
    VALUES (kind, config, schedule_interval, max_runtime, max_retries,
            coalesce(retry_period, interval '1 minute'), coalesce(next_run, now()))
    RETURNING id INTO jid;
    RETURN jid;
END
$$;
COMMENT ON FUNCTION kpi.add_job(text, jsonb, interval, interval, integer, interval, timestamptz) IS
    'Adds a job: kind sql with config {"command": "..."} runs that SQL; rollup and retention jobs are created by kpi.add_rollup and kpi.add_retention';

CREATE FUNCTION kpi._job_or_fail(func text, job_id bigint) RETURNS kpi.jobs
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j kpi.jobs;
BEGIN
    SELECT * INTO j FROM kpi.jobs WHERE id = job_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION '%: no job with id %', func, coalesce(job_id::text, 'NULL') USING ERRCODE = '42704';
    END IF;
    RETURN j;
END
$$;

CREATE FUNCTION kpi.pause_job(job_id bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM kpi._job_or_fail('kpi.pause_job', job_id);
    UPDATE kpi.jobs SET enabled = false WHERE id = job_id;
END
$$;

CREATE FUNCTION kpi.resume_job(job_id bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM kpi._job_or_fail('kpi.resume_job', job_id);
    UPDATE kpi.jobs SET enabled = true, consecutive_failures = 0, next_run = least(next_run, now())
    WHERE id = job_id;
END
$$;

CREATE FUNCTION kpi.alter_job(
    job_id bigint, schedule_interval interval DEFAULT NULL, next_run timestamptz DEFAULT NULL,
    max_runtime interval DEFAULT NULL, max_retries integer DEFAULT NULL,
    retry_period interval DEFAULT NULL, config jsonb DEFAULT NULL, enabled boolean DEFAULT NULL)
RETURNS kpi.jobs
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j kpi.jobs := kpi._job_or_fail('kpi.alter_job', job_id);
BEGIN
    PERFORM kpi._check_schedule('kpi.alter_job', schedule_interval);
    IF config IS NOT NULL AND j.kind IN ('rollup', 'retention') AND config IS DISTINCT FROM j.config THEN
        RAISE EXCEPTION 'kpi.alter_job: the config of a % job is managed by pg_kpi', j.kind USING ERRCODE = '22023',
            HINT = 'Drop and re-add the rollup or retention policy instead.';
    END IF;
    UPDATE kpi.jobs AS t SET
        schedule_interval = coalesce(alter_job.schedule_interval, t.schedule_interval),
        next_run = coalesce(alter_job.next_run, t.next_run),
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
COMMENT ON FUNCTION kpi.alter_job(bigint, interval, timestamptz, interval, integer, interval, jsonb, boolean) IS
    'Changes the given settings of a job; NULL arguments keep the current value';

-- ---------------------------------------------------------------------------
-- Running jobs

-- executes the job's work in the caller's transaction; returns (rows, buckets, more)
CREATE FUNCTION kpi._execute_job(j kpi.jobs, OUT rows bigint, OUT buckets bigint, OUT more boolean)
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    rows := 0; buckets := 0; more := false;
    CASE j.kind
    WHEN 'rollup' THEN
        SELECT r.rows, r.buckets, r.more INTO rows, buckets, more
        FROM kpi._run_rollup((j.config->>'rollup_id')::bigint) r;
    WHEN 'retention' THEN
        SELECT r.rows, r.more INTO rows, more FROM kpi._run_retention(j.config) r;
    WHEN 'partitions' THEN
        SELECT r.rows, r.more INTO rows, more FROM kpi._maintain_partitions(j.config) r;
    WHEN 'alerts' THEN
        rows := kpi.resolve_quiet_alerts();
    WHEN 'sql' THEN
        EXECUTE j.config->>'command';
        GET DIAGNOSTICS n = ROW_COUNT;
        rows := n;
    END CASE;
END
$$;

-- inserts a 'running' row for a job and returns its id (NULL if the job is gone)
CREATE FUNCTION kpi._begin_run(job_id bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rid bigint;
BEGIN
    INSERT INTO kpi.job_runs (job_id) SELECT id FROM kpi.jobs WHERE id = job_id RETURNING id INTO rid;
    RETURN rid;
END
$$;

-- bookkeeping after a run; SECURITY DEFINER so that kpi.worker_role needs no rights on the job tables
CREATE FUNCTION kpi._end_run(run_id bigint, ok boolean, nrows bigint, nbuckets bigint, more boolean,
                             state text, msg text, started timestamptz)
RETURNS kpi.job_runs
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r kpi.job_runs;
    j kpi.jobs;
BEGIN
    UPDATE kpi.job_runs SET finished_at = clock_timestamp(),
        status = CASE WHEN ok THEN 'success' WHEN state = 'skipped' THEN 'skipped' ELSE 'failed' END,
        rows = nrows, buckets = nbuckets,
        sqlstate = CASE WHEN ok OR state = 'skipped' THEN NULL ELSE state END, error = msg
    WHERE id = run_id RETURNING * INTO r;
    IF state = 'skipped' THEN
        RETURN r;
    END IF;
    IF ok THEN
        UPDATE kpi.jobs SET last_run = started, last_success = started, consecutive_failures = 0,
            last_error = NULL,
            next_run = CASE WHEN more THEN now()
                            ELSE greatest(started + schedule_interval, now()) END
        WHERE id = r.job_id;
    ELSE
        UPDATE kpi.jobs SET last_run = started, consecutive_failures = consecutive_failures + 1,
            last_error = format('%s: %s', state, msg),
            next_run = now() + greatest(retry_period,
                                        least(retry_period * (consecutive_failures + 1), interval '1 hour')),
            enabled = enabled AND (max_retries IS NULL OR consecutive_failures + 1 <= max_retries)
        WHERE id = r.job_id
        RETURNING * INTO j;
        IF NOT j.enabled THEN
            RAISE WARNING 'pg_kpi: job % (%) paused after % consecutive failures', j.id, j.kind, j.consecutive_failures
                USING HINT = 'Fix the cause, then SELECT kpi.resume_job(' || j.id || ').';
        END IF;
    END IF;
    RETURN r;
END
$$;

-- runs a begun run (with the caller's search_path, which sql jobs see): locks the job (skipping it when another session runs it and
-- skip_locked), executes it in a subtransaction and records the outcome
CREATE FUNCTION kpi._execute_run(run_id bigint, skip_locked boolean DEFAULT false) RETURNS kpi.job_runs
LANGUAGE plpgsql AS $$
DECLARE
    j kpi.jobs;
    res record;
    started timestamptz := clock_timestamp();
    st text;
    msg text;
BEGIN
    IF skip_locked THEN
        SELECT jb.* INTO j FROM kpi.jobs jb JOIN kpi.job_runs r ON r.job_id = jb.id
        WHERE r.id = run_id FOR NO KEY UPDATE OF jb SKIP LOCKED;
    ELSE
        SELECT jb.* INTO j FROM kpi.jobs jb JOIN kpi.job_runs r ON r.job_id = jb.id
        WHERE r.id = run_id FOR NO KEY UPDATE OF jb;
    END IF;
    IF NOT FOUND THEN
        RETURN kpi._end_run(run_id, false, NULL, NULL, false, 'skipped', 'another session was running this job', started);
    END IF;
    BEGIN
        res := kpi._execute_job(j);
    EXCEPTION WHEN others THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        RAISE WARNING 'pg_kpi: job % (%) failed: % (SQLSTATE %)', j.id, j.kind, msg, st;
        RETURN kpi._end_run(run_id, false, NULL, NULL, false, st, msg, started);
    END;
    RETURN kpi._end_run(run_id, true, res.rows, res.buckets, res.more, NULL, NULL, started);
END
$$;

CREATE FUNCTION kpi.run_job(job_id bigint) RETURNS kpi.job_runs
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kpi._job_or_fail('kpi.run_job', job_id);
    PERFORM 1 FROM kpi.jobs j WHERE j.id = job_id FOR NO KEY UPDATE;
    RETURN kpi._execute_run(kpi._begin_run(job_id), false);
END
$$;
COMMENT ON FUNCTION kpi.run_job(bigint) IS
    'Runs one job now in this session and transaction; a failure is recorded in kpi.job_runs and reported as a WARNING';

CREATE FUNCTION kpi.run_due_jobs() RETURNS SETOF kpi.job_runs
LANGUAGE plpgsql AS $$
DECLARE
    jid bigint;
BEGIN
    FOR jid IN SELECT j.id FROM kpi.jobs j WHERE j.enabled AND j.next_run <= now() ORDER BY j.next_run, j.id LOOP
        PERFORM 1 FROM kpi.jobs j WHERE j.id = jid FOR NO KEY UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND; -- another session is running it
        RETURN NEXT kpi._execute_run(kpi._begin_run(jid), true);
    END LOOP;
END
$$;
COMMENT ON FUNCTION kpi.run_due_jobs() IS
    'Runs every enabled job whose next_run has come, once each, in this transaction (for pg_cron or another scheduler); jobs another session is running are skipped';

-- the worker: jobs due now, and runs left 'running' by a process that is gone
CREATE FUNCTION kpi._due_jobs(max_jobs integer) RETURNS SETOF bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT id FROM kpi.jobs WHERE enabled AND next_run <= now() ORDER BY next_run, id LIMIT max_jobs
$$;

CREATE FUNCTION kpi._fail_interrupted_runs() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    FOR r IN SELECT id FROM kpi.job_runs
             WHERE status = 'running' AND pid NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)
             FOR UPDATE SKIP LOCKED
    LOOP
        PERFORM kpi._end_run(r.id, false, NULL, NULL, false, '57P01',
                             'the process running the job ended before it finished', (SELECT started_at FROM kpi.job_runs WHERE id = r.id));
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

CREATE VIEW kpi.job_status AS
SELECT j.id, j.kind, j.config, j.schedule_interval,
       CASE WHEN NOT j.enabled THEN 'paused'
            WHEN EXISTS (SELECT 1 FROM kpi.job_runs r WHERE r.job_id = j.id AND r.status = 'running') THEN 'running'
            WHEN j.consecutive_failures > 0 THEN 'retrying'
            WHEN j.next_run < now() - interval '1 minute' THEN 'overdue'
            ELSE 'scheduled' END AS state,
       j.next_run, j.last_run, j.last_success, j.consecutive_failures, j.max_retries, j.last_error,
       (SELECT count(*) FROM kpi.job_runs r WHERE r.job_id = j.id AND r.started_at > now() - interval '1 day') AS runs_last_day,
       (SELECT count(*) FROM kpi.job_runs r WHERE r.job_id = j.id AND r.status = 'failed'
          AND r.started_at > now() - interval '1 day') AS failures_last_day,
       (SELECT r.finished_at - r.started_at FROM kpi.job_runs r WHERE r.job_id = j.id AND r.status = 'success'
          ORDER BY r.started_at DESC LIMIT 1) AS last_duration
FROM kpi.jobs j;
COMMENT ON VIEW kpi.job_status IS
    'Every job with its state (scheduled; running; retrying after a failure; overdue: due for over a minute and not started, usually no worker in this database; paused), next run and recent outcomes';

-- built-in jobs: partitions ahead, and job history kept for 7 days
INSERT INTO kpi.jobs (kind, config, schedule_interval, builtin) VALUES ('partitions', '{"ahead": "7 days"}', '1 hour', true);
-- threshold alerts resolve once their metric has been quiet for the cooldown
INSERT INTO kpi.jobs (kind, config, schedule_interval, builtin) VALUES ('alerts', '{}', '1 minute', true);
INSERT INTO kpi.retention_policies (target, keep, builtin) VALUES ('job_runs', interval '7 days', true);
INSERT INTO kpi.jobs (kind, config, schedule_interval, builtin)
    SELECT 'retention', jsonb_build_object('retention_id', id), '1 hour', true FROM kpi.retention_policies;
UPDATE kpi.retention_policies p SET job_id = j.id FROM kpi.jobs j WHERE j.kind = 'retention';

SELECT pg_catalog.pg_extension_config_dump('kpi.jobs', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('kpi.retention_policies', 'WHERE NOT builtin');
-- and their identities, so that rows added after a restore get fresh ids
SELECT pg_catalog.pg_extension_config_dump('kpi.jobs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('kpi.retention_policies_id_seq', '');

-- once this CREATE EXTENSION commits, the launcher starts this database's job
-- worker (a NOTICE says how jobs run when pg_kpi is not preloaded)
SELECT kpi._start_worker();
