//! Exact percentiles, one-pass summary statistics, z-score anomalies and the
//! correlation test. Aggregates are declared in sql/aggregates.sql; these are
//! their support functions and the scalar helpers.

use crate::pg::agg;
use crate::pg::errors::{raise, OrRaise};
use kpi_core::stats::correlation;
use kpi_core::stats::percentile::ExactState;
use kpi_core::stats::summary::{ExactSummary, SketchSummary, Summary};
use kpi_core::trend::Trend;
use kpi_core::validate;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::prelude::*;
use pgrx::{pg_sys, FromDatum, Internal};

// ---- kpi.percentile / kpi.percentiles --------------------------------------

#[inline]
fn same(a: Option<f64>, b: Option<f64>) -> bool {
    a.map(f64::to_bits) == b.map(f64::to_bits)
}

#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn percentile_trans(
    state: Internal,
    value: Option<f64>,
    p: Option<f64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    let mut state = state;
    // SAFETY: fcinfo is this aggregate call's; the state is created in and owned by its aggregate memory context
    let st = unsafe { agg::state_mut(&mut state, fcinfo, ExactState::default) };
    match &st.ps {
        Some(ps) if ps.len() == 1 && same(ps[0], p) => {}
        _ => st.set_ps("p", &[p]).or_raise("kpi.percentile"),
    }
    if let Some(v) = value {
        st.push(v);
    }
    state
}

/// Transition for kpi.percentiles(value, ps). Declared in sql/aggregates.sql
/// with a third float8[] argument that is read from fcinfo only on a group's
/// first row: converting the array on every row cost a third of the runtime.
#[pg_extern(immutable, parallel_safe, sql = false, schema = "kpi_internal")]
fn percentiles_trans(
    state: Internal,
    value: Option<f64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    let mut state = state;
    // SAFETY: fcinfo is this aggregate call's; the state is created in and owned by its aggregate memory context
    let st = unsafe { agg::state_mut(&mut state, fcinfo, ExactState::default) };
    if st.ps.is_none() {
        // the quantiles of the first row are used for the whole group
        // SAFETY: the third argument of this transition function is declared float8[] in SQL
        let ps: Option<Vec<Option<f64>>> = unsafe {
            let nargs = (*fcinfo).nargs as usize;
            let args = (*fcinfo).args.as_slice(nargs);
            args.get(2).and_then(|a| {
                Vec::<Option<f64>>::from_polymorphic_datum(
                    a.value,
                    a.isnull,
                    pg_sys::FLOAT8ARRAYOID,
                )
            })
        };
        let ps = ps.unwrap_or_else(|| {
            raise(
                PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                "kpi.percentiles: ps must not be NULL".into(),
                None,
                None,
            )
        });
        st.set_ps("ps", &ps).or_raise("kpi.percentiles");
    }
    if let Some(v) = value {
        st.push(v);
    }
    state
}

crate::state_support!(
    ExactState,
    "kpi.percentile",
    exact_combine,
    exact_serialize,
    exact_deserialize,
    |x, y| x.merge(y).or_raise("kpi.percentile")
);

#[pg_extern(immutable, strict, parallel_safe, schema = "kpi_internal")]
fn percentile_final(state: Internal) -> Option<f64> {
    let mut state = state;
    // SAFETY: the state was made by this aggregate's own transition function, so it holds that type
    let st = unsafe { agg::get_mut::<ExactState>(&mut state) }?;
    st.finish()?.first().copied().flatten()
}

#[pg_extern(immutable, strict, parallel_safe, schema = "kpi_internal")]
fn percentiles_final(state: Internal) -> Option<Vec<Option<f64>>> {
    let mut state = state;
    // SAFETY: the state was made by this aggregate's own transition function, so it holds that type
    let st = unsafe { agg::get_mut::<ExactState>(&mut state) }?;
    st.finish()
}

// ---- kpi.summary_stats ---------------------------------------------------------

