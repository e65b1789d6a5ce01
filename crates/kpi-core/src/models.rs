//! Statistical customer models: BG/NBD (Fader, Hardie & Lee 2005) for
//! purchase counts and probability alive, Gamma-Gamma (Fader & Hardie 2013)
//! for spend, and the shifted-beta-geometric model (Fader & Hardie 2007) for
//! contract retention. Likelihoods are evaluated in log space; fits maximize
//! the summed log-likelihood over log-parameters with Nelder–Mead.

pub mod optimize;

use crate::codec::{Reader, Writer};
use crate::models::optimize::{hyp2f1, nelder_mead};
use crate::{CoreError, CoreResult};
use statrs::function::gamma::ln_gamma;
use std::collections::HashMap;

fn log_sum_exp(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// " (row N)" for errors inside an aggregate, nothing for a single call.
fn at_row(row: Option<u64>) -> String {
    row.map(|r| format!(" (row {r})")).unwrap_or_default()
}

fn nonneg(arg: &'static str, v: f64, row: Option<u64>) -> CoreResult<f64> {
    let r = at_row(row);
    if !v.is_finite() || v < 0.0 {
        return Err(CoreError::invalid(
            arg,
            format!(
                "must be a finite number >= 0, got {}{r}",
                crate::validate::fmt_float(v)
            ),
        ));
    }
    Ok(v)
}

/// Weighted distinct rows: fitting cost depends on distinct inputs, not customers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rows {
    /// (values, weight)
    pub rows: Vec<([f64; 3], f64)>,
    index: HashMap<[u64; 3], usize>,
    pub n: u64,
}

impl Rows {
    fn add(&mut self, v: [f64; 3], w: f64) {
        let key = v.map(f64::to_bits);
        match self.index.get(&key) {
            Some(&i) => self.rows[i].1 += w,
            None => {
                self.index.insert(key, self.rows.len());
                self.rows.push((v, w));
            }
        }
    }
    pub fn merge(&mut self, o: &Rows) {
        for (v, w) in &o.rows {
            self.add(*v, *w);
        }
        self.n += o.n;
    }
    pub fn encode(&self, magic: u8) -> Vec<u8> {
        let mut w = Writer::new(magic, 1);
        w.varu(self.n);
        w.varu(self.rows.len() as u64);
        for (v, wt) in &self.rows {
            for x in v {
                w.f64(*x);
            }
            w.f64(*wt);
        }
        w.finish()
    }
    pub fn decode(buf: &[u8], what: &'static str, magic: u8) -> CoreResult<Rows> {
        let (mut r, version) = Reader::new(buf, what, magic)?;
        if version != 1 {
            return Err(r.corrupt(format!("unsupported version {version}")));
        }
        let n = r.varu()?;
        let len = r.varu()?;
        if len > (r.remaining() / 32) as u64 {
            return Err(r.corrupt("row count exceeds the data"));
        }
        let mut out = Rows::default();
        let mut total = 0.0;
        for _ in 0..len {
            let v = [r.f64()?, r.f64()?, r.f64()?];
            let w = r.f64()?;
            if !(v.iter().all(|x| x.is_finite() && *x >= 0.0) && w.is_finite() && w > 0.0) {
                return Err(r.corrupt("invalid row"));
            }
            total += w;
            out.add(v, w);
        }
        r.end()?;
        if total.round() as u64 != n {
            return Err(r.corrupt("weights do not add up to the count"));
        }
        out.n = n;
        Ok(out)
    }
}

// ---------------------------------------------------------------- BG/NBD

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Fit<P> {
    pub params: P,
    pub log_likelihood: f64,
    pub n: u64,
    pub converged: bool,
}

/// Validates one customer's (frequency, recency, T) for BG/NBD.
pub fn check_rfm(frequency: f64, recency: f64, t: f64, row: Option<u64>) -> CoreResult<[f64; 3]> {
    let r = at_row(row);
    let x = nonneg("frequency", frequency, row)?;
    if x.fract() != 0.0 {
        return Err(CoreError::invalid(
            "frequency",
            format!("must be a whole number of repeat purchases, got {x}{r}"),
        ));
    }
    let tx = nonneg("recency", recency, row)?;
    let t = nonneg("t", t, row)?;
    if tx > t {
        return Err(CoreError::invalid(
            "recency",
            format!("must not exceed t, got recency {tx} > t {t}{r}"),
        ));
    }
    if x == 0.0 && tx != 0.0 {
        return Err(CoreError::invalid(
            "recency",
            format!("must be 0 when frequency is 0, got {tx}{r}"),
        ));
    }
    Ok([x, tx, t])
}

/// Accumulates customers for a BG/NBD fit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BgNbdData(pub Rows);

const BG_MAGIC: u8 = b'B';
const GG_MAGIC: u8 = b'G';

impl BgNbdData {
    pub fn add(&mut self, frequency: f64, recency: f64, t: f64) -> CoreResult<()> {
        let v = check_rfm(frequency, recency, t, Some(self.0.n + 1))?;
        self.0.add(v, 1.0);
        self.0.n += 1;
        Ok(())
    }
    pub fn encode(&self) -> Vec<u8> {
        self.0.encode(BG_MAGIC)
    }
    pub fn decode(buf: &[u8]) -> CoreResult<Self> {
        Ok(BgNbdData(Rows::decode(buf, "BG/NBD state", BG_MAGIC)?))
    }
}

