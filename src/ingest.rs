//! `kpi.record` and `kpi.record_batch`: validated ingestion into kpi.metrics.
//! Plain INSERT and COPY into kpi.metrics remain the fast path; the table's
//! CHECK constraints reject the same bad values there.

use crate::errors::{code, raise};
use crate::guc::MAX_BATCH_SIZE;
use kpi_core::ingest::{self, IngestError, Stamp};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::JsonB;
use std::str::FromStr;

fn fail(e: IngestError) -> ! {
    raise(code(e.sqlstate), e.message, None, e.hint)
}

fn object_or_fail(field: &str, v: Option<JsonB>) -> JsonB {
    match v {
        None => JsonB(serde_json::json!({})),
        Some(j) => {
            if let Err(e) = ingest::check_object(None, field, Some(&j.0)) {
                fail(e)
            }
            j
        }
    }
}

/// Records one measurement and returns its id. A NULL ts means now();
/// NULL tags or metadata mean '{}'.
#[pg_extern(volatile, parallel_unsafe)]
fn record(
    metric: Option<&str>,
    value: Option<f64>,
    ts: default!(Option<TimestampWithTimeZone>, "now()"),
    tags: default!(Option<JsonB>, "'{}'"),
    metadata: default!(Option<JsonB>, "'{}'"),
) -> i64 {
    if let Err(e) = ingest::check_metric(None, metric) {
        fail(e)
    }
    let value = ingest::check_value(None, value).unwrap_or_else(|e| fail(e));
    let tags = object_or_fail("tags", tags);
    let metadata = object_or_fail("metadata", metadata);
    let args: [DatumWithOid; 5] = [
        metric.unwrap_or_default().into(),
        value.into(),
        ts.into(),
        tags.into(),
        metadata.into(),
    ];
    Spi::get_one_with_args::<i64>(
        "INSERT INTO kpi.metrics (metric, value, ts, tags, metadata) \
         VALUES ($1, $2, coalesce($3, now()), $4, $5) RETURNING id",
        &args,
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| {
        raise(
            code("XX000"),
            "kpi.record: the insert returned no id".into(),
            None,
            None,
        )
    })
}

/// Microseconds since 2000-01-01 for Unix epoch seconds, range-checked.
fn epoch_to_ts(index: usize, epoch: f64) -> TimestampWithTimeZone {
    let micros = ((epoch - 946_684_800.0) * 1e6).round();
    let bad = || -> ! {
        raise(
            code("22008"),
            format!(
                "batch element {index}: \"timestamp\" {} is out of range",
                kpi_core::validate::fmt_float(epoch)
            ),
            None,
            None,
        )
    };
    if !micros.is_finite() || micros.abs() > 9.0e18 {
        bad()
    }
    TimestampWithTimeZone::try_from(micros as i64).unwrap_or_else(|_| bad())
}

