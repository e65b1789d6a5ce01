//! Business formulas in SQL. Money arguments and results are `numeric`,
//! computed with rust_decimal (28 significant digits); never float.

use crate::pg::agg;
use crate::pg::errors::{raise, OrRaise};
use kpi_core::business as biz;
use rust_decimal::Decimal;

use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::prelude::*;
use pgrx::{pg_sys, AnyNumeric, Internal};

/// A numeric argument as a Decimal; NaN, infinities and more than 28
/// significant digits are errors naming the argument.
fn dec(func: &str, arg: &str, n: &AnyNumeric) -> Decimal {
    let s = n.to_string();
    match Decimal::from_str_exact(&s) {
        Ok(d) => d,
        Err(_) if matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity") => raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{func}: {arg} must be a finite number, got {s}"),
            None,
            None,
        ),
        Err(_) => raise(
            PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            format!("{func}: {arg} is out of range: {s}"),
            None,
            Some("money values are limited to 28 significant digits"),
        ),
    }
}

fn num(d: Decimal) -> AnyNumeric {
    AnyNumeric::try_from(d.to_string().as_str())
        .unwrap_or_else(|e| error!("pg_kpi: numeric conversion of {d}: {e}"))
}

/// ROI in percent: (revenue − investment) / investment × 100; NULL for a zero investment.
#[pg_extern(immutable, strict, parallel_safe)]
fn roi(revenue: AnyNumeric, investment: AnyNumeric) -> Option<AnyNumeric> {
    const F: &str = "kpi.roi";
    biz::roi(
        dec(F, "revenue", &revenue),
        dec(F, "investment", &investment),
    )
    .or_raise(F)
    .map(num)
}

/// Days until revenue_per_day covers the investment; NULL when revenue_per_day <= 0.
#[pg_extern(immutable, strict, parallel_safe)]
fn break_even_days(investment: AnyNumeric, revenue_per_day: AnyNumeric) -> Option<AnyNumeric> {
    const F: &str = "kpi.break_even_days";
    biz::break_even_days(
        dec(F, "investment", &investment),
        dec(F, "revenue_per_day", &revenue_per_day),
    )
    .or_raise(F)
    .map(num)
}

fn flows(func: &str, cash_flows: &Array<AnyNumeric>) -> Vec<Decimal> {
    cash_flows
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Some(v) => dec(func, "cash_flows", &v),
            None => raise(
                PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                format!("{func}: cash_flows element {} is NULL", i + 1),
                None,
                Some("use 0 for a period without cash flow"),
            ),
        })
        .collect()
}

/// Whole periods before the investment is recovered plus the fraction of the recovery period.
#[pg_extern(immutable, strict, parallel_safe, name = "payback_period")]
fn payback_period(cash_flows: Array<AnyNumeric>, investment: AnyNumeric) -> Option<AnyNumeric> {
    const F: &str = "kpi.payback_period";
    biz::payback_period(
        &flows(F, &cash_flows),
        dec(F, "investment", &investment),
        None,
    )
    .or_raise(F)
    .map(num)
}

/// Discounted payback: the cash flow of period k is divided by (1 + discount_rate)^k.
#[pg_extern(immutable, strict, parallel_safe, name = "payback_period")]
fn payback_period_discounted(
    cash_flows: Array<AnyNumeric>,
    investment: AnyNumeric,
    discount_rate: f64,
) -> Option<AnyNumeric> {
    const F: &str = "kpi.payback_period";
    biz::payback_period(
        &flows(F, &cash_flows),
        dec(F, "investment", &investment),
        Some(discount_rate),
    )
    .or_raise(F)
    .map(num)
}

/// The replaced formula: avg_monthly_revenue / max(churn_probability, 0.01).
#[pg_extern(immutable, strict, parallel_safe)]
fn clv_simple(avg_monthly_revenue: AnyNumeric, churn_probability: f64) -> AnyNumeric {
    const F: &str = "kpi.clv_simple";
    num(biz::clv_simple(
        dec(F, "avg_monthly_revenue", &avg_monthly_revenue),
        churn_probability,
    )
    .or_raise(F))
}

/// arpu · gross_margin / (churn_rate + discount_rate): discounted geometric retention.
#[pg_extern(immutable, strict, parallel_safe)]
fn clv(
    arpu: AnyNumeric,
    churn_rate: f64,
    gross_margin: default!(f64, 1.0),
    discount_rate: default!(f64, 0.0),
) -> Option<AnyNumeric> {
    const F: &str = "kpi.clv";
    biz::clv(
        dec(F, "arpu", &arpu),
        churn_rate,
        gross_margin,
        discount_rate,
    )
    .or_raise(F)
    .map(num)
}

/// churned / customers_at_start; NULL for an empty start.
#[pg_extern(immutable, strict, parallel_safe)]
fn churn_rate(customers_at_start: i64, churned: i64) -> Option<f64> {
    biz::churn_rate(customers_at_start, churned).or_raise("kpi.churn_rate")
}

/// The replaced weighted churn heuristic, capped at 0.99.
#[pg_extern(immutable, strict, parallel_safe)]
fn churn_probability(
    days_inactive: f64,
    revenue_momentum: f64,
    support_issues: f64,
    engagement: f64,
) -> f64 {
    biz::churn_probability(days_inactive, revenue_momentum, support_issues, engagement)
        .or_raise("kpi.churn_probability")
}

/// 0.3 login + 0.3 min(features/10, 1) + 0.2 [paid in 30 days] + 0.2 satisfaction.
#[pg_extern(immutable, strict, parallel_safe)]
fn engagement_score(
    login_frequency: f64,
    features_used: i32,
    paid_last_30_days: bool,
    support_satisfaction: f64,
) -> f64 {
    biz::engagement_score(
        login_frequency,
        features_used as i64,
        paid_last_30_days,
        support_satisfaction,
    )
    .or_raise("kpi.engagement_score")
}