impl BgNbd {
    /// Log-likelihood of one customer (x repeat purchases, last at tx, observed for t).
    pub fn ll_one(&self, x: f64, tx: f64, t: f64) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let ln_a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
        let ln_a2 = ln_gamma(a + b) + ln_gamma(b + x) - ln_gamma(b) - ln_gamma(a + b + x);
        let ln_a3 = -(r + x) * (alpha + t).ln();
        let tail = if x > 0.0 {
            let ln_a4 = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + tx).ln();
            log_sum_exp(ln_a3, ln_a4)
        } else {
            ln_a3
        };
        ln_a1 + ln_a2 + tail
    }

    /// Summed log-likelihood, with the x-only terms computed once per distinct x.
    pub fn ll(&self, data: &Rows) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let mut by_x: HashMap<u64, (f64, f64)> = HashMap::new();
        let (lnr, lnab, lnb) = (ln_gamma(r), ln_gamma(a + b), ln_gamma(b));
        let (ln_alpha, ln_a) = (alpha.ln(), a.ln());
        let mut total = 0.0;
        for ([x, tx, t], w) in &data.rows {
            let (cx, la4c) = *by_x.entry(x.to_bits()).or_insert_with(|| {
                let c = ln_gamma(r + x) - lnr + r * ln_alpha + lnab + ln_gamma(b + x)
                    - lnb
                    - ln_gamma(a + b + x);
                let l = if *x > 0.0 {
                    ln_a - (b + x - 1.0).ln()
                } else {
                    0.0
                };
                (c, l)
            });
            let ln_a3 = -(r + x) * (alpha + t).ln();
            let tail = if *x > 0.0 {
                log_sum_exp(ln_a3, la4c - (r + x) * (alpha + tx).ln())
            } else {
                ln_a3
            };
            total += w * (cx + tail);
        }
        total
    }

    /// P(alive | x, tx, t); exactly 1 when x = 0.
    pub fn p_alive(&self, x: f64, tx: f64, t: f64) -> f64 {
        if x == 0.0 {
            return 1.0;
        }
        let BgNbd { r, alpha, a, b } = *self;
        let ln_term =
            a.ln() - (b + x - 1.0).ln() + (r + x) * ((alpha + t).ln() - (alpha + tx).ln());
        1.0 / (1.0 + ln_term.exp())
    }

    /// (a+b+x−1)/(a−1) · [1 − (1−z)^(a−1) · 2F1(a+b−1−r, a−1; a+b+x−1; z)], the
    /// Euler-transformed bracket shared by both expectations; a = 1 is a removable
    /// singularity, evaluated as the mean of the two sides.
    fn bracket(&self, x: f64, z: f64) -> Option<f64> {
        let f = |a: f64| -> Option<f64> {
            let BgNbd { r, b, .. } = *self;
            let h = hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)?;
            let v = (a + b + x - 1.0) / (a - 1.0) * (1.0 - (1.0 - z).powf(a - 1.0) * h);
            v.is_finite().then_some(v)
        };
        if (self.a - 1.0).abs() < 1e-6 {
            let d = 1e-4;
            Some(0.5 * (f(1.0 - d)? + f(1.0 + d)?))
        } else {
            f(self.a)
        }
    }

    /// E[X(horizon)] for a new customer.
    pub fn expected_new(&self, horizon: f64) -> Option<f64> {
        if horizon == 0.0 {
            return Some(0.0);
        }
        let z = horizon / (self.alpha + horizon);
        self.bracket(0.0, z)
    }

    /// E[Y(horizon) | x, tx, t]: expected purchases in (t, t + horizon].
    pub fn expected_conditional(&self, horizon: f64, x: f64, tx: f64, t: f64) -> Option<f64> {
        if horizon == 0.0 {
            return Some(0.0);
        }
        let z = horizon / (self.alpha + t + horizon);
        Some(self.bracket(x, z)? * self.p_alive(x, tx, t))
    }

    pub fn validate(&self) -> CoreResult<()> {
        for (name, v) in [
            ("r", self.r),
            ("alpha", self.alpha),
            ("a", self.a),
            ("b", self.b),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(CoreError::invalid(
                    "model",
                    format!("parameter {name} must be a positive finite number, got {v}"),
                ));
            }
        }
        Ok(())
    }
}

fn fit_by_logs<P>(
    n_params: usize,
    start: &[f64],
    mut nll: impl FnMut(&[f64]) -> f64,
    make: impl Fn(&[f64]) -> P,
) -> (P, bool) {
    let mut f = |lp: &[f64]| nll(lp);
    let m = nelder_mead(&mut f, start, 0.5, 4000 * n_params, 1e-12);
    // a parameter running off to 0 or infinity (beyond e^±15) means the
    // maximum is at the boundary of the parameter space: not a converged fit
    let inside = m.x.iter().all(|v| v.abs() <= LOG_BOUND);
    (make(&m.x), m.converged && inside)
}

/// Largest |ln parameter| a converged fit may have.
pub const LOG_BOUND: f64 = 15.0;

/// Maximum-likelihood BG/NBD fit. Time is rescaled so that max t = 1 for
/// conditioning; `penalizer` adds penalizer · Σ params² (on the original
/// scale, as in the lifetimes package).
pub fn fit_bgnbd(data: &BgNbdData, penalizer: f64) -> CoreResult<Fit<BgNbd>> {
    let rows = &data.0;
    if rows.n < 4 {
        return Err(CoreError::invalid(
            "frequency",
            format!(
                "a BG/NBD fit needs at least 4 customers (one per parameter), got {}",
                rows.n
            ),
        ));
    }
    if !(penalizer.is_finite() && penalizer >= 0.0) {
        return Err(CoreError::invalid(
            "penalizer",
            format!("must be a finite number >= 0, got {penalizer}"),
        ));
    }
    let scale = rows.rows.iter().map(|(v, _)| v[2]).fold(0.0f64, f64::max);
    if scale <= 0.0 {
        return Err(CoreError::invalid("t", "every customer has t = 0"));
    }
    let mut scaled = Rows::default();
    for (v, w) in &rows.rows {
        scaled.add([v[0], v[1] / scale, v[2] / scale], *w);
    }
    scaled.n = rows.n;
    let make = |lp: &[f64]| BgNbd {
        r: lp[0].exp(),
        alpha: lp[1].exp(),
        a: lp[2].exp(),
        b: lp[3].exp(),
    };
    let nll = |lp: &[f64]| {
        if lp.iter().any(|v| v.abs() > 30.0) {
            return f64::INFINITY;
        }
        let m = make(lp);
        let pen = penalizer * (m.r * m.r + (m.alpha * scale).powi(2) + m.a * m.a + m.b * m.b);
        -m.ll(&scaled) / rows.n as f64 + pen
    };
    let (m, converged) = fit_by_logs(4, &[0.0, 0.0, 0.0, 0.0], nll, make);
    let params = BgNbd {
        alpha: m.alpha * scale,
        ..m
    };
    let ll = params.ll(rows);
    Ok(Fit {
        params,
        log_likelihood: ll,
        n: rows.n,
        converged: converged && ll.is_finite(),
    })
}

