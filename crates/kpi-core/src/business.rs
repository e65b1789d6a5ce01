//! Business formulas: ROI, break-even, payback, CLV, churn, engagement, SaaS
//! ratios. Money is `Decimal` end to end; a quantity that is undefined (a
//! division by zero, a never-recovered investment) is `None`, never an
//! infinity or an error. Arguments outside their domain are errors.

use crate::{CoreError, CoreResult};
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::Decimal;

fn dec(arg: &'static str, v: f64) -> CoreResult<Decimal> {
    Decimal::from_f64(v).ok_or_else(|| {
        CoreError::range(
            arg,
            format!("{v} does not fit a numeric of 28 significant digits"),
        )
    })
}

fn unit(arg: &'static str, v: f64) -> CoreResult<f64> {
    if v.is_nan() || !(0.0..=1.0).contains(&v) {
        return Err(CoreError::invalid(
            arg,
            format!(
                "must be between 0 and 1, got {}",
                crate::validate::fmt_float(v)
            ),
        ));
    }
    Ok(v)
}

fn nonneg_f(arg: &'static str, v: f64) -> CoreResult<f64> {
    if !(v.is_finite() && v >= 0.0) {
        return Err(CoreError::invalid(
            arg,
            format!(
                "must be a finite number >= 0, got {}",
                crate::validate::fmt_float(v)
            ),
        ));
    }
    Ok(v)
}

fn nonneg_d(arg: &'static str, v: Decimal) -> CoreResult<Decimal> {
    if v.is_sign_negative() && !v.is_zero() {
        return Err(CoreError::invalid(arg, format!("must be >= 0, got {v}")));
    }
    Ok(v)
}

fn overflow(arg: &'static str) -> CoreError {
    CoreError::range(arg, "numeric overflow (more than 28 significant digits)")
}

/// ROI in percent: (revenue − investment) / investment × 100; None for a zero investment.
pub fn roi(revenue: Decimal, investment: Decimal) -> CoreResult<Option<Decimal>> {
    nonneg_d("investment", investment)?;
    if investment.is_zero() {
        return Ok(None);
    }
    let r = (revenue - investment)
        .checked_div(investment)
        .and_then(|q| q.checked_mul(Decimal::ONE_HUNDRED))
        .ok_or_else(|| overflow("roi"))?;
    Ok(Some(r.normalize()))
}

/// Days until revenue at `revenue_per_day` covers the investment; None when it never does.
pub fn break_even_days(
    investment: Decimal,
    revenue_per_day: Decimal,
) -> CoreResult<Option<Decimal>> {
    nonneg_d("investment", investment)?;
    if revenue_per_day <= Decimal::ZERO {
        return Ok(None);
    }
    Ok(Some(
        investment
            .checked_div(revenue_per_day)
            .ok_or_else(|| overflow("break_even_days"))?
            .normalize(),
    ))
}

/// Whole periods before recovery plus the recovered fraction of the recovery
/// period; with a discount rate the cash flow of period k is divided by
/// (1 + rate)^k. None when the investment is never recovered.
pub fn payback_period(
    cash_flows: &[Decimal],
    investment: Decimal,
    discount_rate: Option<f64>,
) -> CoreResult<Option<Decimal>> {
    nonneg_d("investment", investment)?;
    if investment.is_zero() {
        return Ok(Some(Decimal::ZERO));
    }
    let factor = match discount_rate {
        None => None,
        Some(r) if r.is_finite() && r > -1.0 => Some(dec("discount_rate", 1.0 + r)?),
        Some(r) => {
            return Err(CoreError::invalid(
                "discount_rate",
                format!(
                    "must be a finite number > -1, got {}",
                    crate::validate::fmt_float(r)
                ),
            ))
        }
    };
    let mut remaining = investment;
    let mut divisor = Decimal::ONE;
    for (k, cf) in cash_flows.iter().enumerate() {
        let flow = match factor {
            None => *cf,
            Some(f) => {
                divisor = divisor
                    .checked_mul(f)
                    .ok_or_else(|| overflow("discount_rate"))?;
                cf.checked_div(divisor)
                    .ok_or_else(|| overflow("cash_flows"))?
            }
        };
        if flow > Decimal::ZERO && flow >= remaining {
            let frac = remaining
                .checked_div(flow)
                .ok_or_else(|| overflow("cash_flows"))?;
            return Ok(Some((Decimal::from(k as u64) + frac).normalize()));
        }
        remaining -= flow;
    }
    Ok(None)
}

