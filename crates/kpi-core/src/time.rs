//! PostgreSQL timestamps (microseconds since 2000-01-01 00:00 UTC) and Unix
//! epoch seconds: the one conversion every feature uses.

/// Seconds from the Unix epoch to PostgreSQL's epoch, 2000-01-01 00:00 UTC.
pub const PG_EPOCH_UNIX_SECONDS: f64 = 946_684_800.0;

/// Unix epoch seconds of a PostgreSQL timestamp (as `extract(epoch from ts)`).
pub fn unix_seconds(pg_micros: i64) -> f64 {
    pg_micros as f64 / 1e6 + PG_EPOCH_UNIX_SECONDS
}

/// PostgreSQL microseconds of Unix epoch seconds, rounded; None when out of
/// the timestamp range or not finite.
pub fn pg_micros(unix_seconds: f64) -> Option<i64> {
    let m = ((unix_seconds - PG_EPOCH_UNIX_SECONDS) * 1e6).round();
    // PostgreSQL's range: 4713 BC to 294276 AD; ±infinity are i64::MIN/MAX
    (m.is_finite() && m > -211_813_488_000_000_000.0 && m < 9_223_371_331_200_000_000.0)
        .then_some(m as i64)
}

/// Whether a PostgreSQL timestamp is ±infinity.
pub fn is_infinite(pg_micros: i64) -> bool {
    pg_micros == i64::MIN || pg_micros == i64::MAX
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_the_epochs() {
        assert_eq!(unix_seconds(0), 946_684_800.0);
        assert_eq!(pg_micros(946_684_800.0), Some(0));
        // 2026-01-01 00:02:00 UTC
        assert_eq!(
            unix_seconds(pg_micros(1_767_225_720.0).unwrap()),
            1_767_225_720.0
        );
        assert_eq!(pg_micros(f64::NAN), None);
        assert_eq!(pg_micros(1e300), None);
        assert!(is_infinite(i64::MAX) && is_infinite(i64::MIN) && !is_infinite(0));
    }
}
