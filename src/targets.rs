//! KPI targets at the SQL boundary (`kpi_core::targets`): the checks of a
//! target against its metric's direction, progress and status. The tables
//! and kpi.kpi_status are SQL (sql/targets.sql).

use crate::pg::errors::raise_core;
use kpi_core::targets::{rate_target, rate_target_of, Direction, Target};
use kpi_core::CoreResult;
use pgrx::prelude::*;

fn direction(func: &str, metric: &str, d: Option<&str>) -> Direction {
    Direction::parse(d.unwrap_or("NULL"))
        .unwrap_or_else(|e| raise_core(&format!("{func}: metric \"{metric}\""), e))
}

fn target_of(
    baseline: Option<f64>,
    target: Option<f64>,
    low: Option<f64>,
    high: Option<f64>,
    stretch: Option<f64>,
) -> Target {
    Target {
        baseline,
        target,
        low,
        high,
        stretch,
    }
}

fn or_raise_for<T>(r: CoreResult<T>, func: &str, metric: &str) -> T {
    r.unwrap_or_else(|e| raise_core(&format!("{func}: metric \"{metric}\""), e))
}

/// Checks a target against the metric's direction and baseline (22023
/// naming the field).
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn check_kpi_target(
    func: Option<&str>,
    metric: Option<&str>,
    direction_: Option<&str>,
    baseline: Option<f64>,
    target: Option<f64>,
    target_low: Option<f64>,
    target_high: Option<f64>,
    stretch: Option<f64>,
) -> bool {
    let (func, metric) = (
        func.unwrap_or("kpi_internal.check_kpi_target"),
        metric.unwrap_or(""),
    );
    let dir = direction(func, metric, direction_);
    let t = target_of(baseline, target, target_low, target_high, stretch);
    or_raise_for(t.check(dir), func, metric);
    true
}

/// Checks that a rate target points the way the metric improves.
#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn check_kpi_rate(
    func: Option<&str>,
    metric: Option<&str>,
    direction_: Option<&str>,
    rate: Option<f64>,
) -> bool {
    let (func, metric) = (
        func.unwrap_or("kpi_internal.check_kpi_rate"),
        metric.unwrap_or(""),
    );
    let dir = direction(func, metric, direction_);
    let rate = rate.unwrap_or(f64::NAN);
    or_raise_for(rate_target(dir, 1.0, rate), func, metric);
    true
}

/// The target of a rate goal: `reference` changed by `rate`.
#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn kpi_rate_target(
    direction_: Option<&str>,
    reference: Option<f64>,
    rate: Option<f64>,
) -> Option<f64> {
    let dir = direction("kpi.kpi_status", "", direction_);
    rate_target_of(dir, reference?, rate?)
}

/// Progress in % from the baseline to the target (or a range's near edge).
#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn kpi_progress(
    direction_: Option<&str>,
    current: Option<f64>,
    baseline: Option<f64>,
    target: Option<f64>,
    target_low: Option<f64>,
    target_high: Option<f64>,
) -> Option<f64> {
    let dir = direction("kpi.kpi_status", "", direction_);
    target_of(baseline, target, target_low, target_high, None).progress(dir, current)
}

/// Where a KPI stands: below baseline, on track, target met, stretch met or
/// beyond range.
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn kpi_state(
    direction_: Option<&str>,
    current: Option<f64>,
    baseline: Option<f64>,
    target: Option<f64>,
    target_low: Option<f64>,
    target_high: Option<f64>,
    stretch: Option<f64>,
) -> Option<String> {
    let dir = direction("kpi.kpi_status", "", direction_);
    target_of(baseline, target, target_low, target_high, stretch)
        .status(dir, current)
        .map(|s| s.as_str().to_string())
}