/// The replaced service's CLV: average monthly revenue / max(churn, 0.01).
pub fn clv_simple(avg_monthly_revenue: Decimal, churn_probability: f64) -> CoreResult<Decimal> {
    let c = unit("churn_probability", churn_probability)?.max(0.01);
    avg_monthly_revenue
        .checked_div(dec("churn_probability", c)?)
        .map(|v| v.normalize())
        .ok_or_else(|| overflow("clv_simple"))
}

/// Margin-adjusted, discounted CLV with geometric retention: revenue `arpu`
/// at the end of each period t = 1, 2, ..., retained with probability
/// (1 − churn)^(t−1), discounted by (1 + discount)^t. The series sums to
/// arpu · margin / (churn + discount); None when both are 0.
pub fn clv(
    arpu: Decimal,
    churn_rate: f64,
    gross_margin: f64,
    discount_rate: f64,
) -> CoreResult<Option<Decimal>> {
    let c = unit("churn_rate", churn_rate)?;
    let m = unit("gross_margin", gross_margin)?;
    let d = nonneg_f("discount_rate", discount_rate)?;
    if c + d == 0.0 {
        return Ok(None);
    }
    let v = arpu
        .checked_mul(dec("gross_margin", m)?)
        .and_then(|x| x.checked_div(Decimal::from_f64(c + d)?))
        .ok_or_else(|| overflow("clv"))?;
    Ok(Some(v.normalize()))
}

/// churned / customers_at_start; None for an empty start.
pub fn churn_rate(customers_at_start: i64, churned: i64) -> CoreResult<Option<f64>> {
    if customers_at_start < 0 {
        return Err(CoreError::invalid(
            "customers_at_start",
            format!("must be >= 0, got {customers_at_start}"),
        ));
    }
    if churned < 0 || churned > customers_at_start {
        return Err(CoreError::invalid(
            "churned",
            format!(
                "must be between 0 and customers_at_start ({customers_at_start}), got {churned}"
            ),
        ));
    }
    Ok((customers_at_start > 0).then(|| churned as f64 / customers_at_start as f64))
}

/// The replaced weighted heuristic: 0.3·min(days_inactive/30, 1) + 0.3·max(0, 1 − momentum)
/// + 0.2·support_issues + 0.2·max(0, 1 − engagement), capped at 0.99.
pub fn churn_probability(
    days_inactive: f64,
    revenue_momentum: f64,
    support_issues: f64,
    engagement: f64,
) -> CoreResult<f64> {
    let d = nonneg_f("days_inactive", days_inactive)?;
    let m = nonneg_f("revenue_momentum", revenue_momentum)?;
    let s = unit("support_issues", support_issues)?;
    let e = unit("engagement", engagement)?;
    let p =
        0.3 * (d / 30.0).min(1.0) + 0.3 * (1.0 - m).max(0.0) + 0.2 * s + 0.2 * (1.0 - e).max(0.0);
    Ok(p.min(0.99))
}

/// 0.3·login_frequency + 0.3·min(features_used/10, 1) + 0.2·[paid in the last 30 days]
/// + 0.2·support_satisfaction.
pub fn engagement_score(
    login_frequency: f64,
    features_used: i64,
    paid_last_30_days: bool,
    support_satisfaction: f64,
) -> CoreResult<f64> {
    let l = unit("login_frequency", login_frequency)?;
    if features_used < 0 {
        return Err(CoreError::invalid(
            "features_used",
            format!("must be >= 0, got {features_used}"),
        ));
    }
    let s = unit("support_satisfaction", support_satisfaction)?;
    Ok(0.3 * l
        + 0.3 * (features_used as f64 / 10.0).min(1.0)
        + if paid_last_30_days { 0.2 } else { 0.0 }
        + 0.2 * s)
}

