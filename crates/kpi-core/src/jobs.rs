//! Job schedules: when a cron pattern next fires.
//!
//! The pattern is evaluated on local wall-clock time; the extension converts
//! to and from the job's time zone with PostgreSQL's own time zone database
//! (`AT TIME ZONE`), so a schedule accepts exactly the zone names a
//! `SET timezone` does. Patterns are Vixie cron's five fields (minute, hour,
//! day of month, month, day of week; names such as `FRI` and `JAN`; a
//! restricted day of month and day of week fire on either), an optional
//! leading seconds field, and the nicknames `@hourly`, `@daily`, `@weekly`,
//! `@monthly`, `@yearly`, parsed by the `croner` crate.

use std::str::FromStr;

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use croner::Cron;

use crate::{CoreError, CoreResult};

/// A parsed cron pattern.
#[derive(Debug, Clone)]
pub struct CronSchedule(Cron);

/// PostgreSQL timestamps count microseconds from 2000-01-01 00:00:00.
fn pg_epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("2000-01-01 is a date")
}

impl CronSchedule {
    /// Parses a pattern; an error names the argument `cron`.
    pub fn parse(pattern: &str) -> CoreResult<Self> {
        Self::parse_arg(pattern, "cron")
    }

    /// Parses a pattern; an error names the argument `arg`.
    pub fn parse_arg(pattern: &str, arg: &'static str) -> CoreResult<Self> {
        let trimmed = pattern.trim();
        if trimmed.is_empty() {
            return Err(CoreError::invalid(
                arg,
                "the cron expression is empty (expected five fields such as '0 17 * * 5')",
            ));
        }
        let cron = Cron::from_str(trimmed).map_err(|e| {
            CoreError::invalid(
                arg,
                format!(
                    "\"{trimmed}\" is not a cron expression ({e}); expected minute hour day-of-month month day-of-week, such as '0 17 * * 5'"
                ),
            )
        })?;
        let schedule = CronSchedule(cron);
        // a pattern that never fires (February 30th) is a mistake too
        schedule.next_after(pg_epoch()).map_err(|_| {
            CoreError::invalid(
                arg,
                format!("\"{trimmed}\" never fires (no date matches it)"),
            )
        })?;
        Ok(schedule)
    }

    /// The first time strictly after `after` (local wall-clock time) that the
    /// pattern matches, at whole seconds.
    pub fn next_after(&self, after: NaiveDateTime) -> CoreResult<NaiveDateTime> {
        self.0.find_next_occurrence(&after, false).map_err(|e| {
            CoreError::invalid(
                "cron",
                format!("no time after {after} matches the cron expression ({e})"),
            )
        })
    }

    /// [`next_after`](Self::next_after) on PostgreSQL's representation of a
    /// `timestamp` (microseconds since 2000-01-01).
    pub fn next_after_pg(&self, after: i64) -> CoreResult<i64> {
        let t = pg_epoch()
            .checked_add_signed(TimeDelta::microseconds(after))
            .ok_or_else(|| CoreError::range("after", "the time is out of range"))?;
        let next = self.next_after(t)?;
        (next - pg_epoch())
            .num_microseconds()
            .ok_or_else(|| CoreError::range("after", "the next time is out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Timelike};
    use proptest::prelude::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn friday_five_pm() {
        let s = CronSchedule::parse("0 17 * * 5").unwrap();
        // 2026-12-02 is a Wednesday
        assert_eq!(
            s.next_after(at("2026-12-02 15:42:00")).unwrap(),
            at("2026-12-04 17:00:00")
        );
        // strictly after: at 17:00 on a Friday the next is a week later
        assert_eq!(
            s.next_after(at("2026-12-04 17:00:00")).unwrap(),
            at("2026-12-11 17:00:00")
        );
        let named = CronSchedule::parse("0 17 * * FRI").unwrap();
        assert_eq!(
            named.next_after(at("2026-12-02 15:42:00")).unwrap(),
            at("2026-12-04 17:00:00")
        );
    }

    #[test]
    fn nicknames_ranges_steps_and_seconds() {
        let cases = [
            ("@daily", "2026-12-02 15:42:00", "2026-12-03 00:00:00"),
            ("@hourly", "2026-12-02 15:42:00", "2026-12-02 16:00:00"),
            ("@monthly", "2026-12-02 15:42:00", "2027-01-01 00:00:00"),
            ("@weekly", "2026-12-02 15:42:00", "2026-12-06 00:00:00"),
            ("*/15 * * * *", "2026-12-02 15:42:00", "2026-12-02 15:45:00"),
            (
                "0 9-17 * * 1-5",
                "2026-12-04 17:30:00",
                "2026-12-07 09:00:00",
            ),
            ("30 * * * * *", "2026-12-02 15:42:31", "2026-12-02 15:43:30"),
            // last day of February in a leap year
            ("0 0 29 2 *", "2026-12-02 00:00:00", "2028-02-29 00:00:00"),
        ];
        for (p, from, want) in cases {
            let s = CronSchedule::parse(p).unwrap();
            assert_eq!(s.next_after(at(from)).unwrap(), at(want), "{p}");
        }
    }

    #[test]
    fn day_of_month_or_day_of_week_as_vixie_cron() {
        // the 1st of the month or any Monday
        let s = CronSchedule::parse("0 0 1 * 1").unwrap();
        // Wed Dec 2 -> Mon Dec 7 (before Jan 1)
        assert_eq!(
            s.next_after(at("2026-12-02 00:00:00")).unwrap(),
            at("2026-12-07 00:00:00")
        );
    }

    #[test]
    fn malformed_patterns_name_the_argument() {
        for p in [
            "",
            "   ",
            "* * *",
            "61 * * * *",
            "0 25 * * *",
            "0 0 32 * *",
            "0 0 * 13 *",
            "0 0 * * 8",
            "every friday",
            "0 0 30 2 *",
        ] {
            let e = CronSchedule::parse(p).unwrap_err();
            assert_eq!(e.sqlstate(), "22023", "{p}");
            assert!(e.to_string().starts_with("cron: "), "{p}: {e}");
            let e = CronSchedule::parse_arg(p, "schedule_cron").unwrap_err();
            assert!(e.to_string().starts_with("schedule_cron: "), "{p}: {e}");
        }
    }

    #[test]
    fn pg_representation_round_trips() {
        let s = CronSchedule::parse("0 17 * * 5").unwrap();
        let after = (at("2026-12-02 15:42:00") - pg_epoch())
            .num_microseconds()
            .unwrap();
        let next = s.next_after_pg(after).unwrap();
        assert_eq!(
            pg_epoch() + TimeDelta::microseconds(next),
            at("2026-12-04 17:00:00")
        );
        assert!(s.next_after_pg(i64::MAX).is_err());
    }

    proptest! {
        // the next time is after the start, matches the pattern's fields and
        // is at most a week away (matches are a week apart, so it is the first)
        #[test]
        fn next_is_the_first_match(minute in 0u32..60, hour in 0u32..24, dow in 0u32..7,
                                   start in 0i64..(40 * 365 * 86_400)) {
            let s = CronSchedule::parse(&format!("{minute} {hour} * * {dow}")).unwrap();
            let from = pg_epoch() + TimeDelta::seconds(start);
            let next = s.next_after(from).unwrap();
            prop_assert!(next > from);
            prop_assert!(next - from <= TimeDelta::days(7));
            prop_assert_eq!((next.minute(), next.hour(), next.second()), (minute, hour, 0));
            prop_assert_eq!(next.weekday().num_days_from_sunday(), dow);
        }
    }
}
