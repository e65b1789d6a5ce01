//! Raising errors with a specific SQLSTATE, a message, and an optional
//! detail and hint. Never panics on user input: every user mistake goes
//! through here.

use kpi_core::CoreError;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::PgLogLevel;

/// The error code of a five-character SQLSTATE, packed as PostgreSQL's
/// MAKE_SQLSTATE does. Every SQLSTATE PostgreSQL defines has a code; the
/// layers below name theirs (kpi-core's `CoreError::sqlstate`, the ingest and
/// threshold checks), so no table of accepted codes is kept here.
pub fn code(sqlstate: &str) -> PgSqlErrorCode {
    debug_assert_eq!(
        sqlstate.len(),
        5,
        "a SQLSTATE has five characters: {sqlstate}"
    );
    let packed = sqlstate
        .bytes()
        .take(5)
        .enumerate()
        .fold(0i32, |acc, (i, c)| {
            acc | ((i32::from(c.wrapping_sub(b'0')) & 0x3F) << (6 * i))
        });
    PgSqlErrorCode::from(packed)
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

/// Raises 22023 unless every value is finite (no NaN, no ±Infinity); `names`
/// says which arguments, as in "ts and value".
pub fn require_finite(func: &str, names: &str, values: &[f64]) {
    if values.iter().any(|v| !v.is_finite()) {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{func}: {names} must be finite"),
            None,
            Some("filter NaN and infinite values (and infinite timestamps) out"),
        )
    }
}

/// Raises a core error with its SQLSTATE, prefixing the SQL function's name.
pub fn raise_core(func: &str, e: CoreError) -> ! {
    raise(code(e.sqlstate()), format!("{func}: {e}"), None, None)
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

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::code;
    use pgrx::pg_sys::errcodes::PgSqlErrorCode::*;
    use pgrx::prelude::*;

    #[pg_test]
    fn sqlstates_pack_as_postgres_does() {
        assert_eq!(code("22023"), ERRCODE_INVALID_PARAMETER_VALUE);
        assert_eq!(code("22P03"), ERRCODE_INVALID_BINARY_REPRESENTATION);
        assert_eq!(code("23503"), ERRCODE_FOREIGN_KEY_VIOLATION);
        assert_eq!(code("2BP01"), ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST);
        assert_eq!(code("XX000"), ERRCODE_INTERNAL_ERROR);
    }
}
