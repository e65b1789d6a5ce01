//! Customer models in SQL: BG/NBD, Gamma-Gamma and shifted-beta-geometric
//! fits (parallel-safe aggregates returning composite model values) and the
//! predictions that take a fitted model.

use crate::pg::agg;
use crate::pg::errors::{raise, OrRaise};
use kpi_core::models::{self, BgNbd, BgNbdData, Fit, GammaGamma, GammaGammaData, Sbg, SbgData};

use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::prelude::*;
use pgrx::{pg_sys, Internal};

type Tuple = PgHeapTuple<'static, pgrx::AllocatedByRust>;

fn new_tuple(name: &str, fields: &[(&str, Option<f64>)], n: u64, converged: bool) -> Tuple {
    let mut t = PgHeapTuple::new_composite_type(name)
        .unwrap_or_else(|e| error!("pg_kpi: type {name} is missing: {e}"));
    let r = (|| -> Result<(), pgrx::datum::TryFromDatumError> {
        for (k, v) in fields {
            t.set_by_name(k, *v)?;
        }
        t.set_by_name("n", n as i64)?;
        t.set_by_name("converged", converged)?;
        Ok(())
    })();
    if let Err(e) = r {
        error!("pg_kpi: building {name}: {e}");
    }
    t
}

fn field(func: &str, t: &PgHeapTuple<'_, impl pgrx::WhoAllocated>, name: &str) -> f64 {
    match t.get_by_name::<f64>(name) {
        Ok(Some(v)) => v,
        _ => raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{func}: model field {name} must not be NULL"),
            None,
            Some("pass a model returned by the matching *_fit aggregate"),
        ),
    }
}

fn warn_unconverged(func: &str, converged: bool) {
    if !converged {
        pgrx::warning!(
            "{func}: the fit did not converge; returning the best point found (converged = false)"
        );
    }
}

// ---------------------------------------------------------------- BG/NBD

#[derive(Clone, Default)]
pub struct BgState {
    data: BgNbdData,
    penalizer: Option<f64>,
}

fn bg_add(state: &mut BgState, f: Option<f64>, r: Option<f64>, t: Option<f64>, pen: f64) {
    match state.penalizer {
        None => state.penalizer = Some(pen),
        Some(p) if p.to_bits() != pen.to_bits() => raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "kpi.bgnbd_fit: penalizer must be the same for every row of a group".into(),
            None,
            None,
        ),
        _ => {}
    }
    // a customer with any NULL is skipped, like NULLs in other aggregates
    if let (Some(f), Some(r), Some(t)) = (f, r, t) {
        state.data.add(f, r, t).or_raise("kpi.bgnbd_fit");
    }
}

#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn bgnbd_trans(
    state: Internal,
    frequency: Option<f64>,
    recency: Option<f64>,
    t: Option<f64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    let mut state = state;
    // SAFETY: fcinfo is this aggregate call's; the state is created in and owned by its aggregate memory context
    let st = unsafe { agg::state_mut(&mut state, fcinfo, BgState::default) };
    bg_add(st, frequency, recency, t, 0.0);
    state
}

#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn bgnbd_trans_pen(
    state: Internal,
    frequency: Option<f64>,
    recency: Option<f64>,
    t: Option<f64>,
    penalizer: Option<f64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    let mut state = state;
    // SAFETY: fcinfo is this aggregate call's; the state is created in and owned by its aggregate memory context
    let st = unsafe { agg::state_mut(&mut state, fcinfo, BgState::default) };
    bg_add(st, frequency, recency, t, penalizer.unwrap_or(f64::NAN));
    state
}

impl BgState {
    /// The penalizer (8 bytes, NaN for none) then the data.
    fn encode(&self) -> Vec<u8> {
        let mut out = self.penalizer.unwrap_or(f64::NAN).to_le_bytes().to_vec();
        out.extend(self.data.encode());
        out
    }
    fn decode(bytes: &[u8]) -> kpi_core::CoreResult<BgState> {
        let (pen, rest) = bytes
            .split_first_chunk::<8>()
            .ok_or_else(|| kpi_core::CoreError::corrupt("state", "value is truncated"))?;
        let pen = f64::from_le_bytes(*pen);
        Ok(BgState {
            data: BgNbdData::decode(rest)?,
            penalizer: (!pen.is_nan()).then_some(pen),
        })
    }
}

