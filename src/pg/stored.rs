//! Stored binary types (`kpi.sketch`, `kpi.trend`): varlena values in the
//! compact versioned encoding of `kpi-core`, with text input/output (hex) for
//! dump and restore and send/receive for binary COPY. Decoding a corrupt or
//! truncated value raises SQLSTATE 22P03, never a crash. Each feature
//! declares its type with `stored_type!` and its four I/O functions with the
//! helpers here.

use crate::pg::errors::raise;
use kpi_core::codec::{from_hex, to_hex};
use kpi_core::CoreResult;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::prelude::*;
use std::ffi::{CStr, CString};

pub trait Stored: Sized {
    const SQL_NAME: &'static str;
    fn encode(&self) -> Vec<u8>;
    fn decode(b: &[u8]) -> CoreResult<Self>;
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

#[macro_export]
macro_rules! stored_type {
    ($wrapper:ident, $inner:ty, $sql:literal) => {
        /// SQL-facing wrapper of the stored value.
        pub struct $wrapper(pub $inner);

        impl ::pgrx::FromDatum for $wrapper {
            unsafe fn from_polymorphic_datum(
                datum: ::pgrx::pg_sys::Datum,
                is_null: bool,
                typoid: ::pgrx::pg_sys::Oid,
            ) -> Option<Self> {
                let bytes = <&[u8]>::from_polymorphic_datum(datum, is_null, typoid)?;
                Some($wrapper($crate::pg::stored::decode_or_raise::<$inner>(
                    bytes,
                )))
            }
        }

        impl ::pgrx::IntoDatum for $wrapper {
            fn into_datum(self) -> Option<::pgrx::pg_sys::Datum> {
                $crate::pg::stored::Stored::encode(&self.0).into_datum()
            }
            fn type_oid() -> ::pgrx::pg_sys::Oid {
                pgrx::wrappers::regtypein($sql)
            }
        }

        unsafe impl ::pgrx::callconv::BoxRet for $wrapper {
            unsafe fn box_into<'fcx>(
                self,
                fcinfo: &mut ::pgrx::callconv::FcInfo<'fcx>,
            ) -> ::pgrx::datum::Datum<'fcx> {
                use ::pgrx::IntoDatum;
                match self.into_datum() {
                    None => fcinfo.return_null(),
                    // SAFETY: the datum was just made by into_datum for this function's return type
                    Some(d) => unsafe { fcinfo.return_raw_datum(d) },
                }
            }
        }

        unsafe impl<'fcx> ::pgrx::callconv::ArgAbi<'fcx> for $wrapper {
            unsafe fn unbox_arg_unchecked(arg: ::pgrx::callconv::Arg<'_, 'fcx>) -> Self {
                let index = arg.index();
                // SAFETY: the argument is of this stored type, as the SQL declaration says
                unsafe {
                    arg.unbox_arg_using_from_datum()
                        .unwrap_or_else(|| panic!("argument {index} must not be null"))
                }
            }
        }

        ::pgrx::pgrx_sql_entity_graph::metadata::impl_sql_translatable!($wrapper, $sql);
    };
}

pub fn text_in<T: Stored>(input: &CStr) -> T {
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

pub fn text_out<T: Stored>(v: &T) -> CString {
    CString::new(to_hex(&v.encode())).unwrap_or_default()
}

pub fn recv<T: Stored>(buf: pgrx::Internal) -> T {
    // SAFETY: a receive function's argument is a StringInfo
    let si = buf
        .unwrap()
        .map(|d| d.cast_mut_ptr::<pg_sys::StringInfoData>())
        .unwrap_or_else(|| error!("{}: NULL receive buffer", T::SQL_NAME));
    // SAFETY: a receive function's argument is a StringInfo; cursor..len lies within its buffer
    let bytes = unsafe {
        let si = &mut *si;
        let rest = (si.len - si.cursor).max(0) as usize;
        let b = std::slice::from_raw_parts((si.data as *const u8).add(si.cursor as usize), rest);
        si.cursor = si.len;
        b.to_vec()
    };
    decode_or_raise::<T>(&bytes)
}
