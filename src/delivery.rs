//! Alert delivery at the SQL boundary: the receiver URL check
//! (`kpi_core::delivery::url_problem`), one delivery round (claim the due
//! deliveries, send them over HTTP with ureq, record every attempt) shared by
//! `kpi.deliver_now` and the delivery worker (`worker.rs`), and the wake-up
//! of that worker when a transaction queues deliveries. Claiming, bodies and
//! bookkeeping are SQL (sql/delivery.sql).
//!
//! A round sends each receiver's deliveries on a thread of its own (threads
//! that only do HTTP, never call PostgreSQL and block every signal), so a
//! receiver that hangs until `kpi.delivery_timeout` does not hold the others
//! up; a webhook gets `WEBHOOK_STREAMS` connections, each alert's
//! notifications in order on one of them. A receiver that does not answer, or answers 408, 429 or 5xx, gets one
//! attempt per round: its other due deliveries wait for the same backoff
//! without an attempt. An Alertmanager gets up to 64 alerts per request, as
//! Prometheus sends them.

pub mod worker;

use crate::jobs::launcher;
use crate::pg::errors::raise;
use crate::pg::guc::DELIVERY_TIMEOUT;
use crate::pg::json::JsonbArg;
use crate::pg::json_object;
use kpi_core::delivery;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::prelude::*;
use pgrx::JsonB;
use std::cell::RefCell;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// First retry after this long, doubling per attempt up to the cap.
const RETRY_BASE_MS: u64 = 2_000;
const RETRY_CAP_MS: u64 = 10 * 60 * 1000;
/// Redirects followed before an attempt fails (a loop fails, it does not hang).
const MAX_REDIRECTS: u32 = 5;
/// Most bytes of an answer read (so the connection can be reused); the rest is dropped.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;
/// Most streams sent at once in a round (the rest wait for the next batch of threads).
const MAX_THREADS: usize = 16;
/// Connections a webhook receiver gets in parallel; each alert's notifications
/// stay on one of them, in order. Slack (rate-limited to about one message a
/// second) and Alertmanager (batches) get one.
const WEBHOOK_STREAMS: i64 = 4;

/// Why a receiver URL is not acceptable, or NULL.
#[pg_extern(immutable, strict, parallel_safe, schema = "kpi_internal")]
fn receiver_url_problem(url: &str) -> Option<String> {
    delivery::url_problem(url).map(str::to_string)
}

/// A label or annotation name made valid for Alertmanager.
#[pg_extern(immutable, strict, parallel_safe, schema = "kpi_internal")]
fn label_name(name: &str) -> String {
    delivery::label_name(name)
}

/// The JSON body (as text) a receiver of `kind` gets for a notification
/// (`kpi_core::delivery::body`); `ends_at` comes computed for the kind.
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn delivery_body_text(
    kind: &str,
    receiver: &str,
    event: &str,
    rule: Option<&str>,
    rule_labels: Option<JsonbArg>,
    rule_annotations: Option<JsonbArg>,
    metric: &str,
    severity: &str,
    source: &str,
    labels: Option<JsonbArg>,
    message: Option<&str>,
    value: Option<&str>,
    threshold: Option<&str>,
    fingerprint: Option<&str>,
    starts_at: Option<&str>,
    ends_at: Option<&str>,
) -> String {
    const F: &str = "kpi_internal.delivery_body";
    let rule_labels = json_object(F, "rule_labels", rule_labels);
    let rule_annotations = json_object(F, "rule_annotations", rule_annotations);
    let labels = json_object(F, "labels", labels).unwrap_or_default();
    delivery::body(
        kind,
        receiver,
        &delivery::Notified {
            resolved: event == "resolved",
            rule,
            rule_labels: rule_labels.as_ref(),
            rule_annotations: rule_annotations.as_ref(),
            metric,
            severity,
            source,
            labels: &labels,
            message: message.unwrap_or(""),
            value,
            threshold,
            fingerprint: fingerprint.unwrap_or(""),
            starts_at: starts_at.unwrap_or(""),
            ends_at: ends_at.unwrap_or(""),
        },
    )
    .to_string()
}

