//! KPI targets: how far a KPI's current value has come from its baseline
//! towards its target, in the metric's direction, and what that means
//! (below baseline, on track, target met, stretch met, beyond range; target
//! not met when there is no baseline to measure progress from).
//!
//! A target is a value (`target`), or a range (`low`..`high`: met inside
//! it), with an optional stretch goal beyond it. For a higher-is-better KPI
//! the target lies above the baseline and the stretch above the target (for a
//! range: the range above the baseline, the stretch above its low edge); a
//! lower-is-better KPI mirrors that.

use crate::{CoreError, CoreResult};

/// Which way a KPI improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    HigherIsBetter,
    LowerIsBetter,
}

impl Direction {
    pub fn parse(s: &str) -> CoreResult<Self> {
        match s {
            "higher_is_better" => Ok(Direction::HigherIsBetter),
            "lower_is_better" => Ok(Direction::LowerIsBetter),
            other => Err(CoreError::invalid(
                "direction",
                format!("must be higher_is_better or lower_is_better, got \"{other}\""),
            )),
        }
    }

    /// +1 when higher is better, -1 otherwise: `sign * (a - b) > 0` means a is better than b.
    fn sign(self) -> f64 {
        match self {
            Direction::HigherIsBetter => 1.0,
            Direction::LowerIsBetter => -1.0,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Direction::HigherIsBetter => "above",
            Direction::LowerIsBetter => "below",
        }
    }
}

/// What a KPI aims at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub baseline: Option<f64>,
    /// A value to reach, or (with `high`) the low edge of a range.
    pub target: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub stretch: Option<f64>,
}

/// Where a KPI stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    BelowBaseline,
    OnTrack,
    TargetMet,
    StretchMet,
    BeyondRange,
    /// Short of the target, without a baseline to measure progress from.
    NotMet,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::BelowBaseline => "below baseline",
            Status::OnTrack => "on track",
            Status::TargetMet => "target met",
            Status::StretchMet => "stretch met",
            Status::BeyondRange => "beyond range",
            Status::NotMet => "target not met",
        }
    }

    /// Meeting the target (for the compliance score).
    pub fn meets_target(self) -> bool {
        matches!(self, Status::TargetMet | Status::StretchMet)
    }
}

fn finite(arg: &'static str, v: Option<f64>) -> CoreResult<Option<f64>> {
    match v {
        Some(x) if !x.is_finite() => Err(CoreError::invalid(
            arg,
            format!("must be a finite number, got {x}"),
        )),
        _ => Ok(v),
    }
}

impl Target {
    /// Checks that the target is consistent with the direction: every value
    /// finite, a range with low <= high, the target (or the range) beyond the
    /// baseline and the stretch beyond the target (or the range's near edge),
    /// in the direction of improvement. Errors name the field.
    pub fn check(&self, dir: Direction) -> CoreResult<()> {
        let baseline = finite("baseline", self.baseline)?;
        let target = finite("target", self.target)?;
        let low = finite("target_low", self.low)?;
        let high = finite("target_high", self.high)?;
        let stretch = finite("stretch", self.stretch)?;
        let s = dir.sign();
        match (low, high) {
            (Some(l), Some(h)) => {
                if l > h {
                    return Err(CoreError::invalid(
                        "target_low",
                        format!("{l} is above target_high {h}"),
                    ));
                }
                if target.is_some() {
                    return Err(CoreError::invalid(
                        "target",
                        "give a target value or a range (target_low, target_high), not both",
                    ));
                }
            }
            (None, None) => {}
            _ => {
                return Err(CoreError::invalid(
                    if low.is_none() {
                        "target_low"
                    } else {
                        "target_high"
                    },
                    "a target range needs both target_low and target_high",
                ))
            }
        }
        let near = self.near_edge(dir);
        let far = self.far_edge(dir);
        if let (Some(b), Some(t)) = (baseline, near) {
            if s * (t - b) <= 0.0 {
                let field = if target.is_some() {
                    "target"
                } else if s > 0.0 {
                    "target_low"
                } else {
                    "target_high"
                };
                return Err(CoreError::invalid(
                    field,
                    format!(
                        "{t} must be {} the baseline {b} for a {} KPI",
                        dir.word(),
                        match dir {
                            Direction::HigherIsBetter => "higher-is-better",
                            Direction::LowerIsBetter => "lower-is-better",
                        }
                    ),
                ));
            }
        }
        if let (Some(t), Some(st)) = (far, stretch) {
            if s * (st - t) <= 0.0 {
                return Err(CoreError::invalid(
                    "stretch",
                    format!("{st} must be {} the target {t}", dir.word()),
                ));
            }
        }
        if let (Some(b), Some(st), None) = (baseline, stretch, near) {
            if s * (st - b) <= 0.0 {
                return Err(CoreError::invalid(
                    "stretch",
                    format!("{st} must be {} the baseline {b}", dir.word()),
                ));
            }
        }
        Ok(())
    }

