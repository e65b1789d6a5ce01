//! A mergeable quantile sketch with a relative-error guarantee, in the
//! DDSketch / UDDSketch family.
//!
//! A value x != 0 falls in bucket k = ceil(log_γ |x|) of the store for its
//! sign, with γ = (1 + α) / (1 − α); the bucket's representative
//! 2γ^k / (γ + 1) is within relative error α of every value in it. Exact
//! zeros (and subnormal magnitudes) have a bucket of their own.
//!
//! When the key span of the two stores exceeds `MAX_BUCKETS`, the sketch
//! collapses (UDDSketch): γ becomes γ², neighbouring buckets merge, and the
//! bound in force becomes α' = 2α / (1 + α²). Keys at collapse level l are
//! always computed as ceil(k0 / 2^l) from the level-0 key k0, so a sketch is
//! a pure function of the multiset of values: merging sketches in any order
//! gives, bit for bit, the sketch of the union.
//!
//! Quantiles have `percentile_disc` semantics: the estimate of the value at
//! rank ceil(p·n), clamped to [min, max]; p = 0 and p = 1 return the exact
//! min and max. The sum is kept exactly (`ExactSum`), so the mean is the
//! correctly rounded exact mean.

use crate::codec::{Reader, Writer};
use crate::stats::exactsum::ExactSum;
use crate::{validate, CoreError, CoreResult};

const MAGIC: u8 = b'K';
const VERSION: u8 = 1;
/// Key span (both signs together) above which the sketch collapses.
pub const MAX_BUCKETS: u32 = 4096;
/// The default relative error.
pub const DEFAULT_ERROR: f64 = 0.01;
const MAX_LEVEL: u8 = 40;
/// Buckets a store makes room for on its first value (one allocation covers
/// the typical span of a minute of latencies).
const INITIAL_CAPACITY: usize = 64;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Store {
    offset: i64,
    counts: Vec<u64>,
}

impl Store {
    #[inline]
    fn add(&mut self, k: i64, c: u64) {
        if self.counts.is_empty() {
            self.offset = k;
            if self.counts.capacity() == 0 {
                self.counts.reserve(INITIAL_CAPACITY);
            }
            self.counts.push(c);
            return;
        }
        if k < self.offset {
            // grow to the left in place, doubling the capacity when it runs out
            let grow = (self.offset - k) as usize;
            let len = self.counts.len();
            self.counts.reserve(grow.max(len));
            self.counts.resize(len + grow, 0);
            self.counts.copy_within(0..len, grow);
            self.counts[..grow].fill(0);
            self.offset = k;
        } else if (k - self.offset) as usize >= self.counts.len() {
            self.counts.resize((k - self.offset) as usize + 1, 0);
        }
        self.counts[(k - self.offset) as usize] += c;
    }

    fn span(&self) -> u64 {
        self.counts.len() as u64
    }

    /// The key span after keys in `extra` (lowest, highest) were added.
    fn span_with(&self, extra: Option<(i64, i64)>) -> u64 {
        match (self.counts.is_empty(), extra) {
            (_, None) => self.span(),
            (true, Some((lo, hi))) => hi.abs_diff(lo) + 1,
            (false, Some((lo, hi))) => {
                let top = self.offset + self.counts.len() as i64 - 1;
                top.max(hi).abs_diff(self.offset.min(lo)) + 1
            }
        }
    }

    /// Lowest and highest key held.
    fn range(&self) -> Option<(i64, i64)> {
        (!self.counts.is_empty()).then(|| (self.offset, self.offset + self.counts.len() as i64 - 1))
    }

    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn iter(&self) -> impl DoubleEndedIterator<Item = (i64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(move |(i, &c)| (self.offset + i as i64, c))
    }

