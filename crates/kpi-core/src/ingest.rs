//! Validation of metric records, shared by `kpi.record` and `kpi.record_batch`.
//!
//! Each failure names the field and, in a batch, the element's index, and
//! carries the SQLSTATE the extension raises it with.

use serde_json::Value;

/// Longest accepted metric name, as in the service pg_kpi replaces.
pub const MAX_METRIC_LEN: usize = 255;

#[derive(Debug, Clone, PartialEq)]
pub struct IngestError {
    /// Five-character SQLSTATE.
    pub sqlstate: &'static str,
    pub message: String,
    pub hint: Option<&'static str>,
}

impl IngestError {
    fn new(sqlstate: &'static str, message: String) -> Self {
        IngestError {
            sqlstate,
            message,
            hint: None,
        }
    }
    fn hint(mut self, h: &'static str) -> Self {
        self.hint = Some(h);
        self
    }
}

/// Where a field came from, for messages: "value" or "batch[3].value".
fn at(index: Option<usize>, field: &str) -> String {
    match index {
        Some(i) => format!("batch element {i}: \"{field}\""),
        None => format!("\"{field}\""),
    }
}

pub fn check_metric(index: Option<usize>, metric: Option<&str>) -> Result<(), IngestError> {
    match metric {
        None => Err(IngestError::new(
            "22004",
            format!("{} must not be null", at(index, "metric")),
        )),
        Some(m) if m.trim().is_empty() => Err(IngestError::new(
            "22023",
            format!("{} must not be empty", at(index, "metric")),
        )),
        Some(m) if m.chars().count() > MAX_METRIC_LEN => Err(IngestError::new(
            "22001",
            format!(
                "{} is {} characters long; the limit is {MAX_METRIC_LEN}",
                at(index, "metric"),
                m.chars().count()
            ),
        )),
        Some(_) => Ok(()),
    }
}

pub fn check_value(index: Option<usize>, value: Option<f64>) -> Result<f64, IngestError> {
    match value {
        None => Err(IngestError::new(
            "22004",
            format!("{} must not be null", at(index, "value")),
        )),
        Some(v) if !v.is_finite() => Err(IngestError::new(
            "22023",
            format!(
                "{} must be a finite number, got {}",
                at(index, "value"),
                crate::validate::fmt_float(v)
            ),
        )
        .hint("NaN and infinities cannot be aggregated; drop or clamp them before recording")),
        Some(v) => Ok(v),
    }
}

/// tags and metadata must be JSON objects (NULL means the default '{}').
pub fn check_object(
    index: Option<usize>,
    field: &str,
    v: Option<&Value>,
) -> Result<(), IngestError> {
    match v {
        None | Some(Value::Object(_)) => Ok(()),
        Some(other) => Err(not_object(index, field, kind(other))),
    }
}

/// The error for a tags or metadata value that is not an object; `kind` is
/// "an array", "a string"... or a jsonb_typeof() name.
pub fn not_object(index: Option<usize>, field: &str, kind: &str) -> IngestError {
    let kind = match kind {
        "array" => "an array",
        "string" => "a string",
        "number" => "a number",
        "boolean" => "a boolean",
        other => other,
    };
    IngestError::new(
        "22023",
        format!("{} must be a JSON object, got {kind}", at(index, field)),
    )
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The timestamp of a batch element, before the database parses it.
#[derive(Debug, Clone, PartialEq)]
pub enum Stamp {
    /// absent or null: now()
    Now,
    /// text in any format timestamptz accepts
    Text(String),
    /// seconds since the Unix epoch
    Epoch(f64),
    /// milliseconds since the Unix epoch (the `timestamp_ms` key)
    EpochMillis(f64),
}

/// Epoch numbers at or above this many seconds (year 5138) are almost always
/// milliseconds or microseconds taken as seconds; errors about them say so.
pub const LOOKS_LIKE_MILLIS: f64 = 1e11;

/// One validated element of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub metric: String,
    pub value: f64,
    pub ts: Stamp,
    pub tags: Value,
    pub metadata: Value,
}

/// The keys a batch element may have.
pub const KEYS: [&str; 8] = [
    "metric_name",
    "metric",
    "value",
    "timestamp",
    "ts",
    "timestamp_ms",
    "tags",
    "metadata",
];

