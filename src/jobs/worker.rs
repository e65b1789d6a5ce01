//! Job workers: one per database where pg_kpi is installed, started by the
//! launcher (src/launcher.rs) when pg_kpi is in shared_preload_libraries.
//!
//! A worker claims its database in the launcher's registry, connects, and
//! exits at once when the extension is not installed (the launcher starts it
//! again after CREATE EXTENSION). Otherwise it marks runs left 'running' by a
//! dead process as failed, then every `kpi.naptime` runs the due jobs, each in
//! its own transactions: one that records the start of the run and one that
//! executes it (the SQL side isolates the job's errors; errors it cannot
//! catch, such as `max_runtime` expiring, are caught here and recorded in a
//! third). SIGHUP reloads the configuration in the main loop; SIGTERM ends the
//! worker through PostgreSQL's own `die` handler (also in the middle of a job,
//! whose run is then marked failed by the next start), and the launcher starts
//! it again unless the database is being dropped. DROP EXTENSION ends it.
//! Nothing runs while the server is in recovery. A worker that finds an
//! enabled alert receiver makes sure the database's delivery worker runs.

use crate::jobs::launcher;
use crate::pg::bgw::{extension_installed, in_transaction, report_activity, sigterm_dies};
use crate::pg::guc::worker_role;
use crate::pg::guc::{DATABASE, ENABLED, NAPTIME};
use pgrx::bgworkers::{BackgroundWorker, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::time::Duration;

/// Most jobs started per look; the rest wait for the next one.
const JOBS_PER_LOOK: i32 = 100;
/// `STATEMENT_TIMEOUT` in `enum TimeoutId` (utils/timeout.h), which pgrx does
/// not bind: 3 in PostgreSQL 13 to 18. A build for another major does not
/// compile until this is checked against its header.
#[cfg(any(
    feature = "pg13",
    feature = "pg14",
    feature = "pg15",
    feature = "pg16",
    feature = "pg17",
    feature = "pg18"
))]
const STATEMENT_TIMEOUT: i32 = 3;

// utils/timeout.h, not in pgrx's bindings; the statement timeout is armed by
// hand because SPI statements in a background worker do not arm it
extern "C-unwind" {
    fn enable_timeout_after(id: i32, delay_ms: i32);
    fn disable_timeout(id: i32, keep_indicator: bool);
}

/// Whether `kpi.database` (empty: every database) still includes `db`.
fn listed(db: &str) -> bool {
    let list = DATABASE
        .get()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut names = list
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .peekable();
    names.peek().is_none() || names.any(|d| d == db)
}

