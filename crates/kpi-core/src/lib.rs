//! Pure computation behind pg_kpi.
//!
//! Nothing in this crate links against Postgres, so every algorithm is
//! unit- and property-tested with a plain `cargo test` in seconds. The
//! extension crate wraps these types as SQL functions and aggregates.

pub mod business;
pub mod codec;
pub mod correlation;
pub mod error;
pub mod exactsum;
pub mod ingest;
pub mod models;
pub mod moments;
pub mod optimize;
pub mod percentile;
pub mod rollup;
pub mod severity;
pub mod sketch;
pub mod summary;
pub mod thresholds;
pub mod trend;
pub mod validate;

pub use error::{CoreError, CoreResult};