/// Validates one element shaped as the replaced service sent them:
/// {"metric_name" or "metric", "value", "timestamp" (or "ts"; ISO text or
/// epoch seconds) or "timestamp_ms" (epoch milliseconds), "tags", "metadata"}.
pub fn parse_element(index: usize, v: &Value) -> Result<Record, IngestError> {
    let i = Some(index);
    let obj = match v {
        Value::Object(o) => o,
        other => {
            return Err(IngestError::new(
                "22023",
                format!(
                    "batch element {index} must be a JSON object, got {}",
                    kind(other)
                ),
            ))
        }
    };
    // a misspelled key ("timestmap") would silently mean now(): refuse what is not known
    if let Some(k) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
        let mut e = IngestError::new(
            "22023",
            format!("batch element {index}: unknown key \"{k}\""),
        );
        e.hint = Some("The keys are metric_name (or metric), value, timestamp (or ts), timestamp_ms, tags and metadata.");
        return Err(e);
    }
    let name = match (obj.get("metric_name"), obj.get("metric")) {
        (Some(a), Some(b)) if a != b => {
            return Err(IngestError::new(
                "22023",
                format!("batch element {index}: \"metric_name\" and \"metric\" disagree"),
            ))
        }
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => &Value::Null,
    };
    let metric = match name {
        Value::Null => None,
        Value::String(s) => Some(s.as_str()),
        other => {
            return Err(IngestError::new(
                "22023",
                format!(
                    "{} must be a string, got {}",
                    at(i, "metric_name"),
                    kind(other)
                ),
            ))
        }
    };
    check_metric(i, metric)?;
    let value = match obj.get("value") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(other) => {
            return Err(IngestError::new(
                "22023",
                format!("{} must be a number, got {}", at(i, "value"), kind(other)),
            ))
        }
    };
    let value = check_value(i, value)?;
    if obj.contains_key("timestamp_ms") && (obj.contains_key("timestamp") || obj.contains_key("ts"))
    {
        return Err(IngestError::new(
            "22023",
            format!(
                "batch element {index}: give either \"timestamp\" or \"timestamp_ms\", not both"
            ),
        ));
    }
    if let Some(ms) = obj.get("timestamp_ms").filter(|v| !v.is_null()) {
        let ts = match ms {
            Value::Number(n) => match n.as_f64() {
                Some(e) if e.is_finite() => Stamp::EpochMillis(e),
                _ => {
                    return Err(IngestError::new(
                        "22008",
                        format!("{} is out of range", at(i, "timestamp_ms")),
                    ))
                }
            },
            other => {
                return Err(IngestError::new(
                    "22023",
                    format!(
                        "{} must be a number of milliseconds since the Unix epoch, got {}",
                        at(i, "timestamp_ms"),
                        kind(other)
                    ),
                ))
            }
        };
        return finish(i, obj, metric, value, ts);
    }
    let ts = match obj.get("timestamp").or_else(|| obj.get("ts")) {
        None | Some(Value::Null) => Stamp::Now,
        Some(Value::String(s)) => Stamp::Text(s.clone()),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(e) if e.is_finite() => Stamp::Epoch(e),
            _ => {
                return Err(IngestError::new(
                    "22008",
                    format!("{} is out of range", at(i, "timestamp")),
                ))
            }
        },
        Some(other) => {
            return Err(IngestError::new(
                "22007",
                format!(
                    "{} must be a timestamp string or epoch seconds, got {}",
                    at(i, "timestamp"),
                    kind(other)
                ),
            ))
        }
    };
    finish(i, obj, metric, value, ts)
}

/// The tags and metadata of an element, and the record.
fn finish(
    i: Option<usize>,
    obj: &serde_json::Map<String, Value>,
    metric: Option<&str>,
    value: f64,
    ts: Stamp,
) -> Result<Record, IngestError> {
    let tags = obj.get("tags").filter(|t| !t.is_null());
    check_object(i, "tags", tags)?;
    let metadata = obj.get("metadata").filter(|t| !t.is_null());
    check_object(i, "metadata", metadata)?;
    Ok(Record {
        metric: metric.unwrap_or_default().to_string(),
        value,
        ts,
        tags: tags
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default())),
        metadata: metadata
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default())),
    })
}

