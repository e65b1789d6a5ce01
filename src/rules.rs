//! Alert rules at the SQL boundary: one step of a series' alert lifecycle
//! (`kpi_core::rules::step`) for `kpi.evaluate_alerts`, and annotation
//! templates (`kpi_core::rules::render_template`) (sql/rules.sql).

use crate::pg::errors::raise;
use kpi_core::rules::{self, Event, State, Timing};
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::prelude::*;

/// An annotation template rendered (NULL for a NULL template); the value,
/// threshold and forecast time come formatted (sql/rules.sql's
/// `render_template` wraps it).
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn render_template_text(
    template: Option<&str>,
    rule: Option<&str>,
    metric: Option<&str>,
    value: Option<&str>,
    threshold: Option<&str>,
    severity: Option<&str>,
    labels: Option<crate::pg::json::JsonbArg>,
    forecast_at: Option<&str>,
) -> Option<String> {
    let template = template?;
    let labels = crate::pg::json_object("kpi_internal.render_template", "labels", labels);
    Some(rules::render_template(
        template,
        &rules::TemplateValues {
            rule: rule.unwrap_or(""),
            metric: metric.unwrap_or(""),
            value,
            threshold,
            severity: severity.unwrap_or(""),
            forecast_at,
            labels: labels.as_ref(),
        },
    ))
}

fn micros(func: &str, arg: &str, i: &Interval) -> i64 {
    if i.months() != 0 {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{func}: {arg} must not contain months or years"),
            None,
            None,
        )
    }
    i64::from(i.days())
        .saturating_mul(86_400_000_000)
        .saturating_add(i.micros())
}

fn ts(t: Option<TimestampWithTimeZone>) -> Option<i64> {
    t.map(|t| t.into_inner())
}

fn tsz(m: i64) -> Option<TimestampWithTimeZone> {
    TimestampWithTimeZone::try_from(m).ok()
}

/// One evaluation of a series' alert: from its persisted state (NULL or
/// 'inactive', 'pending', 'firing' with its times) to the next, with the
/// event that evaluation raised ('none', 'pending', 'fired', 'dropped',
/// 'resolved').
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn rule_step(
    state: Option<&str>,
    active_at: Option<TimestampWithTimeZone>,
    fired_at: Option<TimestampWithTimeZone>,
    keep_firing_since: Option<TimestampWithTimeZone>,
    hold: Option<Interval>,
    keep_firing_for: Option<Interval>,
    at: Option<TimestampWithTimeZone>,
    holds: Option<bool>,
    cleared: Option<bool>,
) -> TableIterator<
    'static,
    (
        name!(state, &'static str),
        name!(active_at, Option<TimestampWithTimeZone>),
        name!(fired_at, Option<TimestampWithTimeZone>),
        name!(keep_firing_since, Option<TimestampWithTimeZone>),
        name!(event, &'static str),
    ),
> {
    const F: &str = "kpi_internal.rule_step";
    let Some(at) = ts(at) else {
        raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{F}: at must not be NULL"),
            None,
            None,
        )
    };
    let timing = Timing {
        hold: hold.map(|h| micros(F, "for", &h)).unwrap_or(0),
        keep_firing_for: keep_firing_for
            .map(|k| micros(F, "keep_firing_for", &k))
            .unwrap_or(0),
    };
    let current = match state {
        Some("pending") => State::Pending {
            active_at: ts(active_at).unwrap_or(at),
        },
        Some("firing") => State::Firing {
            active_at: ts(active_at).unwrap_or(at),
            fired_at: ts(fired_at).unwrap_or(at),
            keep_firing_since: ts(keep_firing_since),
        },
        _ => State::Inactive,
    };
    let holds = holds.unwrap_or(false);
    let (next, event) = rules::step(current, timing, at, holds, cleared.unwrap_or(!holds));
    let event = match event {
        Event::None => "none",
        Event::Pending => "pending",
        Event::Fired => "fired",
        Event::Dropped => "dropped",
        Event::Resolved => "resolved",
    };
    let row = match next {
        State::Inactive => ("inactive", None, None, None, event),
        State::Pending { active_at } => ("pending", tsz(active_at), None, None, event),
        State::Firing {
            active_at,
            fired_at,
            keep_firing_since,
        } => (
            "firing",
            tsz(active_at),
            tsz(fired_at),
            keep_firing_since.and_then(tsz),
            event,
        ),
    };
    TableIterator::once(row)
}
