//! Severity bands, breach ratios, health scores and grades.
//!
//! Bands follow the metric's direction. For a lower-is-better metric each
//! threshold is the upper edge of its band (value <= optimal is optimal, ...,
//! above critical is emergency); for a higher-is-better metric each is the
//! lower edge (value >= optimal is optimal, ..., below critical is emergency).
//! A missing threshold removes its band: the value falls to the next worse
//! band that is defined. With no threshold at all there is no classification.

pub mod thresholds;

use crate::codec::{Reader, Writer};
use crate::severity::thresholds::Direction;
use crate::{CoreError, CoreResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Optimal = 0,
    Good = 1,
    Warning = 2,
    Critical = 3,
    Emergency = 4,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Optimal,
        Severity::Good,
        Severity::Warning,
        Severity::Critical,
        Severity::Emergency,
    ];
    /// The labels of SQL enum kpi.severity_level, in order.
    pub const LABELS: [&'static str; 5] = ["optimal", "good", "warning", "critical", "emergency"];

    pub fn label(self) -> &'static str {
        Self::LABELS[self as usize]
    }
    pub fn from_index(i: usize) -> Option<Severity> {
        Self::ALL.get(i).copied()
    }
    /// Health points of the band: 100, 80, 60, 40, 0.
    pub fn points(self) -> i64 {
        [100, 80, 60, 40, 0][self as usize]
    }
}

/// The band of `value`; None when no threshold is defined. `value` must not
/// be NaN (callers reject it); infinities classify normally.
pub fn classify(value: f64, dir: Direction, t: [Option<f64>; 4]) -> Option<Severity> {
    let mut any = false;
    for (i, th) in crate::severity::thresholds::effective(t).iter().enumerate() {
        let Some(th) = *th else { continue };
        any = true;
        let within = match dir {
            Direction::LowerIsBetter => value <= th,
            Direction::HigherIsBetter => value >= th,
        };
        if within {
            return Severity::from_index(i);
        }
    }
    any.then_some(Severity::Emergency)
}

/// The threshold a value crossed to land in `sev`: the nearest defined edge
/// of a better band. None for optimal (nothing was crossed).
pub fn crossed_threshold(sev: Severity, t: [Option<f64>; 4]) -> Option<f64> {
    crate::severity::thresholds::effective(t)[..sev as usize]
        .iter()
        .rev()
        .find_map(|x| *x)
}

/// The edge beyond which a value is warning or worse: the nearest defined of
/// good and optimal; without either, every value (±infinity); None when no
/// threshold is defined at all.
pub fn breach_edge(dir: Direction, t: [Option<f64>; 4]) -> Option<f64> {
    if crate::severity::thresholds::effective(t)
        .iter()
        .all(Option::is_none)
    {
        return None;
    }
    Some(
        crossed_threshold(Severity::Warning, t).unwrap_or(match dir {
            Direction::LowerIsBetter => f64::NEG_INFINITY,
            Direction::HigherIsBetter => f64::INFINITY,
        }),
    )
}

/// Breach severity by the ratio value / threshold: None when value <=
/// threshold; 'low' up to 2, 'medium' above 2, 'high' above 3, 'critical' above 5.
pub fn breach_severity(value: f64, threshold: f64) -> CoreResult<Option<&'static str>> {
    if value.is_nan() {
        return Err(CoreError::invalid("value", "must not be NaN"));
    }
    if !(threshold.is_finite() && threshold > 0.0) {
        return Err(CoreError::invalid(
            "threshold",
            format!(
                "must be a positive finite number, got {}",
                crate::validate::fmt_float(threshold)
            ),
        ));
    }
    if value <= threshold {
        return Ok(None);
    }
    let r = value / threshold;
    Ok(Some(if r > 5.0 {
        "critical"
    } else if r > 3.0 {
        "high"
    } else if r > 2.0 {
        "medium"
    } else {
        "low"
    }))
}

fn check_range(arg: &'static str, v: f64, lo: f64, hi: f64) -> CoreResult<f64> {
    if v.is_nan() || v < lo || v > hi {
        return Err(CoreError::invalid(
            arg,
            format!(
                "must be between {lo} and {hi}, got {}",
                crate::validate::fmt_float(v)
            ),
        ));
    }
    Ok(v)
}