/// 1 − (1 − monthly)^12.
#[pg_extern(immutable, strict, parallel_safe)]
fn annualize_churn(monthly: f64) -> f64 {
    biz::annualize_churn(monthly).or_raise("kpi.annualize_churn")
}

/// Months to earn back the acquisition cost: cac / (arpa · gross_margin); NULL when never.
#[pg_extern(immutable, strict, parallel_safe)]
fn cac_payback_months(cac: AnyNumeric, arpa: AnyNumeric, gross_margin: f64) -> Option<AnyNumeric> {
    const F: &str = "kpi.cac_payback_months";
    biz::cac_payback_months(dec(F, "cac", &cac), dec(F, "arpa", &arpa), gross_margin)
        .or_raise(F)
        .map(num)
}

/// LTV / CAC; NULL for a zero CAC.
#[pg_extern(immutable, strict, parallel_safe)]
fn ltv_cac_ratio(ltv: AnyNumeric, cac: AnyNumeric) -> Option<AnyNumeric> {
    const F: &str = "kpi.ltv_cac_ratio";
    biz::ltv_cac_ratio(dec(F, "ltv", &ltv), dec(F, "cac", &cac))
        .or_raise(F)
        .map(num)
}

/// (current − previous) / previous; NULL when previous is 0.
#[pg_extern(immutable, strict, parallel_safe)]
fn growth(current: AnyNumeric, previous: AnyNumeric) -> Option<f64> {
    const F: &str = "kpi.growth";
    biz::growth(dec(F, "current", &current), dec(F, "previous", &previous)).or_raise(F)
}

// ---- kpi.payback_days(ts, amount, investment, start) --------------------------------

fn micros(func: &str, arg: &str, ts: TimestampWithTimeZone) -> i64 {
    if ts.is_infinity() || ts.is_neg_infinity() {
        raise(
            PgSqlErrorCode::ERRCODE_DATETIME_FIELD_OVERFLOW,
            format!("{func}: {arg} must be a finite timestamp"),
            None,
            None,
        )
    }
    ts.into_inner()
}

#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn payback_days_trans(
    state: Internal,
    ts: Option<TimestampWithTimeZone>,
    amount: Option<AnyNumeric>,
    investment: Option<AnyNumeric>,
    start: Option<TimestampWithTimeZone>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    const F: &str = "kpi.payback_days";
    let mut state = state;
    let (Some(ts), Some(amount)) = (ts, amount) else {
        return state;
    };
    let (Some(investment), Some(start)) = (investment, start) else {
        raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{F}: investment and start must not be NULL"),
            None,
            None,
        )
    };
    // SAFETY: fcinfo is this aggregate call's; the state is created in and owned by its aggregate memory context
    let st = unsafe { agg::state_mut(&mut state, fcinfo, biz::Payback::default) };
    st.add(
        micros(F, "ts", ts),
        dec(F, "amount", &amount),
        dec(F, "investment", &investment),
        micros(F, "start", start),
    )
    .or_raise(F);
    state
}

crate::state_support!(
    biz::Payback,
    "kpi.payback_days",
    payback_days_combine,
    payback_days_serialize,
    payback_days_deserialize,
    |x, y| x.merge(&y).or_raise("kpi.payback_days")
);

#[pg_extern(immutable, strict, parallel_safe, schema = "kpi_internal")]
fn payback_days_final(state: Internal) -> Option<AnyNumeric> {
    // SAFETY: the state was made by this aggregate's own transition function, so it holds that type
    unsafe { agg::get::<biz::Payback>(&state) }?.days().map(num)
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn money_stays_decimal() {
        let r = Spi::get_one::<String>("SELECT kpi.roi(0.1, 0.3)::text").unwrap();
        assert_eq!(r.as_deref(), Some("-66.66666666666666666666666667"));
        let p = Spi::get_one::<String>(
            "SELECT kpi.payback_period(array[0.1, 0.2, 0.3]::numeric[], 0.3)::text",
        )
        .unwrap();
        assert_eq!(p.as_deref(), Some("2"));
    }

    #[pg_test]
    fn payback_days_parallel_matches_serial() {
        Spi::run(
            "CREATE TABLE pay AS SELECT timestamptz '2026-01-01' + make_interval(hours => g) AS ts,
                    (g % 7)::numeric / 10 AS amount FROM generate_series(1, 100000) g;
             ANALYZE pay;
             SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0;
             SET LOCAL min_parallel_table_scan_size = 0; SET LOCAL max_parallel_workers_per_gather = 2;",
        )
        .unwrap();
        let q = "SELECT kpi.payback_days(ts, amount, 5000, '2026-01-01')::text FROM pay";
        crate::pg::assert_parallel(q);
        let par = Spi::get_one::<String>(q).unwrap();
        Spi::run("SET LOCAL max_parallel_workers_per_gather = 0").unwrap();
        let ser = Spi::get_one::<String>(q).unwrap();
        assert_eq!(par, ser);
        // 0.3 per hour on average: 5000 is reached after about 16,667 hours
        let days: f64 = ser.unwrap().parse().unwrap();
        assert!((days - 16_667.0 / 24.0).abs() < 1.0, "{days}");
    }

    #[pg_test(
        error = "kpi.payback_days: investment: investment and start must be the same for every row of a group"
    )]
    fn payback_days_rejects_varying_investment() {
        Spi::run(
            "SELECT kpi.payback_days(now(), 1, i, now()) FROM (VALUES (1::numeric), (2)) v(i)",
        )
        .unwrap();
    }
}