/// One due delivery, as `kpi_internal.claim_deliveries` returns it.
struct Claim {
    notification_id: i64,
    receiver_id: i64,
    receiver: String,
    kind: String,
    url: String,
    headers: Vec<(String, String)>,
    body: String,
    attempts: i32,
    alert_id: i64,
}

/// What happened to one claimed delivery.
struct Outcome {
    claim: Claim,
    status_code: Option<i32>,
    error: Option<String>,
    ms: f64,
    /// false: not sent, its receiver was unavailable earlier in the round
    attempted: bool,
}

/// One row of a round, as `kpi.deliver_now` returns it.
pub(crate) type Sent = (String, i64, String, Option<i32>, Option<String>);

thread_local! {
    /// The HTTP agent (its connection pool) and the timeout it was built for.
    static AGENT: RefCell<Option<(i32, ureq::Agent)>> = const { RefCell::new(None) };
}

fn agent() -> ureq::Agent {
    let ms = DELIVERY_TIMEOUT.get();
    AGENT.with(|a| {
        let mut a = a.borrow_mut();
        match a.as_ref() {
            Some((t, agent)) if *t == ms => agent.clone(),
            _ => {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .timeout_global(Some(Duration::from_millis(
                        u64::try_from(ms).unwrap_or(5000),
                    )))
                    .http_status_as_error(false)
                    .max_redirects(MAX_REDIRECTS)
                    .user_agent("pg_kpi")
                    .build()
                    .into();
                *a = Some((ms, agent.clone()));
                agent
            }
        }
    })
}

/// One HTTP request: the status code, or the transport error.
fn post(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(String, String)],
    key: Option<i64>,
    body: &str,
) -> (Option<i32>, Option<String>) {
    let mut req = agent.post(url).header("Content-Type", "application/json");
    if let Some(k) = key {
        // at-least-once delivery: receivers can drop a repeated notification
        req = req.header("Idempotency-Key", k.to_string());
    }
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    match req.send(body) {
        Ok(mut resp) => {
            // read a little of the answer so that the connection can be
            // reused; a huge or broken answer costs at most the limit
            let _ = resp
                .body_mut()
                .with_config()
                .limit(MAX_ANSWER_BYTES)
                .read_to_vec();
            (Some(i32::from(resp.status().as_u16())), None)
        }
        Err(e) => (None, Some(e.to_string())),
    }
}

/// Sends one receiver's claims, in order; after an unavailable answer the
/// rest are not sent.
fn send_receiver(agent: &ureq::Agent, claims: Vec<Claim>) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(claims.len());
    let mut unavailable = false;
    let alertmanager = claims.first().is_some_and(|c| c.kind == "alertmanager");
    let chunk = if alertmanager {
        delivery::ALERTMANAGER_BATCH
    } else {
        1
    };
    let mut claims = claims.into_iter().peekable();
    while claims.peek().is_some() {
        let group: Vec<Claim> = claims.by_ref().take(chunk).collect();
        if unavailable {
            out.extend(group.into_iter().map(|claim| Outcome {
                claim,
                status_code: None,
                error: None,
                ms: 0.0,
                attempted: false,
            }));
            continue;
        }
        let started = Instant::now();
        let (status_code, mut error) = if alertmanager {
            let body = delivery::join_json_arrays(group.iter().map(|c| c.body.as_str()));
            post(agent, &group[0].url, &group[0].headers, None, &body)
        } else {
            let c = &group[0];
            post(agent, &c.url, &c.headers, Some(c.notification_id), &c.body)
        };
        if let Some(code) = status_code.filter(|c| !(200..300).contains(c)) {
            error.get_or_insert_with(|| format!("HTTP {code}"));
        }
        unavailable =
            delivery::receiver_unavailable(status_code.and_then(|c| u16::try_from(c).ok()));
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        out.extend(group.into_iter().map(|claim| Outcome {
            claim,
            status_code,
            error: error.clone(),
            ms,
            attempted: true,
        }));
    }
    out
}

/// Starts a thread that receives no signal (PostgreSQL's handlers must run
/// on the process's main thread).
fn spawn_quiet<F: FnOnce() + Send + 'static>(f: F) -> std::io::Result<std::thread::JoinHandle<()>> {
    // SAFETY: blocks every signal on this thread for the spawn only (the new
    // thread inherits the mask), then restores the previous mask
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        let h = std::thread::Builder::new()
            .name("pg_kpi delivery".to_string())
            .spawn(f);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        h
    }
}

