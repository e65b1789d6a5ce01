//! `kpi.trend`: mergeable least-squares trend aggregates and accessors.
//! Timestamps enter as Unix epoch seconds (as extract(epoch from ts)).

use crate::pg::agg;
use crate::pg::errors::raise;
use crate::pg::stored::{self, Stored};
use kpi_core::trend::{self, Trend};
use kpi_core::CoreResult;
use pgrx::datum::{Interval, TimestampWithTimeZone};
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::prelude::*;
use pgrx::{pg_sys, Internal};
use std::ffi::{CStr, CString};

pub fn epoch_seconds(ts: TimestampWithTimeZone) -> f64 {
    let micros: i64 = ts.into_inner();
    kpi_core::time::unix_seconds(micros)
}

/// Raises 22003 for a trend whose moments overflowed float8 (values near
/// ±1e308), as PostgreSQL's regr_*() aggregates do.
pub(crate) fn overflow(func: &str) -> ! {
    crate::pg::errors::raise(
        PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
        format!("{func}: value out of range: the sums of squares overflow float8"),
        Some("The values (or their spread) are near ±1.8e308.".into()),
        Some("Scale the values down, or filter out the extreme ones."),
    )
}

fn finite_pair(func: &str, x: f64, y: f64) {
    crate::pg::errors::require_finite(func, "x and y", &[x, y]);
}

crate::fmgr_v1!(pg_finfo_kpi_trend_trans_ts);

/// Transition for kpi.trend_agg(ts, value), a plain fmgr function (hot path).
///
/// # Safety
/// Called by the executor as the transition function of kpi.trend_agg(timestamptz, float8).
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn kpi_trend_trans_ts(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let (mut state, args) = agg::fmgr_args(fcinfo);
    let st = agg::state_mut(&mut state, fcinfo, Trend::default);
    // timestamptz is an int64 of microseconds since 2000-01-01, passed by value
    let ts = (!args[0].isnull).then(|| args[0].value.value() as i64);
    if let (Some(micros), Some(v)) = (ts, agg::fmgr_f64(&args[1])) {
        if micros == i64::MAX || micros == i64::MIN {
            finite_pair("kpi.trend_agg", f64::INFINITY, v); // raises: infinite timestamp
        }
        let x = kpi_core::time::unix_seconds(micros);
        finite_pair("kpi.trend_agg", x, v);
        st.add(x, v);
    }
    agg::fmgr_return(state)
}

#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn trend_trans_xy(
    state: Internal,
    x: Option<f64>,
    y: Option<f64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    let mut state = state;
    // SAFETY: fcinfo is this aggregate call's; the state is created in and owned by its aggregate memory context
    let st = unsafe { agg::state_mut(&mut state, fcinfo, Trend::default) };
    if let (Some(x), Some(y)) = (x, y) {
        finite_pair("kpi.trend_agg", x, y);
        st.add(x, y);
    }
    state
}

#[pg_extern(immutable, parallel_safe, requires = ["trend"], schema = "kpi_internal")]
fn trend_merge_trans(
    state: Internal,
    t: Option<TrendValue>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    let mut state = state;
    // SAFETY: fcinfo is this aggregate call's; the state is created in and owned by its aggregate memory context
    let st = unsafe { agg::state_mut(&mut state, fcinfo, Trend::default) };
    if let Some(TrendValue(t)) = t {
        st.merge(&t);
    }
    state
}

crate::state_support!(
    Trend,
    "kpi.trend_agg",
    trend_combine,
    trend_serialize,
    trend_deserialize,
    |x, y| x.merge(&y)
);

#[pg_extern(immutable, strict, parallel_safe, requires = ["trend"], schema = "kpi_internal")]
fn trend_final(state: Internal) -> Option<TrendValue> {
    // SAFETY: the state was made by this aggregate's own transition function, so it holds that type
    let t = unsafe { agg::get::<Trend>(&state) }?;
    if !t.is_finite() {
        overflow("kpi.trend_agg");
    }
    (t.n > 0).then_some(TrendValue(*t))
}

// ---- accessors ---------------------------------------------------------------------

fn interval_seconds(per: &Interval) -> f64 {
    // as extract(epoch from interval): a month is 30 days
    per.months() as f64 * 30.0 * 86_400.0 + per.days() as f64 * 86_400.0 + per.micros() as f64 / 1e6
}

/// Slope per `per` (default 1 second; with float8 x, per unit of x when per
/// is '1 second'). NULL with fewer than 2 points or no variance in x.
#[pg_extern(immutable, strict, parallel_safe, requires = ["trend"])]
fn slope(t: TrendValue, per: default!(Interval, "'1 second'")) -> Option<f64> {
    let secs = interval_seconds(&per);
    if secs <= 0.0 || !secs.is_finite() {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "kpi.slope: per must be a positive interval".into(),
            None,
            None,
        )
    }
    t.0.slope().map(|b| b * secs)
}

#[pg_extern(immutable, strict, parallel_safe, requires = ["trend"])]
fn intercept(t: TrendValue) -> Option<f64> {
    t.0.intercept()
}

#[pg_extern(immutable, strict, parallel_safe, requires = ["trend"])]
fn r2(t: TrendValue) -> Option<f64> {
    t.0.r2()
}

#[pg_extern(immutable, strict, parallel_safe, requires = ["trend"])]
fn correlation(t: TrendValue) -> Option<f64> {
    t.0.correlation()
}

#[pg_extern(immutable, strict, parallel_safe, requires = ["trend"])]
fn trend_count(t: TrendValue) -> i64 {
    t.0.n as i64
}