/// One job: record the start, execute (with `max_runtime` as a statement
/// timeout), and record an error the SQL side could not catch.
fn run_one(job_id: i64) {
    let begun = in_transaction(|| {
        Spi::get_two_with_args::<i64, f64>(
            "SELECT kpi_internal.begin_run($1), extract(epoch FROM j.max_runtime)::float8 * 1000 \
             FROM kpi.jobs j WHERE j.id = $1 AND j.enabled",
            &[job_id.into()],
        )
    });
    let (run_id, max_ms) = match begun {
        Ok(Ok((Some(run), ms))) => (run, ms),
        Ok(_) => return, // the job went away or was paused meanwhile
        Err((state, msg)) => {
            pgrx::warning!("pg_kpi: could not start job {job_id}: {msg} (SQLSTATE {state})");
            return;
        }
    };
    report_activity(&format!("pg_kpi job {job_id} (run {run_id})"));
    let timeout = max_ms
        .filter(|ms| *ms >= 1.0)
        .map(|ms| ms.min(i32::MAX as f64) as i32);
    if let Some(ms) = timeout {
        // SAFETY: arms PostgreSQL's statement timeout for this job; disarmed after the run
        unsafe { enable_timeout_after(STATEMENT_TIMEOUT, ms) };
    }
    let outcome = in_transaction(|| {
        Spi::run_with_args(
            "SELECT kpi_internal.execute_run($1, true)",
            &[run_id.into()],
        )
    });
    if timeout.is_some() {
        // SAFETY: disarms the statement timeout armed above
        unsafe { disable_timeout(STATEMENT_TIMEOUT, false) };
    }
    let failure = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(("XX000".to_string(), e.to_string())),
        Err(e) => Some(e),
    };
    if let Some((state, msg)) = failure {
        let msg = if state == "57014" && timeout.is_some() {
            format!("the job ran longer than its max_runtime ({msg})")
        } else {
            msg
        };
        pgrx::warning!("pg_kpi: job {job_id} failed: {msg} (SQLSTATE {state})");
        let recorded = in_transaction(|| {
            Spi::run_with_args(
                "SELECT kpi_internal.end_run($1, false, NULL, NULL, false, $2, $3, \
                 (SELECT started_at FROM kpi.job_runs WHERE id = $1))",
                &[run_id.into(), state.as_str().into(), msg.as_str().into()],
            )
        });
        match recorded {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                pgrx::warning!("pg_kpi: could not record the failure of job {job_id}: {e}")
            }
            Err((s, m)) => pgrx::warning!(
                "pg_kpi: could not record the failure of job {job_id}: {m} (SQLSTATE {s})"
            ),
        }
    }
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pg_kpi_worker_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP);
    // SIGTERM: PostgreSQL's die(), so that a running job is cancelled at its next interrupt check
    sigterm_dies();
    // SAFETY: the launcher passes the database's oid as the main argument
    let db_oid = _arg.value() as u32;
    let extra = BackgroundWorker::get_extra().to_string();
    let (role_oid, db) = extra.split_once(' ').unwrap_or(("0", extra.as_str()));
    let role_oid: u32 = role_oid.parse().unwrap_or(0);
    let db = db.to_string();
    if !launcher::worker_claim(db_oid) {
        return; // held by a DROP/ALTER DATABASE, or served by another worker
    }
    let role = worker_role();
    BackgroundWorker::connect_worker_to_spi_by_oid(
        Some(pg_sys::Oid::from(db_oid)),
        (role_oid != 0).then(|| pg_sys::Oid::from(role_oid)),
    );

    let mut ready = false;
    loop {
        pgrx::check_for_interrupts!();
        if BackgroundWorker::sighup_received() {
            // SAFETY: ending this background worker process; PostgreSQL runs the exit callbacks
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            if worker_role() != role {
                log!("pg_kpi worker for \"{db}\": kpi.worker_role changed, restarting");
                // SAFETY: ending this background worker process; PostgreSQL runs the exit callbacks
                unsafe { pg_sys::proc_exit(1) };
            }
            if !listed(&db) {
                log!("pg_kpi worker for \"{db}\": the database left kpi.database, exiting");
                // SAFETY: ending this background worker process; PostgreSQL runs the exit callbacks
                unsafe { pg_sys::proc_exit(0) };
            }
        }
        // SAFETY: reads shared recovery state; no preconditions
        if ENABLED.get() && !unsafe { pg_sys::RecoveryInProgress() } {
            let generation = launcher::wake_generation(db_oid);
            let installed = match in_transaction(extension_installed) {
                Ok(found) => found,
                Err((state, msg)) => {
                    // not a reason to rule the database out: look again after the nap
                    pgrx::warning!("pg_kpi worker for \"{db}\": could not look for the extension: {msg} (SQLSTATE {state})");
                    wait_nap();
                    continue;
                }
            };
            launcher::worker_found(db_oid, installed, generation);
            if !installed {
                if ready {
                    log!("pg_kpi worker for \"{db}\": the extension was dropped, exiting");
                }
                // SAFETY: ending this background worker process; PostgreSQL runs the exit callbacks
                unsafe { pg_sys::proc_exit(0) };
            }
            if !ready {
                log!("pg_kpi worker started for database \"{db}\"");
                match in_transaction(|| {
                    Spi::get_one::<i32>("SELECT kpi_internal.fail_interrupted_runs()")
                }) {
                    Ok(Ok(Some(n))) if n > 0 => {
                        log!(
                            "pg_kpi worker for \"{db}\": marked {n} interrupted job runs as failed"
                        )
                    }
                    Err((s, m)) => pgrx::warning!("pg_kpi: {m} (SQLSTATE {s})"),
                    _ => {}
                }
                ready = true;
            }
            run_due();
            // a database with an enabled receiver has a delivery worker
            if let Ok(Ok(Some(true))) = in_transaction(|| {
                Spi::get_one::<bool>(
                    "SELECT EXISTS (SELECT 1 FROM kpi.alert_receivers WHERE enabled)",
                )
            }) {
                launcher::ensure_delivery(db_oid);
            }
        }
        wait_nap();
    }
}

/// Sleeps `kpi.naptime` (or until the latch is set); exits if the postmaster died.
fn wait_nap() {
    let nap = Duration::from_millis(u64::try_from(NAPTIME.get()).unwrap_or(1000));
    if !BackgroundWorker::wait_latch(Some(nap)) {
        // postmaster death (SIGTERM goes through die() instead)
        // SAFETY: ending this process
        unsafe { pg_sys::proc_exit(1) };
    }
}

/// Runs the jobs that are due, one after the other.
fn run_due() {
    let due = in_transaction(|| {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT kpi_internal.due_jobs($1)",
                    None,
                    &[JOBS_PER_LOOK.into()],
                )
                .map(|rows| {
                    rows.filter_map(|r| r.get::<i64>(1).ok().flatten())
                        .collect::<Vec<i64>>()
                })
                .unwrap_or_default()
        })
    });
    match due {
        Ok(ids) => {
            for id in ids {
                pgrx::check_for_interrupts!();
                run_one(id);
            }
        }
        Err((s, m)) => {
            pgrx::warning!("pg_kpi: could not read the due jobs: {m} (SQLSTATE {s})")
        }
    }
}
