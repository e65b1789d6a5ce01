//! The lifecycle of a rule's alert, one series at a time, with the semantics
//! of Prometheus 2.x alerting rules plus hysteresis: inactive -> pending at the
//! first evaluation where the condition holds -> firing at the first
//! evaluation at least `for` after that -> resolved at the first evaluation at
//! least `keep_firing_for` after the condition first stopped holding (and,
//! with a resolve threshold, only once the value has crossed it). A pending
//! alert whose condition stops holding is dropped without a notification.
//!
//! Times are microseconds (any epoch); the state is what kpi.alerts persists,
//! so an evaluation after a restart continues where the last one stopped.

/// Where a series' alert stands between two evaluations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum State {
    /// No alert.
    #[default]
    Inactive,
    /// The condition holds since `active_at`, not yet for `for`.
    Pending { active_at: i64 },
    /// Firing since `fired_at`; `keep_firing_since` is the first evaluation
    /// at which the condition stopped holding (None while it holds).
    Firing {
        active_at: i64,
        fired_at: i64,
        keep_firing_since: Option<i64>,
    },
}

/// What one evaluation did to the alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Nothing changed that anyone is told about.
    None,
    /// inactive -> pending (no notification in Prometheus; recorded).
    Pending,
    /// pending -> firing (or inactive -> firing without `for`).
    Fired,
    /// pending -> inactive: the condition stopped before `for`; no notification.
    Dropped,
    /// firing -> resolved.
    Resolved,
}

/// The rule's timing: `for` and `keep_firing_for` in microseconds (>= 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Timing {
    pub hold: i64,
    pub keep_firing_for: i64,
}

/// One evaluation at `at`. `holds`: the condition holds (the value is beyond
/// a threshold). `cleared`: the value is back on the good side of the resolve
/// threshold (without hysteresis, `!holds`); a firing alert only resolves once
/// it is cleared.
pub fn step(state: State, timing: Timing, at: i64, holds: bool, cleared: bool) -> (State, Event) {
    match state {
        State::Inactive if holds => {
            if timing.hold <= 0 {
                (
                    State::Firing {
                        active_at: at,
                        fired_at: at,
                        keep_firing_since: None,
                    },
                    Event::Fired,
                )
            } else {
                (State::Pending { active_at: at }, Event::Pending)
            }
        }
        State::Inactive => (State::Inactive, Event::None),
        State::Pending { active_at } if holds => {
            if at.saturating_sub(active_at) >= timing.hold {
                (
                    State::Firing {
                        active_at,
                        fired_at: at,
                        keep_firing_since: None,
                    },
                    Event::Fired,
                )
            } else {
                (state, Event::None)
            }
        }
        State::Pending { .. } => (State::Inactive, Event::Dropped),
        State::Firing {
            active_at,
            fired_at,
            keep_firing_since,
        } => {
            if holds {
                return (
                    State::Firing {
                        active_at,
                        fired_at,
                        keep_firing_since: None,
                    },
                    Event::None,
                );
            }
            let since = keep_firing_since.unwrap_or(at);
            if cleared && at.saturating_sub(since) >= timing.keep_firing_for {
                (State::Inactive, Event::Resolved)
            } else {
                (
                    State::Firing {
                        active_at,
                        fired_at,
                        keep_firing_since: Some(since),
                    },
                    Event::None,
                )
            }
        }
    }
}

/// What an annotation template's placeholders stand for.
pub struct TemplateValues<'a> {
    pub rule: &'a str,
    pub metric: &'a str,
    /// the value and threshold as messages show them (SQL's `kpi_internal.format_number`)
    pub value: Option<&'a str>,
    pub threshold: Option<&'a str>,
    pub severity: &'a str,
    /// RFC 3339 in UTC, seconds (a forecast rule's predicted time)
    pub forecast_at: Option<&'a str>,
    pub labels: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

