//! Configuration settings (GUCs). Each is documented in the README.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;

/// `kpi.max_batch_size`: most elements `kpi.record_batch` accepts in one call.
pub static MAX_BATCH_SIZE: GucSetting<i32> = GucSetting::<i32>::new(1000);

/// `kpi.alert_cooldown`: seconds; the default quiet period of metrics without their own alert_cooldown.
pub static ALERT_COOLDOWN: GucSetting<i32> = GucSetting::<i32>::new(300);

/// `kpi.trigger_alerts`: whether the kpi.metrics trigger raises alerts.
pub static TRIGGER_ALERTS: GucSetting<bool> = GucSetting::<bool>::new(true);

/// `kpi.rollup_batch_buckets`: most buckets one rollup run materializes.
pub static ROLLUP_BATCH_BUCKETS: GucSetting<i32> = GucSetting::<i32>::new(1440);

/// `kpi.retention_batch_rows`: most rows one retention run deletes.
pub static RETENTION_BATCH_ROWS: GucSetting<i32> = GucSetting::<i32>::new(10000);

/// `kpi.max_future`: seconds a row's ts may lie ahead of now() (-1: no limit).
pub static MAX_FUTURE: GucSetting<i32> = GucSetting::<i32>::new(3600);

/// `kpi.require_definitions`: reject rows of metrics without a definition.
pub static REQUIRE_DEFINITIONS: GucSetting<bool> = GucSetting::<bool>::new(false);

/// `kpi.alert_interval`: seconds between evaluations of the alert rules by the built-in `rules` job.
pub static ALERT_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(15);

/// `kpi.delivery_timeout`: milliseconds one delivery request may take.
pub static DELIVERY_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(5000);

/// `kpi.delivery_max_age`: seconds a notification is retried before it is given up.
pub static DELIVERY_MAX_AGE: GucSetting<i32> = GucSetting::<i32>::new(86_400);

/// `kpi.delivery_retention`: seconds finished deliveries and attempts are kept.
pub static DELIVERY_RETENTION: GucSetting<i32> = GucSetting::<i32>::new(7 * 86_400);

/// `kpi.alertmanager_resend`: seconds between re-sends of a firing alert to an Alertmanager.
pub static ALERTMANAGER_RESEND: GucSetting<i32> = GucSetting::<i32>::new(60);

/// `kpi.enabled`: whether the background workers run jobs.
pub static ENABLED: GucSetting<bool> = GucSetting::<bool>::new(true);

/// `kpi.database`: comma-separated databases that may get a worker (empty: all).
pub static DATABASE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// `kpi.naptime`: milliseconds between a worker's looks for due jobs.
pub static NAPTIME: GucSetting<i32> = GucSetting::<i32>::new(1000);

/// `kpi.max_workers`: most databases served by workers.
pub static MAX_WORKERS: GucSetting<i32> = GucSetting::<i32>::new(4);

/// `kpi.worker_role`: the role the workers run jobs as (empty: the bootstrap superuser).
pub static WORKER_ROLE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// `kpi.worker_role` as set (None when empty: the bootstrap superuser).
pub fn worker_role() -> Option<String> {
    WORKER_ROLE
        .get()
        .map(|c| c.to_string_lossy().trim().to_string())
        .filter(|r| !r.is_empty())
}

/// Settings of the launcher, defined only when pg_kpi is preloaded (there is
/// no launcher otherwise).
pub fn init_postmaster() {
    GucRegistry::define_string_guc(
        c"kpi.database",
        c"Comma-separated list of the databases pg_kpi's launcher may start a job worker in (empty: every database).",
        c"The launcher starts a worker in each database where the extension is installed, at most kpi.max_workers; this list only restricts them.",
        &DATABASE,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"kpi.max_workers",
        c"Most pg_kpi job workers running at once (one per database).",
        c"Databases beyond this number get no worker; each worker also takes one of max_worker_processes.",
        &MAX_WORKERS,
        0,
        64,
        GucContext::Sighup,
        GucFlags::default(),
    );
}

