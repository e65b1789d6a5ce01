//! `kpi.record` and `kpi.record_batch`: validated ingestion into kpi.metrics.
//! Plain INSERT and COPY into kpi.metrics remain the fast path; the table's
//! CHECK constraints and its statement-level checks (sql/ingest.sql) reject
//! the same bad rows there. Both functions insert with one statement run to
//! completion, so the statement-level triggers (alerts, the rollups' change
//! log, the checks) fire exactly as for a plain INSERT.

use crate::pg::errors::{code, raise};
use crate::pg::guc::{MAX_BATCH_SIZE, MAX_FUTURE};
use crate::pg::json::JsonbArg;
use kpi_core::ingest::{self, IngestError, Stamp, LOOKS_LIKE_MILLIS};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::{pg_sys, JsonB, PgOid};
use std::str::FromStr;

/// Seconds between the Unix epoch and PostgreSQL's (2000-01-01).
fn fail(e: IngestError) -> ! {
    raise(code(e.sqlstate), e.message, None, e.hint)
}

/// A tags or metadata argument of kpi.record: an object, passed on as it
/// came (NULL means '{}'); checked from the jsonb header, never parsed.
fn object_or_fail(field: &str, v: Option<JsonbArg>) -> Option<JsonbArg> {
    if let Some(j) = v {
        if !j.is_object() {
            fail(ingest::not_object(None, field, &j.type_name()))
        }
    }
    v
}

/// Where a timestamp came from, for messages.
fn subject(index: Option<usize>, field: &str) -> String {
    match index {
        Some(i) => format!("batch element {i}: \"{field}\""),
        None => format!("\"{field}\""),
    }
}

/// Rejects a timestamp further than `kpi.max_future` ahead of the
/// transaction's now(). `epoch` is the number the caller sent, if any, so
/// that milliseconds taken as seconds get a hint that says so.
fn check_future(index: Option<usize>, field: &str, ts: TimestampWithTimeZone, epoch: Option<f64>) {
    let limit = MAX_FUTURE.get();
    if limit < 0 {
        return;
    }
    let micros: i64 = ts.into_inner();
    // SAFETY: reading the transaction start time has no preconditions
    let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    if micros <= now.saturating_add(i64::from(limit).saturating_mul(1_000_000)) {
        return;
    }
    let millis = epoch.is_some_and(|e| e.abs() >= LOOKS_LIKE_MILLIS);
    let hint = if millis {
        "The number looks like milliseconds since the Unix epoch: send it as \"timestamp_ms\", or divide it by 1000."
    } else {
        "Check the sender's clock and time zone, or raise kpi.max_future (-1 removes the limit)."
    };
    raise(
        code("22008"),
        format!(
            "{} {ts} is more than kpi.max_future ({}) ahead of now()",
            subject(index, field),
            guc_seconds(limit)
        ),
        None,
        Some(hint),
    )
}

/// A number of seconds as PostgreSQL shows a setting in seconds (1h, 5min, 90s).
fn guc_seconds(s: i32) -> String {
    match s {
        0 => "0".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}min", s / 60),
        s => format!("{s}s"),
    }
}

/// A timestamp from Unix epoch seconds (or milliseconds), range-checked.
fn epoch_to_ts(index: usize, field: &str, seconds: f64, shown: f64) -> TimestampWithTimeZone {
    let bad = || -> ! {
        let hint = (field == "timestamp" && shown.abs() >= LOOKS_LIKE_MILLIS).then_some(
            "The number looks like milliseconds since the Unix epoch: send it as \"timestamp_ms\".",
        );
        raise(
            code("22008"),
            format!(
                "{} {} is out of range",
                subject(Some(index), field),
                kpi_core::validate::fmt_float(shown)
            ),
            None,
            hint,
        )
    };
    let micros = kpi_core::time::pg_micros(seconds).unwrap_or_else(|| bad());
    TimestampWithTimeZone::try_from(micros).unwrap_or_else(|_| bad())
}

/// Parses timestamp text with PostgreSQL's own input function, reading text
/// without a time zone as UTC (never the session's zone).
fn parse_text_utc(s: &str) -> Option<TimestampWithTimeZone> {
    // SAFETY: session_timezone is a plain global of this backend; it is
    // restored on every path, errors included (finally)
    unsafe {
        let saved = pg_sys::session_timezone;
        let utc = pg_sys::pg_tzset(c"UTC".as_ptr());
        if !utc.is_null() {
            pg_sys::session_timezone = utc;
        }
        PgTryBuilder::new(|| TimestampWithTimeZone::from_str(s).ok())
            .finally(|| pg_sys::session_timezone = saved)
            .execute()
    }
}

const INSERT: &str = "INSERT INTO kpi.metrics (metric, value, ts, tags, metadata) \
     SELECT m, v, coalesce(t, now()), coalesce(g, '{}'), coalesce(d, '{}') \
     FROM unnest($1::text[], $2::float8[], $3::timestamptz[], $4::jsonb[], $5::jsonb[]) \
          AS u(m, v, t, g, d) \
     RETURNING id";

