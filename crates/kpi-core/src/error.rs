//! Errors raised by the pure layer. Each carries its SQLSTATE, which the
//! extension raises unchanged: the layer that knows what went wrong decides
//! how PostgreSQL reports it.

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
    /// The SQLSTATE PostgreSQL reports: 22023 invalid_parameter_value, 22003
    /// numeric_value_out_of_range, 22P03 invalid_binary_representation.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            CoreError::InvalidArgument { .. } => "22023",
            CoreError::OutOfRange { .. } => "22003",
            CoreError::Corrupt { .. } => "22P03",
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_carries_its_sqlstate() {
        assert_eq!(CoreError::invalid("p", "x").sqlstate(), "22023");
        assert_eq!(CoreError::range("p", "x").sqlstate(), "22003");
        assert_eq!(CoreError::corrupt("state", "x").sqlstate(), "22P03");
    }
}