crate::state_support!(
    BgState,
    "kpi.bgnbd_fit",
    bgnbd_combine,
    bgnbd_serialize,
    bgnbd_deserialize,
    |x, y| {
        x.data.0.merge(&y.data.0);
        x.penalizer = x.penalizer.or(y.penalizer);
    }
);

fn bg_tuple(fit: &Fit<BgNbd>) -> Tuple {
    let p = fit.params;
    new_tuple(
        "kpi.bgnbd",
        &[
            ("r", Some(p.r)),
            ("alpha", Some(p.alpha)),
            ("a", Some(p.a)),
            ("b", Some(p.b)),
            ("log_likelihood", Some(fit.log_likelihood)),
        ],
        fit.n,
        fit.converged,
    )
}

#[pg_extern(immutable, strict, parallel_safe, requires = ["models"], schema = "kpi_internal")]
fn bgnbd_final(state: Internal) -> Option<pgrx::composite_type!('static, "kpi.bgnbd")> {
    // SAFETY: the state was made by this aggregate's own transition function, so it holds that type
    let st = unsafe { agg::get::<BgState>(&state) }?;
    if st.data.0.n == 0 {
        return None;
    }
    let fit = models::fit_bgnbd(&st.data, st.penalizer.unwrap_or(0.0)).or_raise("kpi.bgnbd_fit");
    warn_unconverged("kpi.bgnbd_fit", fit.converged);
    Some(bg_tuple(&fit))
}

fn bg_model(func: &str, m: &PgHeapTuple<'_, impl pgrx::WhoAllocated>) -> BgNbd {
    let bg = BgNbd {
        r: field(func, m, "r"),
        alpha: field(func, m, "alpha"),
        a: field(func, m, "a"),
        b: field(func, m, "b"),
    };
    bg.validate().or_raise(func);
    bg
}

fn rfm(func: &str, frequency: f64, recency: f64, t: f64) -> [f64; 3] {
    models::check_rfm(frequency, recency, t, None).or_raise(func)
}

fn horizon_ok(func: &str, horizon: f64) {
    if !(horizon.is_finite() && horizon >= 0.0) {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{func}: horizon must be a finite number >= 0, got {horizon}"),
            None,
            None,
        )
    }
}

/// Probability that a customer with this history is still alive (1 for frequency 0).
#[pg_extern(immutable, strict, parallel_safe, requires = ["models"])]
fn p_alive(m: pgrx::composite_type!("kpi.bgnbd"), frequency: f64, recency: f64, t: f64) -> f64 {
    let bg = bg_model("kpi.p_alive", &m);
    let [x, tx, t] = rfm("kpi.p_alive", frequency, recency, t);
    bg.p_alive(x, tx, t)
}

/// Expected purchases in (t, t + horizon] given the customer's history.
#[pg_extern(
    name = "expected_purchases",
    immutable,
    strict,
    parallel_safe,
    requires = ["models"]
)]
fn expected_purchases_given(
    m: pgrx::composite_type!("kpi.bgnbd"),
    horizon: f64,
    frequency: f64,
    recency: f64,
    t: f64,
) -> Option<f64> {
    let bg = bg_model("kpi.expected_purchases", &m);
    horizon_ok("kpi.expected_purchases", horizon);
    let [x, tx, t] = rfm("kpi.expected_purchases", frequency, recency, t);
    bg.expected_conditional(horizon, x, tx, t)
}

/// Expected purchases of a new customer in (0, horizon].
#[pg_extern(
    name = "expected_purchases",
    immutable,
    strict,
    parallel_safe,
    requires = ["models"]
)]
fn expected_purchases_new(m: pgrx::composite_type!("kpi.bgnbd"), horizon: f64) -> Option<f64> {
    let bg = bg_model("kpi.expected_purchases", &m);
    horizon_ok("kpi.expected_purchases", horizon);
    bg.expected_new(horizon)
}

// ---------------------------------------------------------------- Gamma-Gamma

