//! Exact percentiles with PostgreSQL's `percentile_cont` definition
//! (numpy's default 'linear' method): the value at fractional position
//! p * (n - 1) of the sorted input, linearly interpolated as
//! `lo + frac * (hi - lo)` exactly as PostgreSQL's float8 lerp does, so the
//! answers are bit-for-bit those of `percentile_cont`.
//!
//! Values are kept in a `Vec<f64>` (8 bytes per row, up to 16 while the
//! vector grows) and only the needed order statistics are selected
//! (`select_nth_unstable`, O(n) per quantile) instead of sorting.
//! NaN sorts above +Infinity, as in PostgreSQL.

use crate::codec::{Reader, Writer};
use crate::validate;
use crate::CoreResult;
use std::cmp::Ordering;

const MAGIC: u8 = b'P';
const VERSION: u8 = 1;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExactState {
    /// The quantiles asked for, fixed by the first row of the group.
    pub ps: Option<Vec<Option<f64>>>,
    pub values: Vec<f64>,
}

/// The order PostgreSQL gives float8: NaN after everything; -0 == +0.
#[inline]
fn pg_cmp(a: &f64, b: &f64) -> Ordering {
    match a.partial_cmp(b) {
        Some(o) => o,
        None => a.is_nan().cmp(&b.is_nan()),
    }
}

/// Order statistic helper: selects the requested 0-based ranks in `v`
/// (which it reorders) and returns them in the order asked.
fn select_ranks(v: &mut [f64], ranks: &[usize]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..ranks.len()).collect();
    order.sort_by_key(|&i| ranks[i]);
    let mut out = vec![0.0; ranks.len()];
    if ranks.len() > 24 {
        v.sort_unstable_by(pg_cmp);
        for (i, &r) in ranks.iter().enumerate() {
            out[i] = v[r];
        }
        return out;
    }
    let mut lo = 0usize; // v[..lo] holds the smallest lo values, in place
    let mut last: Option<(usize, f64)> = None;
    for &i in &order {
        let r = ranks[i];
        if let Some((lr, lv)) = last {
            if lr == r {
                out[i] = lv;
                continue;
            }
        }
        let x = if r < lo {
            // unreachable: ranks are visited in ascending order
            v[r]
        } else if r == lo && lo > 0 {
            // the next rank after a selected one is the minimum of the rest
            let rest = &mut v[lo..];
            let (mi, _) = rest
                .iter()
                .enumerate()
                .min_by(|a, b| pg_cmp(a.1, b.1))
                .expect("non-empty");
            rest.swap(0, mi);
            v[lo]
        } else {
            let rest = &mut v[lo..];
            let (_, x, _) = rest.select_nth_unstable_by(r - lo, pg_cmp);
            *x
        };
        lo = r + 1;
        out[i] = x;
        last = Some((r, x));
    }
    out
}

/// percentile_cont for each requested quantile (None passes through as None).
pub fn percentile_cont(values: &mut [f64], ps: &[Option<f64>]) -> Option<Vec<Option<f64>>> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mut ranks = Vec::with_capacity(ps.len() * 2);
    for p in ps.iter().flatten() {
        let pos = p * (n - 1) as f64;
        ranks.push(pos.floor() as usize);
        ranks.push(pos.ceil() as usize);
    }
    let sel = select_ranks(values, &ranks);
    let mut k = 0;
    Some(
        ps.iter()
            .map(|p| {
                p.map(|p| {
                    let pos = p * (n - 1) as f64;
                    let (first, second) = (pos.floor(), pos.ceil());
                    let (lo, hi) = (sel[k], sel[k + 1]);
                    k += 2;
                    if first == second {
                        lo
                    } else {
                        lo + (pos - first) * (hi - lo)
                    }
                })
            })
            .collect(),
    )
}

impl ExactState {
    /// Records the quantiles on the first row; later rows must ask the same.
    /// `arg` is the SQL argument's name in errors (p or ps).
    pub fn set_ps(&mut self, arg: &'static str, ps: &[Option<f64>]) -> CoreResult<()> {
        match &self.ps {
            Some(have) if have.as_slice() == ps => Ok(()),
            Some(_) => Err(crate::CoreError::invalid(
                arg,
                "the percentile argument must be the same for every row of a group",
            )),
            None => {
                if ps.is_empty() {
                    return Err(crate::CoreError::invalid(
                        arg,
                        "the array of percentiles is empty",
                    ));
                }
                for p in ps.iter().flatten() {
                    validate::quantile(arg, *p)?;
                }
                self.ps = Some(ps.to_vec());
                Ok(())
            }
        }
    }

    #[inline]
    pub fn push(&mut self, v: f64) {
        self.values.push(v);
    }

    pub fn merge(&mut self, mut other: ExactState) -> CoreResult<()> {
        if let Some(ps) = other.ps.take() {
            self.set_ps("p", &ps)?;
        }
        if self.values.is_empty() {
            self.values = other.values;
        } else {
            self.values.extend_from_slice(&other.values);
        }
        Ok(())
    }

