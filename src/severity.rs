//! Severity bands, breach ratios, health scores and grades.
//!
//! `kpi.severity` and the `kpi.health_score` transition are plain fmgr
//! functions (declared in sql/alerts.sql and sql/aggregates.sql) because they
//! return or take the SQL enum `kpi.severity_level`, whose label OIDs are
//! looked up once per call site and cached in `fn_extra`.

use crate::pg::agg;
use crate::pg::errors::{code, raise, OrRaise};
use kpi_core::severity::thresholds::{self, Direction};
use kpi_core::severity::{self as sev, Points, Severity};

use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::PgLogLevel;
use pgrx::{pg_sys, Internal};

const ENUM: &str = "kpi.severity_level";

thread_local! {
    /// The last enum type seen and its label OIDs (a backend is single-threaded).
    static LABELS: std::cell::Cell<Option<(pg_sys::Oid, [pg_sys::Datum; 5])>> =
        const { std::cell::Cell::new(None) };
}

/// The OID of `label` in enum type `typoid`.
unsafe fn label_oid(typoid: pg_sys::Oid, label: &str) -> pg_sys::Datum {
    let c = std::ffi::CString::new(label).unwrap_or_default();
    let tup = pg_sys::SearchSysCache2(
        pg_sys::SysCacheIdentifier::ENUMTYPOIDNAME as i32,
        pg_sys::Datum::from(typoid),
        pg_sys::Datum::from(c.as_ptr()),
    );
    if tup.is_null() {
        raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("{ENUM} has no label '{label}'"),
            None,
            Some("the type was altered; reinstall the extension"),
        )
    }
    let en = pg_sys::GETSTRUCT(tup) as pg_sys::Form_pg_enum;
    let oid = (*en).oid;
    pg_sys::ReleaseSysCache(tup);
    pg_sys::Datum::from(oid)
}

/// The label OIDs of kpi.severity_level in band order: cached per call site
/// in `fn_extra`, and per backend keyed by the type's OID (taken from the
/// call expression: the return type, or argument `arg`), so a new
/// executor run costs no catalog lookup.
///
/// # Safety
/// `fcinfo` must be a valid function call.
unsafe fn label_oids<'a>(
    fcinfo: pg_sys::FunctionCallInfo,
    arg: Option<i32>,
) -> &'a [pg_sys::Datum; 5] {
    let flinfo = (*fcinfo).flinfo;
    if (*flinfo).fn_extra.is_null() {
        let mut typoid = match arg {
            None => pg_sys::get_fn_expr_rettype(flinfo),
            Some(i) => pg_sys::get_fn_expr_argtype(flinfo, i),
        };
        if typoid == pg_sys::InvalidOid {
            typoid = pgrx::regtypein(ENUM);
        }
        let oids = match LABELS.get() {
            Some((t, oids)) if t == typoid => oids,
            _ => {
                let oids: [pg_sys::Datum; 5] =
                    std::array::from_fn(|i| label_oid(typoid, Severity::LABELS[i]));
                LABELS.set(Some((typoid, oids)));
                oids
            }
        };
        let p = pg_sys::MemoryContextAlloc((*flinfo).fn_mcxt, std::mem::size_of_val(&oids))
            as *mut [pg_sys::Datum; 5];
        p.write(oids);
        (*flinfo).fn_extra = p.cast();
    }
    &*((*flinfo).fn_extra as *const [pg_sys::Datum; 5])
}

/// The band of an enum datum.
unsafe fn severity_of(fcinfo: pg_sys::FunctionCallInfo, arg: i32, d: pg_sys::Datum) -> Severity {
    let oids = label_oids(fcinfo, Some(arg));
    match oids.iter().position(|o| *o == d) {
        Some(i) => Severity::from_index(i).unwrap_or(Severity::Emergency),
        None => raise(
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            format!("invalid value for {ENUM}: {}", d.value()),
            None,
            None,
        ),
    }
}

unsafe fn text_arg<'a>(a: &pg_sys::NullableDatum) -> Option<&'a str> {
    if a.isnull {
        None
    } else {
        <&str as FromDatum>::from_datum(a.value, false)
    }
}

crate::fmgr_v1!(pg_finfo_kpi_severity);