#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn gamma_gamma_trans(
    state: Internal,
    frequency: Option<f64>,
    monetary: Option<f64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    let mut state = state;
    // SAFETY: fcinfo is this aggregate call's; the state is created in and owned by its aggregate memory context
    let st = unsafe { agg::state_mut(&mut state, fcinfo, GammaGammaData::default) };
    if let (Some(f), Some(m)) = (frequency, monetary) {
        let row = st.0.n + 1;
        st.add(f, m, Some(row)).or_raise("kpi.gamma_gamma_fit");
    }
    state
}

crate::state_support!(
    GammaGammaData,
    "kpi.gamma_gamma_fit",
    gamma_gamma_combine,
    gamma_gamma_serialize,
    gamma_gamma_deserialize,
    |x, y| x.0.merge(&y.0)
);

#[pg_extern(immutable, strict, parallel_safe, requires = ["models"], schema = "kpi_internal")]
fn gamma_gamma_final(state: Internal) -> Option<pgrx::composite_type!('static, "kpi.gamma_gamma")> {
    // SAFETY: the state was made by this aggregate's own transition function, so it holds that type
    let st = unsafe { agg::get::<GammaGammaData>(&state) }?;
    if st.0.n == 0 {
        return None;
    }
    let fit = models::fit_gamma_gamma(st).or_raise("kpi.gamma_gamma_fit");
    warn_unconverged("kpi.gamma_gamma_fit", fit.converged);
    let p = fit.params;
    Some(new_tuple(
        "kpi.gamma_gamma",
        &[
            ("p", Some(p.p)),
            ("q", Some(p.q)),
            ("gamma", Some(p.gamma)),
            ("log_likelihood", Some(fit.log_likelihood)),
        ],
        fit.n,
        fit.converged,
    ))
}

fn gg_model(func: &str, m: &PgHeapTuple<'_, impl pgrx::WhoAllocated>) -> GammaGamma {
    let gg = GammaGamma {
        p: field(func, m, "p"),
        q: field(func, m, "q"),
        gamma: field(func, m, "gamma"),
    };
    gg.validate().or_raise(func);
    gg
}

fn spend_inputs(func: &str, frequency: f64, monetary: f64) {
    if !(frequency.is_finite() && frequency >= 0.0 && frequency.fract() == 0.0) {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{func}: frequency must be a whole number >= 0, got {frequency}"),
            None,
            None,
        )
    }
    if frequency > 0.0 && !(monetary.is_finite() && monetary > 0.0) {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{func}: monetary must be a positive finite number for a repeat customer, got {monetary}"),
            None,
            None,
        )
    }
}

/// Expected average spend per transaction; for frequency 0 the population mean.
/// NULL where the model's mean is undefined (q <= 1, or p·x + q <= 1).
#[pg_extern(immutable, strict, parallel_safe, requires = ["models"])]
fn expected_spend(
    m: pgrx::composite_type!("kpi.gamma_gamma"),
    frequency: f64,
    monetary: f64,
) -> Option<f64> {
    let gg = gg_model("kpi.expected_spend", &m);
    spend_inputs("kpi.expected_spend", frequency, monetary);
    if frequency == 0.0 {
        (gg.q > 1.0).then(|| gg.p * gg.gamma / (gg.q - 1.0))
    } else {
        gg.expected_spend(frequency, monetary)
    }
}

/// Discounted customer lifetime value from a BG/NBD and a Gamma-Gamma model.
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, strict, parallel_safe, requires = ["models"])]
fn clv_bgnbd(
    bg: pgrx::composite_type!("kpi.bgnbd"),
    gg: pgrx::composite_type!("kpi.gamma_gamma"),
    frequency: f64,
    recency: f64,
    t: f64,
    monetary: f64,
    months: default!(i32, 12),
    monthly_discount: default!(f64, 0.01),
    periods_per_month: default!(f64, 4.345),
) -> Option<f64> {
    const F: &str = "kpi.clv_bgnbd";
    let bgm = bg_model(F, &bg);
    let ggm = gg_model(F, &gg);
    let [x, tx, t] = rfm(F, frequency, recency, t);
    spend_inputs(F, frequency, monetary);
    if !(0..=1200).contains(&months) {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{F}: months must be between 0 and 1200, got {months}"),
            None,
            None,
        )
    }
    if !(monthly_discount.is_finite() && monthly_discount > -1.0) {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{F}: monthly_discount must be a finite number > -1, got {monthly_discount}"),
            None,
            None,
        )
    }
    if !(periods_per_month.is_finite() && periods_per_month > 0.0) {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{F}: periods_per_month must be a positive finite number, got {periods_per_month}"),
            None,
            Some("it converts the model's time unit to months: 4.345 for weeks, 30.44 for days, 1 for months"),
        )
    }
    models::clv(
        &bgm,
        &ggm,
        x,
        tx,
        t,
        monetary,
        months as u32,
        monthly_discount,
        periods_per_month,
    )
}

