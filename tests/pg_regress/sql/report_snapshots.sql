-- Cron schedules for jobs (kpi.cron_next, kpi.add_job / kpi.alter_job with
-- schedule_cron and schedule_timezone) and report snapshots (by hand and by
-- a 'report' job).
SET client_min_messages = warning;
DROP DATABASE IF EXISTS kpi_regress_report_snapshots;
CREATE DATABASE kpi_regress_report_snapshots;
\c kpi_regress_report_snapshots
SET client_min_messages = warning;
CREATE EXTENSION pg_kpi;
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/helpers.sql
SET client_min_messages = notice;
SET timezone = 'UTC';

-- Friday 17:00 (2026-12-02 is a Wednesday); strictly after; in a time zone
SELECT kpi.cron_next('0 17 * * 5', '2026-12-02 15:42+00') AS friday,
       kpi.cron_next('0 17 * * FRI', '2026-12-04 17:00+00') AS a_week_later,
       kpi.cron_next('0 17 * * 5', '2026-12-02 15:42+00', 'Europe/Berlin') AS berlin,
       kpi.cron_next('0 17 * * 5', '2026-12-02 15:42+00', 'America/New_York') AS new_york;
-- nicknames, steps, ranges, the optional seconds field, day of month or day of week
SELECT c, kpi.cron_next(c, '2026-12-02 15:42:10+00') AS next
FROM unnest(ARRAY['@hourly', '@daily', '@weekly', '@monthly', '@yearly', '*/15 * * * *', '0 9-17 * * 1-5',
                  '*/20 * * * * *', '0 0 1 * 1', '0 0 29 2 *']) c;
-- the session's TimeZone is the default zone
SET timezone = 'Asia/Tokyo';
SELECT kpi.cron_next('0 9 * * *', '2026-12-02 15:42+00') AT TIME ZONE 'UTC' AS tokyo_9am_in_utc;
SET timezone = 'UTC';
-- daylight saving in Berlin: 02:30 does not exist on 2026-03-29 (runs at 03:30 CEST)
-- and happens twice on 2026-10-25 (runs once, at its first occurrence: 00:30 UTC)
SELECT kpi.cron_next('30 2 * * *', '2026-03-28 12:00+00', 'Europe/Berlin') AS spring_forward,
       kpi.cron_next('30 2 * * *', '2026-10-24 12:00+00', 'Europe/Berlin') AS fall_back,
       kpi.cron_next('30 2 * * *', '2026-10-25 01:30+00', 'Europe/Berlin') AS next_day;

-- an hourly job in New York when clocks go back (2026-11-01 02:00 EDT -> 01:00 EST): the repeated
-- hour runs once, at its first occurrence
SELECT kpi.cron_next('0 * * * *', '2026-11-01 04:30+00', 'America/New_York') AS one_edt,
       kpi.cron_next('0 * * * *', '2026-11-01 05:00+00', 'America/New_York') AS two_est;

-- malformed expressions and time zones: 22023 naming the argument
SELECT pg_temp.try(format('SELECT kpi.cron_next(%L)', c))
FROM unnest(ARRAY['', '* * *', '61 * * * *', '0 25 * * *', '0 0 32 * *', '0 0 * 13 *', '0 17 * * 9',
                  'every friday', '0 0 30 2 *']) c;
SELECT pg_temp.try($$SELECT kpi.cron_next('0 17 * * 5', now(), 'Mars/Olympus_Mons')$$);
SELECT pg_temp.try($$SELECT kpi.cron_next('0 17 * * 5', now(), '')$$);
SELECT pg_temp.try($$SELECT kpi.cron_next(NULL)$$);
SELECT pg_temp.try($$SELECT kpi.cron_next('0 17 * * 5', 'infinity')$$);