    pub fn finish(&mut self) -> Option<Vec<Option<f64>>> {
        let ps = self.ps.clone()?;
        percentile_cont(&mut self.values, &ps)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(MAGIC, VERSION);
        match &self.ps {
            None => w.varu(0),
            Some(ps) => {
                w.varu(ps.len() as u64 + 1);
                for p in ps {
                    match p {
                        None => w.u8(0),
                        Some(p) => {
                            w.u8(1);
                            w.f64(*p);
                        }
                    }
                }
            }
        }
        w.varu(self.values.len() as u64);
        w.buf.reserve(self.values.len() * 8);
        for v in &self.values {
            w.f64(*v);
        }
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> CoreResult<Self> {
        let (mut r, version) = Reader::new(buf, "percentile state", MAGIC)?;
        if version != VERSION {
            return Err(r.corrupt(format!("unsupported version {version}")));
        }
        let np = r.varu()?;
        let ps = if np == 0 {
            None
        } else {
            let np = (np - 1) as usize;
            if np > r.remaining() {
                return Err(r.corrupt("percentile list longer than the value"));
            }
            let mut ps = Vec::with_capacity(np);
            for _ in 0..np {
                ps.push(match r.u8()? {
                    0 => None,
                    1 => Some(validate::quantile("p", r.f64()?).map_err(|_| r.corrupt("bad p"))?),
                    _ => return Err(r.corrupt("bad percentile flag")),
                });
            }
            Some(ps)
        };
        let n = r.varu()? as usize;
        if n.checked_mul(8) != Some(r.remaining()) {
            return Err(r.corrupt("value count does not match the length"));
        }
        let mut values = Vec::with_capacity(n);
        for _ in 0..n {
            values.push(r.f64()?);
        }
        r.end()?;
        Ok(ExactState { ps, values })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reference: full sort, then PostgreSQL's formula.
    fn reference(v: &[f64], p: f64) -> f64 {
        let mut s = v.to_vec();
        s.sort_by(pg_cmp);
        let pos = p * (s.len() - 1) as f64;
        let (f, c) = (pos.floor(), pos.ceil());
        let (lo, hi) = (s[f as usize], s[c as usize]);
        if f == c {
            lo
        } else {
            lo + (pos - f) * (hi - lo)
        }
    }

    fn pc(v: &[f64], ps: &[f64]) -> Vec<f64> {
        let mut v = v.to_vec();
        let ps: Vec<Option<f64>> = ps.iter().map(|&p| Some(p)).collect();
        percentile_cont(&mut v, &ps)
            .unwrap()
            .into_iter()
            .map(|x| x.unwrap())
            .collect()
    }

    #[test]
    fn hand_computed() {
        // numpy.percentile([1,2,3,4], [0,25,50,95,100]) = [1, 1.75, 2.5, 3.85, 4]
        let r = pc(&[4.0, 1.0, 3.0, 2.0], &[0.0, 0.25, 0.5, 0.95, 1.0]);
        assert_eq!(r[0], 1.0);
        assert_eq!(r[1], 1.75);
        assert_eq!(r[2], 2.5);
        assert!((r[3] - 3.85).abs() < 1e-15);
        assert_eq!(r[4], 4.0);
        assert_eq!(pc(&[7.0], &[0.0, 0.5, 1.0]), vec![7.0, 7.0, 7.0]);
        assert_eq!(pc(&[1.0, 3.0], &[0.5]), vec![2.0]);
        assert_eq!(pc(&[-5.0, 0.0, 0.0, 5.0], &[0.5]), vec![0.0]);
        let mut empty: Vec<f64> = vec![];
        assert_eq!(percentile_cont(&mut empty, &[Some(0.5)]), None);
        let mut v = vec![1.0, 2.0];
        assert_eq!(
            percentile_cont(&mut v, &[None, Some(1.0)]),
            Some(vec![None, Some(2.0)])
        );
    }

    #[test]
    fn nan_sorts_last_like_postgres() {
        assert_eq!(pc(&[f64::NAN, 1.0, 2.0], &[0.0])[0], 1.0);
        assert!(pc(&[f64::NAN, 1.0, 2.0], &[1.0])[0].is_nan());
        assert_eq!(pc(&[f64::INFINITY, 1.0, 2.0], &[1.0])[0], f64::INFINITY);
    }

    #[test]
    fn state_checks() {
        let mut s = ExactState::default();
        assert!(s.set_ps("ps", &[]).is_err());
        assert!(s.set_ps("ps", &[Some(1.5)]).is_err());
        assert!(s.set_ps("ps", &[Some(f64::NAN)]).is_err());
        s.set_ps("ps", &[Some(0.5)]).unwrap();
        assert!(s.set_ps("ps", &[Some(0.6)]).is_err());
        s.push(1.0);
        s.push(2.0);
        let d = ExactState::decode(&s.encode()).unwrap();
        assert_eq!(d, s);
        let enc = s.encode();
        for cut in 0..enc.len() {
            assert!(ExactState::decode(&enc[..cut]).is_err());
        }
        assert_eq!(ExactState::default().finish(), None);
    }

    proptest! {
        #[test]
        fn matches_full_sort(v in proptest::collection::vec(
                                prop_oneof![-1e6f64..1e6, Just(0.0), Just(-3.0), Just(42.0)], 1..300),
                             ps in proptest::collection::vec(0.0f64..=1.0, 1..6)) {
            let got = pc(&v, &ps);
            for (g, p) in got.iter().zip(&ps) {
                prop_assert_eq!(g.to_bits(), reference(&v, *p).to_bits());
            }
        }

        #[test]
        fn merge_is_order_independent(a in proptest::collection::vec(-1e3f64..1e3, 0..100),
                                      b in proptest::collection::vec(-1e3f64..1e3, 0..100)) {
            let ps = [Some(0.5), Some(0.95), Some(0.99)];
            let mut x = ExactState::default();
            x.set_ps("ps", &ps).unwrap();
            a.iter().for_each(|&v| x.push(v));
            let mut y = ExactState::default();
            y.set_ps("ps", &ps).unwrap();
            b.iter().for_each(|&v| y.push(v));
            let mut xy = x.clone();
            xy.merge(y.clone()).unwrap();
            let mut yx = ExactState::decode(&y.encode()).unwrap();
            yx.merge(ExactState::decode(&x.encode()).unwrap()).unwrap();
            prop_assert_eq!(xy.finish(), yx.finish());
        }
    }
}
