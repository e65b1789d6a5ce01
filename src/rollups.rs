//! `kpi.rollup_agg(ts, value)`: one aggregate computing everything a summary
//! row holds, returning kpi.rollup_part; and `kpi_internal.rollup_buckets(ts, value,
//! resolution)`, the same per time bucket (kpi_internal.rollup_bucket[]), which the
//! rollups' materialization uses so that the executor groups by metric only.

use crate::pg::agg;
use crate::pg::errors::{raise, OrRaise};
use kpi_core::rollups::{BucketedRollup, RollupState};
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::prelude::*;

/// Errors for an infinite timestamp (PostgreSQL's ±infinity) or a non-finite value.
fn finite(func: &str, micros: i64, v: f64) {
    let ts = if kpi_core::time::is_infinite(micros) {
        f64::INFINITY
    } else {
        0.0
    };
    crate::pg::errors::require_finite(func, "ts and value", &[ts, v]);
}

crate::fmgr_v1!(pg_finfo_kpi_rollup_trans);

/// Transition of kpi.rollup_agg(timestamptz, float8), a plain fmgr function.
///
/// # Safety
/// Called by the executor as the transition function of kpi.rollup_agg.
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn kpi_rollup_trans(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let (mut state, args) = agg::fmgr_args(fcinfo);
    let st = agg::state_mut(&mut state, fcinfo, RollupState::default);
    let ts = (!args[0].isnull).then(|| args[0].value.value() as i64);
    if let (Some(micros), Some(v)) = (ts, agg::fmgr_f64(&args[1])) {
        finite("kpi.rollup_agg", micros, v);
        st.add(kpi_core::time::unix_seconds(micros), v)
            .or_raise("kpi.rollup_agg");
    }
    agg::fmgr_return(state)
}

crate::state_support!(
    RollupState,
    "kpi.rollup_agg",
    rollup_combine,
    rollup_serialize,
    rollup_deserialize,
    |a, b| a.merge(&b).or_raise("kpi.rollup_agg")
);

crate::fmgr_v1!(pg_finfo_kpi_rollup_final);

/// A composite type's descriptor, looked up once per call site and kept in
/// `fn_extra` (final functions run once per group).
unsafe fn cached_desc(
    fcinfo: pg_sys::FunctionCallInfo,
    type_oid: impl FnOnce() -> pg_sys::Oid,
    natts: i32,
) -> pg_sys::TupleDesc {
    let flinfo = (*fcinfo).flinfo;
    if (*flinfo).fn_extra.is_null() {
        let oid = type_oid();
        let desc = pg_sys::lookup_rowtype_tupdesc(oid, -1);
        let old = pg_sys::MemoryContextSwitchTo((*flinfo).fn_mcxt);
        let kept = pg_sys::BlessTupleDesc(pg_sys::CreateTupleDescCopy(desc));
        pg_sys::MemoryContextSwitchTo(old);
        pg_sys::DecrTupleDescRefCount(desc);
        if (*kept).natts != natts {
            error!("pg_kpi: type {oid:?} does not have {natts} attributes");
        }
        (*flinfo).fn_extra = kept.cast();
    }
    (*flinfo).fn_extra.cast()
}

/// The fields of kpi.rollup_part for a state holding at least one value.
fn part_fields(st: &mut RollupState) -> [Option<pg_sys::Datum>; 8] {
    let (count, mean, stddev) = (st.count(), st.mean(), st.stddev());
    let trend = st.trend.encode();
    let sketch = st.sketch();
    let f = |v: Option<f64>| v.and_then(|v| v.into_datum());
    [
        (count as i64).into_datum(),
        f(sketch.sum()),
        f(mean),
        f(sketch.min()),
        f(sketch.max()),
        f(stddev),
        sketch.encode().into_datum(),
        trend.into_datum(),
    ]
}

/// A composite datum of `desc` from its fields.
unsafe fn form_composite(
    desc: pg_sys::TupleDesc,
    fields: &[Option<pg_sys::Datum>],
) -> pg_sys::Datum {
    let mut values: Vec<pg_sys::Datum> = fields
        .iter()
        .map(|d| d.unwrap_or(pg_sys::Datum::from(0usize)))
        .collect();
    let mut nulls: Vec<bool> = fields.iter().map(Option::is_none).collect();
    let tuple = pg_sys::heap_form_tuple(desc, values.as_mut_ptr(), nulls.as_mut_ptr());
    pg_sys::HeapTupleHeaderGetDatum((*tuple).t_data)
}

