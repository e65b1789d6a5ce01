//! The stored binary types `kpi.sketch` and `kpi.trend`: varlena values in
//! the compact versioned encoding of `kpi-core`, with text input/output (hex)
//! for dump and restore and send/receive for binary COPY. Decoding a corrupt
//! or truncated value raises SQLSTATE 22P03, never a crash.

use crate::errors::raise;
use kpi_core::codec::{from_hex, to_hex};
use kpi_core::CoreResult;
use pgrx::callconv::{Arg, ArgAbi, BoxRet, FcInfo};
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::prelude::*;
use pgrx::{pg_sys, FromDatum, IntoDatum};
use std::ffi::{CStr, CString};

pub trait Stored: Sized {
    const SQL_NAME: &'static str;
    fn encode(&self) -> Vec<u8>;
    fn decode(b: &[u8]) -> CoreResult<Self>;
}

impl Stored for kpi_core::sketch::Sketch {
    const SQL_NAME: &'static str = "kpi.sketch";
    fn encode(&self) -> Vec<u8> {
        kpi_core::sketch::Sketch::encode(self)
    }
    fn decode(b: &[u8]) -> CoreResult<Self> {
        kpi_core::sketch::Sketch::decode(b)
    }
}

impl Stored for kpi_core::trend::Trend {
    const SQL_NAME: &'static str = "kpi.trend";
    fn encode(&self) -> Vec<u8> {
        kpi_core::trend::Trend::encode(self)
    }
    fn decode(b: &[u8]) -> CoreResult<Self> {
        kpi_core::trend::Trend::decode(b)
    }
}

pub fn decode_or_raise<T: Stored>(b: &[u8]) -> T {
    T::decode(b).unwrap_or_else(|e| {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            format!("invalid {} value: {e}", T::SQL_NAME),
            None,
            None,
        )
    })
}

macro_rules! stored_type {
    ($wrapper:ident, $inner:ty, $sql:literal) => {
        /// SQL-facing wrapper of the stored value.
        pub struct $wrapper(pub $inner);

        impl FromDatum for $wrapper {
            unsafe fn from_polymorphic_datum(
                datum: pg_sys::Datum,
                is_null: bool,
                typoid: pg_sys::Oid,
            ) -> Option<Self> {
                let bytes = <&[u8]>::from_polymorphic_datum(datum, is_null, typoid)?;
                Some($wrapper(decode_or_raise::<$inner>(bytes)))
            }
        }

        impl IntoDatum for $wrapper {
            fn into_datum(self) -> Option<pg_sys::Datum> {
                self.0.encode().into_datum()
            }
            fn type_oid() -> pg_sys::Oid {
                pgrx::wrappers::regtypein($sql)
            }
        }

        unsafe impl BoxRet for $wrapper {
            unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> pgrx::datum::Datum<'fcx> {
                match self.into_datum() {
                    None => fcinfo.return_null(),
                    Some(d) => unsafe { fcinfo.return_raw_datum(d) },
                }
            }
        }

        unsafe impl<'fcx> ArgAbi<'fcx> for $wrapper {
            unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
                let index = arg.index();
                unsafe {
                    arg.unbox_arg_using_from_datum()
                        .unwrap_or_else(|| panic!("argument {index} must not be null"))
                }
            }
        }

        pgrx::pgrx_sql_entity_graph::metadata::impl_sql_translatable!($wrapper, $sql);
    };
}

stored_type!(SketchValue, kpi_core::sketch::Sketch, "kpi.sketch");
stored_type!(TrendValue, kpi_core::trend::Trend, "kpi.trend");

fn text_in<T: Stored>(input: &CStr) -> T {
    let s = input.to_str().unwrap_or_else(|_| {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
            format!("invalid input syntax for type {}: not UTF-8", T::SQL_NAME),
            None,
            None,
        )
    });
    let bytes = from_hex(T::SQL_NAME, s).unwrap_or_else(|e| {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
            format!("invalid input syntax for type {}: {e}", T::SQL_NAME),
            None,
            Some("the text form is the hex encoding written by the type's output function"),
        )
    });
    decode_or_raise::<T>(&bytes)
}

fn text_out<T: Stored>(v: &T) -> CString {
    CString::new(to_hex(&v.encode())).unwrap_or_default()
}

fn recv<T: Stored>(buf: pgrx::Internal) -> T {
    // SAFETY: a receive function's argument is a StringInfo
    let si = buf
        .unwrap()
        .map(|d| d.cast_mut_ptr::<pg_sys::StringInfoData>())
        .unwrap_or_else(|| error!("{}: NULL receive buffer", T::SQL_NAME));
    let bytes = unsafe {
        let si = &mut *si;
        let rest = (si.len - si.cursor).max(0) as usize;
        let b = std::slice::from_raw_parts((si.data as *const u8).add(si.cursor as usize), rest);
        si.cursor = si.len;
        b.to_vec()
    };
    decode_or_raise::<T>(&bytes)
}

#[pg_extern(immutable, strict, parallel_safe, sql = false)]
fn sketch_in(input: &CStr) -> SketchValue {
    SketchValue(text_in(input))
}
#[pg_extern(immutable, strict, parallel_safe, sql = false)]
fn sketch_out(v: SketchValue) -> CString {
    text_out(&v.0)
}
#[pg_extern(immutable, strict, parallel_safe, sql = false)]
fn sketch_recv(buf: pgrx::Internal) -> SketchValue {
    SketchValue(recv(buf))
}
#[pg_extern(immutable, strict, parallel_safe, sql = false)]
fn sketch_send(v: SketchValue) -> Vec<u8> {
    v.0.encode()
}
#[pg_extern(immutable, strict, parallel_safe, sql = false)]
fn trend_in(input: &CStr) -> TrendValue {
    TrendValue(text_in(input))
}
#[pg_extern(immutable, strict, parallel_safe, sql = false)]
fn trend_out(v: TrendValue) -> CString {
    text_out(&v.0)
}
#[pg_extern(immutable, strict, parallel_safe, sql = false)]
fn trend_recv(buf: pgrx::Internal) -> TrendValue {
    TrendValue(recv(buf))
}
#[pg_extern(immutable, strict, parallel_safe, sql = false)]
fn trend_send(v: TrendValue) -> Vec<u8> {
    v.0.encode()
}