/// Records a batch shaped as the replaced service API sent it: one object or
/// an array of objects {"metric_name" | "metric", "value", "timestamp",
/// "tags", "metadata"}. Returns the number of rows inserted. The whole batch
/// is validated first; one bad element rejects the batch and inserts nothing.
#[pg_extern(volatile, strict, parallel_unsafe)]
fn record_batch(batch: JsonB) -> i64 {
    let max = MAX_BATCH_SIZE.get().max(1) as usize;
    let records = ingest::parse_batch(&batch.0, max).unwrap_or_else(|e| fail(e));
    if records.is_empty() {
        return 0;
    }
    let n = records.len();
    let mut metrics = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    let mut stamps: Vec<Option<TimestampWithTimeZone>> = Vec::with_capacity(n);
    let mut tags = Vec::with_capacity(n);
    let mut metadata = Vec::with_capacity(n);
    for (i, r) in records.into_iter().enumerate() {
        stamps.push(match &r.ts {
            Stamp::Now => None,
            Stamp::Epoch(e) => Some(epoch_to_ts(i, *e)),
            Stamp::Text(s) => Some(TimestampWithTimeZone::from_str(s).unwrap_or_else(|_| {
                raise(
                    code("22007"),
                    format!("batch element {i}: \"timestamp\" {s:?} is not a valid timestamp"),
                    None,
                    Some("use ISO 8601, e.g. 2026-01-31T12:00:00Z, or epoch seconds"),
                )
            })),
        });
        metrics.push(r.metric);
        values.push(r.value);
        tags.push(JsonB(r.tags));
        metadata.push(JsonB(r.metadata));
    }
    let args: [DatumWithOid; 5] = [
        metrics.into(),
        values.into(),
        stamps.into(),
        tags.into(),
        metadata.into(),
    ];
    if let Err(e) = Spi::run_with_args(
        "INSERT INTO kpi.metrics (metric, value, ts, tags, metadata) \
         SELECT m, v, coalesce(t, now()), g, d \
         FROM unnest($1::text[], $2::float8[], $3::timestamptz[], $4::jsonb[], $5::jsonb[]) \
              AS u(m, v, t, g, d)",
        &args,
    ) {
        raise(
            code("XX000"),
            format!("kpi.record_batch: insert failed: {e}"),
            None,
            None,
        )
    }
    n as i64
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn count() -> i64 {
        Spi::get_one::<i64>("SELECT count(*) FROM kpi.metrics")
            .unwrap()
            .unwrap()
    }

    #[pg_test]
    fn record_returns_id_and_stores_row() {
        let id = Spi::get_one::<i64>(
            "SELECT kpi.record('api_response_time', 120.5, '2026-01-01 00:00:00+00', '{\"host\":\"a\"}')",
        )
        .unwrap()
        .unwrap();
        let (m, v) = Spi::get_two::<String, f64>(&format!(
            "SELECT metric, value FROM kpi.metrics WHERE id = {id}"
        ))
        .unwrap();
        assert_eq!(m.as_deref(), Some("api_response_time"));
        assert_eq!(v, Some(120.5));
    }

    #[pg_test]
    fn record_batch_counts_rows() {
        let before = count();
        let n = Spi::get_one::<i64>(
            r#"SELECT kpi.record_batch('[{"metric_name":"a","value":1,"timestamp":"2026-01-01T00:00:00Z"},
                                         {"metric":"b","value":2.5,"timestamp":1767225600,"tags":{"k":"v"}},
                                         {"metric":"c","value":-3}]')"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(n, 3);
        assert_eq!(count(), before + 3);
        let same = Spi::get_one::<bool>(
            "SELECT bool_and(ts = '2026-01-01T00:00:00Z') FROM kpi.metrics WHERE metric IN ('a','b')",
        )
        .unwrap();
        assert_eq!(same, Some(true));
    }

    #[pg_test(error = "\"value\" must be a finite number, got NaN")]
    fn record_rejects_nan() {
        Spi::run("SELECT kpi.record('a', 'NaN')").unwrap();
    }

    #[pg_test(error = "\"value\" must not be null")]
    fn record_rejects_null_value() {
        Spi::run("SELECT kpi.record('a', NULL)").unwrap();
    }

    #[pg_test(error = "\"metric\" must not be empty")]
    fn record_rejects_empty_metric() {
        Spi::run("SELECT kpi.record('', 1)").unwrap();
    }

    #[pg_test(error = "\"tags\" must be a JSON object, got an array")]
    fn record_rejects_array_tags() {
        Spi::run("SELECT kpi.record('a', 1, now(), '[1]')").unwrap();
    }

    #[pg_test(error = "batch element 1: \"timestamp\" \"yesterday-ish\" is not a valid timestamp")]
    fn batch_rejects_bad_timestamp() {
        Spi::run(
            r#"SELECT kpi.record_batch('[{"metric":"a","value":1},{"metric":"a","value":1,"timestamp":"yesterday-ish"}]')"#,
        )
        .unwrap();
    }

    #[pg_test(error = "batch has 3 elements; kpi.max_batch_size is 2")]
    fn batch_respects_guc() {
        Spi::run("SET kpi.max_batch_size = 2").unwrap();
        Spi::run(r#"SELECT kpi.record_batch('[{"metric":"a","value":1},{"metric":"a","value":1},{"metric":"a","value":1}]')"#).unwrap();
    }

    #[pg_test(
        error = "new row for relation \"metrics_default\" violates check constraint \"metrics_value_finite\""
    )]
    fn plain_insert_rejects_infinity() {
        Spi::run("INSERT INTO kpi.metrics (metric, value) VALUES ('a', 'Infinity')").unwrap();
    }
}