/// kpi.severity(value, optimal, good, warning, critical, direction) -> kpi.severity_level.
///
/// # Safety
/// Called by the executor with the six arguments declared in sql/alerts.sql.
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn kpi_severity(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let args = (*fcinfo).args.as_slice((*fcinfo).nargs as usize);
    let direction = match text_arg(&args[5]) {
        Some(d) => d,
        None => raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "kpi.severity: direction must not be NULL".into(),
            None,
            Some("use 'lower_is_better' or 'higher_is_better'"),
        ),
    };
    let Some(dir) = Direction::parse(direction) else {
        let (s, m) = thresholds::unknown_direction("kpi.severity", direction);
        raise(code(s), m, None, None)
    };
    let t = [
        agg::fmgr_f64(&args[1]),
        agg::fmgr_f64(&args[2]),
        agg::fmgr_f64(&args[3]),
        agg::fmgr_f64(&args[4]),
    ];
    if let Some(p) = thresholds::problem(dir, t) {
        let (s, m) = thresholds::describe("kpi.severity", p);
        raise(code(s), m, None, None)
    }
    let Some(value) = agg::fmgr_f64(&args[0]) else {
        return agg::return_null(fcinfo);
    };
    if value.is_nan() {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "kpi.severity: value must not be NaN".into(),
            None,
            None,
        )
    }
    match sev::classify(value, dir, t) {
        Some(s) => label_oids(fcinfo, None)[s as usize],
        None => agg::return_null(fcinfo),
    }
}

thread_local! {
    /// Metric names kpi.severity(metric, value) has already warned about.
    static WARNED: std::cell::RefCell<std::collections::HashSet<String>> =
        std::cell::RefCell::new(std::collections::HashSet::new());
}

/// NOTICE, once per session and metric name, that kpi.severity(metric, value)
/// found no active definition (usually a typo); always false.
#[pg_extern(
    stable,
    strict,
    parallel_safe,
    schema = "kpi_internal",
    name = "note_unknown_metric"
)]
fn _note_unknown_metric(metric: &str) -> bool {
    let first = WARNED.with_borrow_mut(|w| w.len() < 1000 && w.insert(metric.to_string()));
    if first {
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION,
            format!("kpi.severity: metric \"{metric}\" has no active definition in kpi.metric_definitions; the result is NULL"),
            "pg_kpi",
        )
        .set_hint("Check the name for a typo, or define the metric. This notice is shown once per metric and session.")
        .report(PgLogLevel::NOTICE);
    }
    false
}

/// 'low', 'medium', 'high' or 'critical' by value / threshold; NULL when value <= threshold.
#[pg_extern(immutable, strict, parallel_safe)]
fn breach_severity(value: f64, threshold: f64) -> Option<&'static str> {
    sev::breach_severity(value, threshold).or_raise("kpi.breach_severity")
}

/// 'excellent', 'good', 'warning', 'critical' or 'emergency'; 'unknown' for NULL (no data).
#[pg_extern(immutable, parallel_safe)]
fn health_status(score: Option<f64>) -> &'static str {
    sev::health_status(score).or_raise("kpi.health_status")
}

/// Letter grade A..F from the percentage of operations meeting their target.
#[pg_extern(immutable, strict, parallel_safe)]
fn grade(pct_meeting_target: f64) -> &'static str {
    sev::grade(pct_meeting_target).or_raise("kpi.grade")
}

/// Load-test grade A..F from error rate and average / expected response time.
#[pg_extern(immutable, strict, parallel_safe)]
fn performance_grade(
    avg_response_ms: f64,
    error_rate_pct: f64,
    expected_response_ms: f64,
) -> &'static str {
    sev::performance_grade(avg_response_ms, error_rate_pct, expected_response_ms)
        .or_raise("kpi.performance_grade")
}

// ---- aggregates over points: kpi.health_score, kpi.overall_grade ---------------------

crate::fmgr_v1!(pg_finfo_kpi_health_score_trans);

/// Transition of kpi.health_score(kpi.severity_level); NULL inputs are skipped.
///
/// # Safety
/// Called by the executor as the transition function of kpi.health_score.
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn kpi_health_score_trans(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let (mut state, args) = agg::fmgr_args(fcinfo);
    let st = agg::state_mut(&mut state, fcinfo, Points::default);
    if !args[0].isnull {
        st.add(severity_of(fcinfo, 1, args[0].value).points());
    }
    agg::fmgr_return(state)
}

#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn overall_grade_trans(
    state: Internal,
    grade: Option<&str>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    let mut state = state;
    // SAFETY: fcinfo is this aggregate call's; the state is created in and owned by its aggregate memory context
    let st = unsafe { agg::state_mut(&mut state, fcinfo, Points::default) };
    if let Some(g) = grade {
        st.add(sev::grade_points(g).or_raise("kpi.overall_grade"));
    }
    state
}

