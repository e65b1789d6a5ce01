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
    mut a: Internal,
    b: Internal,
    fcinfo: pg_sys::FunctionCallInfo,
    merge: impl FnOnce(&mut T, T),
) -> Internal {
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
