//! BI at the SQL boundary (`kpi_core::bi`): the SVG charts of
//! kpi.html_report. The report itself, kpi.timeseries and
//! kpi.prometheus_metrics are SQL (sql/bi.sql).

use crate::pg::errors::OrRaise;
use kpi_core::bi::{
    alert_timeline_svg, metric_chart_svg, severity_bands, AlertSpan, Band, MetricChart,
};
use pgrx::prelude::*;

fn values(v: Vec<Option<f64>>) -> Vec<f64> {
    v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect()
}

fn size(width: i32, height: i32) -> (u32, u32) {
    (
        width.clamp(0, 100_000) as u32,
        height.clamp(0, 100_000) as u32,
    )
}

#[allow(clippy::too_many_arguments)]
fn chart(
    from: f64,
    to: f64,
    step: f64,
    times: Vec<Option<f64>>,
    p50: Vec<Option<f64>>,
    p95: Vec<Option<f64>>,
    bands: &[Band],
    width: i32,
    height: i32,
) -> String {
    let (times, p50, p95) = (values(times), values(p50), values(p95));
    let (width, height) = size(width, height);
    metric_chart_svg(&MetricChart {
        from,
        to,
        step,
        times: &times,
        p50: &p50,
        p95: &p95,
        bands,
        width,
        height,
    })
    .or_raise("kpi.html_report")
}

/// An SVG chart of p50 and p95 over time (seconds on the axis's clock) with
/// the bands of kpi.severity for these thresholds shaded: warning, critical
/// and emergency.
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn severity_chart_svg(
    from: f64,
    to: f64,
    step: f64,
    times: Vec<Option<f64>>,
    p50: Vec<Option<f64>>,
    p95: Vec<Option<f64>>,
    optimal: Option<f64>,
    good: Option<f64>,
    warning: Option<f64>,
    critical: Option<f64>,
    higher_is_better: bool,
    width: default!(i32, 760),
    height: default!(i32, 220),
) -> String {
    let bands = severity_bands(optimal, good, warning, critical, higher_is_better);
    chart(from, to, step, times, p50, p95, &bands, width, height)
}

/// Release 0.1.0's chart (kept for its install script): a band from warning
/// to critical and one beyond critical.
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn metric_chart_svg_of(
    from: f64,
    to: f64,
    step: f64,
    times: Vec<Option<f64>>,
    p50: Vec<Option<f64>>,
    p95: Vec<Option<f64>>,
    warning: Option<f64>,
    critical: Option<f64>,
    higher_is_better: bool,
    width: default!(i32, 760),
    height: default!(i32, 220),
) -> String {
    let bad = if higher_is_better {
        f64::NEG_INFINITY
    } else {
        f64::INFINITY
    };
    let band = |a: f64, b: f64, rank| Band {
        lo: a.min(b),
        hi: a.max(b),
        rank,
    };
    let bands: Vec<Band> = match (warning, critical) {
        (Some(w), Some(c)) => vec![band(w, c, 2), band(c, bad, 3)],
        (Some(w), None) => vec![band(w, bad, 2)],
        (None, Some(c)) => vec![band(c, bad, 3)],
        (None, None) => vec![],
    };
    chart(from, to, step, times, p50, p95, &bands, width, height)
}

/// An SVG strip of alerts over [from, to): bars from starts to ends (seconds)
/// coloured by rank (kpi.severity_level's order).
#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn alert_timeline_svg_of(
    from: f64,
    to: f64,
    starts: Vec<Option<f64>>,
    ends: Vec<Option<f64>>,
    ranks: Vec<Option<i32>>,
    width: default!(i32, 760),
    height: default!(i32, 56),
) -> String {
    if starts.len() != ends.len() || starts.len() != ranks.len() {
        crate::pg::errors::raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "kpi.html_report: starts, ends and ranks must have the same length".into(),
            None,
            None,
        );
    }
    let spans: Vec<AlertSpan> = starts
        .into_iter()
        .zip(ends)
        .zip(ranks)
        .map(|((s, e), r)| AlertSpan {
            start: s.unwrap_or(f64::NAN),
            end: e.unwrap_or(f64::NAN),
            rank: r.unwrap_or(0).clamp(0, 4) as u8,
        })
        .collect();
    let (width, height) = size(width, height);
    alert_timeline_svg(from, to, &spans, width, height).or_raise("kpi.html_report")
}
