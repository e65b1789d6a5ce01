//! The state of `kpi.rollup_agg`: one pass over a bucket's rows that yields
//! everything a summary row holds (count, sum, mean, min, max, sample
//! standard deviation, the quantile sketch and the trend), so a rollup pays
//! one transition call per row instead of eight.

use crate::codec::{Reader, Writer};
use crate::sketch::{Sketch, DEFAULT_ERROR};
use crate::trend::Trend;
use crate::{CoreError, CoreResult};
use std::collections::HashMap;

const MAGIC: u8 = b'R';
/// 2000-01-01 00:00 UTC (PostgreSQL's timestamp epoch) in Unix seconds.
const VERSION: u8 = 1;

/// Values wait in a small buffer and enter the sketch a batch at a time: a
/// tight loop over a batch costs less than one sketch insert per call.
const PENDING: usize = 32;

#[derive(Clone, Debug)]
pub struct RollupState {
    sketch: Sketch,
    pub trend: Trend,
    pending: [f64; PENDING],
    npending: usize,
}

impl Default for RollupState {
    fn default() -> Self {
        RollupState {
            sketch: Sketch::new(DEFAULT_ERROR).expect("the default relative error is valid"),
            trend: Trend::default(),
            pending: [0.0; PENDING],
            npending: 0,
        }
    }
}

impl RollupState {
    /// Adds a value measured at x (epoch seconds); both must be finite.
    #[inline]
    pub fn add(&mut self, x: f64, v: f64) -> CoreResult<()> {
        if !x.is_finite() || !v.is_finite() {
            return Err(CoreError::invalid("value", "ts and value must be finite"));
        }
        self.trend.add(x, v);
        self.pending[self.npending] = v;
        self.npending += 1;
        if self.npending == PENDING {
            self.flush();
        }
        Ok(())
    }

    /// Moves the buffered values into the sketch.
    pub fn flush(&mut self) {
        if self.npending > 0 {
            // every buffered value was checked to be finite
            let _ = self.sketch.add_many(&self.pending[..self.npending]);
            self.npending = 0;
        }
    }

    /// The sketch of every value added (flushes the buffer).
    pub fn sketch(&mut self) -> &Sketch {
        self.flush();
        &self.sketch
    }

    pub fn merge(&mut self, o: &RollupState) -> CoreResult<()> {
        self.sketch.merge(&o.sketch)?;
        self.trend.merge(&o.trend);
        for &v in &o.pending[..o.npending] {
            self.pending[self.npending] = v;
            self.npending += 1;
            if self.npending == PENDING {
                self.flush();
            }
        }
        Ok(())
    }

    pub fn count(&self) -> u64 {
        self.trend.n
    }

    /// Mean of the values (Welford's running mean).
    pub fn mean(&self) -> Option<f64> {
        (self.trend.n > 0).then_some(self.trend.my)
    }

    /// Sample standard deviation (n - 1), as stddev_samp; None below 2 values.
    pub fn stddev(&self) -> Option<f64> {
        (self.trend.n >= 2).then(|| (self.trend.syy.max(0.0) / (self.trend.n - 1) as f64).sqrt())
    }

    pub fn encode(&self) -> Vec<u8> {
        let s = if self.npending == 0 {
            self.sketch.encode()
        } else {
            let mut full = self.sketch.clone();
            let _ = full.add_many(&self.pending[..self.npending]);
            full.encode()
        };
        let t = self.trend.encode();
        let mut out = Vec::with_capacity(6 + s.len() + t.len());
        out.push(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(&s);
        out.extend_from_slice(&t);
        out
    }

    pub fn decode(buf: &[u8]) -> CoreResult<Self> {
        let corrupt = |why: &str| CoreError::corrupt("kpi.rollup_agg state", why);
        if buf.len() < 6 || buf[0] != MAGIC {
            return Err(corrupt("bad header"));
        }
        if buf[1] != VERSION {
            return Err(corrupt("unsupported version"));
        }
        let n = u32::from_le_bytes([buf[2], buf[3], buf[4], buf[5]]) as usize;
        let rest = &buf[6..];
        if rest.len() < n {
            return Err(corrupt("truncated"));
        }
        let sketch = Sketch::decode(&rest[..n])?;
        let trend = Trend::decode(&rest[n..])?;
        if sketch.count() != trend.n {
            return Err(corrupt("sketch and trend counts differ"));
        }
        Ok(RollupState {
            sketch,
            trend,
            ..RollupState::default()
        })
    }
}

/// The state of `kpi._rollup_buckets`: one group's rows (one metric and
/// series) split into fixed-width time buckets inside the aggregate, so the
/// executor hashes the metric only and never computes a bucket per row.
/// Timestamps are PostgreSQL's microseconds since 2000-01-01 UTC, which is
/// also the origin of the buckets (as `kpi.bucket`).
#[derive(Clone, Debug)]
pub struct BucketedRollup {
    width: i64,
    /// start of the bucket the last row fell in, and its index
    last: Option<(i64, usize)>,
    index: HashMap<i64, usize>,
    buckets: Vec<(i64, RollupState)>,
}

const BUCKETED_MAGIC: u8 = b'B';

impl BucketedRollup {
    /// Buckets `width` microseconds wide (positive).
    pub fn new(width: i64) -> CoreResult<Self> {
        if width <= 0 {
            return Err(CoreError::invalid(
                "resolution",
                "resolution must be positive",
            ));
        }
        Ok(BucketedRollup {
            width,
            last: None,
            index: HashMap::new(),
            buckets: Vec::new(),
        })
    }

