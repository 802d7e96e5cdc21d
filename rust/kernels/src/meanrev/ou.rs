//! Ornstein–Uhlenbeck estimation with the exact discretisation (docs/compute.md §3a).
//!
//! `dX = theta (mu - X) dt + sigma dW` is the AR(1) `x_t = a + b x_{t-1} + e_t`
//! with `b = exp(-theta dt)`, `a = mu (1 - b)`, `var(e) = sigma^2 (1 - b^2) / (2 theta)`.

// `!(x > 0.0)` is used on purpose: it also rejects NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use std::f64::consts::{LN_2, PI};

use rayon::prelude::*;

use crate::error::{Result, invalid};

/// One OU fit. `n` counts transitions (observations - 1).
#[derive(Debug, Clone, PartialEq)]
pub struct OuFit {
    pub n: usize,
    pub a: f64,
    pub b: f64,
    /// Residual variance of the AR(1), MLE (divisor n).
    pub s2: f64,
    pub theta: f64,
    pub mu: f64,
    pub sigma: f64,
    pub half_life_years: f64,
    pub half_life_bars: f64,
    pub llf: f64,
    pub se_a: f64,
    pub se_b: f64,
    pub se_theta: f64,
    pub se_mu: f64,
    pub se_half_life_years: f64,
    pub mean_reverting: bool,
}

