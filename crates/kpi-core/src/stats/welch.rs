//! Welch's two-sample t-test (unequal variances) from each sample's count,
//! mean and sample variance, so it runs on merged summaries.

use statrs::distribution::{ContinuousCDF, StudentsT};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WelchTest {
    /// t of mean(a) - mean(b)
    pub t: f64,
    /// Welch-Satterthwaite degrees of freedom
    pub df: f64,
    /// two-sided p-value
    pub p_value: f64,
}

/// None when either sample has fewer than 2 values, a non-finite input, or
/// both variances are zero (the means differ or not, with no spread to test
/// against).
pub fn test(n1: u64, mean1: f64, var1: f64, n2: u64, mean2: f64, var2: f64) -> Option<WelchTest> {
    if n1 < 2 || n2 < 2 || ![mean1, var1, mean2, var2].iter().all(|x| x.is_finite()) {
        return None;
    }
    let (a, b) = (var1.max(0.0) / n1 as f64, var2.max(0.0) / n2 as f64);
    let se2 = a + b;
    if se2 <= 0.0 {
        return None;
    }
    let t = (mean1 - mean2) / se2.sqrt();
    let df = se2 * se2 / (a * a / (n1 - 1) as f64 + b * b / (n2 - 1) as f64);
    let p = StudentsT::new(0.0, 1.0, df).ok()?.sf(t.abs()) * 2.0;
    Some(WelchTest {
        t,
        df,
        p_value: p.min(1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(x: &[f64]) -> (u64, f64, f64) {
        let n = x.len() as f64;
        let m = x.iter().sum::<f64>() / n;
        let v = x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0);
        (x.len() as u64, m, v)
    }

    /// Against scipy.stats.ttest_ind(a, b, equal_var=False):
    /// a = [19.8, 20.4, 19.6, 17.8, 18.5, 18.9, 18.3, 18.9, 19.5, 22.0]
    /// b = [28.2, 26.6, 20.1, 23.3, 25.2, 22.1, 17.7, 27.6, 20.6, 13.7, 23.2, 17.5, 20.6, 18.0, 23.9, 21.6, 24.3, 20.4, 24.0, 13.2]
    /// t = -2.219241, p = 0.035972, df = 24.4962 (scipy 1.x).
    #[test]
    fn matches_scipy() {
        let a = [19.8, 20.4, 19.6, 17.8, 18.5, 18.9, 18.3, 18.9, 19.5, 22.0];
        let b = [
            28.2, 26.6, 20.1, 23.3, 25.2, 22.1, 17.7, 27.6, 20.6, 13.7, 23.2, 17.5, 20.6, 18.0,
            23.9, 21.6, 24.3, 20.4, 24.0, 13.2,
        ];
        let (n1, m1, v1) = moments(&a);
        let (n2, m2, v2) = moments(&b);
        let w = test(n1, m1, v1, n2, m2, v2).unwrap();
        assert!((w.t - -2.2192409158).abs() < 1e-8, "{w:?}");
        assert!((w.p_value - 0.0359722710).abs() < 1e-7, "{w:?}");
        assert!((w.df - 24.4962231242).abs() < 1e-7, "{w:?}");
    }

    #[test]
    fn degenerate_samples() {
        assert!(test(1, 1.0, 0.0, 5, 2.0, 1.0).is_none());
        assert!(test(5, 1.0, 0.0, 5, 2.0, 0.0).is_none());
        assert!(test(5, f64::NAN, 1.0, 5, 2.0, 1.0).is_none());
        let same = test(10, 5.0, 2.0, 10, 5.0, 2.0).unwrap();
        assert_eq!(same.t, 0.0);
        assert!((same.p_value - 1.0).abs() < 1e-12);
    }
}
