//! pg_kpi: a metrics and KPI engine inside PostgreSQL.
//!
//! This file only wires modules, GUCs and `_PG_init`; the algorithms live in
//! the `kpi-core` crate and each SQL family has its own module.

use pgrx::prelude::*;

// plumbing shared by the features
mod pg;

// features, named as in crates/kpi-core/src and sql/
mod bi;
mod business;
mod capacity;
mod delivery;
mod ingest;
mod jobs;
mod models;
mod reports;
mod rollups;
mod rules;
mod severity;
mod sketch;
mod stats;
mod targets;
mod trend;

::pgrx::pg_module_magic!(name, version);

/// The schema of pg_kpi's internals (made in sql/bootstrap.sql); Rust
/// functions join it with `#[pg_extern(schema = "kpi_internal")]`.
#[pg_schema]
mod kpi_internal {}

// The SQL of each feature, in sql/<feature>.sql; a feature whose Rust
// functions take or return its own types has them in sql/<feature>.sql and
// its aggregates (over those Rust functions) in sql/<feature>_aggregates.sql.
// `requires` orders each file after what it uses; ARCHITECTURE.md has the map.
extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
extension_sql_file!("../sql/finish.sql", name = "finish", finalize);
extension_sql_file!(
    "../sql/ingest.sql",
    name = "ingest",
    requires = ["bootstrap", ingest::record, ingest::record_batch]
);
extension_sql_file!(
    "../sql/severity.sql",
    name = "severity",
    requires = [
        "bootstrap",
        severity::_note_unknown_metric,
        severity::breach_edge,
        severity::crossed_threshold,
        severity::severity_points,
        severity::check_thresholds,
        severity::health_score_final,
        severity::health_status,
        severity::overall_grade_final,
        severity::overall_grade_trans,
        severity::points_combine,
        severity::points_deserialize,
        severity::points_serialize,
        severity::breach_severity,
        severity::grade,
        severity::performance_grade
    ]
);
extension_sql_file!(
    "../sql/jobs.sql",
    name = "jobs",
    requires = [
        "bootstrap",
        jobs::launcher::_start_worker,
        jobs::launcher::worker_status,
        jobs::cron_next_local,
        jobs::check_cron,
        jobs::run_sql_as
    ]
);
extension_sql_file!(
    "../sql/partitions.sql",
    name = "partitions",
    requires = ["jobs", "ingest"]
);
extension_sql_file!(
    "../sql/retention.sql",
    name = "retention",
    requires = ["jobs"]
);
extension_sql_file!(
    "../sql/alerts.sql",
    name = "alerts",
    requires = ["severity", "ingest", "jobs"]
);
extension_sql_file!(
    "../sql/business.sql",
    name = "business",
    requires = [
        "bootstrap",
        business::break_even_days,
        business::churn_probability,
        business::churn_rate,
        business::clv_simple,
        business::payback_days_combine,
        business::payback_days_deserialize,
        business::payback_days_final,
        business::payback_days_serialize,
        business::payback_days_trans,
        business::roi,
        business::annualize_churn,
        business::cac_payback_months,
        business::clv,
        business::engagement_score,
        business::growth,
        business::ltv_cac_ratio,
        business::payback_period,
        business::payback_period_discounted
    ]
);
extension_sql_file!(
    "../sql/sketch.sql",
    name = "sketch",
    requires = ["bootstrap"]
);
extension_sql_file!(
    "../sql/sketch_aggregates.sql",
    name = "sketch_aggregates",
    requires = [
        "sketch",
        sketch::sketch_combine,
        sketch::sketch_deserialize,
        sketch::sketch_final,
        sketch::sketch_merge_trans,
        sketch::sketch_serialize,
        sketch::sketch_trans_err,
        sketch::approx_percentiles,
        sketch::approx_rank,
        sketch::sketch_count,
        sketch::sketch_min,
        sketch::sketch_max,
        sketch::sketch_mean,
        sketch::sketch_error
    ]
);
extension_sql_file!("../sql/trend.sql", name = "trend", requires = ["bootstrap"]);
extension_sql_file!(
    "../sql/trend_aggregates.sql",
    name = "trend_aggregates",
    requires = [
        "trend",
        trend::trend_combine,
        trend::trend_deserialize,
        trend::trend_final,
        trend::trend_merge_trans,
        trend::trend_serialize,
        trend::trend_trans_xy,
        trend::slope,
        trend::intercept,
        trend::r2,
        trend::correlation,
        trend::trend_count,
        trend::forecast_at,
        trend::forecast_x,
        trend::direction,
        trend::direction_per,
        trend::slope_per_sample,
        trend::sample_direction,
        trend::strength,
        trend::trend_slope,
        trend::prediction_interval
    ]
);
extension_sql_file!("../sql/stats.sql", name = "stats", requires = ["bootstrap"]);
extension_sql_file!(
    "../sql/stats_aggregates.sql",
    name = "stats_aggregates",
    requires = [
        "stats",
        stats::correlation_combine,
        stats::correlation_deserialize,
        stats::correlation_final,
        stats::correlation_serialize,
        stats::correlation_trans,
        stats::correlation_trans2,
        stats::exact_combine,
        stats::exact_deserialize,
        stats::exact_serialize,
        stats::percentile_final,
        stats::percentile_trans,
        stats::percentiles_final,
        stats::summary_combine,
        stats::summary_deserialize,
        stats::summary_final,
        stats::summary_serialize,
        stats::summary_sketch_combine,
        stats::summary_sketch_deserialize,
        stats::summary_sketch_final,
        stats::summary_sketch_serialize,
        stats::summary_sketch_trans,
        stats::summary_trans,
        stats::zscore,
        stats::anomaly_level,
        stats::welch_test
    ]
);
extension_sql_file!(
    "../sql/models.sql",
    name = "models",
    requires = ["bootstrap"]
);
extension_sql_file!(
    "../sql/models_aggregates.sql",
    name = "models_aggregates",
    requires = [
        "models",
        models::bgnbd_combine,
        models::bgnbd_deserialize,
        models::bgnbd_final,
        models::bgnbd_serialize,
        models::bgnbd_trans,
        models::bgnbd_trans_pen,
        models::gamma_gamma_combine,
        models::gamma_gamma_deserialize,
        models::gamma_gamma_final,
        models::gamma_gamma_serialize,
        models::gamma_gamma_trans,
        models::sbg_combine,
        models::sbg_deserialize,
        models::sbg_final,
        models::sbg_serialize,
        models::sbg_trans,
        models::p_alive,
        models::expected_purchases_given,
        models::expected_purchases_new,
        models::expected_spend,
        models::clv_bgnbd,
        models::sbg_survival,
        models::sbg_retention,
        models::sbg_churn_probability
    ]
);
extension_sql_file!(
    "../sql/rollups.sql",
    name = "rollups",
    requires = [
        "ingest",
        "jobs",
        "retention",
        "sketch",
        "trend",
        sketch::approx_percentile,
        rollups::rollup_buckets_combine,
        rollups::rollup_buckets_deserialize,
        rollups::rollup_buckets_serialize,
        rollups::rollup_combine,
        rollups::rollup_deserialize,
        rollups::rollup_serialize,
        trend::slope
    ]
);
extension_sql_file!(
    "../sql/rules.sql",
    name = "rules",
    requires = [
        "alerts",
        "jobs",
        "severity",
        "rollups",
        rules::rule_step,
        rules::render_template_text
    ]
);
extension_sql_file!(
    "../sql/delivery.sql",
    name = "delivery",
    requires = [
        "alerts",
        "rules",
        delivery::receiver_url_problem,
        delivery::deliver_now,
        delivery::wake_delivery,
        delivery::label_name,
        delivery::delivery_body_text
    ]
);
extension_sql_file!(
    "../sql/privileges.sql",
    name = "privileges",
    requires = [
        "ingest",
        "severity",
        "jobs",
        "partitions",
        "retention",
        "alerts",
        "business",
        "sketch",
        "sketch_aggregates",
        "trend",
        "trend_aggregates",
        "stats",
        "stats_aggregates",
        "models",
        "models_aggregates",
        "rollups",
        "rules",
        "delivery",
        "bi",
        "capacity",
        "targets",
        "reports"
    ]
);
extension_sql_file!(
    "../sql/bi.sql",
    name = "bi",
    requires = [
        "reports",
        "alerts",
        "rules",
        "delivery",
        "rollups",
        "jobs",
        "targets",
        bi::metric_chart_svg_of,
        bi::severity_chart_svg,
        bi::alert_timeline_svg_of
    ]
);
extension_sql_file!(
    "../sql/capacity.sql",
    name = "capacity",
    requires = [
        "reports",
        capacity::efficiency_score,
        capacity::growth_advice,
        capacity::load_test_grade
    ]
);
extension_sql_file!(
    "../sql/targets.sql",
    name = "targets",
    requires = [
        "severity",
        "reports",
        targets::check_kpi_target,
        targets::check_kpi_rate,
        targets::kpi_rate_target,
        targets::kpi_progress,
        targets::kpi_state
    ]
);
extension_sql_file!(
    "../sql/reports.sql",
    name = "reports",
    requires = [
        "rollups",
        "severity",
        "business",
        "sketch_aggregates",
        "trend_aggregates",
        reports::sparkline,
        reports::bar
    ]
);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // pgrx appends a Rust backtrace to an error's DETAIL when these are set in
    // the server's environment; users must never see one
    // SAFETY: PostgreSQL processes are single-threaded while loading a library
    unsafe {
        std::env::remove_var("RUST_BACKTRACE");
        std::env::remove_var("RUST_LIB_BACKTRACE");
    }
    pg::guc::init();
    // SAFETY: a plain global of the postmaster, read during _PG_init
    if unsafe { pgrx::pg_sys::process_shared_preload_libraries_in_progress } {
        pg::guc::init_postmaster();
        jobs::launcher::init_preloaded();
    }
}

#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
