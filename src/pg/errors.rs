//! Raising errors with a specific SQLSTATE, a message, and an optional
//! detail and hint. Never panics on user input: every user mistake goes
//! through here.

use kpi_core::CoreError;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::PgLogLevel;

pub fn code(sqlstate: &str) -> PgSqlErrorCode {
    use PgSqlErrorCode::*;
    match sqlstate {
        "22001" => ERRCODE_STRING_DATA_RIGHT_TRUNCATION,
        "22003" => ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
        "22004" => ERRCODE_NULL_VALUE_NOT_ALLOWED,
        "22007" => ERRCODE_INVALID_DATETIME_FORMAT,
        "22008" => ERRCODE_DATETIME_FIELD_OVERFLOW,
        "22023" => ERRCODE_INVALID_PARAMETER_VALUE,
        "22P02" => ERRCODE_INVALID_TEXT_REPRESENTATION,
        "22P03" => ERRCODE_INVALID_BINARY_REPRESENTATION,
        "23514" => ERRCODE_CHECK_VIOLATION,
        "54000" => ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        _ => ERRCODE_INTERNAL_ERROR,
    }
}

/// Raises an ERROR; does not return.
pub fn raise(
    code: PgSqlErrorCode,
    message: String,
    detail: Option<String>,
    hint: Option<&str>,
) -> ! {
    let mut r = ErrorReport::new(code, message, "pg_kpi");
    if let Some(d) = detail {
        r = r.set_detail(d);
    }
    if let Some(h) = hint {
        r = r.set_hint(h);
    }
    r.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// Raises a core error with its SQLSTATE, prefixing the SQL function's name.
pub fn raise_core(func: &str, e: CoreError) -> ! {
    let c = match &e {
        CoreError::InvalidArgument { .. } => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        CoreError::OutOfRange { .. } => PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
        CoreError::Corrupt { .. } => PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
    };
    raise(c, format!("{func}: {e}"), None, None)
}

/// Unwraps a core result or raises it as an ERROR.
pub trait OrRaise<T> {
    fn or_raise(self, func: &str) -> T;
}

impl<T> OrRaise<T> for Result<T, CoreError> {
    fn or_raise(self, func: &str) -> T {
        match self {
            Ok(v) => v,
            Err(e) => raise_core(func, e),
        }
    }
}
