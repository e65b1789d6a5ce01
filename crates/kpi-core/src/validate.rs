//! Argument checks shared by the SQL surface.

use crate::{CoreError, CoreResult};

/// A quantile must lie in [0, 1] (NaN rejected), as for `percentile_cont`.
pub fn quantile(arg: &'static str, p: f64) -> CoreResult<f64> {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return Err(CoreError::range(
            arg,
            format!("percentile value {p} is not between 0 and 1"),
        ));
    }
    Ok(p)
}

/// The smallest relative error a sketch accepts: below it the buckets are
/// finer than any use needs and γ = (1 + α) / (1 − α) loses its precision.
pub const MIN_RELATIVE_ERROR: f64 = 1e-6;

/// A relative error must lie in [1e-6, 0.5].
pub fn relative_error(arg: &'static str, e: f64) -> CoreResult<f64> {
    if e.is_nan() || !(MIN_RELATIVE_ERROR..=0.5).contains(&e) {
        return Err(CoreError::range(
            arg,
            format!("relative error {e} is not in [1e-6, 0.5]"),
        ));
    }
    Ok(e)
}

/// A finite value (no NaN, no infinities).
pub fn finite(arg: &'static str, v: f64) -> CoreResult<f64> {
    if !v.is_finite() {
        return Err(CoreError::invalid(
            arg,
            format!(
                "value {} is not finite (NaN and infinities are not accepted)",
                fmt_float(v)
            ),
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_bounds() {
        assert!(quantile("p", 0.0).is_ok());
        assert!(quantile("p", 1.0).is_ok());
        assert!(quantile("p", -0.0001).is_err());
        assert!(quantile("p", 1.0001).is_err());
        assert!(quantile("p", f64::NAN).is_err());
    }

    #[test]
    fn relative_error_bounds() {
        assert!(relative_error("e", 0.5).is_ok());
        assert!(relative_error("e", 1e-6).is_ok());
        assert!(relative_error("e", 0.0).is_err());
        assert!(relative_error("e", 9e-7).is_err());
        assert!(relative_error("e", 1e-20).is_err());
        assert!(relative_error("e", 0.51).is_err());
        assert!(relative_error("e", f64::NAN).is_err());
    }

    #[test]
    fn finite_values() {
        assert!(finite("v", 1.0).is_ok());
        assert!(finite("v", f64::INFINITY).is_err());
        assert!(finite("v", f64::NEG_INFINITY).is_err());
        assert!(finite("v", f64::NAN).is_err());
    }
}

/// Formats a float for messages the way PostgreSQL prints float8:
/// NaN, Infinity, -Infinity, and exponent form for very large or small values.
pub fn fmt_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if v != 0.0 && (v.abs() >= 1e15 || v.abs() < 1e-4) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod fmt_tests {
    #[test]
    fn formats_like_postgres() {
        use super::fmt_float;
        assert_eq!(fmt_float(f64::NAN), "NaN");
        assert_eq!(fmt_float(f64::INFINITY), "Infinity");
        assert_eq!(fmt_float(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(fmt_float(1e300), "1e300");
        assert_eq!(fmt_float(99.5), "99.5");
        assert_eq!(fmt_float(0.0), "0");
    }
}