    pub fn width(&self) -> i64 {
        self.width
    }

    /// Start of the bucket holding `micros` (floor, as date_bin).
    pub fn bucket_of(&self, micros: i64) -> i64 {
        micros.div_euclid(self.width) * self.width
    }

    fn slot(&mut self, start: i64) -> usize {
        let n = self.buckets.len();
        let i = *self.index.entry(start).or_insert(n);
        if i == n {
            self.buckets.push((start, RollupState::default()));
        }
        self.last = Some((start, i));
        i
    }

    /// Adds a value at `micros` (a finite timestamp; the value must be finite).
    #[inline]
    pub fn add(&mut self, micros: i64, v: f64) -> CoreResult<()> {
        let i = match self.last {
            // rows mostly arrive in time order: the bucket of the previous row
            Some((start, i)) if micros >= start && micros - start < self.width => i,
            _ => {
                let start = self.bucket_of(micros);
                self.slot(start)
            }
        };
        self.buckets[i].1.add(crate::time::unix_seconds(micros), v)
    }

    pub fn merge(&mut self, o: &BucketedRollup) -> CoreResult<()> {
        if o.width != self.width {
            return Err(CoreError::invalid(
                "resolution",
                "cannot merge buckets of different widths",
            ));
        }
        for (start, st) in &o.buckets {
            let i = self.slot(*start);
            self.buckets[i].1.merge(st)?;
        }
        Ok(())
    }

