//! Plumbing shared by the features: aggregate state handling and fmgr
//! helpers, error raising, GUC registration, and the stored binary types'
//! encoding and I/O.

pub mod agg;
pub mod errors;
pub mod guc;
pub mod stored;
