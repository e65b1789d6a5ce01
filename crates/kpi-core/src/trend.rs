//! Least-squares trend state: count, means and centred co-moments, updated
//! with Welford's recurrences and merged with Chan et al.'s formulas, so
//! epoch-second x values around 1.8e9 lose no precision (no raw sums of
//! squares are ever formed).

use crate::codec::{Reader, Writer};
use crate::CoreResult;

const MAGIC: u8 = b'T';
const VERSION: u8 = 1;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Trend {
    pub n: u64,
    pub mx: f64,
    pub my: f64,
    pub sxx: f64,
    pub syy: f64,
    pub sxy: f64,
}

impl Trend {
    #[inline]
    pub fn add(&mut self, x: f64, y: f64) {
        self.n += 1;
        let n = self.n as f64;
        let dx = x - self.mx;
        let dy = y - self.my;
        self.mx += dx / n;
        self.my += dy / n;
        self.sxx += dx * (x - self.mx);
        self.syy += dy * (y - self.my);
        self.sxy += dx * (y - self.my);
        if !self.is_finite() {
            self.saturate();
        }
    }

    pub fn merge(&mut self, o: &Trend) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *o;
            return;
        }
        let (na, nb) = (self.n as f64, o.n as f64);
        let n = na + nb;
        let dx = o.mx - self.mx;
        let dy = o.my - self.my;
        let w = na * nb / n;
        self.mx += dx * nb / n;
        self.my += dy * nb / n;
        self.sxx += o.sxx + dx * dx * w;
        self.syy += o.syy + dy * dy * w;
        self.sxy += o.sxy + dx * dy * w;
        self.n += o.n;
        if !self.is_finite() {
            self.saturate();
        }
    }

    /// False once a moment left the f64 range (values near ±1e308): such a
    /// state is kept in one canonical form (`saturate`), every statistic of
    /// it is None, and the aggregates that build one from values raise
    /// 22003 as PostgreSQL's regr_*() do.
    pub fn is_finite(&self) -> bool {
        self.mx.is_finite()
            & self.my.is_finite()
            & self.sxx.is_finite()
            & self.syy.is_finite()
            & self.sxy.is_finite()
    }

    /// The canonical overflowed state: infinite spreads, nothing NaN, so it
    /// still encodes, decodes and merges.
    #[cold]
    fn saturate(&mut self) {
        self.mx = 0.0;
        self.my = 0.0;
        self.sxx = f64::INFINITY;
        self.syy = f64::INFINITY;
        self.sxy = 0.0;
    }

    /// Slope of y on x; None with fewer than 2 points or no variance in x.
    pub fn slope(&self) -> Option<f64> {
        (self.n >= 2 && self.sxx > 0.0 && self.is_finite()).then(|| self.sxy / self.sxx)
    }
    /// Typical distance between consecutive x values, from their spread:
    /// sqrt(12 sxx / (n (n^2 - 1))), exact for evenly spaced samples. Turns a
    /// slope per unit of x into a slope per sample.
    pub fn sample_spacing(&self) -> Option<f64> {
        if self.n < 2 || self.sxx <= 0.0 || !self.is_finite() {
            return None;
        }
        let n = self.n as f64;
        Some((12.0 * self.sxx / (n * (n * n - 1.0))).sqrt())
    }
    /// Slope per sample: the change between consecutive samples (see sample_spacing).
    pub fn slope_per_sample(&self) -> Option<f64> {
        Some(self.slope()? * self.sample_spacing()?)
    }
    pub fn intercept(&self) -> Option<f64> {
        self.slope().map(|b| self.my - b * self.mx)
    }
    /// Fitted value at x, computed about the mean for stability.
    pub fn forecast(&self, x: f64) -> Option<f64> {
        self.slope().map(|b| self.my + b * (x - self.mx))
    }
    /// Coefficient of determination (1 when y is constant, as regr_r2).
    pub fn r2(&self) -> Option<f64> {
        if self.n < 2 || self.sxx <= 0.0 || !self.is_finite() {
            return None;
        }
        if self.syy <= 0.0 {
            return Some(1.0);
        }
        Some(((self.sxy * self.sxy) / (self.sxx * self.syy)).min(1.0))
    }
    /// Pearson correlation; None when either variable is constant.
    pub fn correlation(&self) -> Option<f64> {
        if self.n < 2 || self.sxx <= 0.0 || self.syy <= 0.0 || !self.is_finite() {
            return None;
        }
        // + 0.0 turns -0 (no correlation, negative rounding) into 0
        Some((self.sxy / (self.sxx.sqrt() * self.syy.sqrt())).clamp(-1.0, 1.0) + 0.0)
    }

    /// The prediction interval of a new observation at x, at confidence
    /// `level` (0 < level < 1): the fitted value ± t(n-2) · s · sqrt(1 + 1/n +
    /// (x - mean x)² / Sxx), s the residual standard error. None with fewer
    /// than 3 points, no variance in x, or a level outside (0, 1).
    pub fn prediction_interval(&self, x: f64, level: f64) -> Option<(f64, f64)> {
        use statrs::distribution::{ContinuousCDF, StudentsT};
        if self.n < 3 || !(level > 0.0 && level < 1.0) || !x.is_finite() {
            return None;
        }
        let fit = self.forecast(x)?;
        let n = self.n as f64;
        let sse = (self.syy - self.sxy * self.sxy / self.sxx).max(0.0);
        let s = (sse / (n - 2.0)).sqrt();
        let dx = x - self.mx;
        let t = StudentsT::new(0.0, 1.0, n - 2.0)
            .ok()?
            .inverse_cdf(0.5 + level / 2.0);
        let half = t * s * (1.0 + 1.0 / n + dx * dx / self.sxx).sqrt();
        Some((fit - half, fit + half))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(MAGIC, VERSION);
        w.varu(self.n);
        for v in [self.mx, self.my, self.sxx, self.syy, self.sxy] {
            w.f64(v);
        }
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> CoreResult<Self> {
        let (mut r, version) = Reader::new(buf, "kpi.trend", MAGIC)?;
        if version != VERSION {
            return Err(r.corrupt(format!("unsupported version {version}")));
        }
        let t = Trend {
            n: r.varu()?,
            mx: r.f64()?,
            my: r.f64()?,
            sxx: r.f64()?,
            syy: r.f64()?,
            sxy: r.f64()?,
        };
        r.end()?;
        // an overflowed state is stored in its canonical form (saturate)
        let overflowed = t.sxx == f64::INFINITY
            && t.syy == f64::INFINITY
            && t.mx == 0.0
            && t.my == 0.0
            && t.sxy == 0.0;
        if !(t.is_finite() || overflowed)
            || t.sxx < 0.0
            || t.syy < 0.0
            || (t.n == 0 && (t.sxx != 0.0 || t.mx != 0.0))
        {
            return Err(r.corrupt("inconsistent trend state"));
        }
        Ok(t)
    }
}

