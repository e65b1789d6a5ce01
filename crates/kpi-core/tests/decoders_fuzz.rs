//! Every binary decoder on hostile bytes: arbitrary byte strings, and valid
//! encodings truncated, extended or with bytes flipped. A decoder returns
//! Ok or Err and never panics; what it accepts re-encodes to something it
//! accepts again, and the accepted value's methods do not panic either.
//!
//! The stored types (kpi.sketch, kpi.trend) reach these decoders from user
//! input (text input is hex of the same bytes, binary COPY is the bytes);
//! the aggregate states only from PostgreSQL's parallel workers, but they are
//! held to the same rule. Bounded for CI: 2,048 cases per property (a second
//! or two; PROPTEST_CASES overrides, e.g. 1000000 for a long run); failing
//! inputs are kept in proptest-regressions/ (the corpus) and replayed first
//! on every run.

use kpi_core::business::Payback;
use kpi_core::codec::from_hex;
use kpi_core::models::{BgNbdData, GammaGammaData, SbgData};
use kpi_core::rollups::{BucketedRollup, RollupState};
use kpi_core::severity::Points;
use kpi_core::sketch::Sketch;
use kpi_core::trend::Trend;
use proptest::prelude::*;

fn valid_sketch() -> Vec<u8> {
    let mut s = Sketch::new(0.01).unwrap();
    for v in [0.0, 1.5, -3.0, 1e9, 42.0, 1e-9, -0.0] {
        s.add(v).unwrap();
    }
    s.encode()
}

fn valid_trend() -> Vec<u8> {
    let mut t = Trend::default();
    for i in 0..10 {
        t.add(f64::from(i), f64::from(i * i));
    }
    t.encode()
}

fn valid_rollup() -> Vec<u8> {
    let mut r = BucketedRollup::new(60_000_000).unwrap();
    for i in 0..50i32 {
        r.add(i64::from(i) * 7_000_000, f64::from(i)).unwrap();
    }
    r.encode()
}

/// Each decoder, by name: decodes, and exercises what it decoded.
fn decode_all(b: &[u8]) {
    if let Ok(s) = Sketch::decode(b) {
        let _ = s.count();
        for p in [0.0, 0.5, 0.99, 1.0] {
            let _ = s.quantile(p);
        }
        let again =
            Sketch::decode(&s.encode()).expect("a decoded sketch re-encodes to a valid one");
        let mut m = again.clone();
        let _ = m.merge(&s);
    }
    if let Ok(t) = Trend::decode(b) {
        let _ = t.slope();
        let _ = t.slope_per_sample();
        Trend::decode(&t.encode()).expect("a decoded trend re-encodes to a valid one");
        let mut m = t;
        m.merge(&t);
    }
    if let Ok(r) = BucketedRollup::decode(b) {
        BucketedRollup::decode(&r.encode()).expect("re-encodes");
    }
    if let Ok(r) = RollupState::decode(b) {
        RollupState::decode(&r.encode()).expect("re-encodes");
    }
    if let Ok(p) = Points::decode(b) {
        Points::decode(&p.encode()).expect("re-encodes");
    }
    if let Ok(p) = Payback::decode(b) {
        Payback::decode(&p.encode()).expect("re-encodes");
    }
    let _ = BgNbdData::decode(b);
    let _ = GammaGammaData::decode(b);
    let _ = SbgData::decode(b);
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2048);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&b);
    }

    #[test]
    fn arbitrary_text_as_hex(s in "\\PC{0,300}") {
        if let Ok(b) = from_hex("kpi.sketch", &s) {
            decode_all(&b);
        }
    }

    #[test]
    fn mutated_valid_encodings(which in 0usize..3, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
                               cut in proptest::option::of(any::<usize>()), extra in proptest::collection::vec(any::<u8>(), 0..16)) {
        let mut b = match which { 0 => valid_sketch(), 1 => valid_trend(), _ => valid_rollup() };
        for (i, x) in flips {
            let n = b.len();
            if n > 0 {
                b[i % n] ^= x;
            }
        }
        if let Some(c) = cut {
            let n = b.len() + 1;
            b.truncate(c % n);
        }
        b.extend(extra);
        decode_all(&b);
    }
}

#[test]
fn the_valid_encodings_decode() {
    assert!(Sketch::decode(&valid_sketch()).is_ok());
    assert!(Trend::decode(&valid_trend()).is_ok());
    assert!(BucketedRollup::decode(&valid_rollup()).is_ok());
}
