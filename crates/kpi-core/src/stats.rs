//! Statistics over a column of numbers: exact percentiles, one-pass summaries,
//! streaming moments, an exact floating-point sum and the correlation test.

pub mod correlation;
pub mod exactsum;
pub mod moments;
pub mod percentile;
pub mod summary;
pub mod welch;
