//! Configuration settings (GUCs). Each is documented in the README.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};

/// `kpi.max_batch_size`: most elements `kpi.record_batch` accepts in one call.
pub static MAX_BATCH_SIZE: GucSetting<i32> = GucSetting::<i32>::new(1000);

/// `kpi.alert_cooldown`: seconds; the default quiet period of metrics without their own alert_cooldown.
pub static ALERT_COOLDOWN: GucSetting<i32> = GucSetting::<i32>::new(300);

/// `kpi.trigger_alerts`: whether the kpi.metrics trigger raises alerts.
pub static TRIGGER_ALERTS: GucSetting<bool> = GucSetting::<bool>::new(true);

pub fn init() {
    GucRegistry::define_int_guc(
        c"kpi.alert_cooldown",
        c"Default alert cooldown for metrics whose definition leaves alert_cooldown NULL.",
        c"A breach within this time of an open alert's last breach is counted in that alert; a later one resolves it and opens a new alert.",
        &ALERT_COOLDOWN,
        0,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_bool_guc(
        c"kpi.trigger_alerts",
        c"Whether inserts into kpi.metrics raise alerts.",
        c"Off skips the alert trigger's work (for example during a backfill) without dropping the trigger.",
        &TRIGGER_ALERTS,
        GucContext::Userset,
        GucFlags::default(),
    );
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