/// 1 − (1 − monthly)^12.
pub fn annualize_churn(monthly: f64) -> CoreResult<f64> {
    let m = unit("monthly", monthly)?;
    Ok(1.0 - (1.0 - m).powi(12))
}

/// CAC / (ARPA · gross margin): months to earn back the acquisition cost; None when never.
pub fn cac_payback_months(
    cac: Decimal,
    arpa: Decimal,
    gross_margin: f64,
) -> CoreResult<Option<Decimal>> {
    nonneg_d("cac", cac)?;
    let m = unit("gross_margin", gross_margin)?;
    let monthly = arpa
        .checked_mul(dec("gross_margin", m)?)
        .ok_or_else(|| overflow("arpa"))?;
    if monthly <= Decimal::ZERO {
        return Ok(None);
    }
    Ok(Some(
        cac.checked_div(monthly)
            .ok_or_else(|| overflow("cac_payback_months"))?
            .normalize(),
    ))
}

/// LTV / CAC; None for a zero CAC.
pub fn ltv_cac_ratio(ltv: Decimal, cac: Decimal) -> CoreResult<Option<Decimal>> {
    nonneg_d("cac", cac)?;
    if cac.is_zero() {
        return Ok(None);
    }
    Ok(Some(
        ltv.checked_div(cac)
            .ok_or_else(|| overflow("ltv_cac_ratio"))?
            .normalize(),
    ))
}

/// (current − previous) / previous as a fraction; None when previous is 0.
pub fn growth(current: Decimal, previous: Decimal) -> CoreResult<Option<f64>> {
    if previous.is_zero() {
        return Ok(None);
    }
    let g = (current - previous)
        .checked_div(previous)
        .ok_or_else(|| overflow("growth"))?;
    Ok(g.to_f64())
}

const PAYBACK_MAGIC: u8 = b'Y';

/// State of the payback_days aggregate: the investment and start fixed by the
/// first row, and every (timestamp in microseconds, amount) row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Payback {
    pub params: Option<(Decimal, i64)>,
    pub rows: Vec<(i64, Decimal)>,
}

