//! Alert delivery: which receiver URLs are acceptable, when a failed
//! delivery is tried again (exponential backoff with jitter), and the body
//! each kind of receiver gets (Alertmanager's webhook JSON, Slack's incoming
//! webhook message, Alertmanager's API).

use crate::rules::{render_template, TemplateValues};
use serde_json::{json, Map, Value};

/// Why a receiver URL is not acceptable, or None: an absolute `http` or
/// `https` URL with a host, no whitespace, no user info (secrets belong in
/// the receiver's headers) and no fragment.
pub fn url_problem(url: &str) -> Option<&'static str> {
    if url.is_empty() {
        return Some("must not be empty");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("must not contain whitespace or control characters");
    }
    let lower = url.to_ascii_lowercase();
    let rest = if let Some(r) = lower.strip_prefix("https://") {
        r
    } else if let Some(r) = lower.strip_prefix("http://") {
        r
    } else {
        return Some("must start with http:// or https://");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Some("must not contain a user or password (put credentials in headers)");
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, after)) => (h, after.strip_prefix(':')),
            None => return Some("has an unclosed [ around its host"),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if let Some(p) = port {
        if p.parse::<u16>().ok().filter(|&p| p > 0).is_none() {
            return Some("has an invalid port");
        }
    }
    if host.is_empty() {
        return Some("must name a host");
    }
    if url.contains('#') {
        return Some("must not contain a fragment");
    }
    None
}

/// The delay in milliseconds before the next try after `attempts` failed
/// ones (1 or more): `base_ms` doubled per attempt, capped at `cap_ms`, then
/// scaled by `jitter` in [0, 1] into [half, all] of it so that receivers
/// coming back are not hit by every pending delivery at once.
pub fn retry_delay_ms(attempts: u32, base_ms: u64, cap_ms: u64, jitter: f64) -> u64 {
    let exp = attempts.saturating_sub(1).min(62);
    let full = base_ms.saturating_mul(1u64 << exp).min(cap_ms);
    let j = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let half = full / 2;
    half + ((full - half) as f64 * j) as u64
}

/// Most alerts sent to an Alertmanager in one request (Prometheus's notifier
/// sends at most 64).
pub const ALERTMANAGER_BATCH: usize = 64;

/// Whether, after an attempt with this answer (`status`: the HTTP status, or
/// None when the request got no answer), the receiver's other due
/// deliveries wait for its retry instead of being sent now: it is down,
/// hanging, overloaded or failing as a whole (no answer, 408, 429, 5xx).
/// Other non-2xx answers concern one body, so the rest is still sent.
pub fn receiver_unavailable(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(s) => s == 408 || s == 429 || s >= 500,
    }
}

/// Joins JSON arrays (each the text of a JSON array, such as the alerts of
/// one notification for an Alertmanager) into one array, in order. Text
/// that is not an array is taken as one element.
pub fn join_json_arrays<'a>(arrays: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from("[");
    for a in arrays {
        let t = a.trim();
        let inner = t
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .map(str::trim)
            .unwrap_or(t);
        if inner.is_empty() {
            continue;
        }
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(inner);
    }
    out.push(']');
    out
}

/// A label or annotation name as Alertmanager accepts it
/// (`[a-zA-Z_][a-zA-Z0-9_]*`): other characters become `_`, and a name that
/// starts with a digit (or is empty) gets a leading `_`.
pub fn label_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// One alert notification, as a receiver's body is built from it.
pub struct Notified<'a> {
    /// the notification is a resolution
    pub resolved: bool,
    /// the rule's name, labels and annotations (rule alerts)
    pub rule: Option<&'a str>,
    pub rule_labels: Option<&'a Map<String, Value>>,
    pub rule_annotations: Option<&'a Map<String, Value>>,
    pub metric: &'a str,
    pub severity: &'a str,
    pub source: &'a str,
    /// the series' labels (tags)
    pub labels: &'a Map<String, Value>,
    pub message: &'a str,
    /// the value and threshold as messages show them
    pub value: Option<&'a str>,
    pub threshold: Option<&'a str>,
    pub fingerprint: &'a str,
    /// RFC 3339
    pub starts_at: &'a str,
    /// RFC 3339: the resolution, or (Alertmanager, firing) when the alert
    /// lapses unless re-sent, or (webhook, firing) Alertmanager's zero time
    pub ends_at: &'a str,
}

