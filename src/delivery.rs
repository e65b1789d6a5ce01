//! Alert delivery at the SQL boundary: the receiver URL check
//! (`kpi_core::delivery::url_problem`) and `kpi.deliver_now`, which sends the
//! due deliveries over HTTP (ureq) and records each attempt. Claiming,
//! bodies and bookkeeping are SQL (sql/delivery.sql).

use crate::pg::errors::raise;
use crate::pg::guc::DELIVERY_TIMEOUT;
use kpi_core::delivery;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::prelude::*;
use pgrx::JsonB;
use std::time::{Duration, Instant};

/// First retry after this long, doubling per attempt up to the cap.
const RETRY_BASE_MS: u64 = 2_000;
const RETRY_CAP_MS: u64 = 10 * 60 * 1000;
/// Redirects followed before an attempt fails (a loop fails, it does not hang).
const MAX_REDIRECTS: u32 = 5;

/// Why a receiver URL is not acceptable, or NULL.
#[pg_extern(immutable, strict, parallel_safe, schema = "kpi_internal")]
fn receiver_url_problem(url: &str) -> Option<String> {
    delivery::url_problem(url).map(str::to_string)
}

struct Claim {
    notification_id: i64,
    receiver_id: i64,
    receiver: String,
    url: String,
    headers: Vec<(String, String)>,
    body: String,
    attempts: i32,
}

/// The outcome of one HTTP request: a status code, or a transport error.
fn post(agent: &ureq::Agent, c: &Claim) -> (Option<i32>, Option<String>) {
    let mut req = agent
        .post(&c.url)
        .header("Content-Type", "application/json")
        .header("User-Agent", "pg_kpi")
        // at-least-once delivery: receivers can drop a repeated notification
        .header("Idempotency-Key", c.notification_id.to_string());
    for (k, v) in &c.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    match req.send(c.body.as_str()) {
        // the answer's body is never read: a huge one costs nothing
        Ok(resp) => (Some(i32::from(resp.status().as_u16())), None),
        Err(e) => (None, Some(e.to_string())),
    }
}

/// A pseudo-random number in [0, 1) for the backoff's jitter.
fn jitter(seed: i64) -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut x = (seed as u64) ^ u64::from(nanos).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Sends the deliveries that are due (at most `max`), each with a timeout
/// of `kpi.delivery_timeout`, and records every attempt: a 2xx delivers, any
/// other answer or error is tried again with exponential backoff and jitter
/// until `kpi.delivery_max_age`. Rows being sent by another session are
/// skipped. Returns one row per attempt.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe)]
fn deliver_now(
    max: default!(i32, 100),
) -> TableIterator<
    'static,
    (
        name!(receiver, String),
        name!(notification_id, i64),
        name!(status, String),
        name!(status_code, Option<i32>),
        name!(error, Option<String>),
    ),
> {
    if max < 1 {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("kpi.deliver_now: max must be at least 1, got {max}"),
            None,
            None,
        )
    }
    let claims: Vec<Claim> = Spi::connect_mut(|client| {
        let rows = client.update(
            "SELECT notification_id, receiver_id, receiver, url, headers, body, attempts \
             FROM kpi_internal.claim_deliveries($1)",
            None,
            &[max.into()],
        )?;
        let mut out = Vec::new();
        for r in rows {
            let headers = r
                .get::<JsonB>(5)?
                .and_then(|h| h.0.as_object().cloned())
                .map(|o| {
                    o.into_iter()
                        .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            out.push(Claim {
                notification_id: r.get::<i64>(1)?.unwrap_or_default(),
                receiver_id: r.get::<i64>(2)?.unwrap_or_default(),
                receiver: r.get::<String>(3)?.unwrap_or_default(),
                url: r.get::<String>(4)?.unwrap_or_default(),
                headers,
                body: r.get::<String>(6)?.unwrap_or_default(),
                attempts: r.get::<i32>(7)?.unwrap_or_default(),
            });
        }
        Ok::<_, pgrx::spi::Error>(out)
    })
    .unwrap_or_else(|e| {
        raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("kpi.deliver_now: could not read the due deliveries: {e}"),
            None,
            None,
        )
    });
    if claims.is_empty() {
        return TableIterator::new(Vec::new());
    }
    let timeout = Duration::from_millis(u64::try_from(DELIVERY_TIMEOUT.get()).unwrap_or(5000));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(MAX_REDIRECTS)
        .build()
        .into();
    let mut results = Vec::with_capacity(claims.len());
    for c in claims {
        pgrx::check_for_interrupts!();
        let started = Instant::now();
        let (status_code, mut error) = post(&agent, &c);
        if let Some(code) = status_code.filter(|c| !(200..300).contains(c)) {
            error.get_or_insert_with(|| format!("HTTP {code}"));
        }
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let attempts = u32::try_from(c.attempts).unwrap_or(0).saturating_add(1);
        let retry = delivery::retry_delay_ms(
            attempts,
            RETRY_BASE_MS,
            RETRY_CAP_MS,
            jitter(c.notification_id),
        );
        let status = Spi::get_one_with_args::<String>(
            "SELECT kpi_internal.record_delivery($1, $2, $3, $4, $5, $6)",
            &[
                c.notification_id.into(),
                c.receiver_id.into(),
                status_code.into(),
                error.clone().into(),
                ms.into(),
                i64::try_from(retry).unwrap_or(i64::MAX).into(),
            ],
        )
        .ok()
        .flatten()
        .unwrap_or_else(|| "pending".to_string());
        results.push((c.receiver, c.notification_id, status, status_code, error));
    }
    TableIterator::new(results)
}
