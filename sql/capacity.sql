-- Capacity planning (the replaced scalability manager and the portal's load
-- tests): scaling events and policies, the scaling-efficiency score, a
-- capacity forecast from a metric's trend, and load-test reports. The
-- formulas are kpi_core::capacity; cut-offs are arguments with the replaced
-- values as defaults.

CREATE TABLE kpi.scaling_policies (
    service               text PRIMARY KEY CHECK (btrim(service) <> ''),
    metric                text,
    min_instances         integer NOT NULL CHECK (min_instances >= 0),
    max_instances         integer NOT NULL,
    scale_up_threshold    float8,
    scale_down_threshold  float8,
    cooldown              interval NOT NULL DEFAULT '5 minutes' CHECK (cooldown >= interval '0'),
    created_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT scaling_policies_instances CHECK (max_instances >= min_instances),
    CONSTRAINT scaling_policies_thresholds CHECK (scale_down_threshold < scale_up_threshold)
);
COMMENT ON TABLE kpi.scaling_policies IS
    'How a service scales: instance bounds, the metric and thresholds that scale it up and down, and the cooldown between events';
COMMENT ON COLUMN kpi.scaling_policies.service IS 'Service name';
COMMENT ON COLUMN kpi.scaling_policies.metric IS 'The metric that triggers scaling (cpu_utilization, queue_length...)';
COMMENT ON COLUMN kpi.scaling_policies.min_instances IS 'Fewest instances (>= 0)';
COMMENT ON COLUMN kpi.scaling_policies.max_instances IS 'Most instances (>= min_instances)';
COMMENT ON COLUMN kpi.scaling_policies.scale_up_threshold IS 'The metric value above which the service scales up';
COMMENT ON COLUMN kpi.scaling_policies.scale_down_threshold IS 'The metric value below which it scales down (below scale_up_threshold)';
COMMENT ON COLUMN kpi.scaling_policies.cooldown IS 'Least time between two scaling events';
COMMENT ON COLUMN kpi.scaling_policies.created_at IS 'When the policy was added';
SELECT pg_catalog.pg_extension_config_dump('kpi.scaling_policies', '');

CREATE TABLE kpi.scaling_events (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service          text NOT NULL CHECK (btrim(service) <> ''),
    occurred_at      timestamptz NOT NULL DEFAULT now(),
    trigger          text NOT NULL,
    direction        text NOT NULL,
    capacity_before  float8 NOT NULL,
    capacity_after   float8 NOT NULL,
    duration         interval NOT NULL DEFAULT '0',
    trigger_value    float8,
    threshold        float8,
    success          boolean NOT NULL,
    error            text,
    cost_impact      numeric,
    CONSTRAINT scaling_events_trigger CHECK (trigger IN ('cpu', 'memory', 'request_rate', 'response_time',
                                                          'queue_length', 'custom', 'scheduled', 'manual')),
    CONSTRAINT scaling_events_direction CHECK (direction IN ('up', 'down', 'out', 'in')),
    CONSTRAINT scaling_events_capacity CHECK (capacity_before >= 0 AND capacity_after >= 0
                                              AND capacity_before < 'Infinity' AND capacity_after < 'Infinity'),
    CONSTRAINT scaling_events_duration CHECK (duration >= interval '0')
);
CREATE INDEX scaling_events_service_idx ON kpi.scaling_events (service, occurred_at);
COMMENT ON TABLE kpi.scaling_events IS 'Scaling events of services: trigger, direction, capacity before and after, duration, outcome and cost';
COMMENT ON COLUMN kpi.scaling_events.id IS 'Event id';
COMMENT ON COLUMN kpi.scaling_events.service IS 'Service that scaled';
COMMENT ON COLUMN kpi.scaling_events.occurred_at IS 'When it started';
COMMENT ON COLUMN kpi.scaling_events.trigger IS 'cpu, memory, request_rate, response_time, queue_length, custom, scheduled or manual';
COMMENT ON COLUMN kpi.scaling_events.direction IS 'up, down (vertical), out, in (horizontal)';
COMMENT ON COLUMN kpi.scaling_events.capacity_before IS 'Capacity before (instances, cores, GB...; >= 0)';
COMMENT ON COLUMN kpi.scaling_events.capacity_after IS 'Capacity after (>= 0)';
COMMENT ON COLUMN kpi.scaling_events.duration IS 'How long the scaling took (>= 0)';
COMMENT ON COLUMN kpi.scaling_events.trigger_value IS 'The metric value that triggered it';
COMMENT ON COLUMN kpi.scaling_events.threshold IS 'The threshold it crossed';
COMMENT ON COLUMN kpi.scaling_events.success IS 'Whether it succeeded';
COMMENT ON COLUMN kpi.scaling_events.error IS 'Why it failed';
COMMENT ON COLUMN kpi.scaling_events.cost_impact IS 'Cost change (numeric money, negative for savings)';
SELECT pg_catalog.pg_extension_config_dump('kpi.scaling_events', '');
SELECT pg_catalog.pg_extension_config_dump('kpi.scaling_events_id_seq', '');