fn label_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        other => Some(jsonb_text(other)),
    }
}

/// JSON as PostgreSQL's jsonb prints it (`{"a": 1, "bb": [1, 2]}`: keys by
/// length then bytes, a space after `:` and `,`).
pub fn jsonb_text(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by(|a, b| {
                a.len()
                    .cmp(&b.len())
                    .then_with(|| a.as_bytes().cmp(b.as_bytes()))
            });
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}: {}", Value::String(k.clone()), jsonb_text(&m[k])))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(jsonb_text).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

/// The alert as Alertmanager sees it: labels (the rule's labels and the
/// series' tags as strings, empty ones left out, then `alertname` (the rule,
/// or the metric), `severity`, `metric` and `source`), annotations (the
/// rule's other annotations rendered, then the message as `summary`), names
/// made valid, and `startsAt`.
pub fn alertmanager_alert(n: &Notified) -> Map<String, Value> {
    let mut labels = Map::new();
    for source in [n.rule_labels, Some(n.labels)].into_iter().flatten() {
        for (k, v) in source {
            let name = label_name(k);
            match label_text(v) {
                Some(t) => {
                    labels.insert(name, Value::String(t));
                }
                None => {
                    labels.remove(&name);
                }
            }
        }
    }
    let alertname = n.rule.unwrap_or(n.metric);
    labels.insert("alertname".into(), alertname.into());
    labels.insert("severity".into(), n.severity.into());
    labels.insert("metric".into(), n.metric.into());
    labels.insert("source".into(), n.source.into());
    let mut annotations = Map::new();
    if let Some(a) = n.rule_annotations {
        let values = TemplateValues {
            rule: n.rule.unwrap_or(""),
            metric: n.metric,
            value: n.value,
            threshold: n.threshold,
            severity: n.severity,
            forecast_at: None,
            labels: Some(n.labels),
        };
        for (k, v) in a.iter().filter(|(k, _)| k.as_str() != "summary") {
            let template = match v {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => jsonb_text(other),
            };
            annotations.insert(label_name(k), render_template(&template, &values).into());
        }
    }
    annotations.insert("summary".into(), n.message.into());
    let mut out = Map::new();
    out.insert("labels".into(), Value::Object(labels));
    out.insert("annotations".into(), Value::Object(annotations));
    out.insert("startsAt".into(), n.starts_at.into());
    out
}

