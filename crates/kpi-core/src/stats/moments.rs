//! Streaming count / mean / variance / min / max with Welford updates and
//! Chan et al.'s pairwise merge, so partial states combine without the
//! catastrophic cancellation of the sum-of-squares formula.

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Moments {
    pub n: u64,
    pub mean: f64,
    pub m2: f64,
    pub min: f64,
    pub max: f64,
}

impl Default for Moments {
    fn default() -> Self {
        Moments {
            n: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Moments {
    pub fn encode(&self, w: &mut crate::codec::Writer) {
        w.varu(self.n);
        for v in [self.mean, self.m2, self.min, self.max] {
            w.f64(v);
        }
    }

    pub fn decode(r: &mut crate::codec::Reader) -> crate::CoreResult<Self> {
        Ok(Moments {
            n: r.varu()?,
            mean: r.f64()?,
            m2: r.f64()?,
            min: r.f64()?,
            max: r.f64()?,
        })
    }

    #[inline]
    pub fn add(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
        if x < self.min {
            self.min = x;
        }
        if x > self.max {
            self.max = x;
        }
    }

    pub fn merge(&mut self, o: &Moments) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *o;
            return;
        }
        let n = self.n + o.n;
        let d = o.mean - self.mean;
        let (na, nb, nf) = (self.n as f64, o.n as f64, n as f64);
        self.mean += d * nb / nf;
        self.m2 += o.m2 + d * d * na * nb / nf;
        self.n = n;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then_some(self.mean)
    }

    /// True once the running mean or the sum of squared deviations left
    /// the f64 range although every value was finite (values near ±1e308);
    /// `mean_stddev_scaled` then recomputes them from the values, when kept.
    pub fn overflowed(&self) -> bool {
        self.min.is_finite()
            && self.max.is_finite()
            && !(self.mean.is_finite() && self.m2.is_finite())
    }

    /// The mean and sample standard deviation of `values` (all finite),
    /// computed on the values scaled by 2^-540 so that nothing overflows,
    /// then scaled back: finite whenever the true results are (what
    /// `overflowed` moments cannot give). Values below 1e-162 in magnitude
    /// count as 0, far below the precision of the large values present.
    pub fn mean_stddev_scaled(values: &[f64]) -> (Option<f64>, Option<f64>) {
        let mut m = Moments::default();
        values.iter().for_each(|&x| m.add(x * 2f64.powi(-540)));
        let up = 2f64.powi(540);
        (m.mean().map(|v| v * up), m.stddev_samp().map(|v| v * up))
    }
    /// Sample variance (n - 1 denominator), as stddev()/numpy ddof=1.
    pub fn var_samp(&self) -> Option<f64> {
        (self.n > 1).then(|| (self.m2 / (self.n - 1) as f64).max(0.0))
    }
    #[cfg(test)]
    fn var_pop(&self) -> Option<f64> {
        (self.n > 0).then(|| (self.m2 / self.n as f64).max(0.0))
    }
    pub fn stddev_samp(&self) -> Option<f64> {
        self.var_samp().map(f64::sqrt)
    }
    pub fn min(&self) -> Option<f64> {
        (self.n > 0).then_some(self.min)
    }
    pub fn max(&self) -> Option<f64> {
        (self.n > 0).then_some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn of(v: &[f64]) -> Moments {
        let mut m = Moments::default();
        v.iter().for_each(|&x| m.add(x));
        m
    }

    #[test]
    fn huge_values_do_not_overflow() {
        let m = of(&[1e308, -1e308]);
        assert!(m.overflowed());
        let (mean, sd) = Moments::mean_stddev_scaled(&[1e308, -1e308]);
        assert_eq!(mean, Some(0.0));
        // sample stddev of {a, -a} is a * sqrt(2)
        assert!((sd.unwrap() / (1e308 * 2f64.sqrt()) - 1.0).abs() < 1e-15);
        let (mean, sd) = Moments::mean_stddev_scaled(&[1.5e308, 1.5e308, 1.5e308]);
        assert_eq!(mean, Some(1.5e308));
        assert_eq!(sd, Some(0.0));
        assert!(!of(&[1.0, 2.0]).overflowed());
        assert!(!of(&[f64::INFINITY, 2.0]).overflowed());
    }

    #[test]
    fn hand_computed() {
        // 2,4,4,4,5,5,7,9: mean 5, population variance 4, sample variance 32/7
        let m = of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(m.mean(), Some(5.0));
        assert!((m.var_pop().unwrap() - 4.0).abs() < 1e-15);
        assert!((m.var_samp().unwrap() - 32.0 / 7.0).abs() < 1e-14);
        assert_eq!(m.min(), Some(2.0));
        assert_eq!(m.max(), Some(9.0));
        assert_eq!(of(&[]).mean(), None);
        assert_eq!(of(&[3.0]).var_samp(), None);
        assert_eq!(of(&[3.0]).var_pop(), Some(0.0));
    }

    #[test]
    fn stable_with_large_offset() {
        // sum-of-squares would lose every digit here
        let base = 1.8e9;
        let m = of(&[base + 4.0, base + 7.0, base + 13.0, base + 16.0]);
        assert!((m.var_samp().unwrap() - 30.0).abs() < 1e-6);
    }

    proptest! {
        #[test]
        fn merge_matches_sequential(a in proptest::collection::vec(-1e6f64..1e6, 0..40),
                                    b in proptest::collection::vec(-1e6f64..1e6, 0..40)) {
            let mut m = of(&a);
            m.merge(&of(&b));
            let mut all = a.clone();
            all.extend(&b);
            let s = of(&all);
            prop_assert_eq!(m.n, s.n);
            if s.n > 0 {
                prop_assert!((m.mean - s.mean).abs() <= 1e-9 * (1.0 + s.mean.abs()));
                prop_assert!((m.m2 - s.m2).abs() <= 1e-7 * (1.0 + s.m2.abs()));
                prop_assert_eq!(m.min, s.min);
                prop_assert_eq!(m.max, s.max);
            }
        }
    }
}