-- Names the field of a bad scaling event (the CHECK constraints stay as a backstop).
CREATE FUNCTION kpi_internal.scaling_events_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.direction IS NOT NULL AND NEW.direction NOT IN ('up', 'down', 'out', 'in') THEN
        RAISE EXCEPTION 'kpi.scaling_events: direction must be up, down, out or in, got "%"', NEW.direction
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.trigger IS NOT NULL AND NEW.trigger NOT IN ('cpu', 'memory', 'request_rate', 'response_time', 'queue_length',
                                                       'custom', 'scheduled', 'manual') THEN
        RAISE EXCEPTION 'kpi.scaling_events: trigger must be cpu, memory, request_rate, response_time, queue_length, custom, scheduled or manual, got "%"', NEW.trigger
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.capacity_before < 0 OR NEW.capacity_before = 'NaN' OR NEW.capacity_before = 'Infinity' THEN
        RAISE EXCEPTION 'kpi.scaling_events: capacity_before must be a finite number >= 0, got %', NEW.capacity_before
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.capacity_after < 0 OR NEW.capacity_after = 'NaN' OR NEW.capacity_after = 'Infinity' THEN
        RAISE EXCEPTION 'kpi.scaling_events: capacity_after must be a finite number >= 0, got %', NEW.capacity_after
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.duration < interval '0' THEN
        RAISE EXCEPTION 'kpi.scaling_events: duration must not be negative, got %', NEW.duration
            USING ERRCODE = 'check_violation';
    END IF;
    IF NOT isfinite(NEW.occurred_at) THEN
        RAISE EXCEPTION 'kpi.scaling_events: occurred_at must be a finite time, got %', NEW.occurred_at
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.trigger_value IN ('NaN', 'Infinity', '-Infinity') OR NEW.threshold IN ('NaN', 'Infinity', '-Infinity') THEN
        RAISE EXCEPTION 'kpi.scaling_events: trigger_value and threshold must be finite numbers, got % and %',
            NEW.trigger_value, NEW.threshold USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.cost_impact IN ('NaN', 'Infinity', '-Infinity') THEN
        RAISE EXCEPTION 'kpi.scaling_events: cost_impact must be a finite amount, got %', NEW.cost_impact
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION kpi_internal.scaling_events_check() IS 'Internal: trigger naming the field of a bad scaling event';
CREATE TRIGGER scaling_events_check BEFORE INSERT OR UPDATE ON kpi.scaling_events
    FOR EACH ROW EXECUTE FUNCTION kpi_internal.scaling_events_check();

CREATE FUNCTION kpi_internal.scaling_policies_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.min_instances < 0 THEN
        RAISE EXCEPTION 'kpi.scaling_policies: min_instances must be >= 0, got %', NEW.min_instances USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.max_instances < NEW.min_instances THEN
        RAISE EXCEPTION 'kpi.scaling_policies: max_instances (%) is below min_instances (%)', NEW.max_instances, NEW.min_instances
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.scale_up_threshold IN ('NaN', 'Infinity', '-Infinity') OR NEW.scale_down_threshold IN ('NaN', 'Infinity', '-Infinity') THEN
        RAISE EXCEPTION 'kpi.scaling_policies: scale_up_threshold and scale_down_threshold must be finite numbers, got % and %',
            NEW.scale_up_threshold, NEW.scale_down_threshold USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.scale_down_threshold >= NEW.scale_up_threshold THEN
        RAISE EXCEPTION 'kpi.scaling_policies: scale_down_threshold (%) must be below scale_up_threshold (%)',
            NEW.scale_down_threshold, NEW.scale_up_threshold USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.cooldown < interval '0' THEN
        RAISE EXCEPTION 'kpi.scaling_policies: cooldown must not be negative, got %', NEW.cooldown USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION kpi_internal.scaling_policies_check() IS 'Internal: trigger naming the field of a bad scaling policy';