// ---------------------------------------------------------------- Gamma-Gamma

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
}

/// Accumulates repeat customers (frequency > 0) for a Gamma-Gamma fit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GammaGammaData(pub Rows);

impl GammaGammaData {
    /// Rows with frequency 0 are ignored (the model is fitted on repeat customers).
    pub fn add(&mut self, frequency: f64, monetary: f64, row: Option<u64>) -> CoreResult<()> {
        let r = at_row(row);
        let x = nonneg("frequency", frequency, row)?;
        if x.fract() != 0.0 {
            return Err(CoreError::invalid(
                "frequency",
                format!("must be a whole number of repeat purchases, got {x}{r}"),
            ));
        }
        if x == 0.0 {
            return Ok(());
        }
        if !(monetary.is_finite() && monetary > 0.0) {
            return Err(CoreError::invalid(
                "monetary",
                format!(
                    "must be a positive finite number for a repeat customer, got {}{r}",
                    crate::validate::fmt_float(monetary)
                ),
            ));
        }
        self.0.add([x, monetary, 0.0], 1.0);
        self.0.n += 1;
        Ok(())
    }
    pub fn encode(&self) -> Vec<u8> {
        self.0.encode(GG_MAGIC)
    }
    pub fn decode(buf: &[u8]) -> CoreResult<Self> {
        Ok(GammaGammaData(Rows::decode(
            buf,
            "Gamma-Gamma state",
            GG_MAGIC,
        )?))
    }
}

impl GammaGamma {
    /// ln f(m | p, q, γ, x) for one repeat customer.
    pub fn ll_one(&self, x: f64, m: f64) -> f64 {
        let GammaGamma { p, q, gamma } = *self;
        ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q)
            + q * gamma.ln()
            + (p * x - 1.0) * m.ln()
            + p * x * x.ln()
            - (p * x + q) * (gamma + x * m).ln()
    }
    pub fn ll(&self, data: &Rows) -> f64 {
        data.rows
            .iter()
            .map(|([x, m, _], w)| w * self.ll_one(*x, *m))
            .sum()
    }
    /// E[M | x, m] = p(γ + x m)/(p x + q − 1); None when p x + q <= 1.
    pub fn expected_spend(&self, x: f64, m: f64) -> Option<f64> {
        let d = self.p * x + self.q - 1.0;
        (d > 0.0).then(|| self.p * (self.gamma + x * m) / d)
    }
    pub fn validate(&self) -> CoreResult<()> {
        for (name, v) in [("p", self.p), ("q", self.q), ("gamma", self.gamma)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(CoreError::invalid(
                    "model",
                    format!("parameter {name} must be a positive finite number, got {v}"),
                ));
            }
        }
        Ok(())
    }
}

pub fn fit_gamma_gamma(data: &GammaGammaData) -> CoreResult<Fit<GammaGamma>> {
    let rows = &data.0;
    if rows.n < 3 {
        return Err(CoreError::invalid(
            "frequency",
            format!(
                "a Gamma-Gamma fit needs at least 3 repeat customers (one per parameter), got {}",
                rows.n
            ),
        ));
    }
    // rescale spend so that its mean is 1; gamma scales with it
    let mean = rows.rows.iter().map(|(v, w)| v[1] * w).sum::<f64>() / rows.n as f64;
    let mut scaled = Rows::default();
    for (v, w) in &rows.rows {
        scaled.add([v[0], v[1] / mean, 0.0], *w);
    }
    scaled.n = rows.n;
    let make = |lp: &[f64]| GammaGamma {
        p: lp[0].exp(),
        q: lp[1].exp(),
        gamma: lp[2].exp(),
    };
    let nll = |lp: &[f64]| {
        if lp.iter().any(|v| v.abs() > 30.0) {
            return f64::INFINITY;
        }
        -make(lp).ll(&scaled) / rows.n as f64
    };
    let (m, converged) = fit_by_logs(3, &[0.0, 0.0, 0.0], nll, make);
    let params = GammaGamma {
        gamma: m.gamma * mean,
        ..m
    };
    let ll = params.ll(rows);
    Ok(Fit {
        params,
        log_likelihood: ll,
        n: rows.n,
        converged: converged && ll.is_finite(),
    })
}

/// Discounted CLV over `months` from BG/NBD purchases and Gamma-Gamma spend:
/// Σ_k E[M] · (E[Y(k f)] − E[Y((k−1) f)]) / (1 + d)^k, f = model periods per month.
#[allow(clippy::too_many_arguments)]
pub fn clv(
    bg: &BgNbd,
    gg: &GammaGamma,
    x: f64,
    tx: f64,
    t: f64,
    monetary: f64,
    months: u32,
    monthly_discount: f64,
    periods_per_month: f64,
) -> Option<f64> {
    let spend = if x > 0.0 {
        gg.expected_spend(x, monetary)?
    } else {
        // no repeat purchase yet: the population mean spend
        (gg.q > 1.0).then(|| gg.p * gg.gamma / (gg.q - 1.0))?
    };
    let mut prev = 0.0;
    let mut total = 0.0;
    for k in 1..=months {
        let e = bg.expected_conditional(k as f64 * periods_per_month, x, tx, t)?;
        total += spend * (e - prev) / (1.0 + monthly_discount).powi(k as i32);
        prev = e;
    }
    Some(total)
}

// ---------------------------------------------------------------- shifted-beta-geometric

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sbg {
    pub alpha: f64,
    pub beta: f64,
}

/// The tail of Stirling's series, lnΓ(z) − [(z − ½) ln z − z + ½ ln 2π]
/// = Σ_j B_2j / (2j (2j − 1) z^(2j−1)); truncation error below 2e-14 for z >= 10.
fn stirling_tail(z: f64) -> f64 {
    let w = 1.0 / (z * z);
    (1.0 / 12.0 + w * (-1.0 / 360.0 + w * (1.0 / 1260.0 + w * (-1.0 / 1680.0 + w / 1188.0)))) / z
}

/// Smallest argument for which Stirling's series replaces `ln_gamma` differences.
const STIRLING_FROM: f64 = 10.0;