/// Health status of a 0..100 score; no score (no data) is 'unknown'.
pub fn health_status(score: Option<f64>) -> CoreResult<&'static str> {
    let Some(s) = score else {
        return Ok("unknown");
    };
    let s = check_range("score", s, 0.0, 100.0)?;
    Ok(if s >= 90.0 {
        "excellent"
    } else if s >= 80.0 {
        "good"
    } else if s >= 70.0 {
        "warning"
    } else if s >= 50.0 {
        "critical"
    } else {
        "emergency"
    })
}

/// Letter grade from the percentage of operations meeting their target.
pub fn grade(pct_meeting_target: f64) -> CoreResult<&'static str> {
    let p = check_range("pct_meeting_target", pct_meeting_target, 0.0, 100.0)?;
    Ok(if p >= 95.0 {
        "A"
    } else if p >= 85.0 {
        "B"
    } else if p >= 75.0 {
        "C"
    } else if p >= 65.0 {
        "D"
    } else {
        "F"
    })
}

/// Load-test grade from error rate first, then average / expected response time.
pub fn performance_grade(
    avg_response_ms: f64,
    error_rate_pct: f64,
    expected_response_ms: f64,
) -> CoreResult<&'static str> {
    if !(avg_response_ms.is_finite() && avg_response_ms >= 0.0) {
        return Err(CoreError::invalid(
            "avg_response_ms",
            format!(
                "must be a finite number >= 0, got {}",
                crate::validate::fmt_float(avg_response_ms)
            ),
        ));
    }
    let err = check_range("error_rate_pct", error_rate_pct, 0.0, 100.0)?;
    if !(expected_response_ms.is_finite() && expected_response_ms > 0.0) {
        return Err(CoreError::invalid(
            "expected_response_ms",
            format!(
                "must be a positive finite number, got {}",
                crate::validate::fmt_float(expected_response_ms)
            ),
        ));
    }
    if err > 10.0 {
        return Ok("F");
    }
    if err > 5.0 {
        return Ok("D");
    }
    let r = avg_response_ms / expected_response_ms;
    Ok(if r > 3.0 {
        "F"
    } else if r > 2.0 {
        "D"
    } else if r > 1.5 {
        "C"
    } else if r > 1.2 {
        "B"
    } else {
        "A"
    })
}

/// Points of a letter grade (A=4 .. F=0); surrounding blanks and case are ignored.
pub fn grade_points(g: &str) -> CoreResult<i64> {
    match g.trim() {
        "A" | "a" => Ok(4),
        "B" | "b" => Ok(3),
        "C" | "c" => Ok(2),
        "D" | "d" => Ok(1),
        "F" | "f" => Ok(0),
        other => Err(CoreError::invalid(
            "grade",
            format!("expected one of A, B, C, D, F, got '{other}'"),
        )),
    }
}

/// The overall grade for a mean of grade points.
pub fn grade_from_mean(mean: f64) -> &'static str {
    if mean >= 3.5 {
        "A"
    } else if mean >= 2.5 {
        "B"
    } else if mean >= 1.5 {
        "C"
    } else if mean >= 0.5 {
        "D"
    } else {
        "F"
    }
}

const MAGIC: u8 = b'H';
const VERSION: u8 = 1;

/// Mergeable mean of integer points (health scores, grade points): the sum is
/// exact, so merges in any order give the same answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Points {
    pub n: u64,
    pub sum: i64,
}

