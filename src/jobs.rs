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
