//! The delivery worker: one per database with an enabled alert receiver,
//! started by the launcher (src/jobs/launcher.rs) when a commit adds a
//! receiver or queues deliveries, or when the job worker finds receivers
//! after a restart. It is separate from the job worker, so a slow receiver
//! never delays rollups or rule evaluation.
//!
//! Each round runs in a transaction of its own (`super::round`): it claims
//! the due deliveries with `FOR UPDATE SKIP LOCKED`, sends them and records
//! the attempts; a full batch is followed at once by another round. Between
//! rounds it sleeps at most `IDLE` or until a commit that queued deliveries
//! sets its latch. Every `HOUSEKEEPING` it queues re-sends of firing alerts,
//! and every `PRUNE` it drops deliveries whose alert is gone and old ones
//! (`kpi_internal.delivery_housekeeping`). Receivers
//! are read at each round, so changes apply without a restart; with no
//! enabled receiver left it exits. SIGHUP reloads the configuration, SIGTERM
//! ends it through PostgreSQL's `die` (a round cut short is rolled back and
//! sent again: at-least-once), postmaster death ends it, and nothing is sent
//! while the server is in recovery.

use crate::jobs::launcher;
use crate::pg::bgw::{extension_installed, in_transaction, report_activity, sigterm_dies};
use crate::pg::guc::worker_role;
use crate::pg::guc::ENABLED;
use pgrx::bgworkers::{BackgroundWorker, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::time::{Duration, Instant};

/// Deliveries per receiver in one round.
const BATCH: i32 = 200;
/// Longest sleep between rounds (retries fall due without a wake-up).
const IDLE: Duration = Duration::from_secs(1);
/// Time between housekeeping passes (re-sends of firing alerts).
const HOUSEKEEPING: Duration = Duration::from_secs(5);
/// Time between prunes (deliveries whose alert is gone, old deliveries and attempts).
const PRUNE: Duration = Duration::from_secs(300);
/// Sleep after a round that failed as a whole.
const AFTER_ERROR: Duration = Duration::from_secs(5);

/// Sleeps at most `d` (a commit that queues deliveries wakes it); exits if
/// the postmaster died.
fn sleep(d: Duration) {
    if !BackgroundWorker::wait_latch(Some(d)) {
        // SAFETY: ending this process
        unsafe { pg_sys::proc_exit(1) };
    }
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pg_kpi_delivery_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP);
    sigterm_dies();
    let db_oid = arg.value() as u32;
    let extra = BackgroundWorker::get_extra().to_string();
    let (role_oid, db) = extra.split_once(' ').unwrap_or(("0", extra.as_str()));
    let role_oid: u32 = role_oid.parse().unwrap_or(0);
    let db = db.to_string();
    if !launcher::delivery_claim(db_oid) {
        return;
    }
    let role = worker_role();
    BackgroundWorker::connect_worker_to_spi_by_oid(
        Some(pg_sys::Oid::from(db_oid)),
        (role_oid != 0).then(|| pg_sys::Oid::from(role_oid)),
    );
    log!("pg_kpi delivery worker started for database \"{db}\"");
    let mut housekept: Option<Instant> = None;
    let mut pruned: Option<Instant> = None;
    loop {
        pgrx::check_for_interrupts!();
        if BackgroundWorker::sighup_received() {
            // SAFETY: reloading the configuration in the worker's main loop, outside any transaction
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            if worker_role() != role {
                log!("pg_kpi delivery worker for \"{db}\": kpi.worker_role changed, restarting");
                // SAFETY: ending this background worker process; the launcher starts another
                unsafe { pg_sys::proc_exit(1) };
            }
        }
        // SAFETY: reads shared recovery state; no preconditions
        if !ENABLED.get() || unsafe { pg_sys::RecoveryInProgress() } {
            sleep(IDLE);
            continue;
        }
        let wanted = in_transaction(|| {
            extension_installed()
                && Spi::get_one::<bool>(
                    "SELECT EXISTS (SELECT 1 FROM kpi.alert_receivers WHERE enabled)",
                )
                .ok()
                .flatten()
                .unwrap_or(false)
        });
        match wanted {
            Ok(true) => {}
            Ok(false) => {
                launcher::delivery_not_wanted(db_oid);
                log!("pg_kpi delivery worker for \"{db}\": no enabled alert receiver, exiting");
                // SAFETY: ending this background worker process; PostgreSQL runs the exit callbacks
                unsafe { pg_sys::proc_exit(0) };
            }
            Err((state, msg)) => {
                pgrx::warning!(
                    "pg_kpi delivery worker for \"{db}\": could not read the receivers: {msg} (SQLSTATE {state})"
                );
                sleep(AFTER_ERROR);
                continue;
            }
        }
        if housekept.is_none_or(|t| t.elapsed() >= HOUSEKEEPING) {
            let prune = pruned.is_none_or(|t| t.elapsed() >= PRUNE);
            report_activity("pg_kpi delivery: housekeeping");
            match in_transaction(|| {
                Spi::run_with_args(
                    "SELECT kpi_internal.delivery_housekeeping($1)",
                    &[prune.into()],
                )
            }) {
                Ok(Ok(())) => {
                    if prune {
                        pruned = Some(Instant::now());
                    }
                }
                Ok(Err(e)) => pgrx::warning!("pg_kpi delivery worker for \"{db}\": {e}"),
                Err((state, msg)) => pgrx::warning!(
                    "pg_kpi delivery worker for \"{db}\": housekeeping failed: {msg} (SQLSTATE {state})"
                ),
            }
            housekept = Some(Instant::now());
        }
        report_activity("pg_kpi delivery: sending");
        match in_transaction(|| super::round(BATCH)) {
            Ok(Ok((_, true))) => continue, // a full batch: more is due
            Ok(Ok(_)) => sleep(IDLE),
            Ok(Err(e)) => {
                pgrx::warning!("pg_kpi delivery worker for \"{db}\": {e}");
                sleep(AFTER_ERROR);
            }
            Err((state, msg)) => {
                pgrx::warning!(
                    "pg_kpi delivery worker for \"{db}\": a delivery round failed: {msg} (SQLSTATE {state})"
                );
                sleep(AFTER_ERROR);
            }
        }
    }
}
