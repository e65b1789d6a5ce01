//! Pearson correlation with a two-sided Student t test of r = 0.

use crate::trend::Trend;
use statrs::distribution::{ContinuousCDF, StudentsT};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CorrelationTest {
    pub r: Option<f64>,
    pub n: u64,
    pub t: Option<f64>,
    pub p_value: Option<f64>,
}

/// r, t = r sqrt((n - 2) / (1 - r²)) with n - 2 degrees of freedom, and the
/// two-sided p-value. r is None when either variable is constant; t and p
/// need n >= 3.
pub fn test(state: &Trend) -> CorrelationTest {
    let r = state.correlation();
    let n = state.n;
    let (t, p) = match r {
        Some(r) if n >= 3 => {
            let df = (n - 2) as f64;
            let one_minus = 1.0 - r * r;
            if one_minus <= 0.0 {
                (Some(f64::INFINITY.copysign(r)), Some(0.0))
            } else {
                let t = r * (df / one_minus).sqrt();
                let p = StudentsT::new(0.0, 1.0, df)
                    .map(|d| (2.0 * d.sf(t.abs())).min(1.0))
                    .ok();
                (Some(t), p)
            }
        }
        _ => (None, None),
    };
    CorrelationTest {
        r,
        n,
        t,
        p_value: p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn against_scipy() {
        // scipy.stats.pearsonr([1,2,3,4,5],[2,4,5,4,5]) = (0.7745966692414834, 0.12402706265755456)
        let mut s = Trend::default();
        for (x, y) in [(1.0, 2.0), (2.0, 4.0), (3.0, 5.0), (4.0, 4.0), (5.0, 5.0)] {
            s.add(x, y);
        }
        let c = test(&s);
        assert!((c.r.unwrap() - 0.7745966692414834).abs() < 1e-12);
        assert!((c.p_value.unwrap() - 0.12402706265755456).abs() < 1e-9);
        assert!((c.t.unwrap() - 2.1213203435596424).abs() < 1e-12);
        assert_eq!(c.n, 5);
    }

    #[test]
    fn degenerate() {
        let mut s = Trend::default();
        s.add(1.0, 1.0);
        s.add(2.0, 2.0);
        let c = test(&s);
        assert!((c.r.unwrap() - 1.0).abs() < 1e-15);
        assert_eq!(c.t, None);
        s.add(3.0, 3.0);
        let c = test(&s);
        assert!(c.p_value.unwrap() < 1e-6);
        let mut k = Trend::default();
        k.add(1.0, 5.0);
        k.add(2.0, 5.0);
        k.add(3.0, 5.0);
        assert_eq!(test(&k).r, None);
        assert_eq!(test(&Trend::default()).r, None);
    }
}