/// Final function of kpi.rollup_agg (a plain fmgr function, declared in
/// sql/aggregates.sql): the group's kpi.rollup_part, NULL for no rows.
///
/// # Safety
/// Called by the executor as the final function of kpi.rollup_agg.
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn kpi_rollup_final(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let (mut state, _) = agg::fmgr_args(fcinfo);
    let st = match agg::get_mut::<RollupState>(&mut state) {
        Some(st) if st.count() > 0 => st,
        _ => return agg::return_null(fcinfo),
    };
    let desc = cached_desc(fcinfo, || pg_sys::get_fn_expr_rettype((*fcinfo).flinfo), 8);
    form_composite(desc, &part_fields(st))
}

/// Width in microseconds of a resolution given as an interval (no months).
unsafe fn resolution_width(arg: &pg_sys::NullableDatum) -> i64 {
    if arg.isnull {
        raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "kpi_internal.rollup_buckets: resolution must not be NULL".into(),
            None,
            None,
        )
    }
    let iv = &*(arg.value.cast_mut_ptr::<pg_sys::Interval>());
    let width = (iv.day as i64)
        .checked_mul(86_400_000_000)
        .and_then(|d| d.checked_add(iv.time));
    match width {
        Some(w) if iv.month == 0 && w > 0 => w,
        _ => raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "kpi_internal.rollup_buckets: resolution must be a positive interval without months or years"
                .into(),
            None,
            None,
        ),
    }
}

crate::fmgr_v1!(pg_finfo_kpi_rollup_buckets_trans);

/// Transition of kpi_internal.rollup_buckets(timestamptz, float8, interval).
///
/// # Safety
/// Called by the executor as the transition function of kpi_internal.rollup_buckets.
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn kpi_rollup_buckets_trans(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let (mut state, args) = agg::fmgr_args(fcinfo);
    let st = agg::state_mut(&mut state, fcinfo, || {
        BucketedRollup::new(resolution_width(&args[2])).or_raise("kpi_internal.rollup_buckets")
    });
    if resolution_width(&args[2]) != st.width() {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "kpi_internal.rollup_buckets: resolution must be the same for every row of a group"
                .into(),
            None,
            None,
        )
    }
    let ts = (!args[0].isnull).then(|| args[0].value.value() as i64);
    if let (Some(micros), Some(v)) = (ts, agg::fmgr_f64(&args[1])) {
        finite("kpi_internal.rollup_buckets", micros, v);
        st.add(micros, v).or_raise("kpi_internal.rollup_buckets");
    }
    agg::fmgr_return(state)
}

crate::state_support!(
    BucketedRollup,
    "kpi_internal.rollup_buckets",
    rollup_buckets_combine,
    rollup_buckets_serialize,
    rollup_buckets_deserialize,
    |a, b| a.merge(&b).or_raise("kpi_internal.rollup_buckets")
);

crate::fmgr_v1!(pg_finfo_kpi_rollup_buckets_final);

/// Final function of kpi_internal.rollup_buckets: a kpi_internal.rollup_bucket per bucket in
/// time order; NULL when the group had no rows with a value.
///
/// # Safety
/// Called by the executor as the final function of kpi_internal.rollup_buckets.
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn kpi_rollup_buckets_final(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let (mut state, _) = agg::fmgr_args(fcinfo);
    let st = match agg::get_mut::<BucketedRollup>(&mut state) {
        Some(st) if !st.is_empty() => st,
        _ => return agg::return_null(fcinfo),
    };
    let elem = pg_sys::get_element_type(pg_sys::get_fn_expr_rettype((*fcinfo).flinfo));
    let desc = cached_desc(fcinfo, || elem, 9);
    let mut elems: Vec<pg_sys::Datum> = Vec::with_capacity(st.len());
    for (start, part) in st.finish() {
        let mut fields = [None; 9];
        fields[0] = Some(pg_sys::Datum::from(start));
        fields[1..].copy_from_slice(&part_fields(part));
        elems.push(form_composite(desc, &fields));
    }
    let (mut len, mut byval, mut align) = (0i16, false, 0 as std::ffi::c_char);
    pg_sys::get_typlenbyvalalign(elem, &mut len, &mut byval, &mut align);
    let arr = pg_sys::construct_array(
        elems.as_mut_ptr(),
        elems.len() as i32,
        elem,
        len as i32,
        byval,
        align,
    );
    pg_sys::Datum::from(arr)
}