thread_local! {
    /// INSERT's plan, prepared once per backend (SPI_keepplan): the plan cache
    /// revalidates it when kpi.metrics changes (new partitions, DROP and CREATE
    /// EXTENSION), so only the first kpi.record of a session parses and plans.
    static INSERT_PLAN: std::cell::RefCell<Option<pgrx::spi::OwnedPreparedStatement>> =
        const { std::cell::RefCell::new(None) };
}

/// Inserts the rows in one statement run to completion (an SPI row limit
/// would stop the executor before the statement-level triggers are queued);
/// returns the first row's id.
fn insert_rows<J: IntoDatum>(
    metrics: Vec<String>,
    values: Vec<f64>,
    stamps: Vec<Option<TimestampWithTimeZone>>,
    tags: Vec<J>,
    metadata: Vec<J>,
) -> Option<i64> {
    let args: [DatumWithOid; 5] = [
        metrics.into(),
        values.into(),
        stamps.into(),
        tags.into(),
        metadata.into(),
    ];
    Spi::connect_mut(|client| {
        INSERT_PLAN.with(|cell| {
            if cell.borrow().is_none() {
                let types = [
                    PgOid::from(pg_sys::TEXTARRAYOID),
                    PgOid::from(pg_sys::FLOAT8ARRAYOID),
                    PgOid::from(pg_sys::TIMESTAMPTZARRAYOID),
                    PgOid::from(pg_sys::JSONBARRAYOID),
                    PgOid::from(pg_sys::JSONBARRAYOID),
                ];
                let prepared = client.prepare_mut(INSERT, &types)?.keep();
                *cell.borrow_mut() = Some(prepared);
            }
            // a shared borrow: a trigger that calls kpi.record again nests fine
            let plan = cell.borrow();
            let plan = plan.as_ref().expect("prepared above");
            client
                .update(plan, None, &args)
                .and_then(|t| t.first().get_one::<i64>())
        })
    })
    .unwrap_or_else(|e| {
        raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("pg_kpi: inserting into kpi.metrics failed: {e}"),
            None,
            None,
        )
    })
}

/// Records one measurement and returns its id. A NULL ts means now();
/// NULL tags or metadata mean '{}'.
#[pg_extern(volatile, parallel_unsafe)]
fn record(
    metric: Option<&str>,
    value: Option<f64>,
    ts: default!(Option<TimestampWithTimeZone>, "now()"),
    tags: default!(Option<JsonbArg>, "'{}'"),
    metadata: default!(Option<JsonbArg>, "'{}'"),
) -> i64 {
    if let Err(e) = ingest::check_metric(None, metric) {
        fail(e)
    }
    let value = ingest::check_value(None, value).unwrap_or_else(|e| fail(e));
    let tags = object_or_fail("tags", tags);
    let metadata = object_or_fail("metadata", metadata);
    if let Some(t) = ts {
        if !t.is_finite() {
            raise(
                code("22008"),
                format!("\"ts\" must be a finite timestamp, got {t}"),
                None,
                None,
            )
        }
        check_future(None, "ts", t, None);
    }
    insert_rows(
        vec![metric.unwrap_or_default().to_string()],
        vec![value],
        vec![ts],
        vec![tags],
        vec![metadata],
    )
    .unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            "kpi.record: the insert returned no id".into(),
            None,
            None,
        )
    })
}

/// Records a batch shaped as the replaced service API sent it: one object or
/// an array of objects {"metric_name" | "metric", "value", "timestamp" |
/// "timestamp_ms", "tags", "metadata"}. Returns the number of rows inserted.
/// The whole batch is validated first; one bad element rejects the batch and
/// inserts nothing.
#[pg_extern(volatile, strict, parallel_unsafe)]
fn record_batch(batch: JsonbArg) -> i64 {
    let max = MAX_BATCH_SIZE.get().max(1) as usize;
    let batch = batch.parse("kpi.record_batch", "batch");
    let records = ingest::parse_batch(&batch, max).unwrap_or_else(|e| fail(e));
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
        let ts = match &r.ts {
            Stamp::Now => None,
            Stamp::Epoch(e) => {
                let t = epoch_to_ts(i, "timestamp", *e, *e);
                check_future(Some(i), "timestamp", t, Some(*e));
                Some(t)
            }
            Stamp::EpochMillis(ms) => {
                let t = epoch_to_ts(i, "timestamp_ms", ms / 1000.0, *ms);
                check_future(Some(i), "timestamp_ms", t, None);
                Some(t)
            }
            Stamp::Text(s) => {
                let t = parse_text_utc(s).unwrap_or_else(|| {
                    raise(
                        code("22007"),
                        format!("batch element {i}: \"timestamp\" {s:?} is not a valid timestamp"),
                        None,
                        Some("use ISO 8601, e.g. 2026-01-31T12:00:00Z (text without a zone is UTC), epoch seconds, or \"timestamp_ms\""),
                    )
                });
                if !t.is_finite() {
                    raise(
                        code("22008"),
                        format!("batch element {i}: \"timestamp\" must be finite, got {s:?}"),
                        None,
                        None,
                    )
                }
                check_future(Some(i), "timestamp", t, None);
                Some(t)
            }
        };
        stamps.push(ts);
        metrics.push(r.metric);
        values.push(r.value);
        tags.push(JsonB(r.tags));
        metadata.push(JsonB(r.metadata));
    }
    insert_rows(metrics, values, stamps, tags, metadata);
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
