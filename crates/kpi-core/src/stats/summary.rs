//! One-pass summary (count, min, max, mean, median, sample stddev, p95, p99),
//! the report block of the replaced system: exact quantiles from the value
//! list, or approximate ones from a sketch.

use crate::codec::{Reader, Writer};
use crate::sketch::Sketch;
use crate::stats::moments::Moments;
use crate::stats::percentile::ExactState;
use crate::{CoreError, CoreResult};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub median: Option<f64>,
    pub stddev: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

const QS: [Option<f64>; 3] = [Some(0.5), Some(0.95), Some(0.99)];

/// Exact summary state: Welford moments plus the values for the quantiles.
#[derive(Clone, Debug, PartialEq)]
pub struct ExactSummary {
    pub m: Moments,
    pub values: ExactState,
}

impl Default for ExactSummary {
    fn default() -> Self {
        let mut values = ExactState::default();
        values
            .set_ps("ps", &QS)
            .expect("constant quantiles are valid");
        ExactSummary {
            m: Moments::default(),
            values,
        }
    }
}

impl ExactSummary {
    #[inline]
    pub fn add(&mut self, v: f64) {
        self.m.add(v);
        self.values.push(v);
    }
    pub fn merge(&mut self, o: ExactSummary) -> CoreResult<()> {
        self.m.merge(&o.m);
        self.values.merge(o.values)
    }
    pub fn finish(&mut self) -> Option<Summary> {
        if self.m.n == 0 {
            return None;
        }
        let q = self.values.finish().unwrap_or_default();
        let at = |i: usize| q.get(i).copied().flatten();
        let (mean, stddev) = if self.m.overflowed() {
            Moments::mean_stddev_scaled(&self.values.values)
        } else {
            (self.m.mean(), self.m.stddev_samp())
        };
        Some(Summary {
            count: self.m.n,
            min: self.m.min(),
            max: self.m.max(),
            mean,
            median: at(0),
            stddev,
            p95: at(1),
            p99: at(2),
        })
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(b'M', 1);
        self.m.encode(&mut w);
        w.buf.extend_from_slice(&self.values.encode());
        w.finish()
    }
    pub fn decode(b: &[u8]) -> CoreResult<Self> {
        let (mut r, v) = Reader::new(b, "summary state", b'M')?;
        if v != 1 {
            return Err(r.corrupt(format!("unsupported version {v}")));
        }
        let m = Moments::decode(&mut r)?;
        let rest = &b[b.len() - r.remaining()..];
        let values = ExactState::decode(rest)?;
        if values.values.len() as u64 != m.n {
            return Err(CoreError::corrupt("summary state", "counts disagree"));
        }
        Ok(ExactSummary { m, values })
    }
}

/// Approximate summary state: Welford moments plus a sketch for the quantiles.
#[derive(Clone, Debug, PartialEq)]
pub struct SketchSummary {
    pub m: Moments,
    pub sketch: Sketch,
}

