//! `kpi.sketch`: mergeable quantile sketch aggregates and accessors.
//! Two-step use: `kpi.approx_percentile(kpi.sketch_agg(value), 0.95)`;
//! stored sketches re-aggregate with `kpi.sketch_agg(sketch)`.

use crate::pg::agg;
use crate::pg::errors::{raise, OrRaise};
use crate::pg::stored::{self, Stored};
use kpi_core::sketch::{Sketch, DEFAULT_ERROR};
use kpi_core::CoreResult;
use std::ffi::{CStr, CString};

use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::prelude::*;
use pgrx::{pg_sys, Internal};

/// Aggregate state: None until the first row fixes the relative error.
#[derive(Clone, Default)]
pub struct SketchState(pub Option<Sketch>);

/// Errors unless a group's rows all ask for the relative error its sketch was built with.
pub fn same_relative_error(func: &str, s: &Sketch, e: f64) {
    if s.requested_error().to_bits() != e.to_bits() {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{func}: relative_error must be the same for every row of a group"),
            None,
            None,
        )
    }
}

fn add_value(st: &mut SketchState, value: Option<f64>, e: f64) {
    let s =
        st.0.get_or_insert_with(|| Sketch::new(e).or_raise("kpi.sketch_agg"));
    same_relative_error("kpi.sketch_agg", s, e);
    if let Some(v) = value {
        if let Err(err) = s.add(v) {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("kpi.sketch_agg: {err}"),
                None,
                Some("filter NaN and infinite values out, e.g. WHERE value < 'Infinity' AND value > '-Infinity'"),
            )
        }
    }
}

crate::fmgr_v1!(pg_finfo_kpi_sketch_trans);

/// Transition for kpi.sketch_agg(value), a plain fmgr function (the hottest path).
///
/// # Safety
/// Called by the executor as the transition function of kpi.sketch_agg(float8).
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn kpi_sketch_trans(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let (mut state, args) = agg::fmgr_args(fcinfo);
    let st = agg::state_mut(&mut state, fcinfo, SketchState::default);
    add_value(st, agg::fmgr_f64(&args[0]), DEFAULT_ERROR);
    agg::fmgr_return(state)
}

#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn sketch_trans_err(
    state: Internal,
    value: Option<f64>,
    relative_error: Option<f64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    let mut state = state;
    // SAFETY: fcinfo is this aggregate call's; the state is created in and owned by its aggregate memory context
    let st = unsafe { agg::state_mut(&mut state, fcinfo, SketchState::default) };
    add_value(st, value, relative_error.unwrap_or(f64::NAN));
    state
}

#[pg_extern(immutable, parallel_safe, requires = ["sketch"], schema = "kpi_internal")]
fn sketch_merge_trans(
    state: Internal,
    sketch: Option<SketchValue>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    let mut state = state;
    // SAFETY: fcinfo is this aggregate call's; the state is created in and owned by its aggregate memory context
    let st = unsafe { agg::state_mut(&mut state, fcinfo, SketchState::default) };
    if let Some(SketchValue(s)) = sketch {
        merge(st, s);
    }
    state
}

fn merge(st: &mut SketchState, s: Sketch) {
    match &mut st.0 {
        None => st.0 = Some(s),
        Some(have) => have.merge(&s).or_raise("kpi.sketch_agg"),
    }
}

impl SketchState {
    /// 0 for no sketch yet, else 1 and the sketch's encoding.
    fn encode(&self) -> Vec<u8> {
        match &self.0 {
            None => vec![0],
            Some(s) => {
                let mut v = vec![1];
                v.extend_from_slice(&s.encode());
                v
            }
        }
    }
    fn decode(bytes: &[u8]) -> kpi_core::CoreResult<SketchState> {
        match bytes.split_first() {
            Some((0, [])) => Ok(SketchState(None)),
            Some((1, rest)) => Ok(SketchState(Some(Sketch::decode(rest)?))),
            _ => Err(kpi_core::CoreError::corrupt("partial state", "unknown tag")),
        }
    }
}

