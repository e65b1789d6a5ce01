//! Plumbing shared by the features: aggregate state handling and fmgr
//! helpers, error raising, GUC registration, and the stored binary types'
//! encoding and I/O.

pub mod agg;
pub mod bgw;
pub mod errors;
pub mod guc;
pub mod json;
pub mod stored;

/// A jsonb argument's object, or None for NULL or any other JSON value;
/// a value serde_json cannot hold raises (see `json::JsonbArg::parse`).
pub fn json_object(
    func: &str,
    arg: &str,
    j: Option<json::JsonbArg>,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    match j?.parse(func, arg) {
        serde_json::Value::Object(m) => Some(m),
        _ => None,
    }
}

/// For #[pg_test]s that compare parallel with serial results: fails unless
/// the query actually ran a parallel plan (workers launched, partial
/// aggregation), so a planner that stays serial cannot make them pass.
#[cfg(any(test, feature = "pg_test"))]
pub fn assert_parallel(query: &str) {
    use pgrx::prelude::*;
    let plan = Spi::get_one::<pgrx::Json>(&format!("EXPLAIN (ANALYZE, FORMAT JSON) {query}"))
        .expect("EXPLAIN runs")
        .expect("EXPLAIN returns a plan");
    let text = plan.0.to_string();
    let launched = text.split("\"Workers Launched\":").skip(1).any(|rest| {
        rest.trim_start()
            .chars()
            .next()
            .is_some_and(|c| ('1'..='9').contains(&c))
    });
    assert!(
        launched && text.contains("\"Partial Mode\":\"Partial\""),
        "no parallel plan ran for {query}: {text}"
    );
}