crate::state_support!(
    Points,
    "kpi.health_score",
    points_combine,
    points_serialize,
    points_deserialize,
    |x, y| x.merge(&y)
);

#[pg_extern(immutable, strict, parallel_safe, schema = "kpi_internal")]
fn health_score_final(state: Internal) -> Option<f64> {
    // SAFETY: the state was made by this aggregate's own transition function, so it holds that type
    unsafe { agg::get::<Points>(&state) }?.mean()
}

#[pg_extern(immutable, strict, parallel_safe, schema = "kpi_internal")]
fn overall_grade_final(state: Internal) -> Option<&'static str> {
    // SAFETY: the state was made by this aggregate's own transition function, so it holds that type
    unsafe { agg::get::<Points>(&state) }?
        .mean()
        .map(sev::grade_from_mean)
}

// ---- band edges and points, for the SQL side (computed here only) ----

fn thresholds_of(
    optimal: Option<f64>,
    good: Option<f64>,
    warning: Option<f64>,
    critical: Option<f64>,
) -> [Option<f64>; 4] {
    [optimal, good, warning, critical]
}

/// The edge beyond which a value is warning or worse: the nearest defined of
/// good and optimal, else everything (±Infinity); NULL without thresholds.
#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn breach_edge(
    optimal: Option<f64>,
    good: Option<f64>,
    warning: Option<f64>,
    critical: Option<f64>,
    direction: Option<&str>,
) -> Option<f64> {
    let dir = Direction::parse(direction.unwrap_or("lower_is_better"))?;
    sev::breach_edge(dir, thresholds_of(optimal, good, warning, critical))
}

/// The threshold a value crossed to land in `severity` (NULL for optimal).
#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn crossed_threshold(
    severity: Option<&str>,
    optimal: Option<f64>,
    good: Option<f64>,
    warning: Option<f64>,
    critical: Option<f64>,
) -> Option<f64> {
    let sev = Severity::LABELS
        .iter()
        .position(|l| Some(*l) == severity)
        .and_then(Severity::from_index)?;
    sev::crossed_threshold(sev, thresholds_of(optimal, good, warning, critical))
}

/// Health points of a band: 100, 80, 60, 40, 0 (the only place they exist).
#[pg_extern(immutable, strict, parallel_safe, schema = "kpi_internal")]
fn severity_points(level: &str) -> Option<i32> {
    Severity::LABELS
        .iter()
        .position(|l| *l == level)
        .and_then(Severity::from_index)
        .map(|s| s.points() as i32)
}

// ---- kpi.metric_definitions: the trigger's validation ----