#[pg_extern(name = "forecast", immutable, strict, parallel_safe, requires = ["trend"])]
fn forecast_at(t: TrendValue, at: TimestampWithTimeZone) -> Option<f64> {
    if at.is_infinity() || at.is_neg_infinity() {
        return None;
    }
    t.0.forecast(epoch_seconds(at))
}

/// The prediction interval `{low, high}` of a new value at `at`, at
/// confidence `level` (default 0.95); NULL with fewer than 3 points or no
/// spread in time.
#[pg_extern(immutable, strict, parallel_safe, requires = ["trend"])]
fn prediction_interval(
    t: TrendValue,
    at: TimestampWithTimeZone,
    level: default!(f64, 0.95),
) -> Option<Vec<f64>> {
    if !(level > 0.0 && level < 1.0) {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "kpi.prediction_interval: level must be between 0 and 1 (exclusive), got {level}"
            ),
            None,
            None,
        )
    }
    if at.is_infinity() || at.is_neg_infinity() {
        return None;
    }
    t.0.prediction_interval(epoch_seconds(at), level)
        .map(|(lo, hi)| vec![lo, hi])
}

#[pg_extern(name = "forecast", immutable, strict, parallel_safe, requires = ["trend"])]
fn forecast_x(t: TrendValue, x: f64) -> Option<f64> {
    t.0.forecast(x)
}

fn check_threshold(func: &str, arg: &str, threshold: f64) {
    if threshold.is_nan() || threshold < 0.0 {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{func}: {arg} must be a number >= 0, got {threshold}"),
            None,
            None,
        )
    }
}

/// 'increasing' when the slope per second > threshold_per_second, 'decreasing'
/// when < -threshold_per_second, else 'stable'.
#[pg_extern(immutable, strict, parallel_safe, requires = ["trend"])]
fn direction(t: TrendValue, threshold_per_second: default!(f64, 0.0)) -> Option<&'static str> {
    check_threshold(
        "kpi.direction",
        "threshold_per_second",
        threshold_per_second,
    );
    t.0.slope()
        .map(|b| trend::direction(b, threshold_per_second))
}

/// Direction with the threshold given per an interval (`threshold => 5, per => '1 hour'`).
#[pg_extern(name = "direction", immutable, strict, parallel_safe, requires = ["trend"])]
fn direction_per(t: TrendValue, threshold: f64, per: Interval) -> Option<&'static str> {
    check_threshold("kpi.direction", "threshold", threshold);
    let secs = interval_seconds(&per);
    if secs <= 0.0 || !secs.is_finite() {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "kpi.direction: per must be a positive interval".into(),
            None,
            None,
        )
    }
    t.0.slope().map(|b| trend::direction(b * secs, threshold))
}

/// Change between consecutive samples (the slope times the typical spacing of x).
#[pg_extern(immutable, strict, parallel_safe, requires = ["trend"])]
fn slope_per_sample(t: TrendValue) -> Option<f64> {
    t.0.slope_per_sample()
}

/// Direction with the threshold per sample, as the replaced services computed it
/// (their 0.1 compared the slope over sample positions 0, 1, 2, ...).
#[pg_extern(immutable, strict, parallel_safe, requires = ["trend"])]
fn sample_direction(
    t: TrendValue,
    threshold_per_sample: default!(f64, 0.1),
) -> Option<&'static str> {
    check_threshold(
        "kpi.sample_direction",
        "threshold_per_sample",
        threshold_per_sample,
    );
    t.0.slope_per_sample()
        .map(|b| trend::direction(b, threshold_per_sample))
}

/// |slope| per second.
#[pg_extern(immutable, strict, parallel_safe, requires = ["trend"])]
fn strength(t: TrendValue) -> Option<f64> {
    t.0.slope().map(f64::abs)
}

/// Slope over positions 0..n-1 (NULL elements are skipped, keeping positions).
#[pg_extern(immutable, strict, parallel_safe)]
fn trend_slope(values: Vec<Option<f64>>) -> Option<f64> {
    let mut t = Trend::default();
    for (i, v) in values.iter().enumerate() {
        if let Some(v) = v {
            finite_pair("kpi.trend_slope", i as f64, *v);
            t.add(i as f64, *v);
        }
    }
    t.slope()
}

// ---- the stored type kpi.trend: encoding and I/O ----

impl Stored for kpi_core::trend::Trend {
    const SQL_NAME: &'static str = "kpi.trend";
    fn encode(&self) -> Vec<u8> {
        kpi_core::trend::Trend::encode(self)
    }
    fn decode(b: &[u8]) -> CoreResult<Self> {
        kpi_core::trend::Trend::decode(b)
    }
}

crate::stored_type!(TrendValue, kpi_core::trend::Trend, "kpi.trend");

#[pg_extern(immutable, strict, parallel_safe, sql = false, schema = "kpi_internal")]
fn trend_in(input: &CStr) -> TrendValue {
    TrendValue(stored::text_in(input))
}
#[pg_extern(immutable, strict, parallel_safe, sql = false, schema = "kpi_internal")]
fn trend_out(v: TrendValue) -> CString {
    stored::text_out(&v.0)
}
#[pg_extern(immutable, strict, parallel_safe, sql = false, schema = "kpi_internal")]
fn trend_recv(buf: pgrx::Internal) -> TrendValue {
    TrendValue(stored::recv(buf))
}
#[pg_extern(immutable, strict, parallel_safe, sql = false, schema = "kpi_internal")]
fn trend_send(v: TrendValue) -> Vec<u8> {
    v.0.encode()
}