    /// The buckets in time order. The state stays valid: a window aggregate
    /// calls the final function and then goes on adding rows.
    pub fn finish(&mut self) -> impl Iterator<Item = (i64, &mut RollupState)> {
        self.buckets.sort_unstable_by_key(|(start, _)| *start);
        self.index.clear();
        self.index.extend(
            self.buckets
                .iter()
                .enumerate()
                .map(|(i, (start, _))| (*start, i)),
        );
        self.last = None;
        self.buckets.iter_mut().map(|(start, st)| (*start, st))
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(BUCKETED_MAGIC, VERSION);
        w.vari(self.width);
        w.varu(self.buckets.len() as u64);
        for (start, st) in &self.buckets {
            let b = st.encode();
            w.vari(*start);
            w.varu(b.len() as u64);
            w.buf.extend_from_slice(&b);
        }
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> CoreResult<Self> {
        let (mut r, version) = Reader::new(buf, "kpi._rollup_buckets state", BUCKETED_MAGIC)?;
        if version != VERSION {
            return Err(r.corrupt(format!("unsupported version {version}")));
        }
        let width = r.vari()?;
        let mut out = BucketedRollup::new(width).map_err(|_| r.corrupt("invalid bucket width"))?;
        let n = r.varu()?;
        for _ in 0..n {
            let start = r.vari()?;
            if start.rem_euclid(width) != 0 {
                return Err(r.corrupt("bucket start not aligned"));
            }
            let len = r.varu()?;
            if len > r.remaining() as u64 {
                return Err(r.corrupt("value is truncated"));
            }
            let st = RollupState::decode(r.bytes(len as usize)?)?;
            if out.index.contains_key(&start) {
                return Err(r.corrupt("duplicate bucket"));
            }
            let i = out.slot(start);
            out.buckets[i].1 = st;
        }
        r.end()?;
        out.last = None;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_two_pass_statistics_and_round_trips() {
        let vals: Vec<f64> = (0..1000).map(|i| ((i * 37) % 101) as f64 + 0.25).collect();
        let mut a = RollupState::default();
        let mut b = RollupState::default();
        for (i, v) in vals.iter().enumerate() {
            let s = if i % 3 == 0 { &mut a } else { &mut b };
            s.add(1.8e9 + i as f64, *v).unwrap();
        }
        a.merge(&b).unwrap();
        let n = vals.len() as f64;
        let mean = vals.iter().sum::<f64>() / n;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        assert_eq!(a.count(), 1000);
        assert!((a.mean().unwrap() - mean).abs() < 1e-12 * mean);
        assert!((a.stddev().unwrap() - var.sqrt()).abs() < 1e-12 * var.sqrt());
        assert_eq!(a.sketch().min(), Some(0.25));
        assert_eq!(a.sketch().max(), Some(100.25));
        let mut whole = Sketch::new(DEFAULT_ERROR).unwrap();
        whole.add_many(&vals).unwrap();
        assert_eq!(a.sketch().encode(), whole.encode());
        let back = RollupState::decode(&a.encode()).unwrap();
        assert_eq!(back.encode(), a.encode());
        assert_eq!(RollupState::default().stddev(), None);
    }

    #[test]
    fn buffered_values_survive_merge_and_encode() {
        let vals: Vec<f64> = (0..250)
            .map(|i| (i as f64 * 0.731).sin() * 40.0 + 3.0)
            .collect();
        let mut one = RollupState::default();
        for (i, v) in vals.iter().enumerate() {
            one.add(i as f64, *v).unwrap();
        }
        // 37, 101 and 112 values: none a multiple of the buffer
        let mut parts = [
            RollupState::default(),
            RollupState::default(),
            RollupState::default(),
        ];
        for (i, v) in vals.iter().enumerate() {
            let p = if i < 37 {
                0
            } else if i < 138 {
                1
            } else {
                2
            };
            parts[p].add(i as f64, *v).unwrap();
        }
        let decoded = RollupState::decode(&parts[2].encode()).unwrap();
        let [mut a, b, _] = parts;
        a.merge(&b).unwrap();
        a.merge(&decoded).unwrap();
        assert_eq!(a.count(), 250);
        assert_eq!(a.sketch().encode(), one.sketch().encode());
        assert_eq!(
            RollupState::decode(&a.encode()).unwrap().sketch().encode(),
            one.sketch().encode()
        );
        assert!(one.add(1.0, f64::NAN).is_err());
        assert!(one.add(f64::INFINITY, 1.0).is_err());
        assert_eq!(one.count(), 250);
    }

    /// The sketch and trend of every bucket, (start, encoded state).
    fn per_bucket(b: &mut BucketedRollup) -> Vec<(i64, Vec<u8>)> {
        b.finish().map(|(start, st)| (start, st.encode())).collect()
    }

    #[test]
    fn buckets_split_rows_as_date_bin() {
        let minute = 60_000_000i64;
        // out of order, before and after the origin, on and off the boundaries
        let rows: Vec<(i64, f64)> = vec![
            (0, 1.0),
            (-1, 2.0),
            (-minute, 3.0),
            (-minute - 1, 4.0),
            (minute - 1, 5.0),
            (minute, 6.0),
            (5 * minute + 7, 7.0),
            (30, 8.0),
            (-1, 9.5),
            (5 * minute, 10.0),
        ];
        let mut b = BucketedRollup::new(minute).unwrap();
        for (t, v) in &rows {
            b.add(*t, *v).unwrap();
        }
        assert_eq!(b.bucket_of(-1), -minute);
        assert_eq!(b.bucket_of(-minute), -minute);
        assert_eq!(b.bucket_of(-minute - 1), -2 * minute);
        assert_eq!(b.len(), 5);
        // the same rows, one RollupState per bucket computed independently
        let mut expect: std::collections::BTreeMap<i64, RollupState> = Default::default();
        for (t, v) in &rows {
            let start = t.div_euclid(minute) * minute;
            expect
                .entry(start)
                .or_default()
                .add(crate::time::unix_seconds(*t), *v)
                .unwrap();
        }
        let want: Vec<(i64, Vec<u8>)> = expect.iter().map(|(k, st)| (*k, st.encode())).collect();
        assert_eq!(per_bucket(&mut b), want);
        assert_eq!(
            want.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            vec![-2 * minute, -minute, 0, minute, 5 * minute]
        );
    }

    #[test]
    fn bucketed_merge_and_round_trip() {
        let hour = 3_600_000_000i64;
        let rows: Vec<(i64, f64)> = (0..3000)
            .map(|i| {
                (
                    i as i64 * 7_919_000_000 % (48 * hour),
                    (i % 97) as f64 * 1.5 - 20.0,
                )
            })
            .collect();
        let mut one = BucketedRollup::new(hour).unwrap();
        let mut parts = [
            BucketedRollup::new(hour).unwrap(),
            BucketedRollup::new(hour).unwrap(),
        ];
        for (i, (t, v)) in rows.iter().enumerate() {
            one.add(*t, *v).unwrap();
            parts[i % 2].add(*t, *v).unwrap();
        }
        let [mut a, b] = parts;
        a.merge(&BucketedRollup::decode(&b.encode()).unwrap())
            .unwrap();
        let mut back = BucketedRollup::decode(&a.encode()).unwrap();
        let got = per_bucket(&mut back);
        let want = per_bucket(&mut one);
        assert_eq!(got.len(), 48);
        for ((ka, sa), (kb, sb)) in got.iter().zip(&want) {
            assert_eq!(ka, kb);
            let (mut x, mut y) = (
                RollupState::decode(sa).unwrap(),
                RollupState::decode(sb).unwrap(),
            );
            assert_eq!(x.count(), y.count());
            // sketches are exact under merging; the trend's moments agree to rounding
            assert_eq!(x.sketch().encode(), y.sketch().encode());
            assert!((x.mean().unwrap() - y.mean().unwrap()).abs() < 1e-9);
            let scale = (y.trend.sxx * y.trend.syy).sqrt();
            assert!(
                (x.trend.sxy - y.trend.sxy).abs() <= 1e-9 * scale,
                "{} {}",
                x.trend.sxy,
                y.trend.sxy
            );
        }
        let total: u64 = got
            .iter()
            .map(|(_, s)| RollupState::decode(s).unwrap().count())
            .sum();
        assert_eq!(total, 3000);
    }

    #[test]
    fn adding_after_finish_keeps_one_row_per_bucket() {
        let mut b = BucketedRollup::new(10).unwrap();
        for t in [25, 3, 14] {
            b.add(t, 1.0).unwrap();
        }
        assert_eq!(
            b.finish().map(|(k, _)| k).collect::<Vec<_>>(),
            vec![0, 10, 20]
        );
        for t in [27, 5, 31] {
            b.add(t, 2.0).unwrap();
        }
        let got: Vec<(i64, u64)> = b.finish().map(|(k, st)| (k, st.count())).collect();
        assert_eq!(got, vec![(0, 2), (10, 1), (20, 2), (30, 1)]);
    }

    #[test]
    fn bucketed_bad_input() {
        assert!(BucketedRollup::new(0).is_err());
        assert!(BucketedRollup::new(-5).is_err());
        let mut a = BucketedRollup::new(10).unwrap();
        assert!(a.merge(&BucketedRollup::new(20).unwrap()).is_err());
        assert!(a.add(3, f64::NAN).is_err());
        a.add(3, 1.0).unwrap();
        a.add(13, 2.0).unwrap();
        let bytes = a.encode();
        for n in 0..bytes.len() {
            assert!(BucketedRollup::decode(&bytes[..n]).is_err());
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(BucketedRollup::decode(&extra).is_err());
        let mut v = bytes.clone();
        v[1] = 9;
        assert!(BucketedRollup::decode(&v).is_err());
        // a bucket start that is not a multiple of the width
        let mut w = Writer::new(BUCKETED_MAGIC, VERSION);
        w.vari(10);
        w.varu(1);
        w.vari(5);
        let st = RollupState::default().encode();
        w.varu(st.len() as u64);
        w.buf.extend_from_slice(&st);
        assert!(BucketedRollup::decode(&w.finish()).is_err());
    }

    #[test]
    fn corrupt_state_is_an_error() {
        let bytes = RollupState::default().encode();
        assert!(RollupState::decode(&bytes[..3]).is_err());
        assert!(RollupState::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut v = bytes.clone();
        v[1] = 9;
        assert!(RollupState::decode(&v).is_err());
        assert!(RollupState::decode(b"Xxxxxxxx").is_err());
        // a sketch and a trend of different counts
        let mut one = RollupState::default();
        one.add(1.0, 2.0).unwrap();
        let s = one.sketch().encode();
        let mut forged = vec![MAGIC, VERSION];
        forged.extend_from_slice(&(s.len() as u32).to_le_bytes());
        forged.extend_from_slice(&s);
        forged.extend_from_slice(&Trend::default().encode());
        assert!(RollupState::decode(&forged).is_err());
    }
}