impl Points {
    pub fn add(&mut self, p: i64) {
        self.n += 1;
        self.sum += p;
    }
    pub fn merge(&mut self, o: &Points) {
        self.n += o.n;
        self.sum += o.sum;
    }
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum as f64 / self.n as f64)
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(MAGIC, VERSION);
        w.varu(self.n);
        w.vari(self.sum);
        w.finish()
    }
    pub fn decode(buf: &[u8]) -> CoreResult<Points> {
        let (mut r, version) = Reader::new(buf, "points state", MAGIC)?;
        if version != VERSION {
            return Err(r.corrupt(format!("unsupported version {version}")));
        }
        let p = Points {
            n: r.varu()?,
            sum: r.vari()?,
        };
        r.end()?;
        if p.sum < 0 || (p.n == 0 && p.sum != 0) || p.sum as u128 > p.n as u128 * 100 {
            return Err(r.corrupt("sum is inconsistent with the count"));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breach_edge_is_the_warning_band_start() {
        let lower = Direction::LowerIsBetter;
        let higher = Direction::HigherIsBetter;
        assert_eq!(
            breach_edge(lower, [Some(100.0), Some(200.0), Some(500.0), Some(1000.0)]),
            Some(200.0)
        );
        assert_eq!(
            breach_edge(lower, [Some(100.0), None, Some(500.0), None]),
            Some(100.0)
        );
        assert_eq!(
            breach_edge(lower, [None, None, Some(500.0), Some(1000.0)]),
            Some(f64::NEG_INFINITY)
        );
        assert_eq!(
            breach_edge(higher, [None, None, Some(500.0), None]),
            Some(f64::INFINITY)
        );
        assert_eq!(
            breach_edge(
                higher,
                [Some(f64::INFINITY), Some(1000.0), Some(500.0), None]
            ),
            Some(1000.0)
        );
        assert_eq!(breach_edge(lower, [None; 4]), None);
        // every value beyond the edge classifies as warning or worse, and none inside it does
        for v in [0.0, 150.0, 200.0, 200.5, 700.0, 5000.0] {
            let t = [Some(100.0), Some(200.0), Some(500.0), Some(1000.0)];
            let bad = classify(v, lower, t).unwrap() >= Severity::Warning;
            assert_eq!(bad, v > breach_edge(lower, t).unwrap(), "{v}");
        }
    }
    use Direction::*;
    use Severity::*;

    const API: [Option<f64>; 4] = [Some(100.0), Some(200.0), Some(500.0), Some(1000.0)];
    const AVAIL: [Option<f64>; 4] = [Some(99.99), Some(99.95), Some(99.90), Some(99.80)];

    #[test]
    fn lower_is_better_boundaries() {
        let c = |v| classify(v, LowerIsBetter, API);
        assert_eq!(c(f64::NEG_INFINITY), Some(Optimal));
        assert_eq!(c(100.0), Some(Optimal));
        assert_eq!(c(100.000001), Some(Good));
        assert_eq!(c(200.0), Some(Good));
        assert_eq!(c(500.0), Some(Warning));
        assert_eq!(c(500.5), Some(Critical));
        assert_eq!(c(1000.0), Some(Critical));
        assert_eq!(c(1000.0001), Some(Emergency));
        assert_eq!(c(f64::INFINITY), Some(Emergency));
    }

    #[test]
    fn higher_is_better_boundaries_and_availability() {
        let c = |v| classify(v, HigherIsBetter, AVAIL);
        assert_eq!(c(100.0), Some(Optimal));
        assert_eq!(c(99.999), Some(Optimal));
        assert_eq!(c(99.99), Some(Optimal));
        assert_eq!(c(99.98), Some(Good));
        assert_eq!(c(99.95), Some(Good));
        assert_eq!(c(99.90), Some(Warning));
        assert_eq!(c(99.80), Some(Critical));
        assert_eq!(c(99.79), Some(Emergency));
    }

    #[test]
    fn missing_thresholds_remove_bands() {
        let rps = [None, Some(1000.0), Some(500.0), Some(100.0)];
        assert_eq!(classify(5000.0, HigherIsBetter, rps), Some(Good));
        assert_eq!(classify(1000.0, HigherIsBetter, rps), Some(Good));
        assert_eq!(classify(999.0, HigherIsBetter, rps), Some(Warning));
        assert_eq!(classify(99.0, HigherIsBetter, rps), Some(Emergency));
        let only_warn = [None, None, Some(500.0), None];
        assert_eq!(classify(1.0, LowerIsBetter, only_warn), Some(Warning));
        assert_eq!(classify(501.0, LowerIsBetter, only_warn), Some(Emergency));
        assert_eq!(classify(1.0, LowerIsBetter, [None; 4]), None);
    }

    #[test]
    fn crossed_thresholds() {
        assert_eq!(crossed_threshold(Optimal, API), None);
        assert_eq!(crossed_threshold(Good, API), Some(100.0));
        assert_eq!(crossed_threshold(Warning, API), Some(200.0));
        assert_eq!(crossed_threshold(Emergency, API), Some(1000.0));
        let gaps = [Some(1.0), None, None, Some(9.0)];
        assert_eq!(crossed_threshold(Emergency, gaps), Some(9.0));
        assert_eq!(crossed_threshold(Critical, gaps), Some(1.0));
        assert_eq!(crossed_threshold(Warning, [None; 4]), None);
    }

    #[test]
    fn breach_ratio_boundaries() {
        assert_eq!(breach_severity(100.0, 100.0).unwrap(), None);
        assert_eq!(breach_severity(99.0, 100.0).unwrap(), None);
        assert_eq!(breach_severity(100.5, 100.0).unwrap(), Some("low"));
        assert_eq!(breach_severity(200.0, 100.0).unwrap(), Some("low"));
        assert_eq!(breach_severity(200.01, 100.0).unwrap(), Some("medium"));
        assert_eq!(breach_severity(300.0, 100.0).unwrap(), Some("medium"));
        assert_eq!(breach_severity(300.01, 100.0).unwrap(), Some("high"));
        assert_eq!(breach_severity(500.0, 100.0).unwrap(), Some("high"));
        assert_eq!(breach_severity(500.01, 100.0).unwrap(), Some("critical"));
        assert_eq!(
            breach_severity(f64::INFINITY, 1.0).unwrap(),
            Some("critical")
        );
        assert!(breach_severity(f64::NAN, 1.0).is_err());
        assert!(breach_severity(1.0, 0.0).is_err());
        assert!(breach_severity(1.0, -5.0).is_err());
        assert!(breach_severity(1.0, f64::INFINITY).is_err());
    }

    #[test]
    fn statuses_and_grades() {
        assert_eq!(health_status(None).unwrap(), "unknown");
        for (s, want) in [
            (100.0, "excellent"),
            (90.0, "excellent"),
            (89.99, "good"),
            (80.0, "good"),
            (70.0, "warning"),
            (69.9, "critical"),
            (50.0, "critical"),
            (49.9, "emergency"),
            (0.0, "emergency"),
        ] {
            assert_eq!(health_status(Some(s)).unwrap(), want, "{s}");
        }
        assert!(health_status(Some(f64::NAN)).is_err());
        assert!(health_status(Some(100.5)).is_err());
        assert!(health_status(Some(-1.0)).is_err());

        for (p, want) in [
            (100.0, "A"),
            (95.0, "A"),
            (94.9, "B"),
            (85.0, "B"),
            (75.0, "C"),
            (65.0, "D"),
            (64.99, "F"),
            (0.0, "F"),
        ] {
            assert_eq!(grade(p).unwrap(), want, "{p}");
        }
        assert!(grade(101.0).is_err());

        let pg = |a, e, x| performance_grade(a, e, x).unwrap();
        assert_eq!(pg(100.0, 10.01, 100.0), "F");
        assert_eq!(pg(100.0, 10.0, 100.0), "D");
        assert_eq!(pg(100.0, 5.01, 100.0), "D");
        assert_eq!(pg(100.0, 5.0, 100.0), "A");
        assert_eq!(pg(301.0, 0.0, 100.0), "F");
        assert_eq!(pg(300.0, 0.0, 100.0), "D");
        assert_eq!(pg(200.0, 0.0, 100.0), "C");
        assert_eq!(pg(150.0, 0.0, 100.0), "B");
        assert_eq!(pg(120.0, 0.0, 100.0), "A");
        assert_eq!(pg(0.0, 0.0, 100.0), "A");
        assert!(performance_grade(1.0, 0.0, 0.0).is_err());
        assert!(performance_grade(-1.0, 0.0, 10.0).is_err());
        assert!(performance_grade(1.0, 101.0, 10.0).is_err());

        assert_eq!(grade_points(" b ").unwrap(), 3);
        assert!(grade_points("E").is_err());
        assert_eq!(grade_from_mean(3.5), "A");
        assert_eq!(grade_from_mean(3.49), "B");
        assert_eq!(grade_from_mean(2.5), "B");
        assert_eq!(grade_from_mean(1.5), "C");
        assert_eq!(grade_from_mean(0.5), "D");
        assert_eq!(grade_from_mean(0.49), "F");
    }

    #[test]
    fn points_round_trip_and_merge() {
        let mut a = Points::default();
        for s in [Optimal, Good, Warning] {
            a.add(s.points());
        }
        let mut b = Points::default();
        b.add(Emergency.points());
        b.add(Critical.points());
        a.merge(&b);
        // (100 + 80 + 60 + 0 + 40) / 5
        assert_eq!(a.mean(), Some(56.0));
        assert_eq!(Points::decode(&a.encode()).unwrap(), a);
        assert_eq!(Points::default().mean(), None);
        assert!(Points::decode(b"H\x01\x01").is_err());
        let mut bad = a.encode();
        bad[1] = 9;
        assert!(Points::decode(&bad).is_err());
        let fake = Points { n: 1, sum: 500 };
        assert!(Points::decode(&fake.encode()).is_err());
    }
}
