//! Pure computation behind pg_kpi.
//!
//! Nothing in this crate links against Postgres, so every algorithm is
//! unit- and property-tested with a plain `cargo test` in seconds. The
//! extension crate wraps these types as SQL functions and aggregates.

// features, named as in src/ and sql/
pub mod bi;
pub mod business;
pub mod capacity;
pub mod delivery;
pub mod ingest;
pub mod jobs;
pub mod models;
pub mod reports;
pub mod rollups;
pub mod rules;
pub mod severity;
pub mod sketch;
pub mod stats;
pub mod targets;
pub mod trend;

// shared plumbing: the stored-state encoding, errors, argument checks
pub mod codec;
pub mod error;
pub mod time;
pub mod validate;

pub use error::{CoreError, CoreResult};
