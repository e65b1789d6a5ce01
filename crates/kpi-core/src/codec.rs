//! Compact little-endian byte encoding for stored states.
//!
//! Every stored value starts with a magic byte naming its kind and a version
//! byte, so that a later release can read what an earlier one wrote and a
//! value of the wrong kind (or garbage) is rejected instead of misread.

use crate::{CoreError, CoreResult};

#[derive(Default, Debug)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new(magic: u8, version: u8) -> Self {
        Self::with_capacity(magic, version, 64)
    }
    /// A writer whose buffer holds `capacity` bytes before it grows.
    pub fn with_capacity(magic: u8, version: u8, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity.max(2));
        buf.extend_from_slice(&[magic, version]);
        Writer { buf }
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// LEB128 unsigned varint.
    pub fn varu(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.buf.push(b);
                return;
            }
            self.buf.push(b | 0x80);
        }
    }
    /// Zig-zag signed varint.
    pub fn vari(&mut self, v: i64) {
        self.varu(((v << 1) ^ (v >> 63)) as u64);
    }
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Checks the magic byte and returns the reader with the version byte.
    pub fn new(buf: &'a [u8], what: &'static str, magic: u8) -> CoreResult<(Self, u8)> {
        if buf.len() < 2 {
            return Err(CoreError::corrupt(what, "value is truncated"));
        }
        if buf[0] != magic {
            return Err(CoreError::corrupt(
                what,
                format!("unexpected kind byte {:#04x}", buf[0]),
            ));
        }
        Ok((Reader { buf, pos: 2, what }, buf[1]))
    }
    fn take(&mut self, n: usize) -> CoreResult<&'a [u8]> {
        if self.buf.len() - self.pos < n {
            return Err(CoreError::corrupt(self.what, "value is truncated"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> CoreResult<&'a [u8]> {
        self.take(n)
    }
    pub fn u8(&mut self) -> CoreResult<u8> {
        Ok(self.take(1)?[0])
    }
    pub fn f64(&mut self) -> CoreResult<f64> {
        let b = self.take(8)?;
        Ok(f64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    pub fn u64(&mut self) -> CoreResult<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    pub fn varu(&mut self) -> CoreResult<u64> {
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.u8()?;
            if shift >= 64 || (shift == 63 && (b & 0x7e) != 0) {
                return Err(CoreError::corrupt(self.what, "varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
        }
    }
    pub fn vari(&mut self) -> CoreResult<i64> {
        let u = self.varu()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// Errors unless every byte was consumed.
    pub fn end(&self) -> CoreResult<()> {
        if self.remaining() != 0 {
            return Err(CoreError::corrupt(
                self.what,
                format!("{} trailing bytes", self.remaining()),
            ));
        }
        Ok(())
    }
    pub fn corrupt(&self, msg: impl Into<String>) -> CoreError {
        CoreError::corrupt(self.what, msg)
    }
}

/// Lower-case hex, used for the text form of binary types.
pub fn to_hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(D[(b >> 4) as usize] as char);
        s.push(D[(b & 15) as usize] as char);
    }
    s
}

pub fn from_hex(what: &'static str, s: &str) -> CoreResult<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return Err(CoreError::corrupt(what, "hex text has an odd length"));
    }
    let nib = |c: u8| -> CoreResult<u8> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(CoreError::corrupt(
                what,
                format!("invalid hex digit {:?}", c as char),
            )),
        }
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Ok(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_roundtrip(u in any::<u64>(), i in any::<i64>()) {
            let mut w = Writer::new(7, 1);
            w.varu(u);
            w.vari(i);
            let buf = w.finish();
            let (mut r, v) = Reader::new(&buf, "t", 7).unwrap();
            prop_assert_eq!(v, 1);
            prop_assert_eq!(r.varu().unwrap(), u);
            prop_assert_eq!(r.vari().unwrap(), i);
            prop_assert!(r.end().is_ok());
        }

        #[test]
        fn hex_roundtrip(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(from_hex("t", &to_hex(&b)).unwrap(), b);
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(Reader::new(&[], "t", 1).is_err());
        assert!(Reader::new(&[2, 1], "t", 1).is_err());
        let (mut r, _) = Reader::new(&[1, 1, 0xff], "t", 1).unwrap();
        assert!(r.varu().is_err());
        let (mut r, _) = Reader::new(&[1, 1, 0, 0], "t", 1).unwrap();
        assert!(r.f64().is_err());
        assert!(from_hex("t", "abc").is_err());
        assert!(from_hex("t", "zz").is_err());
    }
}