    /// Maps every key k to ceil(k / 2^by).
    fn collapse(&mut self, by: u8) {
        if self.counts.is_empty() || by == 0 {
            return;
        }
        let old = std::mem::take(&mut self.counts);
        let off = self.offset;
        let mut s = Store::default();
        for (i, c) in old.into_iter().enumerate() {
            if c > 0 {
                s.add(shift_key(off + i as i64, by), c);
            }
        }
        *self = s;
    }
}

/// ceil(x) for |x| < 2^62 without a libm call (the baseline x86-64 target
/// has no rounding instruction); exact, since integers in range convert exactly.
#[inline]
fn ceil_i64(x: f64) -> i64 {
    let t = x as i64;
    if (t as f64) < x {
        t + 1
    } else {
        t
    }
}

#[inline]
fn shift_key(k0: i64, level: u8) -> i64 {
    if level == 0 {
        k0
    } else {
        (k0 + (1i64 << level) - 1) >> level
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sketch {
    alpha0: f64,
    level: u8,
    count: u64,
    zero: u64,
    min: f64,
    max: f64,
    sum: ExactSum,
    pos: Store,
    neg: Store,
    inv_ln_gamma0: f64,
}

/// γ for a relative error α.
fn gamma_of(alpha: f64) -> f64 {
    (1.0 + alpha) / (1.0 - alpha)
}

impl Sketch {
    pub fn new(relative_error: f64) -> CoreResult<Self> {
        let a = validate::relative_error("relative_error", relative_error)?;
        Ok(Sketch {
            alpha0: a,
            level: 0,
            count: 0,
            zero: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: ExactSum::new(),
            pos: Store::default(),
            neg: Store::default(),
            inv_ln_gamma0: 1.0 / gamma_of(a).ln(),
        })
    }

    /// The relative error asked for when the sketch was created.
    pub fn requested_error(&self) -> f64 {
        self.alpha0
    }

    /// The bound in force now, after any collapses.
    pub fn error_bound(&self) -> f64 {
        // each collapse squares γ, which maps α to 2α / (1 + α²)
        (0..self.level).fold(self.alpha0, |a, _| 2.0 * a / (1.0 + a * a))
    }

    fn ln_gamma(&self) -> f64 {
        (1u64 << self.level) as f64 / self.inv_ln_gamma0
    }

    fn gamma(&self) -> f64 {
        self.ln_gamma().exp()
    }

    #[inline]
    fn key(&self, mag: f64) -> i64 {
        shift_key(ceil_i64(mag.ln() * self.inv_ln_gamma0), self.level)
    }

    /// Adds a value; NaN and infinities are rejected.
    #[inline]
    pub fn add(&mut self, v: f64) -> CoreResult<()> {
        validate::finite("value", v)?;
        self.add_finite(v);
        Ok(())
    }

    /// Adds values, all or none: an error (NaN or an infinity among them)
    /// leaves the sketch unchanged. The result is the same as adding them one
    /// by one; a tight loop over a batch is cheaper than one call per value.
    pub fn add_many(&mut self, vals: &[f64]) -> CoreResult<()> {
        for &v in vals {
            validate::finite("value", v)?;
        }
        for &v in vals {
            self.add_finite(v);
        }
        Ok(())
    }

    #[inline]
    fn add_finite(&mut self, v: f64) {
        self.count += 1;
        self.sum.add(v);
        if v < self.min {
            self.min = v;
        }
        if v > self.max {
            self.max = v;
        }
        let mag = v.abs();
        if mag < f64::MIN_POSITIVE {
            self.zero += 1;
            return;
        }
        let mut k = self.key(mag);
        let positive = v > 0.0;
        let store = if positive { &self.pos } else { &self.neg };
        if store.range().is_none_or(|(lo, hi)| k < lo || k > hi) {
            let r = Some((k, k));
            let raised = if positive {
                self.make_room(r, None)
            } else {
                self.make_room(None, r)
            };
            k = shift_key(k, raised);
        }
        if positive {
            self.pos.add(k, 1);
        } else {
            self.neg.add(k, 1);
        }
    }

    /// Collapses until the stores, with keys in the given (lowest, highest)
    /// ranges (at the current level) added, span at most `MAX_BUCKETS`;
    /// returns by how many levels. Doing this before adding keeps the stores
    /// small whatever the values; the result is the same as adding and then
    /// collapsing, since ceil(ceil(k / 2^a) / 2^b) = ceil(k / 2^(a+b)).
    fn make_room(&mut self, mut pos: Option<(i64, i64)>, mut neg: Option<(i64, i64)>) -> u8 {
        let mut raised = 0;
        while self.pos.span_with(pos) + self.neg.span_with(neg) > MAX_BUCKETS as u64
            && self.level < MAX_LEVEL
        {
            self.level += 1;
            raised += 1;
            self.pos.collapse(1);
            self.neg.collapse(1);
            let shift =
                |r: Option<(i64, i64)>| r.map(|(lo, hi)| (shift_key(lo, 1), shift_key(hi, 1)));
            pos = shift(pos);
            neg = shift(neg);
        }
        raised
    }

    /// Merges another sketch. Sketches made with different relative errors
    /// cannot be merged (their buckets do not nest); that is an error.
    pub fn merge(&mut self, other: &Sketch) -> CoreResult<()> {
        if self.alpha0.to_bits() != other.alpha0.to_bits() {
            return Err(CoreError::invalid(
                "sketch",
                format!(
                    "cannot merge sketches built with different relative errors ({} and {})",
                    self.alpha0, other.alpha0
                ),
            ));
        }
        if other.count == 0 {
            return Ok(());
        }
        let mut o = other.clone();
        if o.level < self.level {
            o.pos.collapse(self.level - o.level);
            o.neg.collapse(self.level - o.level);
        } else if self.level < o.level {
            self.pos.collapse(o.level - self.level);
            self.neg.collapse(o.level - self.level);
            self.level = o.level;
        }
        let raised = self.make_room(o.pos.range(), o.neg.range());
        if raised > 0 {
            o.pos.collapse(raised);
            o.neg.collapse(raised);
        }
        for (k, c) in o.pos.iter() {
            self.pos.add(k, c);
        }
        for (k, c) in o.neg.iter() {
            self.neg.add(k, c);
        }
        self.count += o.count;
        self.zero += o.zero;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum.merge(&o.sum);
        Ok(())
    }

    pub fn count(&self) -> u64 {
        self.count
    }
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }
    pub fn sum(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum.value())
    }
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum.mean(self.count))
    }
    /// Number of non-empty buckets.
    pub fn buckets(&self) -> usize {
        self.pos.iter().count() + self.neg.iter().count() + usize::from(self.zero > 0)
    }

    fn rep(&self, k: i64) -> f64 {
        let g = self.gamma();
        2.0 * (k as f64 * self.ln_gamma()).exp() / (g + 1.0)
    }

    /// Estimated value at quantile p (percentile_disc semantics).
    pub fn quantile(&self, p: f64) -> CoreResult<Option<f64>> {
        validate::quantile("p", p)?;
        if self.count == 0 {
            return Ok(None);
        }
        if p == 0.0 {
            return Ok(Some(self.min));
        }
        if p == 1.0 {
            return Ok(Some(self.max));
        }
        let rank = ((p * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0u64;
        let clamp = |v: f64| v.clamp(self.min, self.max);
        for (k, c) in self.neg.iter().rev() {
            seen += c;
            if seen >= rank {
                return Ok(Some(clamp(-self.rep(k))));
            }
        }
        seen += self.zero;
        if seen >= rank {
            return Ok(Some(clamp(0.0)));
        }
        for (k, c) in self.pos.iter() {
            seen += c;
            if seen >= rank {
                return Ok(Some(clamp(self.rep(k))));
            }
        }
        Ok(Some(self.max))
    }

    /// Estimated fraction of values <= v.
    pub fn rank(&self, v: f64) -> CoreResult<Option<f64>> {
        if v.is_nan() {
            return Err(CoreError::invalid("value", "value is NaN"));
        }
        if self.count == 0 {
            return Ok(None);
        }
        if v < self.min {
            return Ok(Some(0.0));
        }
        if v >= self.max {
            return Ok(Some(1.0));
        }
        let n = self.count as f64;
        let mag = v.abs();
        let le = if mag < f64::MIN_POSITIVE {
            self.neg.total() + self.zero
        } else if v > 0.0 {
            let k = self.key(mag);
            self.neg.total()
                + self.zero
                + self
                    .pos
                    .iter()
                    .take_while(|&(bk, _)| bk <= k)
                    .map(|(_, c)| c)
                    .sum::<u64>()
        } else {
            let k = self.key(mag);
            self.neg
                .iter()
                .filter(|&(bk, _)| bk >= k)
                .map(|(_, c)| c)
                .sum::<u64>()
        };
        Ok(Some(le as f64 / n))
    }

    pub fn encode(&self) -> Vec<u8> {
        // header, min, max, a few limbs of the sum and about three bytes per bucket
        let cap = 128 + 3 * (self.pos.counts.len() + self.neg.counts.len());
        let mut w = Writer::with_capacity(MAGIC, VERSION, cap);
        w.f64(self.alpha0);
        w.u8(self.level);
        w.varu(MAX_BUCKETS as u64);
        w.varu(self.count);
        if self.count > 0 {
            w.varu(self.zero);
            w.f64(self.min);
            w.f64(self.max);
            self.sum.encode(&mut w);
            for store in [&self.pos, &self.neg] {
                let n = store.iter().count();
                w.varu(n as u64);
                let mut prev: Option<i64> = None;
                for (k, c) in store.iter() {
                    match prev {
                        None => w.vari(k),
                        Some(p) => w.varu((k - p) as u64),
                    }
                    w.varu(c);
                    prev = Some(k);
                }
            }
        }
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> CoreResult<Self> {
        let (mut r, version) = Reader::new(buf, "kpi.sketch", MAGIC)?;
        if version != VERSION {
            return Err(r.corrupt(format!("unsupported version {version}")));
        }
        let alpha0 = r.f64()?;
        let mut s = Sketch::new(alpha0).map_err(|_| r.corrupt("invalid relative error"))?;
        s.level = r.u8()?;
        if s.level > MAX_LEVEL {
            return Err(r.corrupt("invalid collapse level"));
        }
        let maxb = r.varu()?;
        if maxb != MAX_BUCKETS as u64 {
            return Err(r.corrupt(format!("unsupported bucket limit {maxb}")));
        }
        s.count = r.varu()?;
        if s.count == 0 {
            r.end()?;
            return Ok(s);
        }
        s.zero = r.varu()?;
        s.min = r.f64()?;
        s.max = r.f64()?;
        if !s.min.is_finite() || !s.max.is_finite() || s.min > s.max {
            return Err(r.corrupt("invalid min/max"));
        }
        s.sum = ExactSum::decode(&mut r)?;
        let mut total = s.zero;
        let mut span = 0u64;
        for neg in [false, true] {
            let n = r.varu()?;
            if n > MAX_BUCKETS as u64 {
                return Err(r.corrupt("too many buckets"));
            }
            let mut store = Store::default();
            let mut prev: Option<i64> = None;
            for _ in 0..n {
                let k = match prev {
                    None => r.vari()?,
                    Some(p) => {
                        let d = r.varu()?;
                        if d == 0 || d > MAX_BUCKETS as u64 {
                            return Err(r.corrupt("bucket keys out of order"));
                        }
                        p + d as i64
                    }
                };
                if let Some(first) = store.counts.first().map(|_| store.offset) {
                    if (k - first) as u64 >= MAX_BUCKETS as u64 {
                        return Err(r.corrupt("bucket span too wide"));
                    }
                }
                let c = r.varu()?;
                if c == 0 {
                    return Err(r.corrupt("empty bucket"));
                }
                total = total
                    .checked_add(c)
                    .ok_or_else(|| r.corrupt("bucket counts overflow"))?;
                store.add(k, c);
                prev = Some(k);
            }
            span += store.span();
            if neg {
                s.neg = store;
            } else {
                s.pos = store;
            }
        }
        if span > MAX_BUCKETS as u64 {
            return Err(r.corrupt("bucket span too wide"));
        }
        if total != s.count {
            return Err(r.corrupt("bucket counts do not add up to the count"));
        }
        r.end()?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sketch_of(v: &[f64], a: f64) -> Sketch {
        let mut s = Sketch::new(a).unwrap();
        for &x in v {
            s.add(x).unwrap();
        }
        s
    }

    /// percentile_disc: the value at rank ceil(p n).
    fn disc(v: &[f64], p: f64) -> f64 {
        let mut s = v.to_vec();
        s.sort_by(|a, b| a.partial_cmp(b).unwrap());
        if p == 0.0 {
            return s[0];
        }
        let r = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len());
        s[r - 1]
    }

    fn within(est: f64, exact: f64, a: f64) -> bool {
        (est - exact).abs() <= a * exact.abs() * (1.0 + 1e-9) + 1e-300
    }

    #[test]
    fn hand_computed() {
        let s = sketch_of(&[1.0, 2.0, 3.0, 4.0, 100.0], 0.01);
        assert_eq!(s.count(), 5);
        assert_eq!(s.min(), Some(1.0));
        assert_eq!(s.max(), Some(100.0));
        assert_eq!(s.mean(), Some(22.0));
        assert_eq!(s.quantile(0.0).unwrap(), Some(1.0));
        assert_eq!(s.quantile(1.0).unwrap(), Some(100.0));
        let med = s.quantile(0.5).unwrap().unwrap();
        assert!(within(med, 3.0, 0.01), "{med}");
        assert_eq!(s.error_bound(), 0.01);
        let e = Sketch::new(0.01).unwrap();
        assert_eq!(e.quantile(0.5).unwrap(), None);
        assert_eq!(e.mean(), None);
        assert_eq!(e.rank(1.0).unwrap(), None);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(Sketch::new(0.0).is_err());
        assert!(Sketch::new(0.6).is_err());
        assert!(Sketch::new(f64::NAN).is_err());
        let mut s = Sketch::new(0.01).unwrap();
        assert!(s.add(f64::NAN).is_err());
        assert!(s.add(f64::INFINITY).is_err());
        assert!(s.quantile(1.5).is_err());
        assert!(s.quantile(f64::NAN).is_err());
        let mut a = Sketch::new(0.01).unwrap();
        a.add(1.0).unwrap();
        let b = sketch_of(&[1.0], 0.02);
        assert!(a.merge(&b).is_err());
    }

    #[test]
    fn zeros_negatives_and_rank() {
        let v = [-10.0, -1.0, 0.0, 0.0, 1.0, 10.0];
        let s = sketch_of(&v, 0.01);
        assert_eq!(s.quantile(0.5).unwrap(), Some(0.0));
        assert!(within(s.quantile(0.2).unwrap().unwrap(), -1.0, 0.01));
        assert_eq!(s.rank(-100.0).unwrap(), Some(0.0));
        assert_eq!(s.rank(0.0).unwrap(), Some(4.0 / 6.0));
        assert_eq!(s.rank(10.0).unwrap(), Some(1.0));
        assert_eq!(s.rank(1.0).unwrap(), Some(5.0 / 6.0));
        assert_eq!(s.rank(-1.0).unwrap(), Some(2.0 / 6.0));
    }

    #[test]
    fn corrupt_input_is_an_error() {
        let s = sketch_of(&[1.0, -2.0, 0.0, 3.5], 0.01);
        let enc = s.encode();
        assert_eq!(Sketch::decode(&enc).unwrap(), s);
        for cut in 0..enc.len() {
            assert!(Sketch::decode(&enc[..cut]).is_err(), "cut {cut}");
        }
        let mut extra = enc.clone();
        extra.push(0);
        assert!(Sketch::decode(&extra).is_err());
        // flip every byte: decoding must never panic
        for i in 0..enc.len() {
            let mut b = enc.clone();
            b[i] ^= 0xff;
            let _ = Sketch::decode(&b);
        }
    }

    #[test]
    fn wide_range_collapses_and_reports_bound() {
        let v: Vec<f64> = (0..2000).map(|i| 1.5f64.powi(i % 1500 - 750)).collect();
        let s = sketch_of(&v, 0.01);
        assert!(s.error_bound() > 0.01);
        for p in [0.01, 0.25, 0.5, 0.9, 0.999] {
            assert!(within(
                s.quantile(p).unwrap().unwrap(),
                disc(&v, p),
                s.error_bound()
            ));
        }
    }

    #[test]
    fn lognormal_million_is_small() {
        // deterministic lognormal-like data: exp of a sum of uniforms
        let mut x: u64 = 0x9E3779B97F4A7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut s = Sketch::new(0.01).unwrap();
        for _ in 0..1_000_000 {
            let z: f64 = (0..12).map(|_| next()).sum::<f64>() - 6.0;
            s.add((3.0 + z).exp()).unwrap();
        }
        let n = s.encode().len();
        assert!(n <= 4096, "{n} bytes");
        assert!((s.error_bound() - 0.01).abs() < 1e-12);
    }

    /// The sketch by definition: level-0 keys of every value, then the
    /// lowest collapse level whose key span fits.
    type Buckets = Vec<(i64, u64)>;

    fn reference(v: &[f64], alpha: f64) -> (u8, Buckets, Buckets) {
        let inv = 1.0 / gamma_of(alpha).ln();
        let k0 = |x: f64| (x.abs().ln() * inv).ceil() as i64;
        let nonzero = |pos: bool| {
            v.iter()
                .filter(move |x| x.abs() >= f64::MIN_POSITIVE && (**x > 0.0) == pos)
                .map(move |&x| k0(x))
        };
        let span = |keys: &Vec<i64>| match (keys.iter().min(), keys.iter().max()) {
            (Some(lo), Some(hi)) => hi.abs_diff(*lo) + 1,
            _ => 0,
        };
        let mut level = 0u8;
        loop {
            let p: Vec<i64> = nonzero(true).map(|k| shift_key(k, level)).collect();
            let n: Vec<i64> = nonzero(false).map(|k| shift_key(k, level)).collect();
            if span(&p) + span(&n) <= MAX_BUCKETS as u64 || level == MAX_LEVEL {
                let hist = |keys: Vec<i64>| {
                    let mut m = std::collections::BTreeMap::new();
                    for k in keys {
                        *m.entry(k).or_insert(0u64) += 1;
                    }
                    m.into_iter().collect::<Vec<_>>()
                };
                return (level, hist(p), hist(n));
            }
            level += 1;
        }
    }

    #[test]
    fn extreme_values_with_the_finest_error_stay_small() {
        let v = [1e-300, 1e300, -1e-300, -1e300, 1.0, 0.0, 5e-324, 2.5];
        let mut s = Sketch::new(crate::validate::MIN_RELATIVE_ERROR).unwrap();
        for x in v {
            s.add(x).unwrap();
            assert!(s.pos.span() + s.neg.span() <= MAX_BUCKETS as u64);
        }
        let (level, pos, neg) = reference(&v, crate::validate::MIN_RELATIVE_ERROR);
        assert_eq!(s.level, level);
        assert_eq!(s.pos.iter().collect::<Vec<_>>(), pos);
        assert_eq!(s.neg.iter().collect::<Vec<_>>(), neg);
        assert_eq!(s.quantile(0.0).unwrap(), Some(-1e300));
        assert_eq!(s.quantile(1.0).unwrap(), Some(1e300));
        let mut t = Sketch::new(crate::validate::MIN_RELATIVE_ERROR).unwrap();
        t.add(1e-300).unwrap();
        let mut u = Sketch::new(crate::validate::MIN_RELATIVE_ERROR).unwrap();
        u.add(1e300).unwrap();
        t.merge(&u).unwrap();
        assert!(t.pos.span() <= MAX_BUCKETS as u64);
        assert_eq!(
            t.encode(),
            sketch_of(&[1e300, 1e-300], crate::validate::MIN_RELATIVE_ERROR).encode()
        );
    }

    #[test]
    fn add_many_is_add_one_by_one_and_all_or_nothing() {
        let v: Vec<f64> = (0..500)
            .map(|i| ((i * 7919) % 1000) as f64 * 0.37 - 50.0)
            .collect();
        let mut a = Sketch::new(0.01).unwrap();
        a.add_many(&v).unwrap();
        assert_eq!(a.encode(), sketch_of(&v, 0.01).encode());
        let before = a.encode();
        assert!(a.add_many(&[1.0, f64::NAN]).is_err());
        assert!(a.add_many(&[f64::INFINITY]).is_err());
        assert_eq!(a.encode(), before);
    }

    proptest! {
        #[test]
        fn keys_and_level_follow_the_definition(
            v in proptest::collection::vec(prop_oneof![
                -1e300f64..1e300, -1e3f64..1e3, 1e-300f64..1e-200, Just(0.0), Just(-7.5)], 1..300),
            alpha in prop_oneof![Just(crate::validate::MIN_RELATIVE_ERROR), Just(0.0005), Just(0.01), Just(0.5)]) {
            let s = sketch_of(&v, alpha);
            let (level, pos, neg) = reference(&v, alpha);
            prop_assert_eq!(s.level, level);
            prop_assert_eq!(s.pos.iter().collect::<Vec<_>>(), pos);
            prop_assert_eq!(s.neg.iter().collect::<Vec<_>>(), neg);
        }

        #[test]
        fn quantiles_within_bound(v in proptest::collection::vec(
                                     prop_oneof![-1e6f64..1e6, 1e-3f64..1e3, Just(0.0)], 1..400),
                                   p in 0.0f64..=1.0) {
            let s = sketch_of(&v, 0.01);
            let est = s.quantile(p).unwrap().unwrap();
            let exact = disc(&v, p);
            prop_assert!(within(est, exact, s.error_bound()), "est {} exact {}", est, exact);
            prop_assert!(est >= s.min().unwrap() && est <= s.max().unwrap());
        }

        #[test]
        fn merge_equals_union(a in proptest::collection::vec(-1e9f64..1e9, 0..200),
                              b in proptest::collection::vec(1e-9f64..1e-3, 0..200),
                              c in proptest::collection::vec(-5.0f64..5.0, 0..50)) {
            let (sa, sb, sc) = (sketch_of(&a, 0.01), sketch_of(&b, 0.01), sketch_of(&c, 0.01));
            let mut all = a.clone();
            all.extend(&b);
            all.extend(&c);
            let union = sketch_of(&all, 0.01);
            let mut m1 = sa.clone();
            m1.merge(&sb).unwrap();
            m1.merge(&sc).unwrap();
            let mut m2 = sc.clone();
            m2.merge(&Sketch::decode(&sa.encode()).unwrap()).unwrap();
            m2.merge(&sb).unwrap();
            prop_assert_eq!(&m1, &union);
            prop_assert_eq!(&m2, &union);
            prop_assert_eq!(m1.encode(), union.encode());
        }
    }
}
