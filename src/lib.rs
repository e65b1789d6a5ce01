//! pg_kpi: a metrics and KPI engine inside PostgreSQL.
//!
//! This file only wires modules, GUCs and `_PG_init`; the algorithms live in
//! the `kpi-core` crate and each SQL family has its own module.

use pgrx::prelude::*;

mod agg;
mod business;
mod definitions;
mod errors;
mod guc;
mod ingest;
mod launcher;
mod models;
mod rollup;
mod severity;
mod sketch;
mod stats;
mod trend;
mod types;
mod worker;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
extension_sql_file!("../sql/types.sql", name = "types", requires = ["schema"]);
extension_sql_file!("../sql/ingest.sql", name = "ingest", requires = ["schema"]);
extension_sql_file!(
    "../sql/alerts.sql",
    name = "alerts",
    requires = ["schema", severity::_note_unknown_metric]
);
extension_sql_file!(
    "../sql/business.sql",
    name = "business",
    requires = ["schema"]
);
extension_sql_file!(
    "../sql/jobs.sql",
    name = "jobs",
    requires = ["schema", "alerts", launcher::_start_worker]
);
extension_sql_file!("../sql/aggregates.sql", name = "aggregates", finalize);
extension_sql_file!(
    "../sql/rollups.sql",
    name = "rollups",
    requires = ["jobs", "aggregates", "ingest"]
);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    guc::init();
    if unsafe { pgrx::pg_sys::process_shared_preload_libraries_in_progress } {
        guc::init_postmaster();
        launcher::init_preloaded();
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