fn stats_tuple(s: Summary) -> pgrx::composite_type!('static, "kpi.stats") {
    let mut t = PgHeapTuple::new_composite_type("kpi.stats")
        .unwrap_or_else(|e| error!("pg_kpi: type kpi.stats is missing: {e}"));
    let set = |t: &mut PgHeapTuple<'static, AllocatedByRust>, k: &str, v: Option<f64>| {
        t.set_by_name(k, v)
            .unwrap_or_else(|e| error!("pg_kpi: kpi.stats.{k}: {e}"))
    };
    t.set_by_name("count", s.count as i64)
        .unwrap_or_else(|e| error!("pg_kpi: kpi.stats.count: {e}"));
    set(&mut t, "min", s.min);
    set(&mut t, "max", s.max);
    set(&mut t, "mean", s.mean);
    set(&mut t, "median", s.median);
    set(&mut t, "stddev", s.stddev);
    set(&mut t, "p95", s.p95);
    set(&mut t, "p99", s.p99);
    t
}

#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn summary_trans(
    state: Internal,
    value: Option<f64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    let mut state = state;
    // SAFETY: fcinfo is this aggregate call's; the state is created in and owned by its aggregate memory context
    let st = unsafe { agg::state_mut(&mut state, fcinfo, ExactSummary::default) };
    if let Some(v) = value {
        st.add(v);
    }
    state
}

crate::state_support!(
    ExactSummary,
    "kpi.summary_stats",
    summary_combine,
    summary_serialize,
    summary_deserialize,
    |x, y| x.merge(y).or_raise("kpi.summary_stats")
);

#[pg_extern(immutable, strict, parallel_safe, requires = ["stats"], schema = "kpi_internal")]
fn summary_final(state: Internal) -> Option<pgrx::composite_type!('static, "kpi.stats")> {
    let mut state = state;
    // SAFETY: the state was made by this aggregate's own transition function, so it holds that type
    let st = unsafe { agg::get_mut::<ExactSummary>(&mut state) }?;
    st.finish().map(stats_tuple)
}

#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn summary_sketch_trans(
    state: Internal,
    value: Option<f64>,
    relative_error: Option<f64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    let mut state = state;
    let e = relative_error.unwrap_or(f64::NAN);
    // SAFETY: fcinfo is this aggregate call's; the state is created in and owned by its aggregate memory context
    let st = unsafe {
        agg::state_mut(&mut state, fcinfo, || {
            SketchSummary::new(e).or_raise("kpi.summary_stats")
        })
    };
    crate::sketch::same_relative_error("kpi.summary_stats", &st.sketch, e);
    if let Some(v) = value {
        st.add(v).or_raise("kpi.summary_stats");
    }
    state
}

crate::state_support!(
    SketchSummary,
    "kpi.summary_stats",
    summary_sketch_combine,
    summary_sketch_serialize,
    summary_sketch_deserialize,
    |x, y| x.merge(&y).or_raise("kpi.summary_stats")
);

#[pg_extern(immutable, strict, parallel_safe, requires = ["stats"], schema = "kpi_internal")]
fn summary_sketch_final(state: Internal) -> Option<pgrx::composite_type!('static, "kpi.stats")> {
    // SAFETY: the state was made by this aggregate's own transition function, so it holds that type
    let st = unsafe { agg::get::<SketchSummary>(&state) }?;
    st.finish().or_raise("kpi.summary_stats").map(stats_tuple)
}

// ---- anomalies -------------------------------------------------------------------

/// (value - mean) / stddev; NULL when stddev is 0 or not finite.
#[pg_extern(immutable, strict, parallel_safe)]
fn zscore(value: f64, mean: f64, stddev: f64) -> Option<f64> {
    if stddev == 0.0 || !stddev.is_finite() || !value.is_finite() || !mean.is_finite() {
        return None;
    }
    Some((value - mean) / stddev)
}

/// NULL below `warning` standard deviations, 'warning' from there, 'critical'
/// above `critical` (the 3-sigma rule by default), on |z|.
#[pg_extern(immutable, parallel_safe)]
fn anomaly_level(
    z: Option<f64>,
    warning: default!(Option<f64>, 3.0),
    critical: default!(Option<f64>, 4.0),
) -> Option<&'static str> {
    let (Some(warning), Some(critical)) = (warning, critical) else {
        raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "kpi.anomaly_level: warning and critical must not be NULL".into(),
            None,
            Some("leave them out for the 3-sigma and 4-sigma defaults"),
        )
    };
    validate::finite("warning", warning).or_raise("kpi.anomaly_level");
    validate::finite("critical", critical).or_raise("kpi.anomaly_level");
    if warning < 0.0 || critical < warning {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("kpi.anomaly_level: need 0 <= warning <= critical, got warning {warning} and critical {critical}"),
            None,
            None,
        )
    }
    let a = z?.abs();
    if a.is_nan() {
        None
    } else if a > critical {
        Some("critical")
    } else if a >= warning {
        Some("warning")
    } else {
        None
    }
}

