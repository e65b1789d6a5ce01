//! Errors raised by the pure layer; the extension maps each variant to a SQLSTATE.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum CoreError {
    /// An argument is outside its domain (maps to SQLSTATE 22023 or 22003).
    #[error("{arg}: {msg}")]
    InvalidArgument { arg: &'static str, msg: String },
    /// A value is out of the numeric range an argument accepts (SQLSTATE 22003).
    #[error("{arg}: {msg}")]
    OutOfRange { arg: &'static str, msg: String },
    /// Binary or text input that does not decode (SQLSTATE 22P03 / 22P02).
    #[error("corrupt {what}: {msg}")]
    Corrupt { what: &'static str, msg: String },
}

pub type CoreResult<T> = Result<T, CoreError>;

impl CoreError {
    pub fn invalid(arg: &'static str, msg: impl Into<String>) -> Self {
        CoreError::InvalidArgument {
            arg,
            msg: msg.into(),
        }
    }
    pub fn range(arg: &'static str, msg: impl Into<String>) -> Self {
        CoreError::OutOfRange {
            arg,
            msg: msg.into(),
        }
    }
    pub fn corrupt(what: &'static str, msg: impl Into<String>) -> Self {
        CoreError::Corrupt {
            what,
            msg: msg.into(),
        }
    }
}