/// Sends every receiver's claims, receivers (and a webhook's streams) in
/// parallel, and waits for them while honouring interrupts.
fn send_all(claims: Vec<Claim>) -> Vec<Outcome> {
    let agent = agent();
    // one stream per receiver, or per receiver and alert bucket for webhooks
    let mut by_receiver: Vec<Vec<Claim>> = Vec::new();
    let mut index: std::collections::HashMap<(i64, i64), usize> = std::collections::HashMap::new();
    for c in claims {
        let stream = if c.kind == "webhook" {
            c.alert_id.rem_euclid(WEBHOOK_STREAMS)
        } else {
            0
        };
        match index.get(&(c.receiver_id, stream)) {
            Some(&i) => by_receiver[i].push(c),
            None => {
                index.insert((c.receiver_id, stream), by_receiver.len());
                by_receiver.push(vec![c]);
            }
        }
    }
    let mut out = Vec::new();
    for wave in chunks(by_receiver, MAX_THREADS) {
        if wave.len() == 1 {
            for g in wave {
                out.extend(send_receiver(&agent, g));
            }
            continue;
        }
        let (tx, rx) = mpsc::channel::<Vec<Outcome>>();
        let mut running = 0;
        for g in wave {
            let tx = tx.clone();
            let a = agent.clone();
            // a claim list moved into the thread; if no thread can be made, sent here
            let cell = std::sync::Arc::new(std::sync::Mutex::new(Some(g)));
            let moved = cell.clone();
            let spawned = spawn_quiet(move || {
                if let Some(g) = moved.lock().ok().and_then(|mut g| g.take()) {
                    let _ = tx.send(send_receiver(&a, g));
                }
            });
            match spawned {
                Ok(_) => running += 1,
                Err(_) => {
                    if let Some(g) = cell.lock().ok().and_then(|mut g| g.take()) {
                        out.extend(send_receiver(&agent, g));
                    }
                }
            }
        }
        drop(tx);
        while running > 0 {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(v) => {
                    out.extend(v);
                    running -= 1;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    pgrx::check_for_interrupts!();
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
    }
    out
}

fn chunks<T>(v: Vec<T>, n: usize) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    for x in v {
        match out.last_mut() {
            Some(c) if c.len() < n => c.push(x),
            _ => out.push(vec![x]),
        }
    }
    out
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

fn claim(per_receiver: i32) -> Result<Vec<Claim>, pgrx::spi::Error> {
    Spi::connect_mut(|client| {
        let rows = client.update(
            "SELECT notification_id, receiver_id, receiver, kind, url, headers, body, attempts, alert_id \
             FROM kpi_internal.claim_deliveries($1)",
            None,
            &[per_receiver.into()],
        )?;
        let mut out = Vec::new();
        for r in rows {
            let headers = r
                .get::<JsonB>(6)?
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
                kind: r.get::<String>(4)?.unwrap_or_default(),
                url: r.get::<String>(5)?.unwrap_or_default(),
                headers,
                body: r.get::<String>(7)?.unwrap_or_default(),
                attempts: r.get::<i32>(8)?.unwrap_or_default(),
                alert_id: r.get::<i64>(9)?.unwrap_or_default(),
            });
        }
        Ok(out)
    })
}

