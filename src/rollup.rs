//! `kpi.rollup_agg(ts, value)`: one aggregate computing everything a summary
//! row holds (used by the rollups' materialization), returning kpi.rollup_part.

use crate::agg;
use crate::errors::{raise, OrRaise};
use crate::types::{SketchValue, TrendValue};
use kpi_core::rollup::RollupState;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::prelude::*;
use pgrx::{pg_sys, Internal};

const EPOCH_2000: f64 = 946_684_800.0;

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
        let x = micros as f64 / 1e6 + EPOCH_2000;
        if micros == i64::MAX || micros == i64::MIN || !v.is_finite() {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                "kpi.rollup_agg: ts and value must be finite".into(),
                None,
                Some("filter NaN and infinite values (and infinite timestamps) out"),
            )
        }
        st.add(x, v).or_raise("kpi.rollup_agg");
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

#[pg_extern(immutable, strict, parallel_safe, requires = ["types"])]
fn rollup_final(state: Internal) -> Option<pgrx::composite_type!('static, "kpi.rollup_part")> {
    let st = unsafe { agg::get::<RollupState>(&state) }?;
    if st.count() == 0 {
        return None;
    }
    let mut t = PgHeapTuple::new_composite_type("kpi.rollup_part")
        .unwrap_or_else(|e| error!("pg_kpi: type kpi.rollup_part is missing: {e}"));
    let r = (|| -> Result<(), pgrx::datum::TryFromDatumError> {
        t.set_by_name("count", st.count() as i64)?;
        t.set_by_name("sum", st.sketch.sum())?;
        t.set_by_name("avg", st.mean())?;
        t.set_by_name("min", st.sketch.min())?;
        t.set_by_name("max", st.sketch.max())?;
        t.set_by_name("stddev", st.stddev())?;
        t.set_by_name("sketch", SketchValue(st.sketch.clone()))?;
        t.set_by_name("trend", TrendValue(st.trend))?;
        Ok(())
    })();
    if let Err(e) = r {
        error!("pg_kpi: building kpi.rollup_part: {e}");
    }
    Some(t)
}