impl Payback {
    pub fn add(
        &mut self,
        ts: i64,
        amount: Decimal,
        investment: Decimal,
        start: i64,
    ) -> CoreResult<()> {
        match self.params {
            None => {
                nonneg_d("investment", investment)?;
                self.params = Some((investment, start));
            }
            Some((i, s)) if i != investment || s != start => {
                return Err(CoreError::invalid(
                    "investment",
                    "investment and start must be the same for every row of a group",
                ))
            }
            _ => {}
        }
        self.rows.push((ts, amount));
        Ok(())
    }
    pub fn merge(&mut self, o: &Payback) -> CoreResult<()> {
        if let (Some(a), Some(b)) = (self.params, o.params) {
            if a != b {
                return Err(CoreError::invalid(
                    "investment",
                    "investment and start must be the same for every row of a group",
                ));
            }
        }
        self.params = self.params.or(o.params);
        self.rows.extend_from_slice(&o.rows);
        Ok(())
    }
    /// Days (fractional) from start until the cumulative amount of the rows at
    /// or after start first reaches the investment; None if it never does.
    pub fn days(&self) -> Option<Decimal> {
        let (investment, start) = self.params?;
        if investment.is_zero() {
            return Some(Decimal::ZERO);
        }
        let mut rows: Vec<&(i64, Decimal)> = self.rows.iter().filter(|r| r.0 >= start).collect();
        rows.sort_by_key(|r| r.0);
        let mut cum = Decimal::ZERO;
        for (ts, amount) in rows {
            cum += *amount;
            if cum >= investment {
                let micros = Decimal::from(ts - start);
                return Some((micros / Decimal::from(86_400_000_000i64)).normalize());
            }
        }
        None
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut w = crate::codec::Writer::new(PAYBACK_MAGIC, 1);
        match self.params {
            None => w.u8(0),
            Some((i, s)) => {
                w.u8(1);
                for b in i.serialize() {
                    w.u8(b);
                }
                w.vari(s);
            }
        }
        w.varu(self.rows.len() as u64);
        for (ts, a) in &self.rows {
            w.vari(*ts);
            for b in a.serialize() {
                w.u8(b);
            }
        }
        w.finish()
    }
    pub fn decode(buf: &[u8]) -> CoreResult<Payback> {
        let (mut r, version) = crate::codec::Reader::new(buf, "payback state", PAYBACK_MAGIC)?;
        if version != 1 {
            return Err(r.corrupt(format!("unsupported version {version}")));
        }
        let dec16 = |r: &mut crate::codec::Reader| -> CoreResult<Decimal> {
            let mut b = [0u8; 16];
            for x in b.iter_mut() {
                *x = r.u8()?;
            }
            // flags byte layout: bits 16-23 scale (<= 28), bit 31 sign, rest zero
            let flags = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            if flags & 0x7F00_FFFF != 0 || (flags >> 16) & 0xFF > 28 {
                return Err(r.corrupt("invalid decimal"));
            }
            Ok(Decimal::deserialize(b))
        };
        let params = match r.u8()? {
            0 => None,
            1 => {
                let i = dec16(&mut r)?;
                Some((i, r.vari()?))
            }
            _ => return Err(r.corrupt("invalid flag")),
        };
        let n = r.varu()?;
        if n > r.remaining() as u64 / 17 {
            return Err(r.corrupt("row count exceeds the data"));
        }
        let mut rows = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let ts = r.vari()?;
            rows.push((ts, dec16(&mut r)?));
        }
        r.end()?;
        Ok(Payback { params, rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn roi_break_even_payback() {
        assert_eq!(roi(d("15000"), d("10000")).unwrap(), Some(d("50")));
        assert_eq!(roi(d("5000"), d("10000")).unwrap(), Some(d("-50")));
        assert_eq!(
            roi(d("1"), d("3")).unwrap(),
            Some(d("-66.666666666666666666666666670"))
        );
        assert_eq!(roi(d("5"), Decimal::ZERO).unwrap(), None);
        assert!(roi(d("5"), d("-1")).is_err());
        assert_eq!(
            break_even_days(d("10000"), d("250")).unwrap(),
            Some(d("40"))
        );
        assert_eq!(break_even_days(d("10000"), Decimal::ZERO).unwrap(), None);
        assert_eq!(break_even_days(d("10000"), d("-3")).unwrap(), None);
        // 400 + 300 recovers 700 of 1000 after two periods; 300 of the third period's 600
        let flows = [d("400"), d("300"), d("600"), d("100")];
        assert_eq!(
            payback_period(&flows, d("1000"), None).unwrap(),
            Some(d("2.5"))
        );
        assert_eq!(payback_period(&flows, d("5000"), None).unwrap(), None);
        assert_eq!(
            payback_period(&flows, Decimal::ZERO, None).unwrap(),
            Some(Decimal::ZERO)
        );
        // discounted at 10 %: 400/1.1 + 300/1.21 = 611.57..., third 600/1.331 = 450.79...
        let p = payback_period(&flows, d("1000"), Some(0.1))
            .unwrap()
            .unwrap();
        let want = 2.0 + (1000.0 - 400.0 / 1.1 - 300.0 / 1.21) / (600.0 / 1.331);
        assert!((p.to_f64().unwrap() - want).abs() < 1e-12, "{p} vs {want}");
        assert!(payback_period(&flows, d("1"), Some(-1.0)).is_err());
    }

    #[test]
    fn clv_and_churn() {
        assert_eq!(clv_simple(d("100"), 0.05).unwrap(), d("2000"));
        assert_eq!(clv_simple(d("100"), 0.0).unwrap(), d("10000")); // floored at 1 %
        assert!(clv_simple(d("100"), 1.5).is_err());
        // arpu 50, margin 0.8, churn 0.05: 40 / 0.05 = 800; with 1 % discount 40 / 0.06
        assert_eq!(clv(d("50"), 0.05, 0.8, 0.0).unwrap(), Some(d("800")));
        let v = clv(d("50"), 0.05, 0.8, 0.01).unwrap().unwrap();
        assert!((v.to_f64().unwrap() - 40.0 / 0.06).abs() < 1e-9);
        // the closed form equals the series it stands for
        let series: f64 = (1..5000)
            .map(|t| 40.0 * 0.95f64.powi(t - 1) / 1.01f64.powi(t))
            .sum();
        assert!((v.to_f64().unwrap() - series).abs() < 1e-6);
        assert_eq!(clv(d("50"), 0.0, 0.8, 0.0).unwrap(), None);
        assert_eq!(churn_rate(200, 10).unwrap(), Some(0.05));
        assert_eq!(churn_rate(0, 0).unwrap(), None);
        assert!(churn_rate(10, 11).is_err());
        assert!(churn_rate(-1, 0).is_err());
        // 0.3·0.5 + 0.3·0.2 + 0.2·0.5 + 0.2·0.4 = 0.39
        assert!((churn_probability(15.0, 0.8, 0.5, 0.6).unwrap() - 0.39).abs() < 1e-12);
        assert_eq!(churn_probability(90.0, 0.0, 1.0, 0.0).unwrap(), 0.99);
        assert!(churn_probability(-1.0, 0.0, 0.0, 0.0).is_err());
        // 0.3·0.5 + 0.3·0.4 + 0.2 + 0.2·0.75 = 0.62
        assert!((engagement_score(0.5, 4, true, 0.75).unwrap() - 0.62).abs() < 1e-12);
        assert!((engagement_score(1.0, 25, false, 1.0).unwrap() - 0.8).abs() < 1e-12);
        assert!(engagement_score(1.5, 1, false, 0.0).is_err());
        assert!((annualize_churn(0.05).unwrap() - (1.0 - 0.95f64.powi(12))).abs() < 1e-15);
        assert_eq!(annualize_churn(0.0).unwrap(), 0.0);
        assert!(annualize_churn(-0.1).is_err());
    }

    #[test]
    fn saas_ratios() {
        // CAC 600, ARPA 50 at 80 % margin: 600 / 40 = 15 months
        assert_eq!(
            cac_payback_months(d("600"), d("50"), 0.8).unwrap(),
            Some(d("15"))
        );
        assert_eq!(
            cac_payback_months(d("600"), Decimal::ZERO, 0.8).unwrap(),
            None
        );
        assert_eq!(ltv_cac_ratio(d("1800"), d("600")).unwrap(), Some(d("3")));
        assert_eq!(ltv_cac_ratio(d("1800"), Decimal::ZERO).unwrap(), None);
        assert_eq!(growth(d("110"), d("100")).unwrap(), Some(0.1));
        assert_eq!(growth(d("110"), Decimal::ZERO).unwrap(), None);
    }

    #[test]
    fn payback_days_in_any_order_and_round_trip() {
        let day = 86_400_000_000i64;
        let mut a = Payback::default();
        // before start: ignored; then 300 on day 2, 500 on day 5, 400 on day 7.5
        for (t, v) in [(-day, "900"), (7 * day + day / 2, "400"), (2 * day, "300")] {
            a.add(t, d(v), d("1000"), 0).unwrap();
        }
        let mut b = Payback::default();
        b.add(5 * day, d("500"), d("1000"), 0).unwrap();
        a.merge(&b).unwrap();
        assert_eq!(a.days(), Some(d("7.5")));
        assert_eq!(Payback::decode(&a.encode()).unwrap(), a);
        let mut never = Payback::default();
        never.add(day, d("10"), d("1000"), 0).unwrap();
        assert_eq!(never.days(), None);
        assert!(never.add(day, d("10"), d("999"), 0).is_err());
        assert!(Payback::default().add(0, d("1"), d("-1"), 0).is_err());
        assert!(Payback::decode(b"Y\x01\x02").is_err());
    }
}
