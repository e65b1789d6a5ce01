//! Capacity planning: the replaced scalability manager's scaling-efficiency
//! score and capacity-forecast advice, and the portal's load-test grades and
//! bottlenecks. Every cut-off is an argument; the replaced values are the
//! SQL defaults.

use crate::{CoreError, CoreResult};

/// Efficiency score of a service's scaling, 0..100: 40 x success rate, plus
/// up to 30 for fast scaling (30 - mean minutes x 10), plus up to 30 for a
/// steady pace (30 - |events per hour - 2| x 5).
pub fn efficiency_score(
    success_rate: f64,
    mean_duration_s: f64,
    events_per_hour: f64,
) -> CoreResult<f64> {
    if !(0.0..=1.0).contains(&success_rate) {
        return Err(CoreError::invalid(
            "success_rate",
            format!("must be between 0 and 1, got {success_rate}"),
        ));
    }
    if !(mean_duration_s.is_finite() && mean_duration_s >= 0.0) {
        return Err(CoreError::invalid(
            "mean_duration",
            format!("must be a finite duration >= 0, got {mean_duration_s}"),
        ));
    }
    if !(events_per_hour.is_finite() && events_per_hour >= 0.0) {
        return Err(CoreError::invalid(
            "events_per_hour",
            format!("must be a finite rate >= 0, got {events_per_hour}"),
        ));
    }
    Ok(40.0 * success_rate
        + (30.0 - mean_duration_s / 60.0 * 10.0).max(0.0)
        + (30.0 - (events_per_hour - 2.0).abs() * 5.0).max(0.0))
}

/// The capacity advice for a forecast growth in %: `major_expansion` above
/// `major_pct`, `gradual_increase` above `gradual_pct`, `cost_reduction`
/// below `-reduce_pct`, else none.
pub fn growth_advice(
    growth_pct: f64,
    major_pct: f64,
    gradual_pct: f64,
    reduce_pct: f64,
) -> Option<&'static str> {
    if !growth_pct.is_finite() {
        return None;
    }
    if growth_pct > major_pct {
        Some("major_expansion")
    } else if growth_pct > gradual_pct {
        Some("gradual_increase")
    } else if growth_pct < -reduce_pct {
        Some("cost_reduction")
    } else {
        None
    }
}

/// The replaced load-test grade: error rate (%) above 10 F, above 5 D; then
/// the mean response time over the expected one: above 3 F, 2 D, 1.5 C, 1.2 B,
/// else A.
pub fn load_test_grade(error_rate_pct: f64, mean_ms: f64, expected_ms: f64) -> CoreResult<char> {
    if !(error_rate_pct.is_finite() && (0.0..=100.0).contains(&error_rate_pct)) {
        return Err(CoreError::invalid(
            "error_rate",
            format!("must be between 0 and 100 %, got {error_rate_pct}"),
        ));
    }
    if !(expected_ms.is_finite() && expected_ms > 0.0) {
        return Err(CoreError::invalid(
            "expected_ms",
            format!("must be a positive number of ms, got {expected_ms}"),
        ));
    }
    if !(mean_ms.is_finite() && mean_ms >= 0.0) {
        return Err(CoreError::invalid(
            "response_times_ms",
            format!("mean must be a finite number >= 0, got {mean_ms}"),
        ));
    }
    if error_rate_pct > 10.0 {
        return Ok('F');
    }
    if error_rate_pct > 5.0 {
        return Ok('D');
    }
    let ratio = mean_ms / expected_ms;
    Ok(if ratio > 3.0 {
        'F'
    } else if ratio > 2.0 {
        'D'
    } else if ratio > 1.5 {
        'C'
    } else if ratio > 1.2 {
        'B'
    } else {
        'A'
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn efficiency_at_its_edges() {
        // all successes, instant, exactly 2 an hour: 100
        assert_eq!(efficiency_score(1.0, 0.0, 2.0).unwrap(), 100.0);
        // all failures, 3 minutes each (30 - 30 = 0), 8 an hour (30 - 30 = 0): 0
        assert_eq!(efficiency_score(0.0, 180.0, 8.0).unwrap(), 0.0);
        // half succeed, 1 minute (20), 1 an hour (25): 20 + 20 + 25
        assert_eq!(efficiency_score(0.5, 60.0, 1.0).unwrap(), 65.0);
        // no events at all: 30 - 2 x 5 = 20 for the pace
        assert_eq!(efficiency_score(1.0, 0.0, 0.0).unwrap(), 90.0);
        assert!(efficiency_score(1.5, 0.0, 2.0).is_err());
        assert!(efficiency_score(1.0, -1.0, 2.0).is_err());
        assert!(efficiency_score(1.0, 0.0, f64::NAN).is_err());
    }

    #[test]
    fn growth_cut_offs() {
        assert_eq!(
            growth_advice(50.01, 50.0, 20.0, 20.0),
            Some("major_expansion")
        );
        assert_eq!(
            growth_advice(50.0, 50.0, 20.0, 20.0),
            Some("gradual_increase")
        );
        assert_eq!(growth_advice(20.0, 50.0, 20.0, 20.0), None);
        assert_eq!(growth_advice(-20.0, 50.0, 20.0, 20.0), None);
        assert_eq!(
            growth_advice(-20.01, 50.0, 20.0, 20.0),
            Some("cost_reduction")
        );
        assert_eq!(growth_advice(f64::NAN, 50.0, 20.0, 20.0), None);
    }

    #[test]
    fn grades_at_each_cut_off() {
        assert_eq!(load_test_grade(10.01, 100.0, 200.0).unwrap(), 'F');
        assert_eq!(load_test_grade(10.0, 100.0, 200.0).unwrap(), 'D');
        assert_eq!(load_test_grade(5.0, 100.0, 200.0).unwrap(), 'A');
        assert_eq!(load_test_grade(0.0, 600.01, 200.0).unwrap(), 'F');
        assert_eq!(load_test_grade(0.0, 600.0, 200.0).unwrap(), 'D');
        assert_eq!(load_test_grade(0.0, 400.0, 200.0).unwrap(), 'C');
        assert_eq!(load_test_grade(0.0, 300.0, 200.0).unwrap(), 'B');
        assert_eq!(load_test_grade(0.0, 240.0, 200.0).unwrap(), 'A');
        assert_eq!(load_test_grade(0.0, 240.01, 200.0).unwrap(), 'B');
        assert!(load_test_grade(0.0, 100.0, 0.0).is_err());
        assert!(load_test_grade(101.0, 100.0, 200.0).is_err());
    }

    proptest! {
        #[test]
        fn score_is_within_0_and_100(r in 0.0f64..=1.0, d in 0.0f64..1e6, e in 0.0f64..1e6) {
            let s = efficiency_score(r, d, e).unwrap();
            prop_assert!((0.0..=100.0).contains(&s));
        }
    }
}
