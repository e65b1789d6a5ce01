-- Jobs: the catalog, the schedule, runs, retries and dispatch. The work
-- itself belongs to the features: each registers its job kind once with
-- kpi_internal.register_job_kind (a run function and a config validator), so this
-- file knows no kind but 'sql'. Jobs run in the background worker
-- (shared_preload_libraries = 'pg_kpi'), in kpi.run_due_jobs() from any
-- external scheduler, or one at a time in kpi.run_job(id).

-- The registered kinds. run(config jsonb, OUT rows bigint, OUT buckets bigint,
-- OUT more boolean) does one run (more: run again at once); validate(config
-- jsonb, refs boolean) raises 22023 for a malformed config (refs: also check
-- that what the config names exists). managed: the feature owns the config,
-- kpi.alter_job cannot change it.
CREATE TABLE kpi.job_kinds (
    kind         text PRIMARY KEY,
    run          regprocedure NOT NULL,
    validate     regprocedure,
    managed      boolean NOT NULL DEFAULT false,
    description  text NOT NULL
);
COMMENT ON TABLE kpi.job_kinds IS 'Registered job kinds: the function that runs one and the one that checks its config';

CREATE FUNCTION kpi_internal.register_job_kind(kind text, run regprocedure, validate regprocedure,
                                       managed boolean, description text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO kpi.job_kinds (kind, run, validate, managed, description) VALUES ($1, $2, $3, $4, $5)
$$;
COMMENT ON FUNCTION kpi_internal.register_job_kind(text, regprocedure, regprocedure, boolean, text) IS
    'Internal: a feature registers its job kind (run and validate functions) once, in its SQL file';

CREATE TABLE kpi.jobs (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind                 text NOT NULL REFERENCES kpi.job_kinds (kind),
    config               jsonb NOT NULL DEFAULT '{}',
    schedule_interval    interval CHECK (schedule_interval >= interval '1 second'),
    schedule_cron        text,
    schedule_timezone    text,
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
    created_at           timestamptz NOT NULL DEFAULT now(),
    owner                name NOT NULL DEFAULT current_user,
    CONSTRAINT jobs_one_schedule CHECK ((schedule_interval IS NULL) <> (schedule_cron IS NULL)),
    CONSTRAINT jobs_cron_timezone CHECK ((schedule_cron IS NULL) = (schedule_timezone IS NULL))
);
CREATE INDEX jobs_next_run_idx ON kpi.jobs (next_run) WHERE enabled;
COMMENT ON TABLE kpi.jobs IS
    'Scheduled work, every schedule_interval or at the times of a cron expression in a time zone. After max_retries consecutive failures (default 10; NULL retries forever) the job is paused (enabled = false, state paused in kpi.job_status).';

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
-- Job definitions

-- raises a clear ERROR for a malformed config at definition time, through the
-- kind's validator; refs: also check that what the config names exists
CREATE FUNCTION kpi_internal.check_job(kind text, config jsonb, refs boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k kpi.job_kinds;
BEGIN
    IF config IS NULL OR jsonb_typeof(config) <> 'object' THEN
        RAISE EXCEPTION 'job config must be a JSON object, got %', coalesce(config::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO k FROM kpi.job_kinds jk WHERE jk.kind = check_job.kind;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown job kind "%"', kind USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Job kinds are ' || (SELECT string_agg(jk.kind, ', ' ORDER BY jk.kind) FROM kpi.job_kinds jk) || '.';
    END IF;
    IF k.validate IS NOT NULL THEN
        EXECUTE format('SELECT %s($1, $2)', k.validate::regproc) USING config, refs;
    END IF;
END
$$;

-- A job's owner is the role its sql command runs as (kpi_internal.run_sql_as):
-- only a member of that role (superusers are members of every role) may make
-- a job with that owner, or change the command of one.
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

CREATE FUNCTION kpi_internal.jobs_check() RETURNS trigger
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
CREATE TRIGGER jobs_check BEFORE INSERT OR UPDATE OF kind, config, schedule_cron, schedule_timezone, owner ON kpi.jobs
    FOR EACH ROW EXECUTE FUNCTION kpi_internal.jobs_check();

CREATE FUNCTION kpi_internal.check_schedule(func text, schedule interval) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF schedule IS NOT NULL AND schedule < interval '1 second' THEN
        RAISE EXCEPTION '%: schedule interval must be at least 1 second, got %', func, schedule
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

-- A time zone name as SET timezone accepts it (Europe/Berlin, UTC, EST5EDT,
-- +02...): 22023 naming the argument otherwise; returns it.
CREATE FUNCTION kpi_internal.check_timezone(func text, arg text, tz text) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF tz IS NULL OR btrim(tz) = '' THEN
        RAISE EXCEPTION '%: % must name a time zone, got %', func, arg, coalesce(quote_literal(tz), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use a name from pg_timezone_names, such as Europe/Berlin or UTC.';
    END IF;
    PERFORM now() AT TIME ZONE tz;
    RETURN tz;
EXCEPTION WHEN invalid_parameter_value OR feature_not_supported THEN
    RAISE EXCEPTION '%: % "%" is not a time zone', func, arg, tz
        USING ERRCODE = 'invalid_parameter_value',
              HINT = 'Use a name from pg_timezone_names, such as Europe/Berlin or UTC.';
END
$$;
COMMENT ON FUNCTION kpi_internal.check_timezone(text, text, text) IS
    'Internal: raises 22023 naming arg unless tz is a time zone PostgreSQL knows; returns tz';

-- The cron pattern is evaluated on the wall clock of the time zone, converted
-- with PostgreSQL's time zone database: a time skipped by a daylight-saving
-- change runs just after the change (02:30 on a spring-forward night runs at
-- 03:30), a time repeated by one runs once, at its first occurrence.
CREATE FUNCTION kpi.cron_next(cron text, after timestamptz DEFAULT now(), timezone text DEFAULT NULL)
RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tz text := coalesce(timezone, current_setting('TimeZone'));
    local_next timestamp;
    t timestamptz;
BEGIN
    IF cron IS NULL OR after IS NULL THEN
        RAISE EXCEPTION 'kpi.cron_next: cron and after must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM kpi_internal.check_cron('kpi.cron_next', 'cron', cron);
    PERFORM kpi_internal.check_timezone('kpi.cron_next', 'timezone', tz);
    IF NOT isfinite(after) THEN
        RAISE EXCEPTION 'kpi.cron_next: after must be finite, got %', after USING ERRCODE = 'invalid_parameter_value';
    END IF;
    local_next := kpi_internal.cron_next_local(cron, after AT TIME ZONE tz);
    FOR i IN 1..100 LOOP
        -- a wall-clock time that clocks going back repeat maps to its later
        -- instant: take its first occurrence when that is still after "after"
        t := local_next AT TIME ZONE tz;
        IF (t - interval '1 hour') AT TIME ZONE tz = local_next AND t - interval '1 hour' > after THEN
            t := t - interval '1 hour';
        END IF;
        EXIT WHEN t > after;
        local_next := kpi_internal.cron_next_local(cron, local_next);
    END LOOP;
    RETURN t;
END
$$;
COMMENT ON FUNCTION kpi.cron_next(text, timestamptz, text) IS
    'The first time after "after" that a cron expression (minute hour day-of-month month day-of-week, or @daily, @weekly...) fires on the wall clock of timezone (default: the session''s TimeZone)';

-- When a job runs next after a run that started at "started".
CREATE FUNCTION kpi_internal.next_scheduled(j kpi.jobs, started timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN j.schedule_cron IS NOT NULL
                THEN kpi.cron_next(j.schedule_cron, greatest(started, clock_timestamp()), j.schedule_timezone)
                ELSE greatest(started + j.schedule_interval, now()) END
$$;
COMMENT ON FUNCTION kpi_internal.next_scheduled(kpi.jobs, timestamptz) IS
    'Internal: the next run of a job after one that started at started: started + schedule_interval (not before now), or the next cron time';

-- Exactly one of an interval and a cron expression; the time zone only with
-- cron (default: the caller's TimeZone). Returns the checked time zone.
CREATE FUNCTION kpi_internal.check_job_schedule(func text, schedule_interval interval, schedule_cron text,
                                                schedule_timezone text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF schedule_interval IS NULL AND schedule_cron IS NULL THEN
        RAISE EXCEPTION '%: give schedule_interval or schedule_cron', func USING ERRCODE = 'null_value_not_allowed',
            HINT = 'schedule_interval => ''1 hour'' runs every hour; schedule_cron => ''0 17 * * 5'' runs on Fridays at 17:00.';
    END IF;
    IF schedule_interval IS NOT NULL AND schedule_cron IS NOT NULL THEN
        RAISE EXCEPTION '%: give schedule_interval or schedule_cron, not both', func USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF schedule_cron IS NULL THEN
        IF schedule_timezone IS NOT NULL THEN
            RAISE EXCEPTION '%: schedule_timezone applies to schedule_cron only', func USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM kpi_internal.check_schedule(func, schedule_interval);
        RETURN NULL;
    END IF;
    PERFORM kpi_internal.check_cron(func, 'schedule_cron', schedule_cron);
    RETURN kpi_internal.check_timezone(func, 'schedule_timezone', coalesce(schedule_timezone, current_setting('TimeZone')));
END
$$;
COMMENT ON FUNCTION kpi_internal.check_job_schedule(text, interval, text, text) IS
    'Internal: checks a job''s schedule (one of an interval and a cron expression); returns the time zone of a cron schedule';

-- A job's run limits, checked before they reach the table's constraints so
-- that the error names the argument (22023).
CREATE FUNCTION kpi_internal.check_job_limits(func text, max_runtime interval, max_retries integer,
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

CREATE FUNCTION kpi.add_job(
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

CREATE FUNCTION kpi_internal.job_or_fail(func text, job_id bigint) RETURNS kpi.jobs
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j kpi.jobs;
BEGIN
    SELECT * INTO j FROM kpi.jobs WHERE id = job_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION '%: no job with id %', func, coalesce(job_id::text, 'NULL') USING ERRCODE = 'undefined_object';
    END IF;
    RETURN j;
END
$$;

CREATE FUNCTION kpi.pause_job(job_id bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM kpi_internal.job_or_fail('kpi.pause_job', job_id);
    UPDATE kpi.jobs SET enabled = false WHERE id = job_id;
END
$$;

COMMENT ON FUNCTION kpi.pause_job(bigint) IS 'Pauses a job (enabled = false); kpi.resume_job starts it again';

CREATE FUNCTION kpi.resume_job(job_id bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM kpi_internal.job_or_fail('kpi.resume_job', job_id);
    UPDATE kpi.jobs SET enabled = true, consecutive_failures = 0, next_run = least(next_run, now())
    WHERE id = job_id;
END
$$;
COMMENT ON FUNCTION kpi.resume_job(bigint) IS 'Resumes a paused job: enabled, failures reset, due now if it was overdue';

CREATE FUNCTION kpi.alter_job(
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

-- ---------------------------------------------------------------------------
-- Running jobs

-- executes the job's work in the caller's transaction through its kind's run
-- function; returns (rows, buckets, more)
CREATE FUNCTION kpi_internal.execute_job(j kpi.jobs, OUT rows bigint, OUT buckets bigint, OUT more boolean)
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

-- inserts a 'running' row for a job and returns its id (NULL if the job is gone)
CREATE FUNCTION kpi_internal.begin_run(job_id bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rid bigint;
BEGIN
    INSERT INTO kpi.job_runs (job_id) SELECT id FROM kpi.jobs WHERE id = job_id RETURNING id INTO rid;
    RETURN rid;
END
$$;

-- bookkeeping after a run; SECURITY DEFINER so that kpi.worker_role needs no rights on the job tables
CREATE FUNCTION kpi_internal.end_run(run_id bigint, ok boolean, nrows bigint, nbuckets bigint, more boolean,
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
            next_run = CASE WHEN more THEN now() ELSE kpi_internal.next_scheduled(jobs, started) END
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
CREATE FUNCTION kpi_internal.execute_run(run_id bigint, skip_locked boolean DEFAULT false) RETURNS kpi.job_runs
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
        RETURN kpi_internal.end_run(run_id, false, NULL, NULL, false, 'skipped', 'another session was running this job', started);
    END IF;
    IF skip_locked AND NOT j.enabled THEN
        -- disabled after the worker picked it: disabling takes effect at once
        -- (and an UPDATE of the job waits for a run holding its row)
        RETURN kpi_internal.end_run(run_id, false, NULL, NULL, false, 'skipped', 'the job was disabled', started);
    END IF;
    BEGIN
        res := kpi_internal.execute_job(j);
    EXCEPTION WHEN others THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        RAISE WARNING 'pg_kpi: job % (%) failed: % (SQLSTATE %)', j.id, j.kind, msg, st;
        RETURN kpi_internal.end_run(run_id, false, NULL, NULL, false, st, msg, started);
    END;
    RETURN kpi_internal.end_run(run_id, true, res.rows, res.buckets, res.more, NULL, NULL, started);
END
$$;

CREATE FUNCTION kpi.run_job(job_id bigint) RETURNS kpi.job_runs
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kpi_internal.job_or_fail('kpi.run_job', job_id);
    PERFORM 1 FROM kpi.jobs j WHERE j.id = job_id FOR NO KEY UPDATE;
    RETURN kpi_internal.execute_run(kpi_internal.begin_run(job_id), false);
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
        RETURN NEXT kpi_internal.execute_run(kpi_internal.begin_run(jid), true);
    END LOOP;
END
$$;
COMMENT ON FUNCTION kpi.run_due_jobs() IS
    'Runs every enabled job whose next_run has come, once each, in this transaction (for pg_cron or another scheduler); jobs another session is running are skipped';

-- the worker: jobs due now, and runs left 'running' by a process that is gone
CREATE FUNCTION kpi_internal.due_jobs(max_jobs integer) RETURNS SETOF bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT id FROM kpi.jobs WHERE enabled AND next_run <= now() ORDER BY next_run, id LIMIT max_jobs
$$;

CREATE FUNCTION kpi_internal.fail_interrupted_runs() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    FOR r IN SELECT id FROM kpi.job_runs
             WHERE status = 'running' AND pid NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)
             FOR UPDATE SKIP LOCKED
    LOOP
        PERFORM kpi_internal.end_run(r.id, false, NULL, NULL, false, '57P01',
                             'the process running the job ended before it finished', (SELECT started_at FROM kpi.job_runs WHERE id = r.id));
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

CREATE VIEW kpi.job_status AS
SELECT j.id, j.kind, j.config, j.schedule_interval, j.schedule_cron, j.schedule_timezone,
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

-- ---------------------------------------------------------------------------
-- The 'sql' kind: config {"command": "..."} runs that SQL as the job's owner
-- (a security-restricted operation, as REFRESH MATERIALIZED VIEW runs as the
-- view's owner) with the caller's search_path; rows is the command's row count.

CREATE FUNCTION kpi_internal.run_sql_job(config jsonb, OUT rows bigint, OUT buckets bigint, OUT more boolean)
LANGUAGE plpgsql AS $$
BEGIN
    rows := kpi_internal.run_sql_as(
        coalesce(nullif(current_setting('pg_kpi.job_owner', true), ''), current_user), config->>'command');
    buckets := 0; more := false;
END
$$;
COMMENT ON FUNCTION kpi_internal.run_sql_job(jsonb) IS 'Internal: runs an sql job';

CREATE FUNCTION kpi_internal.check_sql_job(config jsonb, refs boolean) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF jsonb_typeof(config->'command') IS DISTINCT FROM 'string' OR btrim(config->>'command') = '' THEN
        RAISE EXCEPTION 'sql job config needs a non-empty string "command", got %', config USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;
COMMENT ON FUNCTION kpi_internal.check_sql_job(jsonb, boolean) IS 'Internal: checks an sql job''s config';

SELECT kpi_internal.register_job_kind('sql', 'kpi_internal.run_sql_job(jsonb)', 'kpi_internal.check_sql_job(jsonb, boolean)', false,
                              'Runs the SQL in config.command');

SELECT pg_catalog.pg_extension_config_dump('kpi.jobs', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('kpi.jobs_id_seq', '');

-- once this CREATE EXTENSION commits, the launcher starts this database's job
-- worker (a NOTICE says how jobs run when pg_kpi is not preloaded)
SELECT kpi_internal.start_worker();

COMMENT ON FUNCTION kpi.worker_status() IS
    'The launcher''s view: each database with its job worker''s pid and state (running, starting, waiting, no extension, held)';

-- internals
COMMENT ON FUNCTION kpi_internal.check_job(text, jsonb, boolean) IS 'Internal: checks a job config through its kind''s validator';
COMMENT ON FUNCTION kpi_internal.jobs_check() IS 'Internal: trigger checking kpi.jobs rows';
COMMENT ON FUNCTION kpi_internal.run_sql_as(text, text) IS
    'Internal: runs an sql job''s command as its owner in a security-restricted operation (no SET ROLE back); returns the rows processed';
COMMENT ON FUNCTION kpi_internal.cron_next_local(text, timestamp) IS
    'Internal: the first wall-clock time after "after" that a cron expression matches (kpi.cron_next adds the time zone)';
COMMENT ON FUNCTION kpi_internal.check_cron(text, text, text) IS 'Internal: raises 22023 naming arg when a cron expression is malformed or never fires';
COMMENT ON FUNCTION kpi_internal.check_schedule(text, interval) IS 'Internal: a schedule is at least 1 second';
COMMENT ON FUNCTION kpi_internal.job_or_fail(text, bigint) IS 'Internal: the job with this id, or 42704';
COMMENT ON FUNCTION kpi_internal.execute_job(kpi.jobs) IS 'Internal: runs a job''s kind function in the caller''s transaction';
COMMENT ON FUNCTION kpi_internal.begin_run(bigint) IS 'Internal: records the start of a run';
COMMENT ON FUNCTION kpi_internal.end_run(bigint, boolean, bigint, bigint, boolean, text, text, timestamptz) IS 'Internal: records a run''s outcome, schedules the next run, retries with backoff, pauses after max_retries';
COMMENT ON FUNCTION kpi_internal.execute_run(bigint, boolean) IS 'Internal: locks the job, executes it in a subtransaction and records the outcome';
COMMENT ON FUNCTION kpi_internal.due_jobs(integer) IS 'Internal: the enabled jobs whose next_run has come';
COMMENT ON FUNCTION kpi_internal.fail_interrupted_runs() IS 'Internal: marks runs left running by a process that is gone as failed (57P01)';
COMMENT ON FUNCTION kpi_internal.start_worker() IS 'Internal: asks the launcher, at commit, for this database''s job worker (a NOTICE without preloading)';

-- columns
COMMENT ON COLUMN kpi.jobs.id IS 'Job id';
COMMENT ON COLUMN kpi.jobs.kind IS 'Registered kind (kpi.job_kinds): rollup, retention, partitions, alerts, rules, report, sql';
COMMENT ON COLUMN kpi.jobs.config IS 'Kind-specific configuration (JSON object)';
COMMENT ON COLUMN kpi.jobs.schedule_interval IS 'Time between runs (at least 1 second); NULL for a cron schedule';
COMMENT ON COLUMN kpi.jobs.schedule_cron IS 'Cron expression of the run times (minute hour day-of-month month day-of-week), on the wall clock of schedule_timezone; NULL for an interval schedule';
COMMENT ON COLUMN kpi.jobs.schedule_timezone IS 'Time zone of schedule_cron (a pg_timezone_names name)';
COMMENT ON COLUMN kpi.jobs.next_run IS 'When the job is due next';
COMMENT ON COLUMN kpi.jobs.enabled IS 'false: paused';
COMMENT ON COLUMN kpi.jobs.max_runtime IS 'Longest a run may take before it is cancelled (NULL: no limit)';
COMMENT ON COLUMN kpi.jobs.max_retries IS 'Consecutive failures before the job pauses (default 10; NULL: never)';
COMMENT ON COLUMN kpi.jobs.retry_period IS 'Base delay before a retry (grows with each failure, at most 1 hour)';
COMMENT ON COLUMN kpi.jobs.consecutive_failures IS 'Failures since the last success';
COMMENT ON COLUMN kpi.jobs.last_run IS 'Start of the last run';
COMMENT ON COLUMN kpi.jobs.last_success IS 'Start of the last successful run';
COMMENT ON COLUMN kpi.jobs.last_error IS 'SQLSTATE and message of the last failure';
COMMENT ON COLUMN kpi.jobs.builtin IS 'Created by the extension (not dumped)';
COMMENT ON COLUMN kpi.jobs.created_at IS 'When the job was created';
COMMENT ON COLUMN kpi.jobs.owner IS 'The role an sql job''s command runs as (the creator by default; only its members may change the command or the owner)';
COMMENT ON COLUMN kpi.job_runs.id IS 'Run id';
COMMENT ON COLUMN kpi.job_runs.job_id IS 'The job';
COMMENT ON COLUMN kpi.job_runs.started_at IS 'When the run started';
COMMENT ON COLUMN kpi.job_runs.finished_at IS 'When it ended (NULL while running)';
COMMENT ON COLUMN kpi.job_runs.status IS 'running, success, failed or skipped';
COMMENT ON COLUMN kpi.job_runs.rows IS 'Rows the run wrote or deleted';
COMMENT ON COLUMN kpi.job_runs.buckets IS 'Buckets a rollup run materialized';
COMMENT ON COLUMN kpi.job_runs.sqlstate IS 'SQLSTATE of a failure';
COMMENT ON COLUMN kpi.job_runs.error IS 'Message of a failure';
COMMENT ON COLUMN kpi.job_runs.pid IS 'Process that ran it';
COMMENT ON COLUMN kpi.job_kinds.kind IS 'Kind name';
COMMENT ON COLUMN kpi.job_kinds.run IS 'Function running one job: (config jsonb, OUT rows, OUT buckets, OUT more)';
COMMENT ON COLUMN kpi.job_kinds.validate IS 'Function checking a config: (config jsonb, refs boolean)';
COMMENT ON COLUMN kpi.job_kinds.managed IS 'The config belongs to the feature (kpi.alter_job cannot change it)';
COMMENT ON COLUMN kpi.job_kinds.description IS 'What jobs of this kind do';
COMMENT ON COLUMN kpi.job_status.id IS 'Job id';
COMMENT ON COLUMN kpi.job_status.kind IS 'Job kind';
COMMENT ON COLUMN kpi.job_status.config IS 'Job configuration';
COMMENT ON COLUMN kpi.job_status.schedule_interval IS 'Time between runs (NULL for a cron schedule)';
COMMENT ON COLUMN kpi.job_status.schedule_cron IS 'Cron expression of the run times';
COMMENT ON COLUMN kpi.job_status.schedule_timezone IS 'Time zone of the cron expression';
COMMENT ON COLUMN kpi.job_status.state IS 'scheduled, running, retrying, overdue or paused';
COMMENT ON COLUMN kpi.job_status.next_run IS 'When the job is due next';
COMMENT ON COLUMN kpi.job_status.last_run IS 'Start of the last run';
COMMENT ON COLUMN kpi.job_status.last_success IS 'Start of the last successful run';
COMMENT ON COLUMN kpi.job_status.consecutive_failures IS 'Failures since the last success';
COMMENT ON COLUMN kpi.job_status.max_retries IS 'Failures before pausing';
COMMENT ON COLUMN kpi.job_status.last_error IS 'Last failure';
COMMENT ON COLUMN kpi.job_status.runs_last_day IS 'Runs in the last 24 hours';
COMMENT ON COLUMN kpi.job_status.failures_last_day IS 'Failed runs in the last 24 hours';
COMMENT ON COLUMN kpi.job_status.last_duration IS 'Duration of the last successful run';
