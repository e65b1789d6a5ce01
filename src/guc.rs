//! Configuration settings (GUCs). Each is documented in the README.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};

/// `kpi.max_batch_size`: most elements `kpi.record_batch` accepts in one call.
pub static MAX_BATCH_SIZE: GucSetting<i32> = GucSetting::<i32>::new(1000);

pub fn init() {
    GucRegistry::define_int_guc(
        c"kpi.max_batch_size",
        c"Largest number of elements kpi.record_batch accepts in one call.",
        c"Larger batches are rejected with SQLSTATE 54000; use COPY into kpi.metrics for bulk loads.",
        &MAX_BATCH_SIZE,
        1,
        1_000_000,
        GucContext::Userset,
        GucFlags::default(),
    );
}