// ---------------------------------------------------------------- shifted-beta-geometric

#[pg_extern(immutable, parallel_safe, schema = "kpi_internal")]
fn sbg_trans(
    state: Internal,
    period: Option<i32>,
    alive: Option<i64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    let mut state = state;
    // SAFETY: fcinfo is this aggregate call's; the state is created in and owned by its aggregate memory context
    let st = unsafe { agg::state_mut(&mut state, fcinfo, SbgData::default) };
    if let (Some(p), Some(a)) = (period, alive) {
        st.add(p as i64, a).or_raise("kpi.sbg_fit");
    }
    state
}

crate::state_support!(
    SbgData,
    "kpi.sbg_fit",
    sbg_combine,
    sbg_serialize,
    sbg_deserialize,
    |x, y| x.merge(&y).or_raise("kpi.sbg_fit")
);

#[pg_extern(immutable, strict, parallel_safe, requires = ["models"], schema = "kpi_internal")]
fn sbg_final(state: Internal) -> Option<pgrx::composite_type!('static, "kpi.sbg")> {
    // SAFETY: the state was made by this aggregate's own transition function, so it holds that type
    let st = unsafe { agg::get::<SbgData>(&state) }?;
    if st.alive.is_empty() {
        return None;
    }
    let fit = models::fit_sbg(st).or_raise("kpi.sbg_fit");
    warn_unconverged("kpi.sbg_fit", fit.converged);
    let p = fit.params;
    Some(new_tuple(
        "kpi.sbg",
        &[
            ("alpha", Some(p.alpha)),
            ("beta", Some(p.beta)),
            ("log_likelihood", Some(fit.log_likelihood)),
        ],
        fit.n,
        fit.converged,
    ))
}

fn sbg_model(func: &str, m: &PgHeapTuple<'_, impl pgrx::WhoAllocated>, t: i32) -> Sbg {
    let s = Sbg {
        alpha: field(func, m, "alpha"),
        beta: field(func, m, "beta"),
    };
    if !(s.alpha.is_finite() && s.alpha > 0.0 && s.beta.is_finite() && s.beta > 0.0) {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{func}: model parameters alpha and beta must be positive finite numbers"),
            None,
            None,
        )
    }
    if t < 0 {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{func}: t must be >= 0, got {t}"),
            None,
            None,
        )
    }
    s
}

/// Share of the cohort still alive after t periods, S(t).
#[pg_extern(immutable, strict, parallel_safe, requires = ["models"])]
fn sbg_survival(m: pgrx::composite_type!("kpi.sbg"), t: i32) -> f64 {
    sbg_model("kpi.sbg_survival", &m, t).survival(t as f64)
}

/// Retention rate at period t: S(t) / S(t − 1); NULL for t = 0.
#[pg_extern(immutable, strict, parallel_safe, requires = ["models"])]
fn sbg_retention(m: pgrx::composite_type!("kpi.sbg"), t: i32) -> Option<f64> {
    let s = sbg_model("kpi.sbg_retention", &m, t);
    (t >= 1).then(|| s.retention(t as f64))
}

/// Probability of churning at period t given alive at t − 1: 1 − retention; NULL for t = 0.
#[pg_extern(immutable, strict, parallel_safe, requires = ["models"])]
fn sbg_churn_probability(m: pgrx::composite_type!("kpi.sbg"), t: i32) -> Option<f64> {
    let s = sbg_model("kpi.sbg_churn_probability", &m, t);
    (t >= 1).then(|| 1.0 - s.retention(t as f64))
}