fn record(outcomes: &[Outcome]) -> Result<Vec<(i64, i64, String)>, pgrx::spi::Error> {
    let mut ids = Vec::with_capacity(outcomes.len());
    let mut receivers = Vec::with_capacity(outcomes.len());
    let mut codes = Vec::with_capacity(outcomes.len());
    let mut errors = Vec::with_capacity(outcomes.len());
    let mut ms = Vec::with_capacity(outcomes.len());
    let mut retries = Vec::with_capacity(outcomes.len());
    let mut attempted = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        let tries = u32::try_from(o.claim.attempts)
            .unwrap_or(0)
            .saturating_add(1);
        let retry = delivery::retry_delay_ms(
            tries,
            RETRY_BASE_MS,
            RETRY_CAP_MS,
            jitter(o.claim.notification_id ^ o.claim.receiver_id.rotate_left(32)),
        );
        ids.push(o.claim.notification_id);
        receivers.push(o.claim.receiver_id);
        codes.push(o.status_code);
        errors.push(o.error.clone());
        ms.push(o.ms);
        retries.push(i64::try_from(retry).unwrap_or(i64::MAX));
        attempted.push(o.attempted);
    }
    Spi::connect_mut(|client| {
        let rows = client.update(
            "SELECT notification_id, receiver_id, status \
             FROM kpi_internal.record_deliveries($1, $2, $3, $4, $5, $6, $7)",
            None,
            &[
                ids.into(),
                receivers.into(),
                codes.into(),
                errors.into(),
                ms.into(),
                retries.into(),
                attempted.into(),
            ],
        )?;
        let mut out = Vec::new();
        for r in rows {
            out.push((
                r.get::<i64>(1)?.unwrap_or_default(),
                r.get::<i64>(2)?.unwrap_or_default(),
                r.get::<String>(3)?.unwrap_or_default(),
            ));
        }
        Ok(out)
    })
}

/// One round in the current transaction: claims at most `per_receiver` due
/// deliveries of each receiver, sends them and records the outcomes. Returns
/// the attempts made and whether some receiver had a full batch (more may
/// be due).
pub(crate) fn round(per_receiver: i32) -> Result<(Vec<Sent>, bool), pgrx::spi::Error> {
    let claims = claim(per_receiver)?;
    if claims.is_empty() {
        return Ok((Vec::new(), false));
    }
    let mut per: std::collections::HashMap<i64, i32> = std::collections::HashMap::new();
    for c in &claims {
        *per.entry(c.receiver_id).or_default() += 1;
    }
    let full = per.values().any(|n| *n >= per_receiver);
    let outcomes = send_all(claims);
    let statuses: std::collections::HashMap<(i64, i64), String> = record(&outcomes)?
        .into_iter()
        .map(|(n, r, s)| ((n, r), s))
        .collect();
    let sent = outcomes
        .into_iter()
        .filter(|o| o.attempted)
        .map(|o| {
            let status = statuses
                .get(&(o.claim.notification_id, o.claim.receiver_id))
                .cloned()
                .unwrap_or_else(|| "pending".to_string());
            (
                o.claim.receiver,
                o.claim.notification_id,
                status,
                o.status_code,
                o.error,
            )
        })
        .collect();
    Ok((sent, full))
}

/// Sends the deliveries that are due (at most `max` per receiver), each with
/// a timeout of `kpi.delivery_timeout`, and records every attempt: a 2xx
/// delivers, any other answer or error is tried again with exponential
/// backoff and jitter until `kpi.delivery_max_age`. Rows being sent by
/// another session (or the delivery worker) are skipped. Returns one row per
/// attempt.
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
    let done = Spi::run("SELECT kpi_internal.delivery_housekeeping()").and_then(|_| round(max));
    match done {
        Ok((sent, _)) => TableIterator::new(sent),
        Err(e) => raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("kpi.deliver_now: could not read or record the deliveries: {e}"),
            None,
            None,
        ),
    }
}

/// Wakes this database's delivery worker when the transaction commits (or
/// has the launcher start one), so that a notification goes out at once.
#[pg_extern(volatile, parallel_unsafe, schema = "kpi_internal")]
fn wake_delivery() {
    launcher::want_delivery_at_commit();
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// Adding a receiver wakes nobody without preloading (the test server does
    /// not preload pg_kpi); with nothing queued a round sends nothing; a bad
    /// `max` is a 22023 naming it.
    #[pg_test]
    fn a_round_with_nothing_due_sends_nothing() {
        Spi::run("SELECT kpi.add_receiver('r', 'webhook', 'http://127.0.0.1:1/')").unwrap();
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM kpi.deliver_now()").unwrap(),
            Some(0)
        );
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM kpi.deliver_now(1)").unwrap(),
            Some(0)
        );
    }

    #[pg_test(error = "kpi.deliver_now: max must be at least 1, got 0")]
    fn max_must_be_positive() {
        Spi::run("SELECT * FROM kpi.deliver_now(0)").unwrap();
    }
}