    /// The value to reach: the target, or the range's edge nearest the baseline
    /// (its low edge when higher is better).
    fn near_edge(&self, dir: Direction) -> Option<f64> {
        match (self.low, self.high) {
            (Some(l), Some(h)) => Some(match dir {
                Direction::HigherIsBetter => l,
                Direction::LowerIsBetter => h,
            }),
            _ => self.target,
        }
    }

    /// The target, or the range's edge farthest from the baseline: a stretch
    /// goal lies beyond it.
    fn far_edge(&self, dir: Direction) -> Option<f64> {
        match (self.low, self.high) {
            (Some(l), Some(h)) => Some(match dir {
                Direction::HigherIsBetter => h,
                Direction::LowerIsBetter => l,
            }),
            _ => self.target,
        }
    }

    /// Progress in % from the baseline to the target (or the range's near
    /// edge): 0 at the baseline, 100 at the target, beyond 100 past it,
    /// negative when worse than the baseline. None without a baseline or a
    /// target, or without a current value.
    pub fn progress(&self, dir: Direction, current: Option<f64>) -> Option<f64> {
        let (c, b, t) = (current?, self.baseline?, self.near_edge(dir)?);
        if !c.is_finite() || t == b {
            return None;
        }
        Some((c - b) / (t - b) * 100.0)
    }

    /// Where the current value stands. None without a current value or a target.
    pub fn status(&self, dir: Direction, current: Option<f64>) -> Option<Status> {
        let c = current.filter(|c| c.is_finite())?;
        let near = self.near_edge(dir)?;
        let s = dir.sign();
        // a stretch that is not beyond the target is no stretch
        let far = self.far_edge(dir)?;
        if let Some(st) = self.stretch.filter(|st| s * (st - far) > 0.0) {
            if s * (c - st) >= 0.0 {
                return Some(Status::StretchMet);
            }
        }
        if let (Some(l), Some(h)) = (self.low, self.high) {
            if c >= l && c <= h {
                return Some(Status::TargetMet);
            }
            // past the far edge, in the direction of improvement
            let far = if s > 0.0 { h } else { l };
            if s * (c - far) > 0.0 {
                return Some(Status::BeyondRange);
            }
        } else if s * (c - near) >= 0.0 {
            return Some(Status::TargetMet);
        }
        match self.baseline {
            Some(b) if s * (c - b) < 0.0 => Some(Status::BelowBaseline),
            Some(_) => Some(Status::OnTrack),
            None => Some(Status::NotMet),
        }
    }
}

/// The target of a rate goal ("+50 % a year", "-5 % a quarter"): the value one
/// period earlier changed by `rate` (0.5 = +50 %). The rate must point the way
/// the KPI improves.
/// A reference that is not positive has no relative change: no target.
pub fn rate_target_of(dir: Direction, reference: f64, rate: f64) -> Option<f64> {
    if !(reference.is_finite() && reference > 0.0) {
        return None;
    }
    rate_target(dir, reference, rate)
        .ok()
        .filter(|t| t.is_finite())
}