pub fn init() {
    GucRegistry::define_int_guc(
        c"kpi.delivery_timeout",
        c"Longest one alert delivery request may take.",
        c"A request that takes longer fails and is tried again later.",
        &DELIVERY_TIMEOUT,
        100,
        600_000,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"kpi.alertmanager_resend",
        c"Time between re-sends of a firing alert to an Alertmanager receiver.",
        c"Alertmanager ends an alert that is not re-sent before its endsAt (4 times the longer of this and kpi.alert_interval).",
        &ALERTMANAGER_RESEND,
        1,
        86_400,
        GucContext::Userset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"kpi.delivery_max_age",
        c"How long a notification is retried before its delivery is given up.",
        c"Failed deliveries are retried with exponential backoff until the notification is this old.",
        &DELIVERY_MAX_AGE,
        60,
        30 * 86_400,
        GucContext::Userset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"kpi.delivery_retention",
        c"How long delivered and given-up deliveries and every attempt are kept.",
        c"The delivery worker (and kpi.deliver_now) deletes older ones; the latest delivery of a firing alert is kept.",
        &DELIVERY_RETENTION,
        60,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"kpi.alert_interval",
        c"Time between evaluations of the alert rules by the built-in rules job.",
        c"The job reschedules itself from this value at each run; kpi.evaluate_alerts can also be called at any time.",
        &ALERT_INTERVAL,
        1,
        86_400,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"kpi.rollup_batch_buckets",
        c"Most buckets one rollup run materializes.",
        c"A rollup with more work left is run again at once, each run in its own transaction.",
        &ROLLUP_BATCH_BUCKETS,
        1,
        10_000_000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"kpi.retention_batch_rows",
        c"Most rows one retention run deletes.",
        c"A retention job with more rows to delete is run again at once, each run in its own transaction.",
        &RETENTION_BATCH_ROWS,
        1,
        100_000_000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"kpi.enabled",
        c"Whether the pg_kpi background workers run jobs.",
        c"Off keeps the workers idle; kpi.run_job and kpi.run_due_jobs still work.",
        &ENABLED,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"kpi.naptime",
        c"Time between a worker's looks for due jobs.",
        c"Each look is one short transaction.",
        &NAPTIME,
        10,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_string_guc(
        c"kpi.worker_role",
        c"Role the pg_kpi workers connect as and run jobs as.",
        c"Empty means the bootstrap superuser. The role needs LOGIN and membership in kpi_admin; a change restarts the workers.",
        &WORKER_ROLE,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"kpi.alert_cooldown",
        c"Default alert cooldown for metrics whose definition leaves alert_cooldown NULL.",
        c"A breach within this time of an open alert's last breach is counted in that alert; a later one resolves it and opens a new alert.",
        &ALERT_COOLDOWN,
        0,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_bool_guc(
        c"kpi.trigger_alerts",
        c"Whether inserts into kpi.metrics raise alerts.",
        c"Off skips the alert trigger's work (for example during a backfill) without dropping the trigger.",
        &TRIGGER_ALERTS,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"kpi.max_future",
        c"How far ahead of now() a measurement's ts may lie (-1: no limit).",
        c"Rows further in the future are rejected on every path (kpi.record, kpi.record_batch, INSERT, COPY) with SQLSTATE 22008; they are usually epoch milliseconds taken as seconds or a wrong clock.",
        &MAX_FUTURE,
        -1,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_bool_guc(
        c"kpi.require_definitions",
        c"Whether rows of metrics without a row in kpi.metric_definitions are rejected.",
        c"On: every path that writes kpi.metrics rejects an undefined metric with SQLSTATE 23503 (catches typos in metric names).",
        &REQUIRE_DEFINITIONS,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"kpi.max_batch_size",
        c"Largest number of elements kpi.record_batch accepts in one call.",
        c"Larger batches are rejected with SQLSTATE 54000; use COPY into kpi.metrics for bulk loads.",
        &MAX_BATCH_SIZE,
        1,
        1_000_000,
        GucContext::Userset,
        GucFlags::default(),
    );
}
