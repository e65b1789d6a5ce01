//! Reports at the SQL boundary: sparklines and bars for psql
//! (`kpi_core::reports`); the reports themselves are SQL (sql/reports.sql).

use kpi_core::reports;
use pgrx::prelude::*;

/// A sparkline of the values, one Unicode block each (▁ lowest .. █
/// highest); NULL and non-finite values are gaps.
#[pg_extern(immutable, strict, parallel_safe)]
fn sparkline(values: Vec<Option<f64>>) -> String {
    reports::sparkline(&values)
}

/// A bar of `value` against `max`, at most `width` characters, in eighths.
#[pg_extern(immutable, strict, parallel_safe, schema = "kpi_internal")]
fn bar(value: f64, max: f64, width: i32) -> String {
    reports::bar(value, max, usize::try_from(width).unwrap_or(0))
}
