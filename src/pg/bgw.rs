//! Plumbing of the background workers (the job workers and the delivery
//! workers): transactions of their own whose errors come back as values.

use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::CString;

extern "C-unwind" {
    /// PostgreSQL's SIGTERM handler for backends (tcop/postgres.c); pgrx binds
    /// it only as a guarded Rust function, and a signal handler needs the C symbol.
    #[link_name = "die"]
    fn pg_die(signal: std::ffi::c_int);
}

/// Makes SIGTERM end the worker through PostgreSQL's own `die`: whatever runs
/// is cancelled at its next interrupt check and the process exits.
pub fn sigterm_dies() {
    // SAFETY: installing PostgreSQL's own handler for SIGTERM
    unsafe {
        #[cfg(not(feature = "pg18"))]
        pg_sys::pqsignal(pg_sys::SIGTERM as i32, Some(pg_die));
        #[cfg(feature = "pg18")]
        pg_sys::pqsignal_be(pg_sys::SIGTERM as i32, Some(pg_die));
    }
}

/// SQLSTATE text of an error code (PostgreSQL packs five 6-bit characters).
pub fn sqlstate(code: pg_sys::errcodes::PgSqlErrorCode) -> String {
    let mut v = code as i32;
    let mut s = String::with_capacity(5);
    for _ in 0..5 {
        s.push(char::from(((v & 0x3F) as u8) + b'0'));
        v >>= 6;
    }
    s
}

/// Runs `f` in a transaction of its own; an ERROR aborts the transaction and
/// comes back as (SQLSTATE, message).
pub fn in_transaction<R>(
    f: impl FnOnce() -> R + std::panic::UnwindSafe,
) -> Result<R, (String, String)> {
    // SAFETY: the worker runs this outside any transaction; the matching commit or abort follows
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let r = PgTryBuilder::new(|| Ok(f()))
        .catch_others(|e| {
            let report = match &e {
                pg_sys::panic::CaughtError::PostgresError(r)
                | pg_sys::panic::CaughtError::ErrorReport(r)
                | pg_sys::panic::CaughtError::RustPanic { ereport: r, .. } => r,
            };
            Err((
                sqlstate(report.sql_error_code()),
                report.message().to_string(),
            ))
        })
        .execute();
    // SAFETY: ends the transaction started above
    unsafe {
        match r {
            Ok(_) => {
                pg_sys::PopActiveSnapshot();
                pg_sys::CommitTransactionCommand();
            }
            Err(_) => pg_sys::AbortCurrentTransaction(),
        }
        pg_sys::pgstat_report_stat(false);
        pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_IDLE, std::ptr::null());
    }
    r
}

pub fn report_activity(what: &str) {
    if let Ok(c) = CString::new(what) {
        // SAFETY: the string outlives the call; reporting the worker's activity has no other preconditions
        unsafe { pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_RUNNING, c.as_ptr()) };
    }
}

pub fn extension_installed() -> bool {
    Spi::get_one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_kpi')",
    )
    .ok()
    .flatten()
    .unwrap_or(false)
}