impl SketchSummary {
    pub fn new(relative_error: f64) -> CoreResult<Self> {
        Ok(SketchSummary {
            m: Moments::default(),
            sketch: Sketch::new(relative_error)?,
        })
    }
    #[inline]
    pub fn add(&mut self, v: f64) -> CoreResult<()> {
        self.sketch.add(v)?;
        self.m.add(v);
        Ok(())
    }
    pub fn merge(&mut self, o: &SketchSummary) -> CoreResult<()> {
        self.sketch.merge(&o.sketch)?;
        self.m.merge(&o.m);
        Ok(())
    }
    /// The summary; an error when the standard deviation overflows f64
    /// (values near ±1e308): a sketch does not keep the values to recompute
    /// it, and PostgreSQL's stddev() raises the same error there.
    pub fn finish(&self) -> CoreResult<Option<Summary>> {
        if self.m.n == 0 {
            return Ok(None);
        }
        if self.m.overflowed() {
            return Err(CoreError::range(
                "value",
                "the standard deviation of values this large overflows float8: use the exact kpi.summary_stats(v), or scale the values",
            ));
        }
        let q = |p| self.sketch.quantile(p).ok().flatten();
        Ok(Some(Summary {
            count: self.m.n,
            min: self.m.min(),
            max: self.m.max(),
            mean: self.sketch.mean(),
            median: q(0.5),
            stddev: self.m.stddev_samp(),
            p95: q(0.95),
            p99: q(0.99),
        }))
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(b'N', 1);
        self.m.encode(&mut w);
        w.buf.extend_from_slice(&self.sketch.encode());
        w.finish()
    }
    pub fn decode(b: &[u8]) -> CoreResult<Self> {
        let (mut r, v) = Reader::new(b, "summary state", b'N')?;
        if v != 1 {
            return Err(r.corrupt(format!("unsupported version {v}")));
        }
        let m = Moments::decode(&mut r)?;
        let sketch = Sketch::decode(&b[b.len() - r.remaining()..])?;
        if sketch.count() != m.n {
            return Err(CoreError::corrupt("summary state", "counts disagree"));
        }
        Ok(SketchSummary { m, sketch })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed() {
        // numpy: data 1..=10 -> median 5.5, p95 9.55, p99 9.91, std(ddof=1) 3.0276503540974917
        let mut s = ExactSummary::default();
        (1..=10).for_each(|i| s.add(i as f64));
        let enc = s.encode();
        let mut d = ExactSummary::decode(&enc).unwrap();
        let r = d.finish().unwrap();
        assert_eq!(r.count, 10);
        assert_eq!(r.min, Some(1.0));
        assert_eq!(r.max, Some(10.0));
        assert_eq!(r.mean, Some(5.5));
        assert_eq!(r.median, Some(5.5));
        assert!((r.p95.unwrap() - 9.55).abs() < 1e-12);
        assert!((r.p99.unwrap() - 9.91).abs() < 1e-12);
        assert!((r.stddev.unwrap() - 3.0276503540974917).abs() < 1e-12);
        assert_eq!(ExactSummary::default().finish(), None);
        for cut in 0..enc.len() {
            assert!(ExactSummary::decode(&enc[..cut]).is_err());
        }
    }

    #[test]
    fn sketch_variant() {
        let mut s = SketchSummary::new(0.01).unwrap();
        (1..=1000).for_each(|i| s.add(i as f64).unwrap());
        let mut other = SketchSummary::new(0.01).unwrap();
        other.add(1001.0).unwrap();
        s.merge(&other).unwrap();
        let d = SketchSummary::decode(&s.encode()).unwrap();
        let r = d.finish().unwrap().unwrap();
        assert_eq!(r.count, 1001);
        assert_eq!(r.mean, Some(501.0));
        assert!((r.median.unwrap() - 501.0).abs() <= 501.0 * 0.01);
        assert!((r.p99.unwrap() - 991.0).abs() <= 991.0 * 0.01);
        assert!(SketchSummary::new(0.0).is_err());
        assert!(s.add(f64::NAN).is_err());
    }

    #[test]
    fn values_near_the_float8_limit() {
        let mut e = ExactSummary::default();
        let mut k = SketchSummary::new(0.01).unwrap();
        for v in [1e308, -1e308, 1e308, -1e308] {
            e.add(v);
            k.add(v).unwrap();
        }
        let r = e.finish().unwrap();
        assert_eq!(r.mean, Some(0.0));
        // deviations of ±1e308 from 0: sqrt(4e616 / 3)
        assert!((r.stddev.unwrap() / (1e308 * (4.0f64 / 3.0).sqrt()) - 1.0).abs() < 1e-15);
        let err = k.finish().unwrap_err();
        assert_eq!(err.sqlstate(), "22003");
        assert_eq!(k.sketch.mean(), Some(0.0));
    }
}