/// Splits a batch (one object or an array of objects) into validated records.
pub fn parse_batch(batch: &Value, max: usize) -> Result<Vec<Record>, IngestError> {
    let items: Vec<&Value> = match batch {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![batch],
        other => {
            return Err(IngestError::new(
                "22023",
                format!(
                    "batch must be a JSON object or an array of objects, got {}",
                    kind(other)
                ),
            ))
        }
    };
    if items.len() > max {
        return Err(IngestError::new(
            "54000",
            format!(
                "batch has {} elements; kpi.max_batch_size is {max}",
                items.len()
            ),
        )
        .hint("split the batch, raise kpi.max_batch_size, or COPY into kpi.metrics"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, v)| parse_element(i, v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> IngestError {
        parse_batch(&v, 1000).unwrap_err()
    }

    #[test]
    fn accepts_service_shapes() {
        let r = parse_batch(
            &json!([{"metric_name": "api_response_time", "value": 120.5,
                      "timestamp": "2026-01-01T00:00:00Z", "tags": {"host": "a"}},
                     {"metric": "cpu", "value": 3, "timestamp": 1767225600}]),
            1000,
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].metric, "api_response_time");
        assert_eq!(r[0].ts, Stamp::Text("2026-01-01T00:00:00Z".into()));
        assert_eq!(r[1].value, 3.0);
        assert_eq!(r[1].ts, Stamp::Epoch(1767225600.0));
        assert_eq!(r[1].tags, json!({}));
        let ms = parse_batch(
            &json!({"metric": "x", "value": 1, "timestamp_ms": 1767225720123u64}),
            1000,
        )
        .unwrap();
        assert_eq!(ms[0].ts, Stamp::EpochMillis(1767225720123.0));
        let one = parse_batch(&json!({"metric": "x", "value": 1}), 1000).unwrap();
        assert_eq!(one[0].ts, Stamp::Now);
        assert!(parse_batch(&json!([]), 1000).unwrap().is_empty());
    }

    #[test]
    fn rejects_bad_elements_with_index() {
        let e = err(json!([{"metric": "a", "value": 1}, {"metric": "b", "value": null}]));
        assert_eq!(e.sqlstate, "22004");
        assert!(e.message.contains("batch element 1") && e.message.contains("value"));
        assert_eq!(err(json!([{"metric": "", "value": 1}])).sqlstate, "22023");
        assert_eq!(
            err(json!([{"metric": "x".repeat(256), "value": 1}])).sqlstate,
            "22001"
        );
        assert!(parse_batch(&json!([{"metric": "é".repeat(255), "value": 1}]), 10).is_ok());
        assert_eq!(err(json!([{"value": 1}])).sqlstate, "22004");
        assert_eq!(err(json!([{"metric": 5, "value": 1}])).sqlstate, "22023");
        assert_eq!(
            err(json!([{"metric": "a", "value": "1"}])).sqlstate,
            "22023"
        );
        let e = err(json!([{"metric": "a", "value": 1, "tags": [1]}]));
        assert!(
            e.message.contains("\"tags\" must be a JSON object"),
            "{}",
            e.message
        );
        let e = err(json!([{"metric": "a", "value": 1, "metadata": "x"}]));
        assert!(e.message.contains("metadata"));
        assert_eq!(
            err(json!([{"metric": "a", "value": 1, "timestamp": true}])).sqlstate,
            "22007"
        );
        assert_eq!(err(json!(["x"])).sqlstate, "22023");
        let typo = err(json!([{"metric": "a", "value": 1, "timestmap": "2026-01-01T00:00:00Z"}]));
        assert_eq!(typo.sqlstate, "22023");
        assert!(
            typo.message.contains("unknown key \"timestmap\""),
            "{}",
            typo.message
        );
        let both = err(json!([{"metric": "a", "value": 1, "timestamp": 1, "timestamp_ms": 1000}]));
        assert_eq!(both.sqlstate, "22023");
        assert!(both.message.contains("not both"), "{}", both.message);
        assert_eq!(
            err(json!([{"metric": "a", "value": 1, "timestamp_ms": "1767225720123"}])).sqlstate,
            "22023"
        );
        assert_eq!(err(json!(3)).sqlstate, "22023");
        assert_eq!(
            err(json!([{"metric_name": "a", "metric": "b", "value": 1}])).sqlstate,
            "22023"
        );
        let big: Vec<Value> = (0..3).map(|_| json!({"metric": "a", "value": 1})).collect();
        assert_eq!(
            parse_batch(&Value::Array(big), 2).unwrap_err().sqlstate,
            "54000"
        );
    }

    #[test]
    fn scalar_checks() {
        assert!(check_value(None, Some(f64::NAN)).is_err());
        assert!(check_value(None, Some(f64::NEG_INFINITY)).is_err());
        assert_eq!(check_value(None, None).unwrap_err().sqlstate, "22004");
        assert_eq!(
            check_metric(None, Some("  ")).unwrap_err().sqlstate,
            "22023"
        );
        assert!(check_object(None, "tags", Some(&json!({"a": 1}))).is_ok());
        assert!(check_object(None, "tags", Some(&json!(null))).is_err());
    }
}
