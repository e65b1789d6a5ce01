//! An exact floating-point accumulator (a Kulisch accumulator).
//!
//! Every finite `f64` is an integer multiple of 2^-1074, so the sum of any
//! number of them is held exactly as a fixed-point two's-complement integer
//! of 35 64-bit limbs (bits for 2^-1074 .. 2^1024 plus 64 bits of headroom
//! for carries). Adding is a shift and a two-limb add; merging is a limb-wise
//! add. Because integer addition is associative and commutative, a merged
//! accumulator is bit-for-bit the accumulator of the union in any order, and
//! reading it back rounds once, correctly, to the nearest `f64`.

use crate::codec::{Reader, Writer};
use crate::CoreResult;

const LIMBS: usize = 35;
const BIAS: i32 = 1074;

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ExactSum {
    limbs: [u64; LIMBS],
}

impl Default for ExactSum {
    fn default() -> Self {
        ExactSum { limbs: [0; LIMBS] }
    }
}

impl ExactSum {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a finite value; non-finite values must be rejected by the caller.
    #[inline]
    pub fn add(&mut self, v: f64) {
        debug_assert!(v.is_finite());
        if v == 0.0 || !v.is_finite() {
            return;
        }
        let bits = v.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i32;
        let frac = bits & ((1u64 << 52) - 1);
        let (m, e) = if exp == 0 {
            (frac, -BIAS)
        } else {
            (frac | (1u64 << 52), exp - 1075)
        };
        let off = (e + BIAS) as usize;
        let (i, s) = (off / 64, off % 64);
        let wide = (m as u128) << s;
        let lo = wide as u64;
        let hi = (wide >> 64) as u64;
        if bits >> 63 == 0 {
            self.add_at(i, lo, hi);
        } else {
            self.sub_at(i, lo, hi);
        }
    }

    #[inline]
    fn add_at(&mut self, i: usize, lo: u64, hi: u64) {
        let (r, c1) = self.limbs[i].overflowing_add(lo);
        self.limbs[i] = r;
        let (r, c2) = self.limbs[i + 1].overflowing_add(hi);
        let (r, c3) = r.overflowing_add(c1 as u64);
        self.limbs[i + 1] = r;
        let mut carry = c2 || c3;
        let mut j = i + 2;
        while carry && j < LIMBS {
            let (r, c) = self.limbs[j].overflowing_add(1);
            self.limbs[j] = r;
            carry = c;
            j += 1;
        }
    }

    #[inline]
    fn sub_at(&mut self, i: usize, lo: u64, hi: u64) {
        let (r, b1) = self.limbs[i].overflowing_sub(lo);
        self.limbs[i] = r;
        let (r, b2) = self.limbs[i + 1].overflowing_sub(hi);
        let (r, b3) = r.overflowing_sub(b1 as u64);
        self.limbs[i + 1] = r;
        let mut borrow = b2 || b3;
        let mut j = i + 2;
        while borrow && j < LIMBS {
            let (r, b) = self.limbs[j].overflowing_sub(1);
            self.limbs[j] = r;
            borrow = b;
            j += 1;
        }
    }

    /// Adds another accumulator exactly.
    pub fn merge(&mut self, other: &ExactSum) {
        let mut carry = false;
        for j in 0..LIMBS {
            let (r, c1) = self.limbs[j].overflowing_add(other.limbs[j]);
            let (r, c2) = r.overflowing_add(carry as u64);
            self.limbs[j] = r;
            carry = c1 || c2;
        }
    }

    fn is_negative(&self) -> bool {
        self.limbs[LIMBS - 1] >> 63 == 1
    }

    /// The exact sum rounded once to the nearest f64 (ties to even);
    /// ±infinity when the sum exceeds the f64 range.
    pub fn value(&self) -> f64 {
        self.value_scaled(0)
    }

    /// The mean of `n` values whose exact sum this is. It stays finite when
    /// the sum itself overflows f64 (values near ±1.8e308): the sum is read
    /// scaled by 2^-64 first, divided, then scaled back.
    pub fn mean(&self, n: u64) -> f64 {
        let v = self.value();
        if v.is_finite() {
            return v / n as f64;
        }
        let scale = 2f64.powi(64);
        self.value_scaled(64) / n as f64 * scale
    }

    /// The exact sum times 2^-shift, rounded once (shift >= 0).
    fn value_scaled(&self, shift: i32) -> f64 {
        let neg = self.is_negative();
        let mut mag = self.limbs;
        if neg {
            // two's complement negation
            let mut carry = true;
            for l in mag.iter_mut() {
                let (r, c) = (!*l).overflowing_add(carry as u64);
                *l = r;
                carry = c;
            }
        }
        let top = match mag.iter().rposition(|&l| l != 0) {
            None => return 0.0,
            Some(t) => t,
        };
        let p = top * 64 + 63 - mag[top].leading_zeros() as usize; // highest set bit
        let r = if p < 53 {
            // exactly representable: an integer below 2^53 times 2^-1074
            ldexp(mag[0] as f64, -BIAS - shift)
        } else {
            // 64 bits ending at bit p, plus a sticky bit for everything below
            let start = p - 63;
            let (li, ls) = (start / 64, start % 64);
            let mut bits = mag[li] >> ls;
            if ls != 0 && li + 1 < LIMBS {
                bits |= mag[li + 1] << (64 - ls);
            }
            let below_nonzero =
                mag[..li].iter().any(|&l| l != 0) || (ls != 0 && mag[li] & ((1u64 << ls) - 1) != 0);
            if below_nonzero {
                bits |= 1;
            }
            ldexp(bits as f64, start as i32 - BIAS - shift)
        };
        if neg {
            -r
        } else {
            r
        }
    }

