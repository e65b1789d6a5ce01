//! Jobs at the SQL boundary: the launcher (one per cluster) and the job
//! workers (one per database with the extension). The job catalog, schedule,
//! runs, retries and dispatch are SQL (sql/jobs.sql).

pub mod launcher;
pub mod worker;

use kpi_core::jobs::CronSchedule;
use pgrx::datum::Timestamp;
use pgrx::prelude::*;

use crate::pg::errors::OrRaise;

/// The first local wall-clock time strictly after `after` that the cron
/// pattern `schedule` matches (kpi.cron_next converts to and from the time
/// zone).
#[pg_extern(immutable, strict, parallel_safe, schema = "kpi_internal")]
fn cron_next_local(schedule: &str, after: Timestamp) -> Timestamp {
    const F: &str = "kpi.cron_next";
    if after.is_infinity() || after.is_neg_infinity() {
        return after;
    }
    let s = CronSchedule::parse(schedule).or_raise(F);
    let next = s.next_after_pg(after.into_inner()).or_raise(F);
    Timestamp::try_from(next).unwrap_or_else(|_| {
        crate::pg::errors::raise(
            PgSqlErrorCode::ERRCODE_DATETIME_FIELD_OVERFLOW,
            format!("{F}: the next time after {after} is out of range"),
            None,
            None,
        )
    })
}

/// Checks a cron pattern: 22023 naming the argument (`schedule_cron` for
/// jobs, `cron` otherwise) when malformed.
#[pg_extern(immutable, strict, parallel_safe, schema = "kpi_internal")]
fn check_cron(func: &str, arg: &str, cron: &str) -> bool {
    let arg = if arg == "schedule_cron" {
        "schedule_cron"
    } else {
        "cron"
    };
    CronSchedule::parse_arg(cron, arg).or_raise(func);
    true
}

/// Runs an `sql` job's command as the job's owner, the way REFRESH
/// MATERIALIZED VIEW runs as the view's owner: the user id switched for the
/// command only, inside a security-restricted operation (the command cannot
/// SET ROLE or SET SESSION AUTHORIZATION its way back to the worker's role),
/// with its setting changes undone afterwards. Returns the rows processed.
#[pg_extern(volatile, strict, parallel_unsafe, schema = "kpi_internal")]
fn run_sql_as(owner: &str, command: &str) -> i64 {
    use pgrx::pg_sys;
    use std::ffi::CString;
    let name = CString::new(owner).unwrap_or_else(|_| {
        crate::pg::errors::raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "pg_kpi: a job owner's name cannot contain a NUL byte".into(),
            None,
            None,
        )
    });
    // SAFETY: get_role_oid reads the catalog (errors 42704 for an unknown
    // role); the user id and GUC nesting are restored on success below and by
    // (sub)transaction abort on error, as for any SECURITY DEFINER call
    unsafe {
        let role = pg_sys::get_role_oid(name.as_ptr(), false);
        let mut saved_user = pg_sys::InvalidOid;
        let mut saved_context: std::ffi::c_int = 0;
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        let nest = pg_sys::NewGUCNestLevel();
        pg_sys::SetUserIdAndSecContext(
            role,
            saved_context
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as std::ffi::c_int
                | pg_sys::SECURITY_RESTRICTED_OPERATION as std::ffi::c_int,
        );
        let processed =
            Spi::connect_mut(|client| client.update(command, None, &[]).map(|t| t.len()));
        pg_sys::AtEOXact_GUC(false, nest);
        pg_sys::SetUserIdAndSecContext(saved_user, saved_context);
        match processed {
            Ok(n) => n as i64,
            Err(e) => crate::pg::errors::raise(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                format!("pg_kpi: the job's command failed: {e}"),
                None,
                None,
            ),
        }
    }
}
