//! jsonb arguments that never panic. pgrx's `JsonB` parses every argument
//! with serde_json while the call is set up, so a value PostgreSQL accepts
//! but serde_json does not (a number beyond f64 such as `1e1000`, nesting
//! deeper than 128 levels) ended as an internal error (XX000). `JsonbArg`
//! keeps the datum as it came, checks the root's kind from the binary
//! header, passes the datum on untouched, and parses only when asked, with
//! a specific SQLSTATE and the argument's name when parsing fails.

use crate::pg::errors::{code, raise};
use pgrx::callconv::ArgAbi;
use pgrx::nullable::Nullable;
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable, TypeOrigin,
};
use pgrx::prelude::*;
use pgrx::{direct_function_call, pg_sys};

/// A jsonb argument, detoasted, valid for the duration of the call.
#[derive(Clone, Copy)]
pub struct JsonbArg(pg_sys::Datum);

/// The root container's flags (JB_FSCALAR, JB_FOBJECT, JB_FARRAY).
const JB_FSCALAR: u32 = 0x1000_0000;
const JB_FOBJECT: u32 = 0x2000_0000;

impl JsonbArg {
    fn header(&self) -> u32 {
        // SAFETY: the datum is a detoasted jsonb varlena (from_datum); its
        // first 4 bytes after the varlena header are the root's header
        unsafe {
            let p = self.0.cast_mut_ptr::<u8>().add(pg_sys::VARHDRSZ);
            std::ptr::read_unaligned(p as *const u32)
        }
    }

    /// True when the root is a JSON object.
    pub fn is_object(&self) -> bool {
        self.header() & JB_FOBJECT != 0 && self.header() & JB_FSCALAR == 0
    }

    /// jsonb_typeof() of the root: object, array, string, number, boolean, null.
    pub fn type_name(&self) -> String {
        // SAFETY: jsonb_typeof takes one jsonb and returns text
        unsafe { direct_function_call::<String>(pg_sys::jsonb_typeof, &[Some(self.0)]) }
            .unwrap_or_default()
    }

    /// The value parsed with serde_json; a value serde_json cannot hold
    /// raises 22003 (a number beyond float8) or 54001 (nesting deeper than
    /// 128 levels), naming `func` and `arg`.
    pub fn parse(&self, func: &str, arg: &str) -> serde_json::Value {
        // SAFETY: jsonb_out takes one jsonb and returns a palloc'd cstring
        let text =
            unsafe { direct_function_call::<&core::ffi::CStr>(pg_sys::jsonb_out, &[Some(self.0)]) }
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default();
        serde_json::from_str(&text).unwrap_or_else(|e| {
            let what = e.to_string();
            if what.contains("recursion limit") {
                raise(
                    code("54001"),
                    format!("{func}: \"{arg}\" is nested too deeply (more than 128 levels)"),
                    None,
                    Some("Flatten the JSON value."),
                )
            } else if what.contains("number out of range") {
                raise(
                    code("22003"),
                    format!("{func}: \"{arg}\" holds a number outside the float8 range"),
                    Some(what),
                    Some("Numbers must lie within ±1.8e308; send larger ones as strings."),
                )
            } else {
                raise(
                    code("22P02"),
                    format!("{func}: \"{arg}\" cannot be read: {what}"),
                    None,
                    None,
                )
            }
        })
    }
}

impl FromDatum for JsonbArg {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<JsonbArg> {
        if is_null {
            return None;
        }
        let detoasted = pg_sys::pg_detoast_datum(datum.cast_mut_ptr());
        Some(JsonbArg(pg_sys::Datum::from(detoasted)))
    }
}

impl IntoDatum for JsonbArg {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

unsafe impl SqlTranslatable for JsonbArg {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(JsonbArg);
    const TYPE_ORIGIN: TypeOrigin = TypeOrigin::External;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> = Ok(SqlMappingRef::literal("jsonb"));
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> =
        Ok(ReturnsRef::One(SqlMappingRef::literal("jsonb")));
}

unsafe impl<'fcx> ArgAbi<'fcx> for JsonbArg {
    unsafe fn unbox_arg_unchecked(arg: pgrx::callconv::Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        unsafe {
            arg.unbox_arg_using_from_datum()
                .unwrap_or_else(|| panic!("argument {index} must not be null"))
        }
    }

    unsafe fn unbox_nullable_arg(arg: pgrx::callconv::Arg<'_, 'fcx>) -> Nullable<Self> {
        unsafe { arg.unbox_arg_using_from_datum().into() }
    }
}