/// ln(1 + u) − u without cancellation for small u: with s = u/(2 + u),
/// ln(1 + u) = 2 atanh s, so ln(1 + u) − u = −u²/(2 + u) + 2 Σ_{j>=1} s^(2j+1)/(2j + 1).
fn ln_1p_minus(u: f64) -> f64 {
    if !(-0.5..=1.0).contains(&u) {
        return u.ln_1p() - u;
    }
    let s = u / (2.0 + u);
    let s2 = s * s;
    let mut power = s * s2;
    let mut series = 0.0;
    for j in 1..40 {
        let term = power / (2 * j + 1) as f64;
        series += term;
        if term.abs() <= f64::EPSILON * series.abs() {
            break;
        }
        power *= s2;
    }
    -u * u / (2.0 + u) + 2.0 * series
}

/// (x − ½) ln(1 + t/x) − t, the part of lnΓ(x + t) − lnΓ(x) that Stirling's
/// series leaves besides t ln(x + t), as x (ln(1 + u) − u) − ½ ln(1 + u), u = t/x:
/// of size t²/x rather than t, so two of them can be subtracted safely.
fn stirling_excess(x: f64, t: f64) -> f64 {
    let u = t / x;
    x * ln_1p_minus(u) - 0.5 * u.ln_1p()
}

/// lnΓ(x + t) − lnΓ(x) without forming lnΓ(x) itself, whose size
/// (x ln x) would swamp the difference when x is large.
fn ln_gamma_ratio(x: f64, t: f64) -> f64 {
    if x >= STIRLING_FROM {
        stirling_excess(x, t) + t * (x + t).ln() + stirling_tail(x + t) - stirling_tail(x)
    } else {
        ln_gamma(x + t) - ln_gamma(x)
    }
}

impl Sbg {
    /// ln S(t) = ln B(α, β + t) − ln B(α, β) = [lnΓ(β + t) − lnΓ(β)] − [lnΓ(β + t + α) − lnΓ(β + α)],
    /// in O(1) and accurate for any α, β and t >= 0. The expression is symmetric
    /// in t and α, so it is taken as shifts by the smaller one, s, of bases β and
    /// β + o (o the larger). With β large both shifts come from Stirling's series:
    /// their leading terms s ln(β + s) − s ln(β + o + s) combine into
    /// −s ln(1 + o/(β + s)) and what remains is of size s²/β, so nothing of the size
    /// of lnΓ(β), nor of s, is ever cancelled (as α, β → ∞ with α/(α + β) → θ
    /// this tends to t ln(1 − θ)).
    pub fn ln_survival(&self, t: f64) -> f64 {
        let Sbg { alpha, beta } = *self;
        if t == 0.0 {
            return 0.0;
        }
        let (s, o) = if t <= alpha { (t, alpha) } else { (alpha, t) };
        if beta >= STIRLING_FROM {
            stirling_excess(beta, s) - stirling_excess(beta + o, s) - s * (o / (beta + s)).ln_1p()
                + (stirling_tail(beta + s) - stirling_tail(beta))
                - (stirling_tail(beta + o + s) - stirling_tail(beta + o))
        } else {
            ln_gamma_ratio(beta, s) - ln_gamma_ratio(beta + o, s)
        }
    }
    /// S(t) = B(α, β + t)/B(α, β).
    pub fn survival(&self, t: f64) -> f64 {
        self.ln_survival(t).exp()
    }
    /// r_t = (β + t − 1)/(α + β + t − 1), the share of those alive at t − 1 still alive at t.
    pub fn retention(&self, t: f64) -> f64 {
        (self.beta + t - 1.0) / (self.alpha + self.beta + t - 1.0)
    }
    /// Σ_{t=1..k} (n_{t−1} − n_t) ln P(T = t) + n_k ln S(k).
    ///
    /// Evaluated in one pass with the exact product forms
    /// S(t) = Π_{i<t} (β + i)/(α + β + i) and P(T = t) = α/(α + β + t − 1) · S(t − 1),
    /// each factor's logarithm taken as −ln(1 + ·) of a positive ratio: no
    /// cancellation for any α, β, including the geometric limit α, β → ∞.
    pub fn ll(&self, survivors: &[f64]) -> f64 {
        let Sbg { alpha, beta } = *self;
        let Some(k) = survivors.len().checked_sub(1) else {
            return 0.0;
        };
        let mut ln_s = 0.0; // ln S(t − 1)
        let mut ll = 0.0;
        for t in 1..=k {
            let i = (t - 1) as f64;
            let lost = survivors[t - 1] - survivors[t];
            if lost > 0.0 {
                ll += lost * (ln_s - ((beta + i) / alpha).ln_1p());
            }
            ln_s -= (alpha / (beta + i)).ln_1p();
        }
        if survivors[k] > 0.0 {
            ll += survivors[k] * ln_s;
        }
        ll
    }
}

/// The maximum-likelihood churn rate of the sBG's geometric limit
/// (α, β → ∞ with α/(α + β) → θ: every customer churns with the same θ each
/// period), θ̂ = total lost / total exposure, exposure = Σ_{t=1..k} n_{t−1};
/// None when nobody churned or everybody churned at once (θ̂ = 0 or 1).
fn geometric_churn(survivors: &[f64]) -> Option<f64> {
    let k = survivors.len().checked_sub(1)?;
    let lost = survivors[0] - survivors[k];
    let exposure: f64 = survivors[..k].iter().sum();
    (lost > 0.0 && lost < exposure).then(|| lost / exposure)
}

/// How far along the geometric ray a boundary sBG fit is reported:
/// β = GEOMETRIC_SCALE · k, where the likelihood is within ~k/β = 1e-12
/// (relative) of the geometric limit and, being an sBG likelihood, below it.
const GEOMETRIC_SCALE: f64 = 1e12;

/// Survivors per period (period 0 = cohort size), accumulated from (period, alive) rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SbgData {
    pub alive: std::collections::BTreeMap<u32, u64>,
}

const SBG_MAGIC: u8 = b'S';