/// 'increasing' above +threshold, 'decreasing' below -threshold, else 'stable'.
pub fn direction(slope: f64, threshold: f64) -> &'static str {
    if slope > threshold {
        "increasing"
    } else if slope < -threshold {
        "decreasing"
    } else {
        "stable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_saturates_and_survives_encoding() {
        let mut t = Trend::default();
        for (x, y) in [(1.0, 1e308), (2.0, -1e308), (3.0, 1e308), (4.0, 5.0)] {
            t.add(x, y);
        }
        assert!(!t.is_finite());
        assert_eq!(t.n, 4);
        assert_eq!((t.slope(), t.r2(), t.correlation()), (None, None, None));
        let d = Trend::decode(&t.encode()).unwrap();
        assert_eq!(d, t);
        let mut ok = Trend::default();
        ok.add(1.0, 2.0);
        ok.add(2.0, 3.0);
        ok.merge(&d);
        assert!(!ok.is_finite());
        assert_eq!(ok.n, 6);
        assert_eq!(Trend::decode(&ok.encode()).unwrap(), ok);
        // a non-canonical infinite state is corrupt
        let mut bad = ok;
        bad.sxy = f64::NAN;
        assert!(Trend::decode(&bad.encode()).is_err());
    }

    /// Against scipy: linregress over x = 0..9, y = [1,3,2,5,4,6,8,7,9,10],
    /// prediction at x = 12: 12.727273, 95 % interval [10.085850, 15.368696].
    #[test]
    fn prediction_interval_matches_scipy() {
        let mut t = Trend::default();
        for (x, y) in [1.0, 3.0, 2.0, 5.0, 4.0, 6.0, 8.0, 7.0, 9.0, 10.0]
            .iter()
            .enumerate()
        {
            t.add(x as f64, *y);
        }
        let (lo, hi) = t.prediction_interval(12.0, 0.95).unwrap();
        assert!(
            (lo - 10.085849808766136).abs() < 1e-9 && (hi - 15.368695645779317).abs() < 1e-9,
            "{lo} {hi}"
        );
        assert!(t.prediction_interval(12.0, 1.0).is_none());
        let mut two = Trend::default();
        two.add(0.0, 1.0);
        two.add(1.0, 2.0);
        assert!(two.prediction_interval(3.0, 0.95).is_none());
    }
    use proptest::prelude::*;

    fn of(pts: &[(f64, f64)]) -> Trend {
        let mut t = Trend::default();
        pts.iter().for_each(|&(x, y)| t.add(x, y));
        t
    }

    #[test]
    fn slope_per_sample_of_evenly_spaced_samples() {
        // one sample every 30 s rising by 0.5 per sample: 1/60 per second
        let t = of(&(0..20)
            .map(|i| (1.8e9 + 30.0 * f64::from(i), 0.5 * f64::from(i)))
            .collect::<Vec<_>>());
        assert!((t.sample_spacing().unwrap() - 30.0).abs() < 1e-6);
        assert!((t.slope_per_sample().unwrap() - 0.5).abs() < 1e-9);
        // what the replaced code computed: the slope over positions 0..n-1
        let pos = of(&(0..20)
            .map(|i| (f64::from(i), 0.5 * f64::from(i)))
            .collect::<Vec<_>>());
        assert!((pos.slope().unwrap() - t.slope_per_sample().unwrap()).abs() < 1e-9);
        assert_eq!(of(&[(1.0, 1.0)]).sample_spacing(), None);
    }

    /// Two-pass reference fit (what numpy.polyfit(x, y, 1) computes).
    fn reference(pts: &[(f64, f64)]) -> (f64, f64) {
        let n = pts.len() as f64;
        let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
        let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
        let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let sxx: f64 = pts.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
        let b = sxy / sxx;
        (b, my - b * mx)
    }

    #[test]
    fn hand_computed() {
        // y = 2x + 1 exactly
        let t = of(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0), (3.0, 7.0)]);
        assert_eq!(t.slope(), Some(2.0));
        assert_eq!(t.intercept(), Some(1.0));
        assert_eq!(t.forecast(10.0), Some(21.0));
        assert!((t.r2().unwrap() - 1.0).abs() < 1e-15);
        assert!((t.correlation().unwrap() - 1.0).abs() < 1e-15);
        // x = 1,2,3,4,5; y = 2,4,5,4,5: slope 0.6, intercept 2.2, r = 0.7745967
        let t = of(&[(1.0, 2.0), (2.0, 4.0), (3.0, 5.0), (4.0, 4.0), (5.0, 5.0)]);
        assert!((t.slope().unwrap() - 0.6).abs() < 1e-15);
        assert!((t.intercept().unwrap() - 2.2).abs() < 1e-14);
        assert!((t.correlation().unwrap() - 0.6f64.sqrt()).abs() < 1e-15);
        assert!((t.r2().unwrap() - 0.6).abs() < 1e-15);
        assert_eq!(of(&[(1.0, 1.0), (1.0, 2.0)]).slope(), None);
        assert_eq!(of(&[(1.0, 2.0), (2.0, 2.0)]).correlation(), None);
        assert_eq!(of(&[(1.0, 2.0), (2.0, 2.0)]).r2(), Some(1.0));
        assert_eq!(direction(0.2, 0.1), "increasing");
        assert_eq!(direction(-0.2, 0.1), "decreasing");
        assert_eq!(direction(0.1, 0.1), "stable");
    }

    #[test]
    fn epoch_seconds_keep_precision() {
        // one point a minute around 2027; slope 0.5 per second plus noise-free offset
        let pts: Vec<(f64, f64)> = (0..1000)
            .map(|i| {
                let x = 1.8e9 + 60.0 * i as f64;
                (x, 0.5 * (x - 1.8e9) + 7.0)
            })
            .collect();
        let t = of(&pts);
        assert!((t.slope().unwrap() - 0.5).abs() < 1e-12);
        assert!((t.forecast(1.8e9).unwrap() - 7.0).abs() < 1e-6);
    }

    #[test]
    fn corrupt_rejected() {
        let t = of(&[(1.0, 2.0), (2.0, 3.0)]);
        let e = t.encode();
        assert_eq!(Trend::decode(&e).unwrap(), t);
        for cut in 0..e.len() {
            assert!(Trend::decode(&e[..cut]).is_err());
        }
        let mut bad = e.clone();
        bad.push(1);
        assert!(Trend::decode(&bad).is_err());
    }

    proptest! {
        #[test]
        fn matches_two_pass_and_merges(pts in proptest::collection::vec((0.0f64..1e5, -1e3f64..1e3), 3..200),
                                       split in 0usize..200) {
            let shifted: Vec<(f64, f64)> = pts.iter().map(|&(x, y)| (x + 1.8e9, y)).collect();
            let t = of(&shifted);
            let (b, _) = reference(&pts);
            // the natural scale of a slope is sd(y)/sd(x); near-zero slopes are judged on it
            let scale = b.abs().max((t.syy / t.sxx).sqrt());
            if let Some(s) = t.slope() {
                prop_assert!((s - b).abs() <= 1e-9 * scale, "{} vs {}", s, b);
            }
            let k = split.min(shifted.len());
            let mut m = of(&shifted[..k]);
            m.merge(&of(&shifted[k..]));
            prop_assert_eq!(m.n, t.n);
            if let (Some(a), Some(c)) = (m.slope(), t.slope()) {
                prop_assert!((a - c).abs() <= 1e-9 * scale);
            }
        }
    }
}
