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

    proptest! {
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