CREATE TRIGGER scaling_policies_check BEFORE INSERT OR UPDATE ON kpi.scaling_policies
    FOR EACH ROW EXECUTE FUNCTION kpi_internal.scaling_policies_check();

-- The replaced scalability manager's efficiency of a service's scaling over
-- the window before "at".
CREATE FUNCTION kpi_internal.scaling_efficiency(svc text, win interval, at timestamptz,
                                                OUT events bigint, OUT successes bigint, OUT success_rate float8,
                                                OUT mean_duration interval, OUT events_per_hour float8,
                                                OUT cost numeric, OUT score float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
    ok bigint;
    dur float8;
    c numeric;
    hours float8;
BEGIN
    IF svc IS NULL OR win IS NULL OR at IS NULL THEN
        RAISE EXCEPTION 'kpi.scaling_efficiency: service, window and at must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF win <= interval '0' THEN
        RAISE EXCEPTION 'kpi.scaling_efficiency: window must be positive, got %', win USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT isfinite(at) THEN
        RAISE EXCEPTION 'kpi.scaling_efficiency: at must be a finite time, got %', at USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT FROM kpi.scaling_events e WHERE e.service = svc)
       AND NOT EXISTS (SELECT FROM kpi.scaling_policies p WHERE p.service = svc) THEN
        RAISE NOTICE 'kpi.scaling_efficiency: there is no service "%" (no scaling events, no policy)', svc
            USING HINT = 'Check the name for a typo.';
    END IF;
    SELECT count(*), count(*) FILTER (WHERE e.success), avg(extract(epoch FROM e.duration))::float8, sum(e.cost_impact)
    INTO n, ok, dur, c
    FROM kpi.scaling_events e
    WHERE e.service = svc AND e.occurred_at >= at - win AND e.occurred_at < at;
    hours := extract(epoch FROM win)::float8 / 3600;
    events := n;
    successes := ok;
    success_rate := ok::float8 / nullif(n, 0);
    mean_duration := make_interval(secs => dur);
    events_per_hour := n / hours;
    cost := coalesce(c, 0);
    score := CASE WHEN n > 0 THEN kpi_internal.efficiency_score(ok::float8 / n, dur, n / hours) END;
END
$$;
COMMENT ON FUNCTION kpi_internal.scaling_efficiency(text, interval, timestamptz) IS 'Internal: the body of kpi.scaling_efficiency';

CREATE FUNCTION kpi.scaling_efficiency(service text, "window" interval DEFAULT '24 hours', at timestamptz DEFAULT now())
RETURNS TABLE (service text, events bigint, successes bigint, success_rate float8, mean_duration interval,
               events_per_hour float8, cost numeric, score float8)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT $1, x.* FROM kpi_internal.scaling_efficiency($1, $2, $3) x
$$;
COMMENT ON FUNCTION kpi.scaling_efficiency(text, interval, timestamptz) IS
    'Scaling of a service over the window before at: events, success rate, mean duration, events per hour, cost and the replaced efficiency score (40 x success rate + max(0, 30 - mean minutes x 10) + max(0, 30 - |events per hour - 2| x 5); NULL without events)';

-- A capacity forecast from a metric's trend over the history before "at"
-- (all series, or the series whose tag service is the given one).
CREATE FUNCTION kpi_internal.capacity_forecast(m text, svc text, horizon interval, at timestamptz, history interval,
                                               level float8, min_points integer, major_growth_pct float8,
                                               gradual_growth_pct float8, reduction_pct float8,
                                               OUT points bigint, OUT current float8, OUT forecast float8,
                                               OUT forecast_low float8, OUT forecast_high float8, OUT growth_pct float8,
                                               OUT confidence float8, OUT recommendation text)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    tr kpi.trend;
    win interval;
    cur float8;
    f float8;
    pi float8[];
    g float8;
    res interval;