-- jobs on a cron schedule: the first run is the first cron time, the zone defaults to the session's
SELECT kpi.add_job('sql', '{"command": "SELECT 1"}', schedule_cron => '0 17 * * 5', schedule_timezone => 'Europe/Berlin') AS berlin \gset
SELECT schedule_interval, schedule_cron, schedule_timezone, next_run = kpi.cron_next('0 17 * * 5', now(), 'Europe/Berlin') AS first_run
FROM kpi.jobs WHERE id = :berlin;
SELECT kpi.add_job('sql', '{"command": "SELECT 1"}', schedule_cron => '@daily') AS utc \gset
SELECT schedule_timezone, state FROM kpi.job_status WHERE id = :utc;
-- a run schedules the next cron time
SELECT status FROM kpi.run_job(:berlin);
SELECT next_run = kpi.cron_next('0 17 * * 5', now(), 'Europe/Berlin') AS next_cron_time FROM kpi.jobs WHERE id = :berlin;
-- alter: another zone moves the next run; an interval replaces the cron schedule and back
SELECT schedule_timezone, next_run = kpi.cron_next('0 17 * * 5', now(), 'Asia/Tokyo') AS moved
FROM kpi.alter_job(:berlin, schedule_timezone => 'Asia/Tokyo');
SELECT schedule_interval, schedule_cron, schedule_timezone, next_run <= now() + interval '1 hour' AS within_the_hour
FROM kpi.alter_job(:berlin, schedule_interval => '1 hour');
SELECT schedule_interval, schedule_cron, schedule_timezone FROM kpi.alter_job(:berlin, schedule_cron => '0 8 * * 1');
-- bad schedules
SELECT pg_temp.try($$SELECT kpi.add_job('sql', '{"command": "SELECT 1"}')$$);
SELECT pg_temp.try($$SELECT kpi.add_job('sql', '{"command": "SELECT 1"}', '1 hour', schedule_cron => '@daily')$$);
SELECT pg_temp.try($$SELECT kpi.add_job('sql', '{"command": "SELECT 1"}', '1 hour', schedule_timezone => 'UTC')$$);
SELECT pg_temp.try($$SELECT kpi.add_job('sql', '{"command": "SELECT 1"}', schedule_cron => '0 17 * * 8')$$);
SELECT pg_temp.try($$SELECT kpi.add_job('sql', '{"command": "SELECT 1"}', schedule_cron => '@daily', schedule_timezone => 'Nowhere/Land')$$);
SELECT pg_temp.try(format('SELECT kpi.alter_job(%s, schedule_cron => %L)', :berlin, 'at five'));
SELECT pg_temp.try(format('SELECT kpi.alter_job(%s, schedule_interval => %L, schedule_cron => %L)', :berlin, '1 hour', '@daily'));
SELECT pg_temp.try(format('SELECT kpi.alter_job(%s, schedule_timezone => %L)', :utc, 'Nowhere/Land'));
SELECT kpi.add_job('sql', '{"command": "SELECT 1"}', '1 hour') AS hourly \gset
SELECT pg_temp.try(format('SELECT kpi.alter_job(%s, schedule_timezone => %L)', :hourly, 'UTC'));
-- the table refuses what the functions refuse
SELECT pg_temp.try(format('UPDATE kpi.jobs SET schedule_cron = %L WHERE id = %s', '0 0 31 2 *', :utc));
SELECT pg_temp.try(format('UPDATE kpi.jobs SET schedule_timezone = %L WHERE id = %s', 'Nowhere/Land', :utc));
SELECT pg_temp.try(format('UPDATE kpi.jobs SET schedule_interval = %L WHERE id = %s', '1 hour', :utc));
-- a cron schedule written into the table without a zone is in the writer's TimeZone
SET timezone = 'Asia/Kolkata';
INSERT INTO kpi.jobs (kind, config, schedule_cron) VALUES ('sql', '{"command": "SELECT 1"}', '0 3 * * *')
RETURNING schedule_cron, schedule_timezone;
SET timezone = 'UTC';

-- report snapshots by hand: the period is [at - period, at); reports of one instant have none
INSERT INTO kpi.metrics (ts, metric, value)
SELECT '2026-03-01 00:00+00'::timestamptz + i * interval '1 minute', 'api_response_time', 100 + i % 10
FROM generate_series(0, 119) i;
SELECT name, report, job_id, taken_at, period, args, body->'metrics'->0->'count' AS count,
       body->'recommendations'->0->>'kind' AS recommendation
FROM kpi.take_report_snapshot('hourly performance', 'performance_report', '1 hour',
                              '{"metrics": ["api_response_time"], "p95_response_time_limit": 100}', '2026-03-01 02:00+00');
SELECT name, report, period, jsonb_typeof(body->'alerts') AS alerts
FROM kpi.take_report_snapshot('dashboard', 'kpi.dashboard', NULL, '{"window": "10 minutes"}', '2026-03-01 02:00+00');
-- a report job: config {"name", "report", "period", "args"}, the period ending at the minute it runs
SELECT kpi.add_job('report', '{"name": "weekly performance", "report": "performance_report", "period": "7 days",
                              "args": {"metrics": ["api_response_time"]}}',
                   schedule_cron => '0 17 * * 5', schedule_timezone => 'Europe/Berlin') AS weekly \gset
SELECT status, rows FROM kpi.run_job(:weekly);
SELECT name, report, job_id = :weekly AS by_the_job, date_trunc('minute', taken_at) = taken_at AND taken_at > now() - interval '2 minutes' AS at_the_minute,
       upper(period) - lower(period) AS length, body->'metrics'->0->>'metric' AS metric
