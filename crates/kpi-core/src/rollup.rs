//! The state of `kpi.rollup_agg`: one pass over a bucket's rows that yields
//! everything a summary row holds (count, sum, mean, min, max, sample
//! standard deviation, the quantile sketch and the trend), so a rollup pays
//! one transition call per row instead of eight.

use crate::sketch::{Sketch, DEFAULT_ERROR};
use crate::trend::Trend;
use crate::{CoreError, CoreResult};

const MAGIC: u8 = b'R';
const VERSION: u8 = 1;

#[derive(Clone, Debug)]
pub struct RollupState {
    pub sketch: Sketch,
    pub trend: Trend,
}

impl Default for RollupState {
    fn default() -> Self {
        RollupState {
            sketch: Sketch::new(DEFAULT_ERROR).expect("the default relative error is valid"),
            trend: Trend::default(),
        }
    }
}

impl RollupState {
    /// Adds a value measured at x (epoch seconds); both must be finite.
    #[inline]
    pub fn add(&mut self, x: f64, v: f64) -> CoreResult<()> {
        self.sketch.add(v)?;
        self.trend.add(x, v);
        Ok(())
    }

    pub fn merge(&mut self, o: &RollupState) -> CoreResult<()> {
        self.sketch.merge(&o.sketch)?;
        self.trend.merge(&o.trend);
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
        let s = self.sketch.encode();
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
        Ok(RollupState {
            sketch: Sketch::decode(&rest[..n])?,
            trend: Trend::decode(&rest[n..])?,
        })
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
        assert_eq!(a.sketch.min(), Some(0.25));
        assert_eq!(a.sketch.max(), Some(100.25));
        let back = RollupState::decode(&a.encode()).unwrap();
        assert_eq!(back.encode(), a.encode());
        assert_eq!(RollupState::default().stddev(), None);
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
    }
}
