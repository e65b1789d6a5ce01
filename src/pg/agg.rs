//! Aggregate plumbing shared by every aggregate: transition states live in
//! the aggregate's memory context (dropped when it is reset, also on error),
//! combine never modifies its second argument, and deserialized states are
//! owned by the current memory context.

use pgrx::prelude::*;
use pgrx::{pg_sys, Internal, PgMemoryContexts};

/// The state behind `state`, created with `init` in the aggregate memory
/// context on the first call.
///
/// # Safety
/// `state` must be NULL or a state of type `T` made by this module.
pub unsafe fn state_mut<T>(
    state: &mut Internal,
    fcinfo: pg_sys::FunctionCallInfo,
    init: impl FnOnce() -> T,
) -> &mut T {
    if !state.initialized() {
        let mut ctx: pg_sys::MemoryContext = std::ptr::null_mut();
        if pg_sys::AggCheckCallContext(fcinfo, &mut ctx) == 0 || ctx.is_null() {
            error!("pg_kpi: aggregate support function called outside an aggregate");
        }
        let ptr = PgMemoryContexts::For(ctx).leak_and_drop_on_delete(init());
        *state = Internal::from(Some(pg_sys::Datum::from(ptr)));
    }
    state
        .get_mut::<T>()
        .unwrap_or_else(|| error!("pg_kpi: missing aggregate state"))
}

/// Combine function body: merges a copy of `b` into `a` (creating `a` when NULL).
///
/// # Safety
/// Both states must be NULL or states of type `T`.
pub unsafe fn combine<T: Clone>(
    a: Option<Internal>,
    b: Option<Internal>,
    fcinfo: pg_sys::FunctionCallInfo,
    merge: impl FnOnce(&mut T, T),
) -> Internal {
    let (mut a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
    let other = match b.get::<T>() {
        None => return a,
        Some(o) => o.clone(),
    };
    if !a.initialized() {
        state_mut(&mut a, fcinfo, || other);
        return a;
    }
    if let Some(s) = a.get_mut::<T>() {
        merge(s, other);
    }
    a
}

/// A deserialized state, owned by the current memory context.
pub fn owned<T>(v: T) -> Internal {
    Internal::new(v)
}

/// # Safety
/// `state` must be NULL or a state of type `T`.
pub unsafe fn get<T>(state: &Internal) -> Option<&T> {
    state.get::<T>()
}

/// # Safety
/// `state` must be NULL or a state of type `T`.
pub unsafe fn get_mut<T>(state: &mut Internal) -> Option<&mut T> {
    state.get_mut::<T>()
}

/// Declares the fmgr V1 info symbol for a plain `extern "C-unwind"` function,
/// used for the hottest transition functions (declared in sql/aggregates.sql),
/// where the generic wrapper cost more per row than the work itself.
#[macro_export]
macro_rules! fmgr_v1 {
    ($finfo:ident) => {
        #[no_mangle]
        #[doc(hidden)]
        pub extern "C" fn $finfo() -> &'static ::pgrx::pg_sys::Pg_finfo_record {
            const V1: ::pgrx::pg_sys::Pg_finfo_record =
                ::pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }
    };
}

/// The transition state (argument 0) and the other arguments of a plain fmgr call.
///
/// # Safety
/// `fcinfo` must be a valid call of an aggregate transition function.
pub unsafe fn fmgr_args<'a>(
    fcinfo: pg_sys::FunctionCallInfo,
) -> (Internal, &'a [pg_sys::NullableDatum]) {
    let args = (*fcinfo).args.as_slice((*fcinfo).nargs as usize);
    let state = Internal::from((!args[0].isnull).then_some(args[0].value));
    (state, &args[1..])
}

/// A float8 argument of a plain fmgr call (float8 is passed by value).
pub fn fmgr_f64(a: &pg_sys::NullableDatum) -> Option<f64> {
    (!a.isnull).then(|| f64::from_bits(a.value.value() as u64))
}

/// Returns the (always initialized) transition state from a plain fmgr call.
pub fn fmgr_return(state: Internal) -> pg_sys::Datum {
    state
        .unwrap()
        .unwrap_or_else(|| error!("pg_kpi: missing aggregate state"))
}

/// Declares the combine, serialize and deserialize functions of an aggregate
/// whose state type `$ty` has `encode(&self) -> Vec<u8>` and
/// `decode(&[u8]) -> CoreResult<$ty>`; `$merge` folds a copy of the second
/// state into the first; errors are reported as from `$func`.
#[macro_export]
macro_rules! state_support {
    ($ty:ty, $func:literal, $combine:ident, $serialize:ident, $deserialize:ident, $merge:expr) => {
        #[::pgrx::pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
        fn $combine(
            a: Option<::pgrx::Internal>,
            b: Option<::pgrx::Internal>,
            fcinfo: ::pgrx::pg_sys::FunctionCallInfo,
        ) -> ::pgrx::Internal {
            let merge: fn(&mut $ty, $ty) = $merge;
            // SAFETY: fcinfo is this combine call's; both states were made by the aggregate's transition function
            unsafe { $crate::pg::agg::combine::<$ty>(a, b, fcinfo, merge) }
        }

        #[::pgrx::pg_extern(immutable, strict, parallel_safe, schema = "kpi_internal")]
        fn $serialize(state: ::pgrx::Internal) -> Vec<u8> {
            // SAFETY: the state was made by this aggregate's own transition function, so it holds that type
            unsafe { $crate::pg::agg::get::<$ty>(&state) }
                .map(|s| s.encode())
                .unwrap_or_default()
        }

        #[::pgrx::pg_extern(immutable, strict, parallel_safe, schema = "kpi_internal")]
        fn $deserialize(bytes: &[u8], _internal: ::pgrx::Internal) -> ::pgrx::Internal {
            use $crate::pg::errors::OrRaise;
            $crate::pg::agg::owned(<$ty>::decode(bytes).or_raise($func))
        }
    };
}

/// Returns SQL NULL from a plain fmgr function.
///
/// # Safety
/// `fcinfo` must be the call's valid FunctionCallInfo.
pub unsafe fn return_null(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: the caller passes its own valid fcinfo
    unsafe { (*fcinfo).isnull = true };
    pg_sys::Datum::from(0usize)
}