/// The body a receiver of `kind` named `receiver` gets for a notification:
/// `webhook`: Alertmanager's webhook JSON, version 4; `slack`: an incoming
/// webhook message (`text` and a `blocks` section); `alertmanager`: the
/// alerts array of `POST /api/v2/alerts`.
pub fn body(kind: &str, receiver: &str, n: &Notified) -> Value {
    let status = if n.resolved { "resolved" } else { "firing" };
    let mut am = alertmanager_alert(n);
    let alertname = n.rule.unwrap_or(n.metric);
    match kind {
        "alertmanager" => {
            am.insert("endsAt".into(), n.ends_at.into());
            am.insert("generatorURL".into(), "".into());
            Value::Array(vec![Value::Object(am)])
        }
        "slack" => {
            let head = format!("[{}:{}] {}", status.to_uppercase(), n.severity, alertname);
            let tags = if n.labels.is_empty() {
                String::new()
            } else {
                format!("\n`{}`", jsonb_text(&Value::Object(n.labels.clone())))
            };
            json!({
                "text": format!("{head}: {}", n.message),
                "blocks": [{"type": "section",
                            "text": {"type": "mrkdwn", "text": format!("*{head}*\n{}{tags}", n.message)}}],
            })
        }
        _ => {
            let common_labels = am["labels"].clone();
            let common_annotations = am["annotations"].clone();
            am.insert("status".into(), status.into());
            am.insert("endsAt".into(), n.ends_at.into());
            am.insert("generatorURL".into(), "".into());
            am.insert("fingerprint".into(), n.fingerprint.into());
            json!({
                "version": "4",
                "receiver": receiver,
                "status": status,
                "groupKey": format!("{{}}:{{alertname={}}}", Value::String(alertname.to_string())),
                "truncatedAlerts": 0,
                "groupLabels": {"alertname": alertname},
                "commonLabels": common_labels,
                "commonAnnotations": common_annotations,
                "externalURL": "",
                "alerts": [Value::Object(am)],
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn urls() {
        for ok in [
            "http://localhost:9093",
            "https://hooks.slack.com/services/T000/B000/XXXX",
            "http://127.0.0.1:8080/hook?x=1",
            "http://[::1]:9093/api",
            "HTTPS://Example.com",
        ] {
            assert_eq!(url_problem(ok), None, "{ok}");
        }
        for (bad, why) in [
            ("", "must not be empty"),
            ("ftp://x", "must start with http:// or https://"),
            ("localhost:9093", "must start with http:// or https://"),
            ("http://", "must name a host"),
            ("http:///path", "must name a host"),
            (
                "http://user:pw@host/",
                "must not contain a user or password (put credentials in headers)",
            ),
            ("http://host:99999/", "has an invalid port"),
            ("http://host:abc/", "has an invalid port"),
            (
                "http://ho st/",
                "must not contain whitespace or control characters",
            ),
            ("http://host/#frag", "must not contain a fragment"),
        ] {
            assert_eq!(url_problem(bad), Some(why), "{bad}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(retry_delay_ms(1, 1000, 60_000, 1.0), 1000);
        assert_eq!(retry_delay_ms(2, 1000, 60_000, 1.0), 2000);
        assert_eq!(retry_delay_ms(3, 1000, 60_000, 1.0), 4000);
        assert_eq!(retry_delay_ms(10, 1000, 60_000, 1.0), 60_000);
        assert_eq!(retry_delay_ms(3, 1000, 60_000, 0.0), 2000);
        assert_eq!(retry_delay_ms(u32::MAX, 1000, 60_000, 0.5), 45_000);
    }

    #[test]
    fn unavailable_receivers_wait() {
        assert!(receiver_unavailable(None));
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(receiver_unavailable(Some(s)), "{s}");
        }
        for s in [200, 204, 301, 400, 401, 404, 413, 422] {
            assert!(!receiver_unavailable(Some(s)), "{s}");
        }
    }

    #[test]
    fn arrays_are_joined() {
        assert_eq!(join_json_arrays([]), "[]");
        assert_eq!(join_json_arrays(["[{\"a\": 1}]"]), "[{\"a\": 1}]");
        assert_eq!(
            join_json_arrays(["[{\"a\": 1}]", " [ ] ", "[{\"b\": [2]}, 3]"]),
            "[{\"a\": 1},{\"b\": [2]}, 3]"
        );
        assert_eq!(join_json_arrays(["{\"c\": 1}"]), "[{\"c\": 1}]");
    }

    #[test]
    fn label_names_alertmanager_accepts() {
        assert_eq!(label_name("host"), "host");
        assert_eq!(label_name("k8s.pod"), "k8s_pod");
        assert_eq!(label_name("9lives"), "_9lives");
        assert_eq!(label_name("a-b c"), "a_b_c");
        assert_eq!(label_name(""), "_");
        assert_eq!(label_name("é"), "_");
    }

    fn map(s: &str) -> Map<String, Value> {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn bodies_of_each_kind() {
        let rl = map(r#"{"team": "api", "host": "x"}"#);
        let ra = map(
            r#"{"summary": "{{labels.host}} slow", "runbook": "https://wiki/{{rule}}", "n": 3}"#,
        );
        let labels = map(r#"{"host": "b", "k8s.pod": "p", "empty": "", "z": null, "n": 2}"#);
        let n = Notified {
            resolved: false,
            rule: Some("HighLatency"),
            rule_labels: Some(&rl),
            rule_annotations: Some(&ra),
            metric: "lat",
            severity: "critical",
            source: "rule",
            labels: &labels,
            message: "b slow",
            value: Some("900"),
            threshold: Some("500"),
            fingerprint: "f1",
            starts_at: "2026-01-01T12:00:00.000000Z",
            ends_at: "0001-01-01T00:00:00Z",
        };
        let am = alertmanager_alert(&n);
        assert_eq!(
            Value::Object(am.clone()),
            json!({"labels": {"team": "api", "host": "b", "k8s_pod": "p", "n": "2", "alertname": "HighLatency",
                              "severity": "critical", "metric": "lat", "source": "rule"},
                   "annotations": {"runbook": "https://wiki/HighLatency", "n": "3", "summary": "b slow"},
                   "startsAt": "2026-01-01T12:00:00.000000Z"})
        );
        let w = body("webhook", "all", &n);
        assert_eq!(w["version"], "4");
        assert_eq!(w["groupKey"], "{}:{alertname=\"HighLatency\"}");
        assert_eq!(w["alerts"][0]["status"], "firing");
        assert_eq!(w["alerts"][0]["fingerprint"], "f1");
        assert_eq!(w["commonLabels"], am["labels"]);
        let s = body("slack", "chat", &n);
        assert_eq!(s["text"], "[FIRING:critical] HighLatency: b slow");
        assert_eq!(
            s["blocks"][0]["text"]["text"],
            "*[FIRING:critical] HighLatency*\nb slow\n`{\"n\": 2, \"z\": null, \"host\": \"b\", \"empty\": \"\", \"k8s.pod\": \"p\"}`"
        );
        let resolved = Notified {
            resolved: true,
            ends_at: "2026-01-01T12:05:00.000000Z",
            ..n
        };
        let a = body("alertmanager", "am", &resolved);
        assert_eq!(a[0]["endsAt"], "2026-01-01T12:05:00.000000Z");
        assert_eq!(body("webhook", "all", &resolved)["status"], "resolved");
    }

    #[test]
    fn jsonb_text_orders_keys_as_jsonb() {
        assert_eq!(
            jsonb_text(&json!({"bb": [1, "x"], "a": {"c": true}})),
            r#"{"a": {"c": true}, "bb": [1, "x"]}"#
        );
    }

    proptest! {
        #[test]
        fn label_names_are_valid(s in ".{0,20}") {
            let n = label_name(&s);
            prop_assert!(!n.is_empty() && !n.starts_with(|c: char| c.is_ascii_digit()));
            prop_assert!(n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        }

        #[test]
        fn joined_arrays_parse_and_keep_every_element(xs in proptest::collection::vec(proptest::collection::vec(any::<i32>(), 0..5), 0..8)) {
            let texts: Vec<String> = xs.iter().map(|v| serde_json::to_string(v).unwrap()).collect();
            let joined = join_json_arrays(texts.iter().map(String::as_str));
            let parsed: Vec<i32> = serde_json::from_str(&joined).unwrap();
            let flat: Vec<i32> = xs.concat();
            prop_assert_eq!(parsed, flat);
        }

        #[test]
        fn delay_is_within_half_and_all_of_the_capped_doubling(attempts in 1u32..200, base in 1u64..100_000,
                                                             cap in 1u64..10_000_000, jitter in 0.0f64..=1.0) {
            let full = base.saturating_mul(1u64 << (attempts - 1).min(62)).min(cap);
            let d = retry_delay_ms(attempts, base, cap, jitter);
            prop_assert!(d >= full / 2 && d <= full);
            // more attempts never wait less (same jitter)
            prop_assert!(retry_delay_ms(attempts + 1, base, cap, jitter) >= d);
        }

        #[test]
        fn any_string_is_judged_without_panicking(s in ".{0,64}") {
            let _ = url_problem(&s);
        }
    }
}
