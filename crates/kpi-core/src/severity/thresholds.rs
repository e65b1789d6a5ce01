//! Per-metric threshold bands: optimal, good, warning, critical.
//!
//! For a lower-is-better metric each threshold is the upper edge of its band,
//! so they must not decrease; for a higher-is-better metric each is the lower
//! edge, so they must not increase. A missing (NULL) or infinite threshold
//! means "no such band" and is skipped (the replaced configuration wrote an
//! absent bound as infinity).

/// The thresholds with infinite ones removed: what the bands are computed from.
pub fn effective(t: [Option<f64>; 4]) -> [Option<f64>; 4] {
    t.map(|x| x.filter(|v| !v.is_infinite()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    LowerIsBetter,
    HigherIsBetter,
}

impl Direction {
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "lower_is_better" => Some(Direction::LowerIsBetter),
            "higher_is_better" => Some(Direction::HigherIsBetter),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::LowerIsBetter => "lower_is_better",
            Direction::HigherIsBetter => "higher_is_better",
        }
    }
}

pub const NAMES: [&str; 4] = ["optimal", "good", "warning", "critical"];

/// What is wrong with a set of thresholds (found without allocating, so
/// per-row callers pay nothing on the success path).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Problem {
    NotFinite {
        name: &'static str,
        value: f64,
    },
    OutOfOrder {
        dir: Direction,
        a: &'static str,
        va: f64,
        b: &'static str,
        vb: f64,
    },
}

/// The first problem with thresholds `t` for direction `dir`, if any.
pub fn problem(dir: Direction, t: [Option<f64>; 4]) -> Option<Problem> {
    let mut prev: Option<(&'static str, f64)> = None;
    for (name, v) in NAMES.iter().zip(t) {
        let Some(v) = v else { continue };
        if v.is_nan() {
            return Some(Problem::NotFinite { name, value: v });
        }
        if v.is_infinite() {
            continue; // no such band, like NULL
        }
        if let Some((a, va)) = prev {
            let bad = match dir {
                Direction::LowerIsBetter => v < va,
                Direction::HigherIsBetter => v > va,
            };
            if bad {
                return Some(Problem::OutOfOrder {
                    dir,
                    a,
                    va,
                    b: name,
                    vb: v,
                });
            }
        }
        prev = Some((name, v));
    }
    None
}

/// (sqlstate, message) for a problem, the message prefixed with `subject`.
pub fn describe(subject: &str, p: Problem) -> (&'static str, String) {
    match p {
        Problem::NotFinite { name, value } => (
            "22023",
            format!(
                "{subject}: threshold {name} must be a number, got {}",
                crate::validate::fmt_float(value)
            ),
        ),
        Problem::OutOfOrder { dir, a, va, b, vb } => {
            let rel = if dir == Direction::LowerIsBetter {
                "below"
            } else {
                "above"
            };
            (
                "23514",
                format!(
                    "{subject}: thresholds out of order for a {} metric: {b} ({vb}) is {rel} {a} ({va})",
                    dir.as_str()
                ),
            )
        }
    }
}

/// (sqlstate, message) for an unknown direction word.
pub fn unknown_direction(subject: &str, direction: &str) -> (&'static str, String) {
    (
        "22023",
        format!(
            "{subject}: direction must be 'lower_is_better' or 'higher_is_better', got '{direction}'"
        ),
    )
}

/// Checks a metric definition's direction and thresholds; the error message
/// names the metric and the two thresholds out of order. Returns (sqlstate, message).
pub fn check(
    metric: &str,
    direction: &str,
    t: [Option<f64>; 4],
) -> Result<Direction, (&'static str, String)> {
    let subject = format!("metric \"{metric}\"");
    let dir = Direction::parse(direction).ok_or_else(|| unknown_direction(&subject, direction))?;
    match problem(dir, t) {
        Some(p) => Err(describe(&subject, p)),
        None => Ok(dir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotone_in_direction() {
        assert!(check(
            "api",
            "lower_is_better",
            [Some(100.0), Some(200.0), Some(500.0), Some(1000.0)]
        )
        .is_ok());
        assert!(check(
            "avail",
            "higher_is_better",
            [Some(99.99), Some(99.95), Some(99.9), Some(99.8)]
        )
        .is_ok());
        assert!(check(
            "rps",
            "higher_is_better",
            [None, Some(1000.0), Some(500.0), Some(100.0)]
        )
        .is_ok());
        assert!(check("x", "lower_is_better", [None, None, None, None]).is_ok());
        assert!(check(
            "x",
            "lower_is_better",
            [Some(1.0), Some(1.0), Some(2.0), None]
        )
        .is_ok());
        let (code, msg) = check(
            "api",
            "lower_is_better",
            [Some(100.0), Some(50.0), Some(500.0), None],
        )
        .unwrap_err();
        assert_eq!(code, "23514");
        assert_eq!(
            msg,
            "metric \"api\": thresholds out of order for a lower_is_better metric: good (50) is below optimal (100)"
        );
        let (_, msg) = check(
            "av",
            "higher_is_better",
            [Some(99.0), None, Some(99.5), None],
        )
        .unwrap_err();
        assert!(
            msg.contains("warning (99.5) is above optimal (99)"),
            "{msg}"
        );
        assert_eq!(check("x", "sideways", [None; 4]).unwrap_err().0, "22023");
        assert_eq!(
            check("x", "lower_is_better", [Some(f64::NAN), None, None, None])
                .unwrap_err()
                .0,
            "22023"
        );
    }

    #[test]
    fn infinite_thresholds_mean_no_band() {
        let inf = f64::INFINITY;
        // the replaced configuration's "no optimal bound" for throughput
        let t = [Some(inf), Some(1000.0), Some(500.0), Some(100.0)];
        assert!(problem(Direction::HigherIsBetter, t).is_none());
        assert_eq!(effective(t), [None, Some(1000.0), Some(500.0), Some(100.0)]);
        let c = |v| crate::severity::classify(v, Direction::HigherIsBetter, t);
        assert_eq!(c(5000.0), Some(crate::severity::Severity::Good));
        assert_eq!(c(50.0), Some(crate::severity::Severity::Emergency));
        // either infinity, either direction, is skipped; only NaN is an error
        let t = [Some(-inf), Some(1.0), Some(2.0), Some(inf)];
        assert!(problem(Direction::LowerIsBetter, t).is_none());
        assert_eq!(
            crate::severity::classify(3.0, Direction::LowerIsBetter, t),
            Some(crate::severity::Severity::Emergency)
        );
        assert!(matches!(
            problem(Direction::LowerIsBetter, [Some(f64::NAN), None, None, None]),
            Some(Problem::NotFinite { .. })
        ));
        assert_eq!(
            crate::severity::crossed_threshold(crate::severity::Severity::Emergency, t),
            Some(2.0)
        );
    }
}