fn check_series(x: &[f64], dt: f64) -> Result<()> {
    if x.len() < 3 {
        return Err(invalid(format!(
            "an OU fit needs at least 3 observations, got {}",
            x.len()
        )));
    }
    if let Some((i, v)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(invalid(format!(
            "the series must be finite; value {v} at index {i}"
        )));
    }
    if !(dt.is_finite() && dt > 0.0) {
        return Err(invalid(format!("dt must be finite and > 0, got {dt}")));
    }
    let first = x[0];
    if x.iter().all(|v| *v == first) {
        return Err(invalid("the series is constant; an OU fit needs variation"));
    }
    Ok(())
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// theta, mu, sigma and half-lives from the AR(1) coefficients.
fn derive(a: f64, b: f64, s2: f64, dt: f64) -> (f64, f64, f64, f64, f64, bool) {
    if b <= 0.0 || !b.is_finite() {
        return (f64::NAN, f64::NAN, f64::NAN, f64::NAN, f64::NAN, false);
    }
    let lnb = (b - 1.0).ln_1p();
    let theta = -lnb / dt;
    if b >= 1.0 {
        return (
            theta,
            f64::NAN,
            f64::NAN,
            f64::INFINITY,
            f64::INFINITY,
            false,
        );
    }
    let mu = a / (1.0 - b);
    let sigma = (2.0 * theta * s2 / ((1.0 - b) * (1.0 + b))).sqrt();
    let hl_bars = -LN_2 / lnb;
    let hl_years = LN_2 / theta;
    (theta, mu, sigma, hl_years, hl_bars, true)
}

/// Conditional MLE given x_0 with equal spacing: the OLS closed form.
///
/// Standard errors use the OLS covariance of (a, b) with the unbiased
/// residual variance (divisor n - 2, as statsmodels `bse`) and the delta method.
pub fn fit_conditional(x: &[f64], dt: f64) -> Result<OuFit> {
    check_series(x, dt)?;
    let c = mean(x);
    let n = x.len() - 1;
    let nf = n as f64;
    let lag = &x[..n];
    let lead = &x[1..];
    let mx = lag.iter().map(|v| v - c).sum::<f64>() / nf;
    let my = lead.iter().map(|v| v - c).sum::<f64>() / nf;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for (p, q) in lag.iter().zip(lead) {
        let dx = p - c - mx;
        let dy = q - c - my;
        sxx += dx * dx;
        sxy += dx * dy;
    }
    if !(sxx > 0.0) {
        return Err(invalid(
            "the lagged series is constant; an OU fit needs variation",
        ));
    }
    let b = sxy / sxx;
    let a_c = my - b * mx;
    let mut ssr = 0.0;
    for (p, q) in lag.iter().zip(lead) {
        let e = (q - c) - a_c - b * (p - c);
        ssr += e * e;
    }
    let a = a_c + c * (1.0 - b);
    let s2 = ssr / nf;
    let llf = -0.5 * nf * ((2.0 * PI * s2).ln() + 1.0);
    let (theta, mu, sigma, hl_years, hl_bars, mr) = derive(a, b, s2, dt);
    // OLS covariance in the original (uncentred) regressor.
    let s2u = if n > 2 { ssr / (nf - 2.0) } else { f64::NAN };
    let mean_lag = mx + c;
    let var_b = s2u / sxx;
    let var_a = s2u * (1.0 / nf + mean_lag * mean_lag / sxx);
    let cov_ab = -s2u * mean_lag / sxx;
    let se_b = var_b.sqrt();
    let se_theta = se_b / (b.abs() * dt);
    let (se_mu, se_hl) = if mr {
        let d = 1.0 - b;
        let ga = 1.0 / d;
        let gb = a / (d * d);
        let var_mu = ga * ga * var_a + 2.0 * ga * gb * cov_ab + gb * gb * var_b;
        (var_mu.max(0.0).sqrt(), LN_2 * se_theta / (theta * theta))
    } else {
        (f64::NAN, f64::NAN)
    };
    Ok(OuFit {
        n,
        a,
        b,
        s2,
        theta,
        mu,
        sigma,
        half_life_years: hl_years,
        half_life_bars: hl_bars,
        llf,
        se_a: var_a.sqrt(),
        se_b,
        se_theta,
        se_mu,
        se_half_life_years: se_hl,
        mean_reverting: mr,
    })
}

/// Exact Gaussian AR(1) log-likelihood with a stationary x_0
/// (statsmodels `ARIMA(order=(1, 0, 0), trend="c").loglike([mu, b, s2])`).
pub fn exact_loglik(x: &[f64], mu: f64, b: f64, s2: f64) -> f64 {
    if !(b.abs() < 1.0) || !(s2 > 0.0) || x.is_empty() {
        return f64::NEG_INFINITY;
    }
    let w0 = (1.0 - b) * (1.0 + b);
    let e0 = x[0] - mu;
    let mut ss = w0 * e0 * e0;
    for w in x.windows(2) {
        let e = (w[1] - mu) - b * (w[0] - mu);
        ss += e * e;
    }
    let nn = x.len() as f64;
    -0.5 * nn * (2.0 * PI * s2).ln() + 0.5 * w0.ln() - 0.5 * ss / s2
}

/// Profile exact log-likelihood over b for centred data y: returns (llf, mu, s2).
fn exact_profile(y: &[f64], b: f64) -> (f64, f64, f64) {
    let n = (y.len() - 1) as f64;
    let d = 1.0 - b;
    let w0 = (1.0 - b) * (1.0 + b);
    let sr: f64 = y.windows(2).map(|w| w[1] - b * w[0]).sum();
    let mu = (d * sr + w0 * y[0]) / (n * d * d + w0);
    let mut ss = w0 * (y[0] - mu) * (y[0] - mu);
    for w in y.windows(2) {
        let e = w[1] - b * w[0] - d * mu;
        ss += e * e;
    }
    let nn = y.len() as f64;
    let s2 = ss / nn;
    let llf = -0.5 * nn * ((2.0 * PI * s2).ln() + 1.0) + 0.5 * w0.ln();
    (llf, mu, s2)
}

/// Brent's minimiser of `f` on [lo, hi] (golden section + parabolic steps).
pub fn brent_min(f: &mut dyn FnMut(f64) -> f64, lo: f64, hi: f64, tol: f64) -> (f64, f64) {
    const CG: f64 = 0.381_966_011_250_105_1;
    let (mut a, mut b) = (lo, hi);
    let mut x = a + CG * (b - a);
    let (mut w, mut v) = (x, x);
    let mut fx = f(x);
    let (mut fw, mut fv) = (fx, fx);
    let (mut d, mut e) = (0.0f64, 0.0f64);
    for _ in 0..500 {
        let xm = 0.5 * (a + b);
        let tol1 = tol * x.abs() + 1e-14;
        let tol2 = 2.0 * tol1;
        if (x - xm).abs() <= tol2 - 0.5 * (b - a) {
            break;
        }
        let mut golden = true;
        if e.abs() > tol1 {
            let r = (x - w) * (fx - fv);
            let mut q = (x - v) * (fx - fw);
            let mut p = (x - v) * q - (x - w) * r;
            q = 2.0 * (q - r);
            if q > 0.0 {
                p = -p;
            }
            q = q.abs();
            let etemp = e;
            e = d;
            if !(p.abs() >= (0.5 * q * etemp).abs() || p <= q * (a - x) || p >= q * (b - x)) {
                d = p / q;
                let u = x + d;
                if u - a < tol2 || b - u < tol2 {
                    d = if xm >= x { tol1 } else { -tol1 };
                }
                golden = false;
            }
        }
        if golden {
            e = if x >= xm { a - x } else { b - x };
            d = CG * e;
        }
        let u = if d.abs() >= tol1 {
            x + d
        } else if d >= 0.0 {
            x + tol1
        } else {
            x - tol1
        };
        let fu = f(u);
        if fu <= fx {
            if u >= x {
                a = x;
            } else {
                b = x;
            }
            v = w;
            fv = fw;
            w = x;
            fw = fx;
            x = u;
            fx = fu;
        } else {
            if u < x {
                a = u;
            } else {
                b = u;
            }
            if fu <= fw || w == x {
                v = w;
                fv = fw;
                w = u;
                fw = fu;
            } else if fu <= fv || v == x || v == w {
                v = u;
                fv = fu;
            }
        }
    }
    (x, fx)
}

/// Grid search then Brent: maximise `g` over [lo, hi].
fn maximise(g: &mut dyn FnMut(f64) -> f64, lo: f64, hi: f64, steps: usize) -> f64 {
    let h = (hi - lo) / steps as f64;
    let mut best = (lo, f64::NEG_INFINITY);
    for i in 0..=steps {
        let u = lo + h * i as f64;
        let v = g(u);
        if v > best.1 {
            best = (u, v);
        }
    }
    let a = (best.0 - h).max(lo);
    let b = (best.0 + h).min(hi);
    let mut neg = |u: f64| {
        let v = g(u);
        if v.is_finite() { -v } else { f64::INFINITY }
    };
    let (u, fu) = brent_min(&mut neg, a, b, 1e-12);
    if -fu >= best.1 { u } else { best.0 }
}

/// Exact (unconditional) MLE: x_0 drawn from the stationary law.
/// Profile over b = tanh(u) with mu and s2 solved in closed form.
/// Standard errors are the conditional (OLS) ones.
pub fn fit_exact(x: &[f64], dt: f64) -> Result<OuFit> {
    let cond = fit_conditional(x, dt)?;
    let c = mean(x);
    let y: Vec<f64> = x.iter().map(|v| v - c).collect();
    let mut g = |u: f64| exact_profile(&y, u.tanh()).0;
    let u = maximise(&mut g, -4.0, 12.0, 320);
    let b = u.tanh();
    let (llf, mu_c, s2) = exact_profile(&y, b);
    let mu = mu_c + c;
    let a = mu * (1.0 - b);
    let (theta, mu_d, sigma, hl_years, hl_bars, mr) = derive(a, b, s2, dt);
    let se_theta = cond.se_b / (b.abs() * dt);
    Ok(OuFit {
        n: cond.n,
        a,
        b,
        s2,
        theta,
        mu: if mr { mu_d } else { mu },
        sigma,
        half_life_years: hl_years,
        half_life_bars: hl_bars,
        llf,
        se_a: cond.se_a,
        se_b: cond.se_b,
        se_theta,
        se_mu: cond.se_mu,
        se_half_life_years: if mr {
            LN_2 * se_theta / (theta * theta)
        } else {
            f64::NAN
        },
        mean_reverting: mr,
    })
}

/// Profile conditional log-likelihood over log theta for irregular spacing.
fn irregular_profile(y: &[f64], dts: &[f64], theta: f64) -> (f64, f64, f64) {
    let (mut num, mut den, mut slogh) = (0.0, 0.0, 0.0);
    for (w, &dt) in y.windows(2).zip(dts) {
        let b = (-theta * dt).exp();
        let d = -(-theta * dt).exp_m1();
        let h = -(-2.0 * theta * dt).exp_m1() / (2.0 * theta);
        let r = w[1] - b * w[0];
        num += d * r / h;
        den += d * d / h;
        slogh += h.ln();
    }
    let mu = if den > 0.0 { num / den } else { 0.0 };
    let mut ss = 0.0;
    for (w, &dt) in y.windows(2).zip(dts) {
        let b = (-theta * dt).exp();
        let d = -(-theta * dt).exp_m1();
        let h = -(-2.0 * theta * dt).exp_m1() / (2.0 * theta);
        let e = w[1] - b * w[0] - d * mu;
        ss += e * e / h;
    }
    let n = dts.len() as f64;
    let sig2 = ss / n;
    let llf = -0.5 * n * ((2.0 * PI * sig2).ln() + 1.0) - 0.5 * slogh;
    (llf, mu, sig2)
}

/// Conditional MLE for irregular sampling times `t` (strictly increasing, in years).
/// Profile over log theta (Brent); mu is a weighted LS solution and sigma^2 closed form.
/// The reported a, b and half-life in bars use the mean spacing; SEs are NaN.
pub fn fit_irregular(x: &[f64], t: &[f64]) -> Result<OuFit> {
    if t.len() != x.len() {
        return Err(invalid(format!(
            "times and values differ in length ({} vs {})",
            t.len(),
            x.len()
        )));
    }
    check_series(x, 1.0)?;
    let dts: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    if let Some((i, d)) = dts
        .iter()
        .enumerate()
        .find(|(_, d)| !(d.is_finite() && **d > 0.0))
    {
        return Err(invalid(format!(
            "times must be finite and strictly increasing; step {d} after index {i}"
        )));
    }
    let span = t[t.len() - 1] - t[0];
    let min_dt = dts.iter().copied().fold(f64::INFINITY, f64::min);
    let c = mean(x);
    let y: Vec<f64> = x.iter().map(|v| v - c).collect();
    let lo = (1e-4 / span).ln();
    let hi = (50.0 / min_dt).ln();
    let mut g = |lt: f64| irregular_profile(&y, &dts, lt.exp()).0;
    let lt = maximise(&mut g, lo, hi, 400);
    let theta = lt.exp();
    let (llf, mu_c, sig2) = irregular_profile(&y, &dts, theta);
    let mean_dt = span / dts.len() as f64;
    let b = (-theta * mean_dt).exp();
    let mu = mu_c + c;
    let sigma = sig2.sqrt();
    Ok(OuFit {
        n: dts.len(),
        a: mu * (1.0 - b),
        b,
        s2: sig2 * -(-2.0 * theta * mean_dt).exp_m1() / (2.0 * theta),
        theta,
        mu,
        sigma,
        half_life_years: LN_2 / theta,
        half_life_bars: LN_2 / (theta * mean_dt),
        llf,
        se_a: f64::NAN,
        se_b: f64::NAN,
        se_theta: f64::NAN,
        se_mu: f64::NAN,
        se_half_life_years: f64::NAN,
        mean_reverting: true,
    })
}

/// Rolling conditional fits over trailing windows of `window` observations.
/// Outputs have the input length; the first `window - 1` entries are NaN.
#[derive(Debug, Clone, Default)]
pub struct RollingOu {
    pub a: Vec<f64>,
    pub b: Vec<f64>,
    pub s2: Vec<f64>,
    pub theta: Vec<f64>,
    pub mu: Vec<f64>,
    pub sigma: Vec<f64>,
    pub half_life_bars: Vec<f64>,
}

const RECOMPUTE_EVERY: usize = 1000;

/// Fields of one rolling output block, in order.
pub const ROLLING_FIELDS: [&str; 7] = ["a", "b", "s2", "theta", "mu", "sigma", "half_life_bars"];

/// Writes the 7 fields of `x` into `out` (length 7 n, field f at `f * n..`).
fn rolling_one(x: &[f64], window: usize, dt: f64, out: &mut [f64]) {
    let n = x.len();
    out.fill(f64::NAN);
    if n < window {
        return;
    }
    let m = (window - 1) as f64;
    let (mut sx, mut sy, mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut c = 0.0;
    for t in window - 1..n {
        let k = t + 1 - window; // first observation in the window
        if (t + 1 - window) % RECOMPUTE_EVERY == 0 {
            c = mean(&x[k..=t]);
            (sx, sy, sxx, sxy, syy) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for j in k + 1..=t {
                let p = x[j - 1] - c;
                let q = x[j] - c;
                sx += p;
                sy += q;
                sxx += p * p;
                sxy += p * q;
                syy += q * q;
            }
        } else {
            let (p_out, q_out) = (x[k - 1] - c, x[k] - c);
            let (p_in, q_in) = (x[t - 1] - c, x[t] - c);
            sx += p_in - p_out;
            sy += q_in - q_out;
            sxx += p_in * p_in - p_out * p_out;
            sxy += p_in * q_in - p_out * q_out;
            syy += q_in * q_in - q_out * q_out;
        }
        let varx = sxx - sx * sx / m;
        if !(varx > 0.0) {
            continue;
        }
        let cov = sxy - sx * sy / m;
        let vary = syy - sy * sy / m;
        let b = cov / varx;
        let a_c = (sy - b * sx) / m;
        let s2 = ((vary - b * cov) / m).max(0.0);
        let a = a_c + c * (1.0 - b);
        let (theta, mu, sigma, _, hl_bars, _) = derive(a, b, s2, dt);
        for (f, v) in [a, b, s2, theta, mu, sigma, hl_bars]
            .into_iter()
            .enumerate()
        {
            out[f * n + t] = v;
        }
    }
}

fn check_rolling(window: usize, dt: f64) -> Result<()> {
    if window < 3 {
        return Err(invalid(format!("window must be >= 3, got {window}")));
    }
    if !(dt.is_finite() && dt > 0.0) {
        return Err(invalid(format!("dt must be finite and > 0, got {dt}")));
    }
    Ok(())
}

/// Rolling fits of one series (O(1) sum updates, exact recompute every 1000 steps).
pub fn rolling(x: &[f64], window: usize, dt: f64) -> Result<RollingOu> {
    check_rolling(window, dt)?;
    if let Some((i, v)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(invalid(format!(
            "the series must be finite; value {v} at index {i}"
        )));
    }
    let n = x.len();
    let mut out = vec![0.0; 7 * n];
    rolling_one(x, window, dt, &mut out);
    let field = |f: usize| out[f * n..(f + 1) * n].to_vec();
    Ok(RollingOu {
        a: field(0),
        b: field(1),
        s2: field(2),
        theta: field(3),
        mu: field(4),
        sigma: field(5),
        half_life_bars: field(6),
    })
}

/// Rolling fits of `m` series stored one after another (series-major: `x[j * rows + r]`),
/// in parallel. Returns one buffer laid out `[series][field][row]` (fields in
/// `ROLLING_FIELDS` order), so no output is copied after the fits.
pub fn rolling_many(x: &[f64], rows: usize, m: usize, window: usize, dt: f64) -> Result<Vec<f64>> {
    check_rolling(window, dt)?;
    if x.len() != rows * m || rows == 0 {
        return Err(invalid("matrix shape does not match its data"));
    }
    if let Some((i, v)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(invalid(format!(
            "the series must be finite; value {v} at row {}, column {}",
            i % rows,
            i / rows
        )));
    }
    let mut out = vec![0.0; 7 * rows * m];
    out.par_chunks_mut(7 * rows)
        .zip(x.par_chunks(rows))
        .for_each(|(o, col)| rolling_one(col, window, dt, o));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simulate(n: usize, theta: f64, mu: f64, sigma: f64, dt: f64, seed: u64) -> Vec<f64> {
        let mut rng = crate::rng::stream(seed, crate::rng::purpose::SIM_PATH, 0);
        let b = (-theta * dt).exp();
        let sd = (sigma * sigma * (1.0 - b * b) / (2.0 * theta)).sqrt();
        let mut z = vec![0.0; n];
        crate::rng::fill_normals(&mut rng, &mut z);
        let mut x = vec![mu; n];
        for t in 1..n {
            x[t] = mu + (x[t - 1] - mu) * b + sd * z[t];
        }
        x
    }

    #[test]
    fn half_life_identity() {
        let dt = 1.0 / 252.0;
        let x = simulate(3000, 2.0, 1.0, 0.5, dt, 1);
        let f = fit_conditional(&x, dt).unwrap();
        assert!(f.mean_reverting);
        assert!((f.half_life_bars * dt - f.half_life_years).abs() <= 1e-12 * f.half_life_years);
    }

    #[test]
    fn exact_mle_beats_conditional_on_exact_likelihood() {
        let dt = 1.0 / 252.0;
        let x = simulate(2000, 5.0, 0.0, 1.0, dt, 2);
        let c = fit_conditional(&x, dt).unwrap();
        let e = fit_exact(&x, dt).unwrap();
        let at_c = exact_loglik(&x, c.mu, c.b, c.s2);
        assert!(e.llf >= at_c - 1e-9);
        assert!((exact_loglik(&x, e.mu, e.b, e.s2) - e.llf).abs() < 1e-8);
    }

    #[test]
    fn irregular_with_equal_steps_matches_conditional() {
        let dt = 1.0 / 252.0;
        let x = simulate(1500, 8.0, 0.3, 0.7, dt, 3);
        let t: Vec<f64> = (0..x.len()).map(|i| i as f64 * dt).collect();
        let c = fit_conditional(&x, dt).unwrap();
        let i = fit_irregular(&x, &t).unwrap();
        assert!((c.theta - i.theta).abs() < 1e-6 * c.theta);
        assert!((c.mu - i.mu).abs() < 1e-6);
        assert!((c.sigma - i.sigma).abs() < 1e-6 * c.sigma);
        assert!((c.llf - i.llf).abs() < 1e-6);
    }

    #[test]
    fn rolling_matches_single_fits() {
        let dt = 1.0 / 252.0;
        let x: Vec<f64> = simulate(2600, 3.0, 1e4, 5.0, dt, 4);
        let r = rolling(&x, 252, dt).unwrap();
        for t in [251, 900, 1251, 2599] {
            let f = fit_conditional(&x[t + 1 - 252..=t], dt).unwrap();
            assert!((r.b[t] - f.b).abs() < 1e-9, "{} vs {}", r.b[t], f.b);
            assert!((r.s2[t] - f.s2).abs() < 1e-9 * f.s2);
        }
        assert!(r.b[250].is_nan());
    }

    #[test]
    fn rejects_bad_input() {
        assert!(fit_conditional(&[1.0, 2.0], 1.0).is_err());
        assert!(fit_conditional(&[1.0, 1.0, 1.0, 1.0], 1.0).is_err());
        assert!(fit_conditional(&[1.0, f64::NAN, 1.0, 2.0], 1.0).is_err());
    }
}