impl SbgData {
    pub fn add(&mut self, period: i64, alive: i64) -> CoreResult<()> {
        if !(0..=100_000).contains(&period) {
            return Err(CoreError::invalid(
                "period",
                format!("must be between 0 and 100000, got {period}"),
            ));
        }
        if alive < 0 {
            return Err(CoreError::invalid(
                "alive",
                format!("must be >= 0, got {alive} (period {period})"),
            ));
        }
        if self.alive.insert(period as u32, alive as u64).is_some() {
            return Err(CoreError::invalid(
                "period",
                format!("period {period} appears more than once"),
            ));
        }
        Ok(())
    }
    pub fn merge(&mut self, o: &SbgData) -> CoreResult<()> {
        for (p, a) in &o.alive {
            self.add(*p as i64, *a as i64)?;
        }
        Ok(())
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(SBG_MAGIC, 1);
        w.varu(self.alive.len() as u64);
        for (p, a) in &self.alive {
            w.varu(*p as u64);
            w.varu(*a);
        }
        w.finish()
    }
    pub fn decode(buf: &[u8]) -> CoreResult<Self> {
        let (mut r, version) = Reader::new(buf, "sBG state", SBG_MAGIC)?;
        if version != 1 {
            return Err(r.corrupt(format!("unsupported version {version}")));
        }
        let len = r.varu()?;
        let mut out = SbgData::default();
        for _ in 0..len {
            let p = r.varu()?;
            let a = r.varu()?;
            if p > 100_000 || a > i64::MAX as u64 {
                return Err(r.corrupt("invalid row"));
            }
            out.add(p as i64, a as i64)
                .map_err(|_| r.corrupt("duplicate period"))?;
        }
        r.end()?;
        Ok(out)
    }
    /// Survivors n_0..n_k: consecutive periods from 0, non-increasing.
    pub fn survivors(&self) -> CoreResult<Vec<f64>> {
        let mut out = Vec::with_capacity(self.alive.len());
        for (i, (p, a)) in self.alive.iter().enumerate() {
            if *p as usize != i {
                return Err(CoreError::invalid(
                    "period",
                    format!("periods must run 0, 1, 2, ... without gaps; period {i} is missing"),
                ));
            }
            if let Some(prev) = out.last() {
                if *a as f64 > *prev {
                    return Err(CoreError::invalid(
                        "alive",
                        format!(
                            "survivors must not increase: period {p} has {a}, more than period {}",
                            p - 1
                        ),
                    ));
                }
            }
            out.push(*a as f64);
        }
        Ok(out)
    }
}

