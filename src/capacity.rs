//! Capacity planning at the SQL boundary (`kpi_core::capacity`); the tables
//! and report functions are SQL (sql/capacity.sql).

use crate::pg::errors::OrRaise;
use kpi_core::capacity;
use pgrx::prelude::*;

/// The replaced scaling-efficiency score.
#[pg_extern(immutable, strict, parallel_safe, schema = "kpi_internal")]
fn efficiency_score(success_rate: f64, mean_duration_s: f64, events_per_hour: f64) -> f64 {
    capacity::efficiency_score(success_rate, mean_duration_s, events_per_hour)
        .or_raise("kpi.scaling_efficiency")
}

/// The capacity advice for a forecast growth in %.
#[pg_extern(immutable, strict, parallel_safe, schema = "kpi_internal")]
fn growth_advice(
    growth_pct: f64,
    major_pct: f64,
    gradual_pct: f64,
    reduce_pct: f64,
) -> Option<String> {
    capacity::growth_advice(growth_pct, major_pct, gradual_pct, reduce_pct).map(str::to_string)
}

/// The replaced load-test grade.
#[pg_extern(immutable, strict, parallel_safe, schema = "kpi_internal")]
fn load_test_grade(error_rate_pct: f64, mean_ms: f64, expected_ms: f64) -> String {
    capacity::load_test_grade(error_rate_pct, mean_ms, expected_ms)
        .or_raise("kpi.load_test_report")
        .to_string()
}