BEGIN
    IF m IS NULL OR horizon IS NULL OR at IS NULL OR history IS NULL THEN
        RAISE EXCEPTION 'kpi.capacity_forecast: metric, horizon, at and history must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF horizon <= interval '0' THEN
        RAISE EXCEPTION 'kpi.capacity_forecast: horizon must be positive, got %', horizon USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF history <= interval '0' THEN
        RAISE EXCEPTION 'kpi.capacity_forecast: history must be positive, got %', history USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT isfinite(at) THEN
        RAISE EXCEPTION 'kpi.capacity_forecast: at must be a finite time, got %', at USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF level IS NULL OR NOT (level > 0 AND level < 1) THEN
        RAISE EXCEPTION 'kpi.capacity_forecast: level must be between 0 and 1 (exclusive), got %', coalesce(level::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF min_points IS NULL OR min_points < 3 THEN
        RAISE EXCEPTION 'kpi.capacity_forecast: min_points must be at least 3, got %', coalesce(min_points::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM kpi_internal.check_cutoff('kpi.capacity_forecast', 'major_growth_pct', major_growth_pct, 0),
            kpi_internal.check_cutoff('kpi.capacity_forecast', 'gradual_growth_pct', gradual_growth_pct, 0),
            kpi_internal.check_cutoff('kpi.capacity_forecast', 'reduction_pct', reduction_pct, 0);
    IF major_growth_pct < gradual_growth_pct THEN
        RAISE EXCEPTION 'kpi.capacity_forecast: major_growth_pct (%) must not be below gradual_growth_pct (%)',
            major_growth_pct, gradual_growth_pct USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM kpi_internal.check_metric('kpi.capacity_forecast', m);
    IF svc IS NOT NULL
       AND NOT EXISTS (SELECT FROM kpi.metrics x WHERE x.metric = m AND x.tags @> jsonb_build_object('service', svc))
       AND NOT EXISTS (SELECT FROM kpi.summaries x WHERE x.metric = m AND x.series @> jsonb_build_object('service', svc)) THEN
        RAISE NOTICE 'kpi.capacity_forecast: metric "%" has no series with service "%"', m, svc
            USING HINT = 'The service is matched against the tag "service" of the metric''s rows.';
    END IF;
    win := coalesce((SELECT d.measurement_window FROM kpi.metric_definitions d WHERE d.metric = m), interval '1 hour');
    IF svc IS NULL THEN
        SELECT s.trend INTO tr FROM kpi_internal.range_stats_many(ARRAY[m], at - history, at, 0, false) s;
        SELECT s.mean INTO cur FROM kpi_internal.range_stats_many(ARRAY[m], at - win, at, 0, false) s;
    ELSE
        -- the service's series: whole buckets from summaries of a rollup grouped by service
        -- where one covers them, raw rows otherwise
        -- (whole buckets from the first boundary after at - history, raw rows before it)
        res := kpi_internal.report_resolution(m, interval '1 hour');
        SELECT kpi.trend_agg(p.trend) INTO tr
        FROM (SELECT b.trend FROM kpi_internal.series_buckets(m, res, kpi_internal.ceil_bucket(res, at - history), at,
                                                              jsonb_build_object('service', svc)) b
              UNION ALL
              SELECT kpi.trend_agg(x.ts, x.value) FROM kpi.metrics x
              WHERE x.metric = m AND x.tags @> jsonb_build_object('service', svc)
                AND x.ts >= at - history AND x.ts < least(kpi_internal.ceil_bucket(res, at - history), at)) p;
        SELECT avg(x.value) INTO cur FROM kpi.metrics x
        WHERE x.metric = m AND x.tags @> jsonb_build_object('service', svc) AND x.ts >= at - win AND x.ts < at;
    END IF;
    points := coalesce(kpi.trend_count(tr), 0);
    current := cur;
    f := kpi.forecast(tr, at + horizon);
    IF points >= min_points AND f IS NOT NULL THEN
        pi := kpi.prediction_interval(tr, at + horizon, level);
        forecast := f; forecast_low := pi[1]; forecast_high := pi[2];
        growth_pct := CASE WHEN cur IS NOT NULL AND cur <> 0 THEN (f - cur) / abs(cur) * 100 END;
        confidence := CASE WHEN kpi.correlation(tr) IS NOT NULL THEN least(abs(kpi.correlation(tr)) * 100, 100) END;
        recommendation := kpi_internal.growth_advice(growth_pct, major_growth_pct, gradual_growth_pct, reduction_pct);
    ELSE
        recommendation := 'insufficient_data';
    END IF;
END
$$;
COMMENT ON FUNCTION kpi_internal.capacity_forecast(text, text, interval, timestamptz, interval, float8, integer, float8, float8, float8) IS
    'Internal: the body of kpi.capacity_forecast';

CREATE FUNCTION kpi.capacity_forecast(metric text, service text DEFAULT NULL, horizon interval DEFAULT '30 days',
                                      at timestamptz DEFAULT now(), history interval DEFAULT '30 days',
                                      level float8 DEFAULT 0.95, min_points integer DEFAULT 10,
                                      major_growth_pct float8 DEFAULT 50, gradual_growth_pct float8 DEFAULT 20,
                                      reduction_pct float8 DEFAULT 20)
RETURNS TABLE (metric text, service text, points bigint, current float8, forecast float8, forecast_low float8,
               forecast_high float8, growth_pct float8, confidence float8, recommendation text)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
    SELECT $1, $2, x.* FROM kpi_internal.capacity_forecast($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) x
$$;
COMMENT ON FUNCTION kpi.capacity_forecast(text, text, interval, timestamptz, interval, float8, integer, float8, float8, float8) IS
    'A metric''s capacity forecast: the least-squares line over history (optionally the series tagged service) at at + horizon with its prediction interval, the growth from the current value (mean over the measurement window), confidence = min(|r| x 100, 100), and the replaced advice (major_expansion above 50 %, gradual_increase above 20 %, cost_reduction below -20 %, insufficient_data under min_points values)';

CREATE TABLE kpi.load_test_results (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scenario           text NOT NULL CHECK (btrim(scenario) <> ''),
    run_at             timestamptz NOT NULL DEFAULT now(),
    users              integer NOT NULL,
    duration           interval NOT NULL,
    expected_ms        float8 NOT NULL,
    requests           bigint NOT NULL,
    errors             bigint NOT NULL DEFAULT 0,
    response_times_ms  float8[] NOT NULL DEFAULT '{}',
    metadata           jsonb NOT NULL DEFAULT '{}',
    CONSTRAINT load_test_results_users CHECK (users > 0),
    CONSTRAINT load_test_results_duration CHECK (duration > interval '0'),
    CONSTRAINT load_test_results_expected CHECK (expected_ms > 0 AND expected_ms < 'Infinity'),
    CONSTRAINT load_test_results_requests CHECK (requests >= 0 AND errors >= 0 AND errors <= requests)
);
CREATE INDEX load_test_results_scenario_idx ON kpi.load_test_results (scenario, run_at);
COMMENT ON TABLE kpi.load_test_results IS 'Load-test runs: scenario, users, duration, expected response time, requests, errors and the response times measured';
COMMENT ON COLUMN kpi.load_test_results.id IS 'Run id';
COMMENT ON COLUMN kpi.load_test_results.scenario IS 'Scenario name';
COMMENT ON COLUMN kpi.load_test_results.run_at IS 'When the run started';
COMMENT ON COLUMN kpi.load_test_results.users IS 'Concurrent users (> 0)';
COMMENT ON COLUMN kpi.load_test_results.duration IS 'How long the run lasted (> 0)';
COMMENT ON COLUMN kpi.load_test_results.expected_ms IS 'The response time the scenario should meet, in ms (> 0)';
COMMENT ON COLUMN kpi.load_test_results.requests IS 'Requests sent';
COMMENT ON COLUMN kpi.load_test_results.errors IS 'Requests that failed (0..requests)';
COMMENT ON COLUMN kpi.load_test_results.response_times_ms IS 'The response times measured, in ms (finite, >= 0)';
COMMENT ON COLUMN kpi.load_test_results.metadata IS 'Anything else about the run';
SELECT pg_catalog.pg_extension_config_dump('kpi.load_test_results', '');
SELECT pg_catalog.pg_extension_config_dump('kpi.load_test_results_id_seq', '');

CREATE FUNCTION kpi_internal.load_test_results_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.users <= 0 THEN
        RAISE EXCEPTION 'kpi.load_test_results: users must be positive, got %', NEW.users USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.duration <= interval '0' THEN
        RAISE EXCEPTION 'kpi.load_test_results: duration must be positive, got %', NEW.duration USING ERRCODE = 'check_violation';
    END IF;
    IF NOT (NEW.expected_ms > 0 AND NEW.expected_ms < 'Infinity') THEN
        RAISE EXCEPTION 'kpi.load_test_results: expected_ms must be a positive number, got %', NEW.expected_ms
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.requests < 0 OR NEW.errors < 0 OR NEW.errors > NEW.requests THEN
        RAISE EXCEPTION 'kpi.load_test_results: errors must be between 0 and requests (%), got %', NEW.requests, NEW.errors
            USING ERRCODE = 'check_violation';
    END IF;
    IF array_ndims(NEW.response_times_ms) > 1
       OR EXISTS (SELECT FROM unnest(NEW.response_times_ms) v WHERE v IS NULL OR v < 0 OR v > 1e12 OR v = 'NaN') THEN
        RAISE EXCEPTION 'kpi.load_test_results: response_times_ms must be a list of numbers from 0 to 1e12 ms'
            USING ERRCODE = 'check_violation';
    END IF;
    IF NOT isfinite(NEW.run_at) THEN
        RAISE EXCEPTION 'kpi.load_test_results: run_at must be a finite time, got %', NEW.run_at USING ERRCODE = 'check_violation';
    END IF;
    IF jsonb_typeof(NEW.metadata) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'kpi.load_test_results: metadata must be a JSON object, got %', NEW.metadata USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION kpi_internal.load_test_results_check() IS 'Internal: trigger naming the field of a bad load-test result';
CREATE TRIGGER load_test_results_check BEFORE INSERT OR UPDATE ON kpi.load_test_results
    FOR EACH ROW EXECUTE FUNCTION kpi_internal.load_test_results_check();

-- The portal's load-test report of one run: response-time percentiles
-- (linear interpolation), the replaced grade, bottlenecks at the cut-offs
-- (mean response time above slow_ms / very_slow_ms, error rate above
-- error_pct / high_error_pct, throughput below min_throughput) and what to do.
CREATE FUNCTION kpi.load_test_report(id bigint, slow_ms float8 DEFAULT 1000, very_slow_ms float8 DEFAULT 2000,
                                     error_pct float8 DEFAULT 5, high_error_pct float8 DEFAULT 20,
                                     min_throughput float8 DEFAULT 5)
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    r kpi.load_test_results;
    ps float8[];
    mean float8;
    lo float8;
    hi float8;
    err float8;
    rps float8;
    grade text;
    b jsonb := '[]';
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'kpi.load_test_report: id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM kpi_internal.check_cutoff('kpi.load_test_report', 'slow_ms', slow_ms, 0),
            kpi_internal.check_cutoff('kpi.load_test_report', 'very_slow_ms', very_slow_ms, 0),
            kpi_internal.check_cutoff('kpi.load_test_report', 'error_pct', error_pct, 0),
            kpi_internal.check_cutoff('kpi.load_test_report', 'high_error_pct', high_error_pct, 0),
            kpi_internal.check_cutoff('kpi.load_test_report', 'min_throughput', min_throughput, 0);
    IF very_slow_ms < slow_ms OR high_error_pct < error_pct THEN
        RAISE EXCEPTION 'kpi.load_test_report: % (%) must not be below % (%)',
            CASE WHEN very_slow_ms < slow_ms THEN 'very_slow_ms' ELSE 'high_error_pct' END,
            CASE WHEN very_slow_ms < slow_ms THEN very_slow_ms ELSE high_error_pct END,
            CASE WHEN very_slow_ms < slow_ms THEN 'slow_ms' ELSE 'error_pct' END,
            CASE WHEN very_slow_ms < slow_ms THEN slow_ms ELSE error_pct END
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO r FROM kpi.load_test_results t WHERE t.id = load_test_report.id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'kpi.load_test_report: no load-test result with id %', id USING ERRCODE = 'undefined_object';
    END IF;
    SELECT kpi.percentiles(v, ARRAY[0.5, 0.9, 0.95, 0.99]), avg(v), min(v), max(v)
    INTO ps, mean, lo, hi FROM unnest(r.response_times_ms) v;
    err := CASE WHEN r.requests > 0 THEN r.errors::float8 / r.requests * 100 ELSE 0 END;
    rps := r.requests / extract(epoch FROM r.duration)::float8;
    -- without response times a run is graded on its errors alone; without requests not at all
    grade := CASE WHEN mean IS NOT NULL THEN kpi_internal.load_test_grade(err, mean, r.expected_ms)
                  WHEN r.requests = 0 THEN NULL
                  WHEN err > 10 THEN 'F' WHEN err > 5 THEN 'D' ELSE 'A' END;
    IF mean > very_slow_ms THEN
        b := b || jsonb_build_object('kind', 'response_time', 'severity', 'critical', 'value', mean, 'limit', very_slow_ms,
            'recommendation', 'Optimize database queries and add indexes; cache frequently accessed data; review the endpoint''s logic; paginate large results');
    ELSIF mean > slow_ms THEN
        b := b || jsonb_build_object('kind', 'response_time', 'severity', 'warning', 'value', mean, 'limit', slow_ms,
            'recommendation', 'Optimize database queries and add indexes; cache frequently accessed data; review the endpoint''s logic; paginate large results');
    END IF;
    IF err > high_error_pct THEN
        b := b || jsonb_build_object('kind', 'error_rate', 'severity', 'critical', 'value', err, 'limit', high_error_pct,
            'recommendation', 'Review recent deployments and roll back if needed; add error handling and retries; check external dependencies');
    ELSIF err > error_pct THEN
        b := b || jsonb_build_object('kind', 'error_rate', 'severity', 'warning', 'value', err, 'limit', error_pct,
            'recommendation', 'Review recent deployments and roll back if needed; add error handling and retries; check external dependencies');
    END IF;
    IF rps < min_throughput THEN
        b := b || jsonb_build_object('kind', 'throughput', 'severity', 'warning', 'value', rps, 'limit', min_throughput,
            'recommendation', 'Scale out; tune load balancing; review resource allocation; add circuit breakers for external dependencies');
    END IF;
    RETURN jsonb_build_object(
        'id', r.id, 'scenario', r.scenario, 'run_at', r.run_at, 'users', r.users, 'duration', r.duration,
        'requests', r.requests, 'errors', r.errors, 'error_rate_pct', err, 'throughput_rps', rps,
        'expected_ms', r.expected_ms,
        'response_ms', jsonb_build_object('count', cardinality(r.response_times_ms), 'mean', mean, 'min', lo, 'max', hi,
                                          'p50', ps[1], 'p90', ps[2], 'p95', ps[3], 'p99', ps[4]),
        'grade', grade, 'bottlenecks', b);
END
$$;
COMMENT ON FUNCTION kpi.load_test_report(bigint, float8, float8, float8, float8, float8) IS
    'A load-test run as jsonb: response-time percentiles, error rate, throughput, the replaced grade (error rate > 10 % F, > 5 % D; mean / expected > 3 F, > 2 D, > 1.5 C, > 1.2 B, else A), and bottlenecks with recommendations at the given cut-offs';

-- the Rust functions of src/capacity.rs
COMMENT ON FUNCTION kpi_internal.efficiency_score(float8, float8, float8) IS
    'Internal: the replaced scaling-efficiency score from the success rate, mean duration (s) and events per hour';
COMMENT ON FUNCTION kpi_internal.growth_advice(float8, float8, float8, float8) IS
    'Internal: major_expansion, gradual_increase, cost_reduction or NULL for a forecast growth in %';
COMMENT ON FUNCTION kpi_internal.load_test_grade(float8, float8, float8) IS
    'Internal: the replaced load-test grade from the error rate (%) and the mean and expected response times';