    pub fn encode(&self, w: &mut Writer) {
        let lo = match self.limbs.iter().position(|&l| l != 0) {
            None => {
                w.varu(0);
                w.varu(0);
                return;
            }
            Some(lo) => lo,
        };
        let fill = if self.is_negative() { u64::MAX } else { 0 };
        // drop sign-extension limbs while the limb below still carries the sign
        let mut hi = LIMBS;
        while hi > lo + 1
            && self.limbs[hi - 1] == fill
            && (self.limbs[hi - 2] >> 63) == (fill >> 63)
        {
            hi -= 1;
        }
        w.varu(lo as u64);
        w.varu((hi - lo) as u64);
        for l in &self.limbs[lo..hi] {
            w.u64(*l);
        }
    }

    pub fn decode(r: &mut Reader) -> CoreResult<Self> {
        let lo = r.varu()? as usize;
        let n = r.varu()? as usize;
        if lo > LIMBS || n > LIMBS - lo {
            return Err(r.corrupt("exact sum has too many limbs"));
        }
        let mut s = ExactSum::default();
        for j in lo..lo + n {
            s.limbs[j] = r.u64()?;
        }
        if n > 0 && s.limbs[lo + n - 1] >> 63 == 1 {
            for l in s.limbs[lo + n..].iter_mut() {
                *l = u64::MAX;
            }
        }
        Ok(s)
    }
}

/// x * 2^k without intermediate overflow or double rounding for the ranges used here.
fn ldexp(mut x: f64, mut k: i32) -> f64 {
    while k > 1000 {
        x *= f64::powi(2.0, 1000);
        k -= 1000;
    }
    while k < -1000 {
        x *= f64::powi(2.0, -1000);
        k += 1000;
    }
    x * f64::powi(2.0, k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Reader, Writer};
    use proptest::prelude::*;

    fn sum_of(v: &[f64]) -> ExactSum {
        let mut s = ExactSum::new();
        for &x in v {
            s.add(x);
        }
        s
    }

    fn roundtrip(s: &ExactSum) -> ExactSum {
        let mut w = Writer::new(1, 1);
        s.encode(&mut w);
        let b = w.finish();
        let (mut r, _) = Reader::new(&b, "t", 1).unwrap();
        let d = ExactSum::decode(&mut r).unwrap();
        r.end().unwrap();
        d
    }

    #[test]
    fn cancellation_is_exact() {
        // naive summation gives 0 here; the exact answer is 1
        assert_eq!(sum_of(&[1e100, 1.0, -1e100]).value(), 1.0);
        // exactly 0.6000000000000000055511151231257827, which rounds to 0.6
        assert_eq!(sum_of(&[0.1, 0.2, 0.3]).value(), 0.6);
        assert_eq!(sum_of(&[]).value(), 0.0);
        assert_eq!(sum_of(&[-2.5, 1.0]).value(), -1.5);
        assert_eq!(sum_of(&[f64::MAX, f64::MAX]).value(), f64::INFINITY);
        assert_eq!(
            sum_of(&[f64::from_bits(1), f64::from_bits(1)]).value(),
            f64::from_bits(2)
        );
        assert_eq!(sum_of(&[1e-310, -1e-310]).value(), 0.0);
    }

    #[test]
    fn mean_survives_an_overflowing_sum() {
        // the sums overflow f64; the means do not
        assert_eq!(sum_of(&[1e308, 1e308]).mean(2), 1e308);
        assert_eq!(sum_of(&[f64::MAX, f64::MAX, f64::MAX]).mean(3), f64::MAX);
        assert_eq!(sum_of(&[-1e308, -1e308, 1e308]).mean(3), -1e308 / 3.0);
        assert_eq!(sum_of(&[1e308, -1e308]).mean(2), 0.0);
        assert_eq!(sum_of(&[0.1, 0.2, 0.3]).mean(3), 0.6 / 3.0);
        assert_eq!(sum_of(&[5e-324, 5e-324]).mean(2), 5e-324);
    }

    #[test]
    fn known_sums() {
        // 10 * 0.1 rounds once: exactly 1.0000000000000000555 -> 1.0
        assert_eq!(sum_of(&[0.1; 10]).value(), 1.0);
        assert_eq!(sum_of(&[1.0, 2f64.powi(-53)]).value(), 1.0);
        assert_eq!(
            sum_of(&[1.0, 2f64.powi(-53), 2f64.powi(-60)]).value(),
            1.0 + f64::EPSILON
        );
    }

    proptest! {
        #[test]
        fn merge_is_union(a in proptest::collection::vec(-1e12f64..1e12, 0..50),
                          b in proptest::collection::vec(-1e-3f64..1e-3, 0..50)) {
            let mut m = sum_of(&a);
            m.merge(&sum_of(&b));
            let mut all = a.clone();
            all.extend(&b);
            prop_assert_eq!(&m, &sum_of(&all));
            let mut rev = all.clone();
            rev.reverse();
            prop_assert_eq!(&m, &sum_of(&rev));
            prop_assert_eq!(&roundtrip(&m), &m);
        }

        #[test]
        fn integers_are_exact(v in proptest::collection::vec(-1_000_000i64..1_000_000, 0..100)) {
            let s = sum_of(&v.iter().map(|&x| x as f64).collect::<Vec<_>>());
            prop_assert_eq!(s.value(), v.iter().sum::<i64>() as f64);
        }

        #[test]
        fn close_to_naive(v in proptest::collection::vec(-1e6f64..1e6, 1..100)) {
            let exact = sum_of(&v).value();
            let naive: f64 = v.iter().sum();
            let scale: f64 = v.iter().map(|x| x.abs()).sum();
            prop_assert!((exact - naive).abs() <= scale * 1e-13);
        }
    }
}