pub fn rate_target(dir: Direction, reference: f64, rate: f64) -> CoreResult<f64> {
    if !rate.is_finite() || rate <= -1.0 {
        return Err(CoreError::invalid(
            "rate",
            format!("must be a finite number above -1, got {rate}"),
        ));
    }
    if dir.sign() * rate <= 0.0 {
        return Err(CoreError::invalid(
            "rate",
            format!(
                "{rate} does not improve a {} KPI (use a {} rate)",
                match dir {
                    Direction::HigherIsBetter => "higher-is-better",
                    Direction::LowerIsBetter => "lower-is-better",
                },
                if dir.sign() > 0.0 {
                    "positive"
                } else {
                    "negative"
                }
            ),
        ));
    }
    Ok(reference * (1.0 + rate))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const UP: Direction = Direction::HigherIsBetter;
    const DOWN: Direction = Direction::LowerIsBetter;

    fn value(b: f64, t: f64, st: Option<f64>) -> Target {
        Target {
            baseline: Some(b),
            target: Some(t),
            low: None,
            high: None,
            stretch: st,
        }
    }

    #[test]
    fn progress_in_both_directions() {
        // uptime 99.5 -> 99.9 -> 99.95: at 99.7 half way
        let up = value(99.5, 99.9, Some(99.95));
        assert!((up.progress(UP, Some(99.7)).unwrap() - 50.0).abs() < 1e-9);
        assert_eq!(up.status(UP, Some(99.7)), Some(Status::OnTrack));
        assert_eq!(up.status(UP, Some(99.9)), Some(Status::TargetMet));
        assert_eq!(up.status(UP, Some(99.96)), Some(Status::StretchMet));
        assert_eq!(up.status(UP, Some(99.4)), Some(Status::BelowBaseline));
        // API p95 350 -> 200 -> 150 ms: at 275 half way, lower is better
        let down = value(350.0, 200.0, Some(150.0));
        assert!((down.progress(DOWN, Some(275.0)).unwrap() - 50.0).abs() < 1e-9);
        assert!((down.progress(DOWN, Some(380.0)).unwrap() + 20.0).abs() < 1e-9);
        assert_eq!(down.status(DOWN, Some(380.0)), Some(Status::BelowBaseline));
        assert_eq!(down.status(DOWN, Some(200.0)), Some(Status::TargetMet));
        assert_eq!(down.status(DOWN, Some(120.0)), Some(Status::StretchMet));
        assert!((down.progress(DOWN, Some(150.0)).unwrap() - 133.333_333_333).abs() < 1e-6);
    }

    #[test]
    fn ranges() {
        // sprint velocity 35 -> 40-60 points, stretch 65
        let r = Target {
            baseline: Some(35.0),
            target: None,
            low: Some(40.0),
            high: Some(60.0),
            stretch: Some(65.0),
        };
        r.check(UP).unwrap();
        assert!((r.progress(UP, Some(37.5)).unwrap() - 50.0).abs() < 1e-9);
        assert_eq!(r.status(UP, Some(37.5)), Some(Status::OnTrack));
        assert_eq!(r.status(UP, Some(40.0)), Some(Status::TargetMet));
        assert_eq!(r.status(UP, Some(60.0)), Some(Status::TargetMet));
        assert_eq!(r.status(UP, Some(62.0)), Some(Status::BeyondRange));
        assert_eq!(r.status(UP, Some(65.0)), Some(Status::StretchMet));
        assert_eq!(r.status(UP, Some(30.0)), Some(Status::BelowBaseline));
        // a lower-is-better range approaches from above: its near edge is high
        let d = Target {
            baseline: Some(20.0),
            target: None,
            low: Some(5.0),
            high: Some(10.0),
            stretch: None,
        };
        d.check(DOWN).unwrap();
        assert!((d.progress(DOWN, Some(15.0)).unwrap() - 50.0).abs() < 1e-9);
        assert_eq!(d.status(DOWN, Some(4.0)), Some(Status::BeyondRange));
    }

    #[test]
    fn inconsistent_targets_name_the_field() {
        let e = value(350.0, 400.0, None).check(DOWN).unwrap_err();
        assert!(e.to_string().starts_with("target: "), "{e}");
        let e = value(99.5, 99.9, Some(99.8)).check(UP).unwrap_err();
        assert!(e.to_string().starts_with("stretch: "), "{e}");
        let e = Target {
            baseline: None,
            target: None,
            low: Some(60.0),
            high: Some(40.0),
            stretch: None,
        }
        .check(UP)
        .unwrap_err();
        assert!(e.to_string().starts_with("target_low: "), "{e}");
        let e = Target {
            baseline: None,
            target: None,
            low: Some(60.0),
            high: None,
            stretch: None,
        }
        .check(UP)
        .unwrap_err();
        assert!(e.to_string().starts_with("target_high: "), "{e}");
        let e = Target {
            baseline: Some(1.0),
            target: Some(2.0),
            low: Some(1.5),
            high: Some(3.0),
            stretch: None,
        }
        .check(UP)
        .unwrap_err();
        assert!(e.to_string().starts_with("target: "), "{e}");
        // a range's stretch lies beyond its far edge
        let e = Target {
            baseline: Some(100.0),
            target: None,
            low: Some(120.0),
            high: Some(150.0),
            stretch: Some(130.0),
        }
        .check(UP)
        .unwrap_err();
        assert!(e.to_string().starts_with("stretch: "), "{e}");
        // a stretch short of the target is ignored when judging
        let bad = Target {
            baseline: Some(100.0),
            target: None,
            low: Some(40.0),
            high: Some(60.0),
            stretch: Some(80.0),
        };
        assert_eq!(bad.status(DOWN, Some(70.0)), Some(Status::OnTrack));
        let e = value(f64::NAN, 1.0, None).check(UP).unwrap_err();
        assert!(e.to_string().starts_with("baseline: "), "{e}");
        assert_eq!(e.sqlstate(), "22023");
    }

    #[test]
    fn without_data_or_target_there_is_no_status() {
        let t = value(1.0, 2.0, None);
        assert_eq!(t.status(UP, None), None);
        assert_eq!(t.progress(UP, None), None);
        let none = Target {
            baseline: Some(1.0),
            target: None,
            low: None,
            high: None,
            stretch: None,
        };
        assert_eq!(none.status(UP, Some(3.0)), None);
        // no baseline: status from the target alone, no progress
        let nb = Target {
            baseline: None,
            target: Some(2.0),
            low: None,
            high: None,
            stretch: None,
        };
        assert_eq!(nb.status(UP, Some(1.0)), Some(Status::NotMet));
        assert_eq!(nb.status(UP, Some(2.0)), Some(Status::TargetMet));
        assert_eq!(nb.progress(UP, Some(1.0)), None);
    }

    #[test]
    fn rate_targets() {
        // features shipped +50 % year over year: 40 a year ago -> 60
        assert_eq!(rate_target(UP, 40.0, 0.5).unwrap(), 60.0);
        // technical debt -5 % a quarter: 15 % -> 14.25 %
        assert!((rate_target(DOWN, 15.0, -0.05).unwrap() - 14.25).abs() < 1e-12);
        assert!(rate_target(UP, 40.0, -0.5)
            .unwrap_err()
            .to_string()
            .starts_with("rate: "));
        assert!(rate_target(DOWN, 15.0, 0.05).is_err());
        assert!(rate_target(UP, 15.0, f64::NAN).is_err());
        assert!(rate_target(DOWN, 15.0, -1.0).is_err());
        // no relative change of a reference at or below 0, nor an infinite target
        assert_eq!(rate_target_of(UP, -20.0, 0.5), None);
        assert_eq!(rate_target_of(UP, 0.0, 0.5), None);
        assert_eq!(rate_target_of(UP, 1e300, 1e300), None);
        assert_eq!(rate_target_of(UP, 40.0, 0.5), Some(60.0));
    }

    proptest! {
        // progress is 0 at the baseline, 100 at the target, and grows as the value improves
        #[test]
        fn progress_is_linear_and_directional(b in -1e6f64..1e6, gap in 1e-3f64..1e6, x in -2.0f64..3.0, up in any::<bool>()) {
            let dir = if up { UP } else { DOWN };
            let t = if up { b + gap } else { b - gap };
            let tg = value(b, t, None);
            tg.check(dir).unwrap();
            let c = b + (t - b) * x;
            let p = tg.progress(dir, Some(c)).unwrap();
            prop_assert!((p - 100.0 * x).abs() < 1e-6 * (1.0 + (100.0 * x).abs()));
            let st = tg.status(dir, Some(c)).unwrap();
            if x >= 1.0 + 1e-9 { prop_assert_eq!(st, Status::TargetMet); }
            if x < -1e-9 { prop_assert_eq!(st, Status::BelowBaseline); }
            if x > 1e-9 && x < 1.0 - 1e-9 { prop_assert_eq!(st, Status::OnTrack); }
        }
    }
}
