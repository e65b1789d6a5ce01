//! Validation behind kpi.metric_definitions (called by its trigger).

use crate::errors::{code, raise};
use kpi_core::thresholds;
use pgrx::prelude::*;

/// Raises an error when a definition's direction is unknown or its
/// thresholds are not monotone in that direction; otherwise does nothing.
#[pg_extern(immutable, parallel_safe)]
fn check_thresholds(
    metric: Option<&str>,
    direction: Option<&str>,
    optimal: Option<f64>,
    good: Option<f64>,
    warning: Option<f64>,
    critical: Option<f64>,
) {
    // a NULL metric is left to the table's NOT NULL constraint (23502)
    let Some(metric) = metric else { return };
    let direction = direction.unwrap_or("lower_is_better");
    if let Err((state, msg)) =
        thresholds::check(metric, direction, [optimal, good, warning, critical])
    {
        raise(code(state), msg, None, Some("for lower_is_better metrics use optimal <= good <= warning <= critical; for higher_is_better the reverse"))
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn accepts_both_directions() {
        Spi::run(
            "INSERT INTO kpi.metric_definitions (metric, direction, optimal, good, warning, critical)
             VALUES ('api_response_time', 'lower_is_better', 100, 200, 500, 1000),
                    ('system_availability', 'higher_is_better', 99.99, 99.95, 99.90, 99.80),
                    ('throughput_rps', 'higher_is_better', NULL, 1000, 500, 100)",
        )
        .unwrap();
        let n = Spi::get_one::<i64>("SELECT count(*) FROM kpi.metric_definitions").unwrap();
        assert_eq!(n, Some(3));
    }

    #[pg_test(
        error = "metric \"api\": thresholds out of order for a lower_is_better metric: critical (400) is below warning (500)"
    )]
    fn rejects_out_of_order() {
        Spi::run(
            "INSERT INTO kpi.metric_definitions (metric, optimal, good, warning, critical)
             VALUES ('api', 100, 200, 500, 400)",
        )
        .unwrap();
    }

    #[pg_test(
        error = "metric \"api\": thresholds out of order for a higher_is_better metric: good (99.99) is above optimal (99.9)"
    )]
    fn rejects_out_of_order_on_update() {
        Spi::run(
            "INSERT INTO kpi.metric_definitions (metric, direction, optimal, good)
             VALUES ('api', 'higher_is_better', 99.9, 99.5)",
        )
        .unwrap();
        Spi::run("UPDATE kpi.metric_definitions SET good = 99.99 WHERE metric = 'api'").unwrap();
    }
}