// ---- kpi.correlation_test ---------------------------------------------------------

#[derive(Clone, Default)]
struct CorrState {
    t: Trend,
    alpha: Option<f64>,
}

#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn correlation_trans(
    state: Internal,
    x: Option<f64>,
    y: Option<f64>,
    alpha: Option<f64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    let mut state = state;
    // SAFETY: fcinfo is this aggregate call's; the state is created in and owned by its aggregate memory context
    let st = unsafe { agg::state_mut(&mut state, fcinfo, CorrState::default) };
    if st.alpha.is_none() {
        let a = alpha.unwrap_or(0.05);
        if a.is_nan() || a <= 0.0 || a >= 1.0 {
            raise(
                PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
                format!("kpi.correlation_test: alpha must be in (0, 1), got {a}"),
                None,
                None,
            )
        }
        st.alpha = Some(a);
    }
    if let (Some(x), Some(y)) = (x, y) {
        if x.is_finite() && y.is_finite() {
            st.t.add(x, y);
        } else {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                "kpi.correlation_test: x and y must be finite".into(),
                None,
                Some("filter NaN and infinite values out"),
            )
        }
    }
    state
}

#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn correlation_trans2(
    state: Internal,
    x: Option<f64>,
    y: Option<f64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    correlation_trans(state, x, y, None, fcinfo)
}

impl CorrState {
    /// alpha (8 bytes, little endian) then the trend state.
    fn encode(&self) -> Vec<u8> {
        let mut out = self.alpha.unwrap_or(0.05).to_le_bytes().to_vec();
        out.extend_from_slice(&self.t.encode());
        out
    }
    fn decode(bytes: &[u8]) -> kpi_core::CoreResult<CorrState> {
        let (alpha, rest) = bytes
            .split_first_chunk::<8>()
            .ok_or_else(|| kpi_core::CoreError::corrupt("state", "truncated"))?;
        Ok(CorrState {
            t: Trend::decode(rest)?,
            alpha: Some(f64::from_le_bytes(*alpha)),
        })
    }
}

crate::state_support!(
    CorrState,
    "kpi.correlation_test",
    correlation_combine,
    correlation_serialize,
    correlation_deserialize,
    |x, y| {
        x.t.merge(&y.t);
        x.alpha = x.alpha.or(y.alpha);
    }
);

#[pg_extern(immutable, strict, parallel_safe, requires = ["stats"], schema = "kpi_internal")]
fn correlation_final(state: Internal) -> Option<pgrx::composite_type!('static, "kpi.correlation")> {
    // SAFETY: the state was made by this aggregate's own transition function, so it holds that type
    let st = unsafe { agg::get::<CorrState>(&state) }?;
    if st.t.n == 0 {
        return None;
    }
    if !st.t.is_finite() {
        crate::trend::overflow("kpi.correlation_test");
    }
    let c = correlation::test(&st.t);
    let alpha = st.alpha.unwrap_or(0.05);
    let mut t = PgHeapTuple::new_composite_type("kpi.correlation")
        .unwrap_or_else(|e| error!("pg_kpi: type kpi.correlation is missing: {e}"));
    let r = (|| -> Result<(), pgrx::datum::TryFromDatumError> {
        t.set_by_name("r", c.r)?;
        t.set_by_name("n", c.n as i64)?;
        t.set_by_name("t", c.t)?;
        t.set_by_name("p_value", c.p_value)?;
        t.set_by_name("significant", c.p_value.map(|p| p < alpha))?;
        Ok(())
    })();
    if let Err(e) = r {
        error!("pg_kpi: building kpi.correlation: {e}");
    }
    Some(t)
}