FROM kpi.report_snapshots WHERE name = 'weekly performance';
-- a report of a period given as an interval (kpi.roi_report) gets the snapshot's period
SELECT report, period, body->>'total_revenue' AS revenue
FROM kpi.take_report_snapshot('roi', 'roi_report', '30 days', '{"investment": 1000}', '2026-03-01 02:00+00');
-- bad snapshots and report job configs
SELECT pg_temp.try($$SELECT kpi.take_report_snapshot('x', 'metric_summary')$$);
SELECT pg_temp.try($$SELECT kpi.take_report_snapshot('x', 'no_such_report')$$);
SELECT pg_temp.try($$SELECT kpi.take_report_snapshot('x', NULL)$$);
SELECT pg_temp.try($$SELECT kpi.take_report_snapshot('', 'dashboard')$$);
SELECT pg_temp.try($$SELECT kpi.take_report_snapshot('x', 'performance_report', NULL)$$);
SELECT pg_temp.try($$SELECT kpi.take_report_snapshot('x', 'performance_report', '-1 day')$$);
SELECT pg_temp.try($$SELECT kpi.take_report_snapshot('x', 'performance_report', '1 day', '{"metricz": ["a"]}')$$);
SELECT pg_temp.try($$SELECT kpi.take_report_snapshot('x', 'performance_report', '1 day', '{"from": "2026-01-01"}')$$);
SELECT pg_temp.try($$SELECT kpi.take_report_snapshot('x', 'performance_report', '1 day', '[1]')$$);
SELECT pg_temp.try($$SELECT kpi.take_report_snapshot('x', 'business_value_report', '1 day', '{"at": "2026-01-01"}')$$);
SELECT pg_temp.try($$SELECT kpi.take_report_snapshot('x', 'roi_report', '1 day', '{"investment": 1, "period": "2 days"}')$$);
SELECT pg_temp.try($$SELECT kpi.take_report_snapshot('x', 'performance_report', '1 day', '{"p95_response_time_limit": "abc"}')$$);
SELECT pg_temp.try($$SELECT kpi.take_report_snapshot('x', 'performance_report', '1 day', '{"metrics": {"a": 1}}')$$);
SELECT pg_temp.try($$SELECT kpi.take_report_snapshot(NULL, 'dashboard')$$);
SELECT pg_temp.try($$SELECT kpi.take_report_snapshot('x', 'dashboard', NULL, '{}', NULL)$$);
SELECT pg_temp.try($$SELECT kpi.take_report_snapshot('x', 'dashboard', NULL, '{}', now(), 999999)$$);
SELECT pg_temp.try($$SELECT kpi.add_job('report', '{"name": "p", "report": "performance_report", "period": "1 day", "args": {"utilization_limit": "high"}}', '1 hour')$$);
SELECT pg_temp.try($$SELECT kpi.take_report_snapshot('x', 'dashboard', NULL, '{}', 'infinity')$$);
SELECT pg_temp.try($$SELECT kpi.take_report_snapshot('x', 'dashboard', NULL, '{"window": "-5 minutes"}')$$);
SELECT pg_temp.try($$SELECT kpi.add_job('report', '{"report": "dashboard"}', '1 hour')$$);
SELECT pg_temp.try($$SELECT kpi.add_job('report', '{"name": "d", "report": "dashboard", "every": "day"}', '1 hour')$$);
SELECT pg_temp.try($$SELECT kpi.add_job('report', '{"name": "p", "report": "performance_report"}', '1 hour')$$);
SELECT pg_temp.try($$SELECT kpi.add_job('report', '{"name": "p", "report": "performance_report", "period": "weekly"}', '1 hour')$$);
-- an injection attempt in a report name or argument is data
SELECT pg_temp.try($$SELECT kpi.take_report_snapshot('x', 'dashboard(); DROP TABLE kpi.jobs; --')$$);
SELECT pg_temp.try($$SELECT kpi.take_report_snapshot('x', 'performance_report', '1 day', '{"metrics": ["a''); DROP TABLE kpi.jobs; --"]}', '2026-03-01')$$);
SELECT count(*) > 0 AS jobs_still_there FROM kpi.jobs;
-- deleting the job keeps its snapshots
SELECT NOT (kpi.alter_job(:weekly, enabled => false)).enabled AS paused;
DELETE FROM kpi.jobs WHERE id = :weekly;
SELECT name, job_id FROM kpi.report_snapshots WHERE name = 'weekly performance';

-- a retention policy expires old snapshots
UPDATE kpi.report_snapshots SET taken_at = now() - interval '40 days' WHERE name = 'hourly performance';
SELECT kpi.add_retention('report_snapshots', '30 days') AS snapshot_policy \gset
SELECT status, rows FROM kpi.run_job((SELECT job_id FROM kpi.retention_policies WHERE id = :snapshot_policy));
SELECT count(*) FILTER (WHERE name = 'hourly performance') AS expired_left, count(*) > 0 AS others_kept FROM kpi.report_snapshots;

\c postgres
DROP DATABASE kpi_regress_report_snapshots;