crate::state_support!(
    SketchState,
    "kpi.sketch_agg",
    sketch_combine,
    sketch_serialize,
    sketch_deserialize,
    |x, y| {
        if let Some(s) = y.0 {
            merge(x, s)
        }
    }
);

#[pg_extern(immutable, strict, parallel_safe, requires = ["sketch"], schema = "kpi_internal")]
fn sketch_final(state: Internal) -> Option<SketchValue> {
    // SAFETY: the state was made by this aggregate's own transition function, so it holds that type
    let st = unsafe { agg::get::<SketchState>(&state) }?;
    st.0.clone().filter(|s| s.count() > 0).map(SketchValue)
}

// ---- accessors ---------------------------------------------------------------------

/// Estimated value at quantile p (percentile_disc semantics), within
/// kpi.sketch_error(s) relative error of the exact answer.
#[pg_extern(immutable, strict, parallel_safe, requires = ["sketch"])]
fn approx_percentile(s: SketchValue, p: f64) -> Option<f64> {
    s.0.quantile(p).or_raise("kpi.approx_percentile")
}

#[pg_extern(immutable, strict, parallel_safe, requires = ["sketch"])]
fn approx_percentiles(s: SketchValue, ps: Vec<Option<f64>>) -> Vec<Option<f64>> {
    if ps.is_empty() {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "kpi.approx_percentiles: the array of percentiles is empty".into(),
            None,
            None,
        )
    }
    ps.into_iter()
        .map(|p| p.and_then(|p| s.0.quantile(p).or_raise("kpi.approx_percentiles")))
        .collect()
}

/// Estimated fraction of values <= value.
#[pg_extern(immutable, strict, parallel_safe, requires = ["sketch"])]
fn approx_rank(s: SketchValue, value: f64) -> Option<f64> {
    s.0.rank(value).or_raise("kpi.approx_rank")
}

#[pg_extern(immutable, strict, parallel_safe, requires = ["sketch"])]
fn sketch_count(s: SketchValue) -> i64 {
    s.0.count() as i64
}

#[pg_extern(immutable, strict, parallel_safe, requires = ["sketch"])]
fn sketch_min(s: SketchValue) -> Option<f64> {
    s.0.min()
}

#[pg_extern(immutable, strict, parallel_safe, requires = ["sketch"])]
fn sketch_max(s: SketchValue) -> Option<f64> {
    s.0.max()
}

/// Exact mean (the sum is kept exactly).
#[pg_extern(immutable, strict, parallel_safe, requires = ["sketch"])]
fn sketch_mean(s: SketchValue) -> Option<f64> {
    s.0.mean()
}

/// The relative-error bound in force (grows only if the sketch collapsed).
#[pg_extern(immutable, strict, parallel_safe, requires = ["sketch"])]
fn sketch_error(s: SketchValue) -> f64 {
    s.0.error_bound()
}

// ---- the stored type kpi.sketch: encoding and I/O ----

impl Stored for kpi_core::sketch::Sketch {
    const SQL_NAME: &'static str = "kpi.sketch";
    fn encode(&self) -> Vec<u8> {
        kpi_core::sketch::Sketch::encode(self)
    }
    fn decode(b: &[u8]) -> CoreResult<Self> {
        kpi_core::sketch::Sketch::decode(b)
    }
}

crate::stored_type!(SketchValue, kpi_core::sketch::Sketch, "kpi.sketch");

#[pg_extern(immutable, strict, parallel_safe, sql = false, schema = "kpi_internal")]
fn sketch_in(input: &CStr) -> SketchValue {
    SketchValue(stored::text_in(input))
}
#[pg_extern(immutable, strict, parallel_safe, sql = false, schema = "kpi_internal")]
fn sketch_out(v: SketchValue) -> CString {
    stored::text_out(&v.0)
}
#[pg_extern(immutable, strict, parallel_safe, sql = false, schema = "kpi_internal")]
fn sketch_recv(buf: pgrx::Internal) -> SketchValue {
    SketchValue(stored::recv(buf))
}
#[pg_extern(immutable, strict, parallel_safe, sql = false, schema = "kpi_internal")]
fn sketch_send(v: SketchValue) -> Vec<u8> {
    v.0.encode()
}