/// Maximum-likelihood sBG fit to a cohort's survivors. When the likelihood
/// keeps growing towards the geometric limit (no heterogeneity in churn),
/// the fit is reported at a point far along that ray, with
/// α/(α + β) = θ̂ = lost/exposure, a log-likelihood within 1e-12 (relative)
/// of the limit's and `converged = false`, like any other boundary fit.
pub fn fit_sbg(data: &SbgData) -> CoreResult<Fit<Sbg>> {
    let s = data.survivors()?;
    if s.len() < 3 {
        return Err(CoreError::invalid(
            "period",
            format!(
                "an sBG fit needs periods 0, 1 and 2 at least (one more than its 2 parameters), got {}",
                s.len()
            ),
        ));
    }
    if s[0] <= 0.0 {
        return Err(CoreError::invalid(
            "alive",
            "the cohort at period 0 is empty",
        ));
    }
    let make = |lp: &[f64]| Sbg {
        alpha: lp[0].exp(),
        beta: lp[1].exp(),
    };
    let nll = |lp: &[f64]| {
        if lp.iter().any(|v| v.abs() > 30.0) {
            return f64::INFINITY;
        }
        -make(lp).ll(&s) / s[0]
    };
    let (mut params, mut converged) = fit_by_logs(2, &[0.0, 0.0], nll, make);
    let mut ll = params.ll(&s);
    // A homogeneous cohort has its supremum at the geometric limit α, β → ∞,
    // which the search can only approach: when a point far along that ray with
    // α/(α + β) = θ̂ does at least as well, report it, as a boundary fit.
    if let Some(theta) = geometric_churn(&s) {
        let beta = GEOMETRIC_SCALE * (s.len() - 1) as f64;
        let limit = Sbg {
            alpha: beta * theta / (1.0 - theta),
            beta,
        };
        let limit_ll = limit.ll(&s);
        if limit_ll >= ll || !ll.is_finite() {
            params = limit;
            ll = limit_ll;
            converged = false;
        }
    }
    Ok(Fit {
        params,
        log_likelihood: ll,
        n: s[0] as u64,
        converged: converged && ll.is_finite(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Sbg {
        /// ln P(T = t) = ln B(α + 1, β + t − 1) − ln B(α, β)
        /// = ln α/(α + β + t − 1) + ln S(t − 1), for t >= 1: the term the
        /// likelihood sums, as an independent check of `ll`.
        fn ln_p_churn_at(&self, t: f64) -> f64 {
            -((self.beta + t - 1.0) / self.alpha).ln_1p() + self.ln_survival(t - 1.0)
        }
    }
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use rand_distr::{Beta, Distribution, Exp, Gamma};

    const BG: BgNbd = BgNbd {
        r: 0.24,
        alpha: 4.4,
        a: 0.79,
        b: 2.4,
    };

    /// Customers from the BG/NBD generative story, observed for 30 to 39 periods.
    fn simulate_bgnbd(n: usize, seed: u64) -> Vec<(f64, f64, f64)> {
        let mut rng = StdRng::seed_from_u64(seed);
        let lam = Gamma::new(BG.r, 1.0 / BG.alpha).unwrap();
        let pd = Beta::new(BG.a, BG.b).unwrap();
        (0..n)
            .map(|_| {
                let l: f64 = lam.sample(&mut rng);
                let p: f64 = pd.sample(&mut rng);
                let t = 30.0 + rng.gen_range(0..10) as f64;
                let (mut now, mut x, mut tx) = (0.0, 0.0, 0.0);
                if l > 0.0 {
                    let e = Exp::new(l).unwrap();
                    loop {
                        now += e.sample(&mut rng);
                        if now > t {
                            break;
                        }
                        x += 1.0;
                        tx = now;
                        if rng.gen::<f64>() < p {
                            break;
                        }
                    }
                }
                (x, tx, t)
            })
            .collect()
    }

    #[test]
    fn bgnbd_likelihood_matches_a_direct_evaluation() {
        // direct product form, no log-sum-exp: L = A1 A2 (A3 + [x>0] A4)
        let g = |v: f64| ln_gamma(v).exp();
        for (x, tx, t) in [
            (0.0, 0.0, 38.86),
            (2.0, 30.43, 38.86),
            (1.0, 1.71, 38.86),
            (5.0, 20.0, 25.0),
        ] {
            let BgNbd { r, alpha, a, b } = BG;
            let a1 = g(r + x) * alpha.powf(r) / g(r);
            let a2 = g(a + b) * g(b + x) / (g(b) * g(a + b + x));
            let a3 = (alpha + t).powf(-(r + x));
            let a4 = if x > 0.0 {
                a / (b + x - 1.0) * (alpha + tx).powf(-(r + x))
            } else {
                0.0
            };
            let want = (a1 * a2 * (a3 + a4)).ln();
            let got = BG.ll_one(x, tx, t);
            assert!((got - want).abs() < 1e-10, "{x}: {got} vs {want}");
            let mut rows = BgNbdData::default();
            rows.add(x, tx, t).unwrap();
            assert!((BG.ll(&rows.0) - want).abs() < 1e-10);
        }
    }

    #[test]
    fn bgnbd_fit_recovers_parameters() {
        let mut d = BgNbdData::default();
        for (x, tx, t) in simulate_bgnbd(20_000, 1) {
            d.add(x, tx, t).unwrap();
        }
        let fit = fit_bgnbd(&d, 0.0).unwrap();
        assert!(fit.converged, "{fit:?}");
        let p = fit.params;
        for (got, want, tol) in [
            (p.r, BG.r, 0.2),
            (p.alpha, BG.alpha, 0.3),
            (p.a, BG.a, 0.35),
            (p.b, BG.b, 0.4),
        ] {
            assert!(((got - want) / want).abs() < tol, "{p:?}");
        }
        // the fitted point beats the true one on this sample (it is the maximum)
        assert!(fit.log_likelihood >= BG.ll(&d.0) - 1e-6);
        // round trip of the state
        assert_eq!(BgNbdData::decode(&d.encode()).unwrap(), d);
    }

    #[test]
    fn bgnbd_predictions() {
        assert_eq!(BG.p_alive(0.0, 0.0, 10.0), 1.0);
        let pa = BG.p_alive(2.0, 5.0, 30.0);
        assert!(pa > 0.0 && pa < 1.0);
        // a recent purchase means more likely alive
        assert!(BG.p_alive(2.0, 29.0, 30.0) > pa);
        // monotone in the horizon, 0 at 0
        let mut prev = 0.0;
        assert_eq!(BG.expected_conditional(0.0, 2.0, 5.0, 30.0), Some(0.0));
        for h in [1.0, 5.0, 10.0, 52.0, 200.0, 2000.0] {
            let e = BG.expected_conditional(h, 2.0, 25.0, 30.0).unwrap();
            assert!(e > prev, "{h}: {e} <= {prev}");
            prev = e;
            let n = BG.expected_new(h).unwrap();
            assert!(n > 0.0);
        }
        // E[X(t)] against the direct (un-transformed) series for a short horizon
        let t = 3.0;
        let BgNbd { r, alpha, a, b } = BG;
        let z = t / (alpha + t);
        let direct = (a + b - 1.0) / (a - 1.0)
            * (1.0 - (alpha / (alpha + t)).powf(r) * hyp2f1(r, b, a + b - 1.0, z).unwrap());
        assert!((BG.expected_new(t).unwrap() - direct).abs() < 1e-10);
        // a = 1 is handled as a limit: continuous across it
        let near = |a: f64| BgNbd { a, ..BG }.expected_new(10.0).unwrap();
        let (lo, at, hi) = (near(0.999), near(1.0), near(1.001));
        assert!(
            (at - lo).abs() < 1e-2 && (at - hi).abs() < 1e-2,
            "{lo} {at} {hi}"
        );
    }

    #[test]
    fn a_fit_at_the_boundary_is_not_converged() {
        // every customer buys at the same steady pace and nobody drops out:
        // the likelihood keeps growing as a, b run off to the boundary
        let mut d = BgNbdData::default();
        for i in 0..400 {
            let x = (i % 5) as f64;
            let tx = if x == 0.0 { 0.0 } else { (i % 30) as f64 };
            d.add(x, tx, 30.0 + (i % 9) as f64).unwrap();
        }
        let fit = fit_bgnbd(&d, 0.0).unwrap();
        assert!(!fit.converged, "{fit:?}");
        // the penalizer keeps the parameters finite
        let pen = fit_bgnbd(&d, 0.01).unwrap();
        assert!(pen.params.a < 1e3 && pen.params.b < 1e3, "{pen:?}");
    }

    #[test]
    fn bad_rfm_rows_are_errors() {
        let mut d = BgNbdData::default();
        assert!(d.add(1.5, 1.0, 2.0).is_err());
        assert!(d.add(1.0, 3.0, 2.0).is_err());
        assert!(d.add(0.0, 1.0, 2.0).is_err());
        assert!(d.add(-1.0, 0.0, 2.0).is_err());
        assert!(d.add(1.0, f64::NAN, 2.0).is_err());
        d.add(1.0, 1.0, 2.0).unwrap();
        assert!(fit_bgnbd(&d, 0.0).is_err()); // fewer customers than parameters
    }

    #[test]
    fn gamma_gamma_likelihood_and_recovery() {
        let gg = GammaGamma {
            p: 6.0,
            q: 4.0,
            gamma: 15.0,
        };
        // independent: ν ~ Gamma(q, γ) (rate); z_i ~ Gamma(p, ν); density of the mean
        // of x draws is Gamma(p x, x ν); integrate ν out numerically
        let (x, m) = (3.0f64, 9.5f64);
        let mut integral = 0.0;
        let steps = 200_000;
        let hi = 20.0;
        for i in 0..steps {
            let nu = (i as f64 + 0.5) * hi / steps as f64;
            let ln_prior =
                gg.q * gg.gamma.ln() + (gg.q - 1.0) * nu.ln() - gg.gamma * nu - ln_gamma(gg.q);
            let shape = gg.p * x;
            let rate = x * nu;
            let ln_f = shape * rate.ln() + (shape - 1.0) * m.ln() - rate * m - ln_gamma(shape);
            integral += (ln_prior + ln_f).exp() * hi / steps as f64;
        }
        assert!(
            (gg.ll_one(x, m) - integral.ln()).abs() < 1e-6,
            "{} vs {}",
            gg.ll_one(x, m),
            integral.ln()
        );

        let mut rng = StdRng::seed_from_u64(11);
        let nu_d = Gamma::new(gg.q, 1.0 / gg.gamma).unwrap();
        let mut d = GammaGammaData::default();
        for i in 0..6000u64 {
            let nu: f64 = nu_d.sample(&mut rng);
            let x = 1 + rng.gen_range(0..6);
            let z = Gamma::new(gg.p, 1.0 / nu).unwrap();
            let m = (0..x).map(|_| z.sample(&mut rng)).sum::<f64>() / x as f64;
            d.add(x as f64, m, Some(i + 1)).unwrap();
        }
        d.add(0.0, 0.0, Some(9999)).unwrap(); // ignored
        let fit = fit_gamma_gamma(&d).unwrap();
        assert!(fit.converged, "{fit:?}");
        let p = fit.params;
        // p, q, gamma are weakly identified individually; the mean spend p γ/(q−1) is sharp
        let mean = |g: &GammaGamma| g.p * g.gamma / (g.q - 1.0);
        assert!((mean(&p) / mean(&gg) - 1.0).abs() < 0.05, "{p:?}");
        for (got, want) in [(p.p, gg.p), (p.q, gg.q), (p.gamma, gg.gamma)] {
            assert!(((got - want) / want).abs() < 0.5, "{p:?}");
        }
        assert!(fit.log_likelihood >= gg.ll(&d.0) - 1e-6);
        assert_eq!(fit.n, 6000);
        assert!(d.add(1.0, 0.0, Some(1)).is_err());
        assert_eq!(GammaGammaData::decode(&d.encode()).unwrap(), d);
    }

    #[test]
    fn sbg_formulas_and_recovery() {
        let m = Sbg {
            alpha: 0.704,
            beta: 1.182,
        };
        assert!((m.survival(0.0) - 1.0).abs() < 1e-12);
        // S(t) = Π r_i and P(T = t) = S(t−1) − S(t)
        let mut s = 1.0;
        for t in 1..=10 {
            let tf = t as f64;
            let p = m.ln_p_churn_at(tf).exp();
            assert!((p - (s - m.survival(tf))).abs() < 1e-12);
            s *= m.retention(tf);
            assert!((s - m.survival(tf)).abs() < 1e-12);
        }
        // Fader & Hardie (2007) "regular" customers: alpha 0.704, beta 1.182 from these survivors
        let mut d = SbgData::default();
        for (i, n) in REGULAR.iter().enumerate() {
            d.add(i as i64, *n as i64).unwrap();
        }
        let fit = fit_sbg(&d).unwrap();
        assert!(fit.converged);
        assert!((fit.params.alpha - 0.704).abs() < 0.005, "{fit:?}");
        assert!((fit.params.beta - 1.182).abs() < 0.01, "{fit:?}");
        assert_eq!(SbgData::decode(&d.encode()).unwrap(), d);
        let mut gap = SbgData::default();
        gap.add(0, 10).unwrap();
        gap.add(2, 5).unwrap();
        assert!(fit_sbg(&gap).is_err());
        let mut up = SbgData::default();
        for (p, a) in [(0, 10), (1, 11), (2, 5)] {
            up.add(p, a).unwrap();
        }
        assert!(fit_sbg(&up).is_err());
        assert!(SbgData::default().add(1, -1).is_err());
    }

    fn ln_beta(a: f64, b: f64) -> f64 {
        ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
    }

    /// Σ lost_t ln P(T = t) + n_k ln S(k) straight from the Beta functions.
    fn sbg_ll_by_ln_beta(m: &Sbg, s: &[f64]) -> f64 {
        let (a, b) = (m.alpha, m.beta);
        let k = s.len() - 1;
        let mut ll = 0.0;
        for t in 1..=k {
            let tf = t as f64;
            ll += (s[t - 1] - s[t]) * (ln_beta(a + 1.0, b + tf - 1.0) - ln_beta(a, b));
        }
        ll + s[k] * (ln_beta(a, b + k as f64) - ln_beta(a, b))
    }

    /// The geometric model's log-likelihood: lost_t ln θ(1 − θ)^(t−1), n_k k ln(1 − θ).
    fn geometric_ll(theta: f64, s: &[f64]) -> f64 {
        let k = s.len() - 1;
        let mut ll = 0.0;
        for t in 1..=k {
            ll += (s[t - 1] - s[t]) * (theta.ln() + (t - 1) as f64 * (-theta).ln_1p());
        }
        ll + s[k] * k as f64 * (-theta).ln_1p()
    }

    const HOMOGENEOUS: [f64; 8] = [17.0, 17.0, 17.0, 16.0, 15.0, 14.0, 13.0, 13.0];
    const REGULAR: [f64; 8] = [1000.0, 631.0, 468.0, 382.0, 326.0, 289.0, 262.0, 241.0];

    #[test]
    fn sbg_likelihood_is_accurate_for_any_parameters() {
        let rel = |got: f64, want: f64| ((got - want) / want).abs();
        // moderate parameters: the product form agrees with the Beta functions
        for (a, b) in [(0.704, 1.182), (5.0, 20.0), (3.0, 0.2), (40.0, 9.0)] {
            let m = Sbg { alpha: a, beta: b };
            for s in [&REGULAR[..], &HOMOGENEOUS[..]] {
                let (got, want) = (m.ll(s), sbg_ll_by_ln_beta(&m, s));
                assert!(rel(got, want) < 1e-10, "{m:?}: {got} vs {want}");
            }
            // and so do the O(1) closed forms, integer or not
            for t in [0.0, 1.0, 2.5, 7.0, 100.0, 12345.0] {
                let want = ln_beta(a, b + t) - ln_beta(a, b);
                let got = m.ln_survival(t);
                assert!(
                    (got - want).abs() <= 1e-10 * want.abs().max(1.0),
                    "{m:?} {t}"
                );
                if t >= 1.0 {
                    let want = ln_beta(a + 1.0, b + t - 1.0) - ln_beta(a, b);
                    let got = m.ln_p_churn_at(t);
                    assert!(
                        (got - want).abs() <= 1e-10 * want.abs().max(1.0),
                        "{m:?} {t}"
                    );
                }
            }
            // far out, where lnΓ(β + t) itself is too big to difference: S(t) = S(t0) Π r_i
            for t0 in [1e7, 2e9] {
                let mut want = m.ln_survival(t0);
                for i in 0..1000 {
                    want += ((b + t0 + i as f64) / (a + b + t0 + i as f64)).ln();
                }
                let got = m.ln_survival(t0 + 1000.0);
                assert!(rel(got, want) < 1e-12, "{m:?} {t0}: {got} vs {want}");
            }
        }
        // huge parameters: the geometric limit, which the Beta functions lose
        for theta in [HOMOGENEOUS_THETA, 0.3, 1e-4] {
            let m = Sbg {
                alpha: 1e10 * theta,
                beta: 1e10 * (1.0 - theta),
            };
            for s in [&REGULAR[..], &HOMOGENEOUS[..]] {
                let (got, want) = (m.ll(s), geometric_ll(theta, s));
                assert!(rel(got, want) < 1e-9, "{theta}: {got} vs {want}");
            }
            // within a few periods the model is the geometric one (the gap is ~t/β)
            for t in [1.0, 2.0, 7.0] {
                let want = t * (-theta).ln_1p();
                assert!(rel(m.ln_survival(t), want) < 1e-9, "{theta} {t}");
                let want = theta.ln() + (t - 1.0) * (-theta).ln_1p();
                assert!(rel(m.ln_p_churn_at(t), want) < 1e-9, "{theta} {t}");
            }
            // further out, the closed forms follow the exact product
            let (a, b) = (m.alpha, m.beta);
            let mut ln_s = 0.0;
            for t in 1..=200_000u32 {
                let i = (t - 1) as f64;
                let ln_p = ln_s - ((b + i) / a).ln_1p();
                ln_s -= (a / (b + i)).ln_1p();
                if t % 9973 == 0 {
                    assert!(rel(m.ln_survival(t as f64), ln_s) < 1e-9, "{theta} {t}");
                    assert!(rel(m.ln_p_churn_at(t as f64), ln_p) < 1e-9, "{theta} {t}");
                }
            }
        }
        // closed forms against the running product, large and mixed parameters
        for (a, b) in [(3.7e8, 9.1e9), (2.0, 5e7), (5e7, 0.5), (12.0, 11.0)] {
            let m = Sbg { alpha: a, beta: b };
            let mut ln_s = 0.0;
            for t in 1..=2000 {
                let i = (t - 1) as f64;
                let ln_p = ln_s - ((b + i) / a).ln_1p();
                ln_s -= (a / (b + i)).ln_1p();
                let got = m.ln_survival(t as f64);
                assert!(rel(got, ln_s) < 1e-9, "{m:?} {t}: {got} vs {ln_s}");
                let got = m.ln_p_churn_at(t as f64);
                assert!(rel(got, ln_p) < 1e-9, "{m:?} {t}: {got} vs {ln_p}");
            }
        }
    }

    const HOMOGENEOUS_THETA: f64 = 4.0 / 109.0;

    #[test]
    fn sbg_homogeneous_cohort_is_a_boundary_fit_at_the_geometric_limit() {
        let mut d = SbgData::default();
        for (i, n) in HOMOGENEOUS.iter().enumerate() {
            d.add(i as i64, *n as i64).unwrap();
        }
        // θ̂ = lost / exposure, exposure = Σ_{t=1..k} n_{t−1}
        let k = HOMOGENEOUS.len() - 1;
        let lost = HOMOGENEOUS[0] - HOMOGENEOUS[k];
        let exposure: f64 = HOMOGENEOUS[..k].iter().sum();
        let theta = lost / exposure;
        assert!((theta - HOMOGENEOUS_THETA).abs() < 1e-15);
        let limit = geometric_ll(theta, &HOMOGENEOUS);
        assert!((limit + 17.1459).abs() < 1e-4, "{limit}");

        let fit = fit_sbg(&d).unwrap();
        let (ll, p) = (fit.log_likelihood, fit.params);
        assert!(!fit.converged, "{fit:?}");
        assert!(ll <= -17.1459 + 1e-6, "{fit:?}");
        assert!(ll >= limit - 1e-6, "{fit:?} vs {limit}");
        assert!(((ll - limit) / limit).abs() < 1e-9, "{fit:?} vs {limit}");
        assert!(
            (p.alpha / (p.alpha + p.beta) - theta).abs() < 1e-3,
            "{fit:?}"
        );
        // the reported point is consistent: its own likelihood is the one reported
        assert_eq!(p.ll(&HOMOGENEOUS), ll);
        assert_eq!(fit.n, 17);
    }

    #[test]
    fn clv_is_discounted_spend_times_purchases() {
        let gg = GammaGamma {
            p: 6.0,
            q: 4.0,
            gamma: 15.0,
        };
        let v = clv(&BG, &gg, 2.0, 25.0, 30.0, 20.0, 12, 0.01, 4.345).unwrap();
        let spend = gg.expected_spend(2.0, 20.0).unwrap();
        let mut manual = 0.0;
        let mut prev = 0.0;
        for k in 1..=12 {
            let e = BG
                .expected_conditional(k as f64 * 4.345, 2.0, 25.0, 30.0)
                .unwrap();
            manual += spend * (e - prev) / 1.01f64.powi(k);
            prev = e;
        }
        assert!((v - manual).abs() < 1e-9);
        assert!(v > 0.0);
        // no discount: spend times expected purchases over the year
        let flat = clv(&BG, &gg, 2.0, 25.0, 30.0, 20.0, 12, 0.0, 4.345).unwrap();
        let e = BG
            .expected_conditional(12.0 * 4.345, 2.0, 25.0, 30.0)
            .unwrap();
        assert!((flat - spend * e).abs() < 1e-9);
    }
}