/// Welch's t-test of two samples given as count, mean and sample variance:
/// `{t, df, p_value}` (two-sided), NULL when it cannot be computed (fewer
/// than 2 values in a sample, or no variance in either).
#[pg_extern(immutable, strict, parallel_safe, schema = "kpi_internal")]
fn welch_test(n1: i64, mean1: f64, var1: f64, n2: i64, mean2: f64, var2: f64) -> Option<Vec<f64>> {
    let w = kpi_core::stats::welch::test(
        u64::try_from(n1).ok()?,
        mean1,
        var1,
        u64::try_from(n2).ok()?,
        mean2,
        var2,
    )?;
    Some(vec![w.t, w.df, w.p_value])
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn setup() {
        Spi::run(
            "CREATE TEMP TABLE r AS
             SELECT (CASE WHEN g % 10 = 0 THEN -1 ELSE 1 END) * exp(random() * 8) AS v,
                    (g % 50)::float8 AS dup,
                    timestamptz '2027-01-01' + make_interval(secs => g * 60) AS ts
             FROM generate_series(1, 20000) g",
        )
        .unwrap();
    }

    #[pg_test]
    fn percentiles_match_percentile_cont() {
        setup();
        for col in ["v", "dup"] {
            let worst = Spi::get_one::<f64>(&format!(
                "WITH a AS (SELECT kpi.percentiles({col}, array[0, 0.001, 0.25, 0.5, 0.95, 0.99, 0.999, 1]) k,
                                   percentile_cont(array[0, 0.001, 0.25, 0.5, 0.95, 0.99, 0.999, 1])
                                       WITHIN GROUP (ORDER BY {col}) n FROM r)
                 SELECT max(abs(k[i] - n[i]) / greatest(abs(n[i]), 1e-300))
                 FROM a, generate_subscripts(a.n, 1) i"
            ))
            .unwrap()
            .unwrap();
            assert!(worst <= 1e-12, "{col}: relative difference {worst}");
        }
    }

    #[pg_test]
    fn slope_matches_regr_slope() {
        setup();
        let (k, n) = Spi::get_two::<f64, f64>(
            "SELECT kpi.slope(kpi.trend_agg(ts, v)), regr_slope(v, extract(epoch from ts)) FROM r",
        )
        .unwrap();
        let (k, n) = (k.unwrap(), n.unwrap());
        assert!((k - n).abs() <= 1e-6 * n.abs().max(1e-12), "{k} vs {n}");
    }

    #[pg_test]
    fn sketch_within_bound_of_exact_disc() {
        setup();
        let ok = Spi::get_one::<bool>(
            "WITH s AS (SELECT kpi.sketch_agg(v) s FROM r),
                  q AS (SELECT unnest(array[0.01, 0.1, 0.5, 0.9, 0.95, 0.99]) p)
             SELECT bool_and(abs(kpi.approx_percentile(s, p) - d) <= kpi.sketch_error(s) * abs(d) * (1 + 1e-9))
             FROM s, q, LATERAL (SELECT percentile_disc(p) WITHIN GROUP (ORDER BY v) d FROM r) e",
        )
        .unwrap();
        assert_eq!(ok, Some(true));
    }

    #[pg_test]
    fn parallel_plan_gives_identical_results() {
        setup();
        Spi::run("CREATE TABLE par AS SELECT random() * 1000 AS v FROM generate_series(1, 100000)")
            .unwrap();
        let serial = Spi::get_two::<String, String>(
            "SELECT kpi.percentiles(v, array[0.5, 0.99])::text, kpi.sketch_agg(v)::text FROM par",
        )
        .unwrap();
        Spi::run(
            "SET LOCAL max_parallel_workers_per_gather = 2; SET LOCAL parallel_setup_cost = 0;
             SET LOCAL parallel_tuple_cost = 0; SET LOCAL min_parallel_table_scan_size = 0",
        )
        .unwrap();
        crate::pg::assert_parallel(
            "SELECT kpi.percentiles(v, array[0.5, 0.99])::text, kpi.sketch_agg(v)::text FROM par",
        );
        let parallel = Spi::get_two::<String, String>(
            "SELECT kpi.percentiles(v, array[0.5, 0.99])::text, kpi.sketch_agg(v)::text FROM par",
        )
        .unwrap();
        assert_eq!(serial, parallel);
    }
}