/// Renders an annotation template in one pass: `{{rule}}`, `{{metric}}`,
/// `{{value}}`, `{{threshold}}`, `{{severity}}`,
/// `{{forecast_at}}` and `{{labels.KEY}}` (a label the series lacks renders
/// empty; a string label as itself, others as JSON). Substituted text is
/// never read as a template; anything else is kept as written.
pub fn render_template(template: &str, v: &TemplateValues) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        // a placeholder has no braces inside: the nearest "}}" closes it
        let Some(end) = after
            .find("}}")
            .filter(|e| !after[..*e].contains(['{', '}']))
        else {
            // not a placeholder here: it may start one brace later ("{{{rule}}}")
            out.push_str(&rest[..start + 1]);
            rest = &rest[start + 1..];
            continue;
        };
        out.push_str(&rest[..start]);
        let name = &after[..end];
        match name {
            "rule" => out.push_str(v.rule),
            "metric" => out.push_str(v.metric),
            "value" => out.push_str(v.value.unwrap_or("")),
            "threshold" => out.push_str(v.threshold.unwrap_or("")),
            "severity" => out.push_str(v.severity),
            "forecast_at" => out.push_str(v.forecast_at.unwrap_or("")),
            _ => match name.strip_prefix("labels.") {
                Some(k) if !k.is_empty() => match v.labels.and_then(|l| l.get(k)) {
                    Some(serde_json::Value::String(s)) => out.push_str(s),
                    Some(serde_json::Value::Null) | None => {}
                    Some(other) => out.push_str(&other.to_string()),
                },
                _ => out.push_str(&rest[start..start + 2 + end + 2]),
            },
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: i64 = 1_000_000; // one second

    fn run(timing: Timing, conds: &[(bool, bool)]) -> Vec<(State, Event)> {
        let mut st = State::Inactive;
        conds
            .iter()
            .enumerate()
            .map(|(i, &(holds, cleared))| {
                let (next, ev) = step(st, timing, i as i64 * 15 * S, holds, cleared);
                st = next;
                (next, ev)
            })
            .collect()
    }

    fn events(timing: Timing, holds: &[bool]) -> Vec<Event> {
        let conds: Vec<(bool, bool)> = holds.iter().map(|&h| (h, !h)).collect();
        run(timing, &conds).into_iter().map(|(_, e)| e).collect()
    }

    #[test]
    fn for_and_keep_firing_for_as_prometheus() {
        use Event::*;
        // every 15 s; for = 30 s: pending at 0, firing at 30 s
        let t = Timing {
            hold: 30 * S,
            keep_firing_for: 0,
        };
        assert_eq!(
            events(t, &[true, true, true, true, false, false]),
            vec![Pending, None, Fired, None, Resolved, None]
        );
        // flapping before `for`: dropped, then pending again from the new start
        assert_eq!(
            events(t, &[true, true, false, true, true, true]),
            vec![Pending, None, Dropped, Pending, None, Fired]
        );
        // keep_firing_for = 30 s: resolves at the first evaluation >= 30 s after
        // the condition first stopped (at 60 s: resolved at 90 s)
        let k = Timing {
            hold: 0,
            keep_firing_for: 30 * S,
        };
        assert_eq!(
            events(k, &[true, true, true, true, false, false, false, false]),
            vec![Fired, None, None, None, None, None, Resolved, None]
        );
        // the condition coming back resets keep_firing_for
        assert_eq!(
            events(k, &[true, false, false, true, false, false, false]),
            vec![Fired, None, None, None, None, None, Resolved]
        );
    }

    #[test]
    fn hysteresis_waits_for_the_resolve_threshold() {
        use Event::*;
        let t = Timing::default();
        // (holds, cleared): above threshold, between resolve threshold and threshold, below
        let conds = [(true, false), (false, false), (false, false), (false, true)];
        let evs: Vec<Event> = run(t, &conds).into_iter().map(|(_, e)| e).collect();
        assert_eq!(evs, vec![Fired, None, None, Resolved]);
    }

    #[test]
    fn a_restart_keeps_the_pending_start() {
        let t = Timing {
            hold: 60 * S,
            keep_firing_for: 0,
        };
        let (st, _) = step(State::Inactive, t, 0, true, false);
        // the state is persisted; an evaluation much later (after a restart) fires at once
        let (st, ev) = step(st, t, 10 * 60 * S, true, false);
        assert_eq!(ev, Event::Fired);
        assert_eq!(
            st,
            State::Firing {
                active_at: 0,
                fired_at: 10 * 60 * S,
                keep_firing_since: None
            }
        );
    }

    #[test]
    fn templates_render_in_one_pass() {
        let labels: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"host": "a", "n": 3, "weird": "{{rule}}", "none": null}"#)
                .unwrap();
        let v = TemplateValues {
            rule: "HighLatency",
            metric: "lat",
            value: Some("412.346"),
            threshold: Some("300"),
            severity: "warning",
            forecast_at: None,
            labels: Some(&labels),
        };
        assert_eq!(
            render_template(
                "{{labels.host}}: {{metric}} {{value}} > {{threshold}} ({{severity}}, {{rule}})",
                &v
            ),
            "a: lat 412.346 > 300 (warning, HighLatency)"
        );
        assert_eq!(
            render_template(
                "{{labels.n}}|{{labels.none}}|{{labels.missing}}|{{forecast_at}}",
                &v
            ),
            "3|||"
        );
        // substituted text is not a template
        assert_eq!(render_template("{{labels.weird}}", &v), "{{rule}}");
        // anything else stays as written
        assert_eq!(
            render_template("{{ x }} {{{rule}}} {{rule", &v),
            "{{ x }} {HighLatency} {{rule"
        );
        assert_eq!(render_template("", &v), "");
    }

    proptest! {
        #[test]
        fn any_template_renders_without_panicking(t in ".{0,40}") {
            let v = TemplateValues { rule: "r", metric: "m", value: Some("1"), threshold: None, severity: "warning",
                                     forecast_at: None, labels: None };
            let _ = render_template(&t, &v);
        }


        /// Any sequence of conditions gives a valid lifecycle: events only on
        /// allowed transitions, firing never before `for` has passed since the
        /// pending start, resolution only when cleared and after keep_firing_for.
        #[test]
        fn every_history_is_a_valid_lifecycle(
            hold in 0i64..120, keep in 0i64..120,
            conds in proptest::collection::vec((any::<bool>(), any::<bool>()), 0..80)
        ) {
            let timing = Timing { hold: hold * S, keep_firing_for: keep * S };
            let conds: Vec<(bool, bool)> = conds.into_iter().map(|(h, c)| (h, c && !h)).collect();
            let hist = run(timing, &conds);
            let mut prev = State::Inactive;
            let mut first_false: Option<i64> = None;
            for (i, &(st, ev)) in hist.iter().enumerate() {
                let at = i as i64 * 15 * S;
                let (holds, cleared) = conds[i];
                match (prev, ev) {
                    (State::Inactive, Event::Pending) => prop_assert!(holds && timing.hold > 0),
                    (State::Inactive, Event::Fired) => prop_assert!(holds && timing.hold <= 0),
                    (State::Pending { active_at }, Event::Fired) => prop_assert!(holds && at - active_at >= timing.hold),
                    (State::Pending { .. }, Event::Dropped) => prop_assert!(!holds),
                    (State::Firing { .. }, Event::Resolved) => {
                        prop_assert!(cleared);
                        prop_assert!(at - first_false.unwrap_or(at) >= timing.keep_firing_for);
                    }
                    (_, Event::None) => {
                        let same_kind = matches!(
                            (prev, st),
                            (State::Inactive, State::Inactive)
                                | (State::Pending { .. }, State::Pending { .. })
                                | (State::Firing { .. }, State::Firing { .. })
                        );
                        prop_assert!(same_kind);
                    }
                    (p, e) => prop_assert!(false, "{p:?} -> {e:?}"),
                }
                first_false = match st {
                    State::Firing { keep_firing_since, .. } => keep_firing_since,
                    _ => None,
                };
                prev = st;
            }
            // replaying gives the same history
            prop_assert_eq!(run(timing, &conds), hist);
        }
    }
}