/// Raises an error when a definition's direction is unknown or its
/// thresholds are not monotone in that direction; otherwise does nothing.
#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn check_thresholds(
    metric: Option<&str>,
    direction: Option<&str>,
    optimal: Option<f64>,
    good: Option<f64>,
    warning: Option<f64>,
    critical: Option<f64>,
) {
    // a NULL metric is left to the table's NOT NULL constraint (23502)
    let Some(metric) = metric else { return };
    let direction = direction.unwrap_or("lower_is_better");
    if let Err((state, msg)) =
        thresholds::check(metric, direction, [optimal, good, warning, critical])
    {
        let hint = if state == "22023" && Direction::parse(direction).is_none() {
            "direction is lower_is_better or higher_is_better"
        } else {
            "for lower_is_better metrics use optimal <= good <= warning <= critical; for higher_is_better the reverse"
        };
        raise(code(state), msg, None, Some(hint))
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn text(q: &str) -> Option<String> {
        Spi::get_one::<String>(q).unwrap()
    }

    #[pg_test]
    fn five_bands_both_directions() {
        let lower = "SELECT string_agg(kpi.severity(v, 100, 200, 500, 1000)::text, ',' ORDER BY v)
                     FROM unnest(array[0, 100, 100.5, 200, 500, 1000, 1000.5]::float8[]) v";
        assert_eq!(
            text(lower).unwrap(),
            "optimal,optimal,good,good,warning,critical,emergency"
        );
        let higher = "SELECT string_agg(kpi.severity(v, 99.99, 99.95, 99.90, 99.80, 'higher_is_better')::text, ',' ORDER BY v DESC)
                      FROM unnest(array[99.999, 99.99, 99.95, 99.9, 99.8, 99.79]::float8[]) v";
        assert_eq!(
            text(higher).unwrap(),
            "optimal,optimal,good,warning,critical,emergency"
        );
    }

    #[pg_test]
    fn severity_from_definitions() {
        Spi::run(
            "INSERT INTO kpi.metric_definitions (metric, direction, optimal, good, warning, critical, active)
             VALUES ('system_availability', 'higher_is_better', 99.99, 99.95, 99.90, 99.80, true),
                    ('old', 'lower_is_better', 1, 2, 3, 4, false)",
        )
        .unwrap();
        assert_eq!(
            text("SELECT kpi.severity('system_availability', 99.999)::text").as_deref(),
            Some("optimal")
        );
        assert_eq!(text("SELECT kpi.severity('old', 1)::text"), None);
        assert_eq!(text("SELECT kpi.severity('nope', 1)::text"), None);
    }

    #[pg_test]
    fn health_score_is_the_mean_of_points_and_parallel_safe() {
        let q = "SELECT kpi.health_score(s) FROM unnest(array['optimal','good','warning','critical','emergency',NULL]::kpi.severity_level[]) s";
        assert_eq!(Spi::get_one::<f64>(q).unwrap(), Some(56.0));
        assert_eq!(
            Spi::get_one::<f64>(
                "SELECT kpi.health_score(s) FROM unnest('{}'::kpi.severity_level[]) s"
            )
            .unwrap(),
            None
        );
        Spi::run(
            "CREATE TABLE sev AS SELECT (array['optimal','good','warning','critical','emergency']::kpi.severity_level[])[1 + g % 5] AS s,
                    (array['A','B','C','D','F'])[1 + g % 3] AS g FROM generate_series(1, 200000) g;
             ANALYZE sev;
             SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0;
             SET LOCAL min_parallel_table_scan_size = 0; SET LOCAL max_parallel_workers_per_gather = 2;",
        )
        .unwrap();
        crate::pg::assert_parallel("SELECT kpi.health_score(s), kpi.overall_grade(g) FROM sev");
        let par = Spi::get_two::<f64, String>(
            "SELECT kpi.health_score(s), kpi.overall_grade(g) FROM sev",
        )
        .unwrap();
        Spi::run("SET LOCAL max_parallel_workers_per_gather = 0").unwrap();
        let ser = Spi::get_two::<f64, String>(
            "SELECT kpi.health_score(s), kpi.overall_grade(g) FROM sev",
        )
        .unwrap();
        assert_eq!(par, ser);
        // 100, 80, 60, 40, 0 equally often; A, B, C equally often: mean 3
        assert_eq!(ser, (Some(56.0), Some("B".to_string())));
    }

    #[pg_test(
        error = "kpi.severity: thresholds out of order for a higher_is_better metric: good (99.99) is above optimal (99.9)"
    )]
    fn severity_rejects_out_of_order() {
        Spi::run("SELECT kpi.severity(1, 99.9, 99.99, 99, 98, 'higher_is_better')").unwrap();
    }

    #[pg_test(error = "kpi.overall_grade: grade: expected one of A, B, C, D, F, got 'E'")]
    fn overall_grade_rejects_unknown_letters() {
        Spi::run("SELECT kpi.overall_grade(g) FROM unnest(array['A','E']) g").unwrap();
    }

    #[pg_test]
    fn accepts_both_directions() {
        Spi::run(
            "INSERT INTO kpi.metric_definitions (metric, direction, optimal, good, warning, critical)
             VALUES ('api_response_time', 'lower_is_better', 100, 200, 500, 1000),
                    ('system_availability', 'higher_is_better', 99.99, 99.95, 99.90, 99.80),
                    ('throughput_rps', 'higher_is_better', NULL, 1000, 500, 100)",
        )
        .unwrap();
        let n = Spi::get_one::<i64>("SELECT count(*) FROM kpi.metric_definitions").unwrap();
        assert_eq!(n, Some(3));
    }

    #[pg_test(
        error = "metric \"api\": thresholds out of order for a lower_is_better metric: critical (400) is below warning (500)"
    )]
    fn rejects_out_of_order() {
        Spi::run(
            "INSERT INTO kpi.metric_definitions (metric, optimal, good, warning, critical)
             VALUES ('api', 100, 200, 500, 400)",
        )
        .unwrap();
    }

    #[pg_test(
        error = "metric \"api\": thresholds out of order for a higher_is_better metric: good (99.99) is above optimal (99.9)"
    )]
    fn rejects_out_of_order_on_update() {
        Spi::run(
            "INSERT INTO kpi.metric_definitions (metric, direction, optimal, good)
             VALUES ('api', 'higher_is_better', 99.9, 99.5)",
        )
        .unwrap();
        Spi::run("UPDATE kpi.metric_definitions SET good = 99.99 WHERE metric = 'api'").unwrap();
    }
}
