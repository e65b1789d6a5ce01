//! Special functions and a derivative-free optimizer for the customer models.

/// The Gauss hypergeometric series 2F1(a, b; c; z) for 0 <= z < 1.
///
/// Summed term by term until a term no longer changes the sum; None when
/// `c` is a non-positive integer, z is outside [0, 1), or the series has not
/// converged after a million terms. The result can be negative: callers
/// must never take its logarithm.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Option<f64> {
    if !(0.0..1.0).contains(&z) || (c <= 0.0 && c.fract() == 0.0) {
        return None;
    }
    if z == 0.0 {
        return Some(1.0);
    }
    let mut term = 1.0f64;
    let mut sum = 1.0f64;
    for n in 0..1_000_000u32 {
        let n = n as f64;
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        if term == 0.0 {
            return Some(sum);
        }
        let next = sum + term;
        if !next.is_finite() {
            return None;
        }
        if (next - sum).abs() <= f64::EPSILON * next.abs() * 0.5 && n > 2.0 {
            return Some(next);
        }
        sum = next;
    }
    None
}

/// Result of a minimization.
#[derive(Clone, Debug, PartialEq)]
pub struct Minimum {
    pub x: Vec<f64>,
    pub value: f64,
    pub converged: bool,
    pub evaluations: usize,
}

/// Nelder–Mead simplex minimization of `f` from `x0` with initial steps
/// `step`, restarted from the best point until a restart no longer improves
/// it (which guards against the simplex collapsing early). Non-finite
/// function values are treated as +infinity.
pub fn nelder_mead(
    f: &mut dyn FnMut(&[f64]) -> f64,
    x0: &[f64],
    step: f64,
    max_evals: usize,
    ftol: f64,
) -> Minimum {
    let mut evals = 0usize;
    let mut eval = |x: &[f64], evals: &mut usize| {
        *evals += 1;
        let v = f(x);
        if v.is_finite() {
            v
        } else {
            f64::INFINITY
        }
    };
    let n = x0.len();
    let mut best = x0.to_vec();
    let mut best_v = eval(&best, &mut evals);
    let mut converged = false;
    for _restart in 0..8 {
        // simplex around the best point
        let mut pts: Vec<Vec<f64>> = vec![best.clone()];
        for i in 0..n {
            let mut p = best.clone();
            p[i] += step;
            pts.push(p);
        }
        let mut vals: Vec<f64> = pts.iter().map(|p| eval(p, &mut evals)).collect();
        let mut inner_converged = false;
        while evals < max_evals {
            let mut idx: Vec<usize> = (0..=n).collect();
            idx.sort_by(|&i, &j| vals[i].total_cmp(&vals[j]));
            pts = idx.iter().map(|&i| pts[i].clone()).collect();
            vals = idx.iter().map(|&i| vals[i]).collect();
            let spread = (vals[n] - vals[0]).abs();
            if spread.is_finite() && spread <= ftol * (1.0 + vals[0].abs()) {
                inner_converged = true;
                break;
            }
            let centroid: Vec<f64> = (0..n)
                .map(|k| pts[..n].iter().map(|p| p[k]).sum::<f64>() / n as f64)
                .collect();
            let along = |t: f64| -> Vec<f64> {
                (0..n)
                    .map(|k| centroid[k] + t * (pts[n][k] - centroid[k]))
                    .collect()
            };
            let xr = along(-1.0);
            let fr = eval(&xr, &mut evals);
            if fr < vals[0] {
                let xe = along(-2.0);
                let fe = eval(&xe, &mut evals);
                if fe < fr {
                    pts[n] = xe;
                    vals[n] = fe;
                } else {
                    pts[n] = xr;
                    vals[n] = fr;
                }
            } else if fr < vals[n - 1] {
                pts[n] = xr;
                vals[n] = fr;
            } else {
                let (xc, fc) = if fr < vals[n] {
                    let xc = along(-0.5);
                    let fc = eval(&xc, &mut evals);
                    (xc, fc)
                } else {
                    let xc = along(0.5);
                    let fc = eval(&xc, &mut evals);
                    (xc, fc)
                };
                if fc < vals[n].min(fr) {
                    pts[n] = xc;
                    vals[n] = fc;
                } else {
                    // shrink towards the best point
                    for i in 1..=n {
                        let p: Vec<f64> = (0..n)
                            .map(|k| pts[0][k] + 0.5 * (pts[i][k] - pts[0][k]))
                            .collect();
                        vals[i] = eval(&p, &mut evals);
                        pts[i] = p;
                    }
                }
            }
        }
        let (bi, bv) = vals
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, v)| (i, *v))
            .unwrap_or((0, f64::INFINITY));
        let improved = bv < best_v - ftol * (1.0 + best_v.abs());
        if bv <= best_v {
            best = pts[bi].clone();
            best_v = bv;
        }
        if inner_converged && !improved {
            converged = true;
            break;
        }
        if evals >= max_evals {
            break;
        }
    }
    Minimum {
        x: best,
        value: best_v,
        converged: converged && best_v.is_finite(),
        evaluations: evals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyp2f1_known_values() {
        // 2F1(1, 1; 2; z) = -ln(1 - z) / z
        for z in [0.1, 0.5, 0.9, 0.99] {
            let want = -(1.0f64 - z).ln() / z;
            let got = hyp2f1(1.0, 1.0, 2.0, z).unwrap();
            assert!((got - want).abs() < 1e-12 * want, "{z}: {got} vs {want}");
        }
        // 2F1(a, b; b; z) = (1 - z)^-a
        let got = hyp2f1(0.7, 2.5, 2.5, 0.3).unwrap();
        assert!((got - 0.7f64.powf(-0.7)).abs() < 1e-13);
        // negative values exist for valid parameters: 2F1(-0.5, 3; 1; 0.9) < 0
        let neg = hyp2f1(-0.5, 3.0, 1.0, 0.9).unwrap();
        assert!(neg < 0.0, "{neg}");
        assert_eq!(hyp2f1(1.0, 1.0, 0.0, 0.5), None);
        assert_eq!(hyp2f1(1.0, 1.0, 2.0, 1.0), None);
        assert_eq!(hyp2f1(1.0, 1.0, 2.0, 0.0), Some(1.0));
    }

    #[test]
    fn nelder_mead_finds_rosenbrock_minimum() {
        let mut f = |x: &[f64]| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2);
        let m = nelder_mead(&mut f, &[-1.2, 1.0], 0.5, 20_000, 1e-14);
        assert!(m.converged);
        assert!(
            (m.x[0] - 1.0).abs() < 1e-4 && (m.x[1] - 1.0).abs() < 1e-4,
            "{m:?}"
        );
    }
}
