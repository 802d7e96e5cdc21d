//! Optimal position in an OU spread under power utility (Boguslavsky & Boguslavskaya 2004).
//!
//! Model: `dX = theta (mu - X) dt + sigma dB`, wealth `dW = q dX`, maximise
//! `E[W_T^gamma / gamma]` (relative risk aversion `1 - gamma`, `gamma < 1`; `gamma = 0` is log).
//! With `y = x - mu`, `tau = T - t` and the ansatz `V = w^gamma / gamma * exp(A y^2 / 2 + C)`
//! the HJB gives `q* = w (sigma^2 A - theta) y / ((1 - gamma) sigma^2)` and
//!
//!   `(1 - gamma) A' = sigma^2 A^2 - 2 theta A + gamma theta^2 / sigma^2`,  `C' = sigma^2 A / 2`,
//!   `A(0) = C(0) = 0`.
//!
//! With `s = theta tau`, `k = sqrt(1 - gamma)`, `t = tanh(s / k)`, `e = 1 - exp(-2 s / k)`:
//!
//!   `A = theta gamma t / (sigma^2 (k + t))`,
//!   `C = [s gamma / (1 + k) - k^2 ln(1 + gamma e / (2 k (1 + k)))] / 2`,
//!   `q* = w theta (mu - x) / sigma^2 * h`,  `h = (1 + k t) / (k (k + t))`.
//!
//! `h` runs from the myopic Merton factor `1 / (1 - gamma)` at `tau = 0` to `1 / k` as
//! `tau -> inf`; `gamma = 0` gives the Kelly position `w theta (mu - x) / sigma^2` (`h = 1`).
//! No finite-horizon blow-up: the Riccati right side has the real roots
//! `theta (1 -+ k) / sigma^2` (discriminant `4 theta^2 (1 - gamma) > 0`) and `A(0) = 0` lies in
//! the basin of the stable one, so `A` stays between 0 and `theta (1 - k) / sigma^2`
//! (equivalently `k + t >= k > 0`). The spread's noise is the traded asset's noise, so the market
//! is complete; the Kim–Omberg "nirvana" explosion needs imperfect correlation.
//! Certainty equivalent at t = 0: `CE = w0 exp((A y0^2 / 2 + C) / gamma)`.

// `!(x > 0.0)` is used on purpose: it also rejects NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use super::cara::OuParams;
use crate::error::{KernelError, Result, invalid};

/// Riccati solution at one time to maturity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coefficients {
    /// `A(tau)`, the `y^2 / 2` coefficient of the log value.
    pub a: f64,
    /// `C(tau)`, the constant of the log value.
    pub c: f64,
    /// `A / gamma` (finite at `gamma = 0`).
    pub a_over_gamma: f64,
    /// `C / gamma` (finite at `gamma = 0`).
    pub c_over_gamma: f64,
    /// Position factor `h`: `q* = w theta (mu - x) h / sigma^2`.
    pub factor: f64,
}

fn check(p: &OuParams, gamma: f64) -> Result<()> {
    p.check()?;
    if !(gamma.is_finite() && gamma < 1.0) {
        return Err(invalid(format!(
            "gamma must be finite and < 1 (U = W^gamma / gamma; 0 is log utility), got {gamma}"
        )));
    }
    Ok(())
}

fn check_wealth(w: f64) -> Result<()> {
    if !(w.is_finite() && w > 0.0) {
        return Err(invalid(format!(
            "wealth must be finite and > 0 (power utility needs positive wealth), got {w}"
        )));
    }
    Ok(())
}

/// `ln(1 + z) / z`, equal to 1 at z = 0.
fn log1p_ratio(z: f64) -> f64 {
    if z == 0.0 { 1.0 } else { z.ln_1p() / z }
}

/// The closed-form solution at time to maturity `tau >= 0` (inputs already checked).
fn solve(tau: f64, theta: f64, sigma: f64, gamma: f64) -> Coefficients {
    let s = theta * tau;
    let k = (1.0 - gamma).sqrt();
    let t = (s / k).tanh();
    let e = -(-2.0 * s / k).exp_m1();
    let s2 = sigma * sigma;
    let a_over_gamma = theta * t / (s2 * (k + t));
    let z = e / (2.0 * k * (1.0 + k));
    let c_over_gamma = 0.5 * (s / (1.0 + k) - k * k * z * log1p_ratio(gamma * z));
    Coefficients {
        a: gamma * a_over_gamma,
        c: 0.5 * (s * gamma / (1.0 + k) - k * k * (gamma * z).ln_1p()),
        a_over_gamma,
        c_over_gamma,
        factor: (1.0 + k * t) / (k * (k + t)),
    }
}

/// `A`, `C` and the position factor for each time to maturity in `tau`.
pub fn coefficients(tau: &[f64], theta: f64, sigma: f64, gamma: f64) -> Result<Vec<Coefficients>> {
    check(
        &OuParams {
            theta,
            mu: 0.0,
            sigma,
        },
        gamma,
    )?;
    if let Some((i, v)) = tau
        .iter()
        .enumerate()
        .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
    {
        return Err(invalid(format!(
            "tau must be finite and >= 0; tau[{i}] = {v}"
        )));
    }
    Ok(tau.iter().map(|&s| solve(s, theta, sigma, gamma)).collect())
}

fn check_times(t: &[f64], horizon_t: f64) -> Result<()> {
    if !horizon_t.is_finite() {
        return Err(invalid("the horizon T must be finite"));
    }
    if let Some((i, v)) = t.iter().enumerate().find(|(_, v)| !(**v <= horizon_t)) {
        return Err(invalid(format!("t must be <= T; t[{i}] = {v}")));
    }
    Ok(())
}

/// Optimal units of spread for each (x[i], t[i], w[i]). NaN x gives NaN q.
pub fn position(
    x: &[f64],
    t: &[f64],
    w: &[f64],
    horizon_t: f64,
    p: OuParams,
    gamma: f64,
) -> Result<Vec<f64>> {
    check(&p, gamma)?;
    if t.len() != x.len() || w.len() != x.len() {
        return Err(invalid(format!(
            "x, t and wealth differ in length ({}, {}, {})",
            x.len(),
            t.len(),
            w.len()
        )));
    }
    check_times(t, horizon_t)?;
    for &wi in w {
        check_wealth(wi)?;
    }
    let scale = p.theta / (p.sigma * p.sigma);
    Ok(x.iter()
        .zip(t)
        .zip(w)
        .map(|((&xi, &ti), &wi)| {
            let h = solve(horizon_t - ti, p.theta, p.sigma, gamma).factor;
            wi * scale * h * (p.mu - xi)
        })
        .collect())
}

/// Certainty equivalent at t = 0 of the optimum: `w0 exp((A y0^2 / 2 + C) / gamma)`.
pub fn certainty_equivalent(
    x0: f64,
    w0: f64,
    horizon_t: f64,
    p: OuParams,
    gamma: f64,
) -> Result<f64> {
    check(&p, gamma)?;
    check_wealth(w0)?;
    if !x0.is_finite() {
        return Err(invalid("x0 must be finite"));
    }
    if !(horizon_t.is_finite() && horizon_t >= 0.0) {
        return Err(invalid(format!(
            "the horizon T must be finite and >= 0, got {horizon_t}"
        )));
    }
    let co = solve(horizon_t, p.theta, p.sigma, gamma);
    let y = x0 - p.mu;
    let ce = w0 * (0.5 * co.a_over_gamma * y * y + co.c_over_gamma).exp();
    if !ce.is_finite() {
        return Err(KernelError::Numerical(format!(
            "the certainty equivalent overflows (log CE / w0 = {:.4e})",
            0.5 * co.a_over_gamma * y * y + co.c_over_gamma
        )));
    }
    Ok(ce)
}

/// Self-financed optimal trading along an observed path.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// Units held from bar i to bar i + 1.
    pub q: Vec<f64>,
    /// Wealth at bar i, before trading.
    pub wealth: Vec<f64>,
    /// First bar with wealth <= 0; positions are 0 from there on.
    pub ruined_at: Option<usize>,
}

/// Trade q*(t_i, x_i, W_i) along the path, `W_{i+1} = W_i + q_i (x_{i+1} - x_i)` (no costs).
/// In discrete time wealth can jump below zero; the investor is then ruined and stops.
pub fn path(
    x: &[f64],
    t: &[f64],
    w0: f64,
    horizon_t: f64,
    p: OuParams,
    gamma: f64,
) -> Result<Path> {
    check(&p, gamma)?;
    check_wealth(w0)?;
    if t.len() != x.len() {
        return Err(invalid(format!(
            "x and t differ in length ({} vs {})",
            x.len(),
            t.len()
        )));
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(invalid(format!("x must be finite; x[{i}] = {}", x[i])));
    }
    check_times(t, horizon_t)?;
    let scale = p.theta / (p.sigma * p.sigma);
    let n = x.len();
    let mut q = vec![0.0; n];
    let mut wealth = vec![0.0; n];
    let mut ruined_at = None;
    let mut w = w0;
    for i in 0..n {
        wealth[i] = w;
        if w <= 0.0 {
            ruined_at.get_or_insert(i);
            continue;
        }
        let h = solve(horizon_t - t[i], p.theta, p.sigma, gamma).factor;
        q[i] = w * scale * h * (p.mu - x[i]);
        if i + 1 < n {
            w += q[i] * (x[i + 1] - x[i]);
        }
    }
    Ok(Path {
        q,
        wealth,
        ruined_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: OuParams = OuParams {
        theta: 3.0,
        mu: 0.5,
        sigma: 0.3,
    };

    #[test]
    fn closed_form_solves_the_riccati_ode() {
        let (th, s2) = (P.theta, P.sigma * P.sigma);
        for &g in &[-4.0, -0.5, 0.0, 0.4, 0.95] {
            for &tau in &[0.05, 0.7, 3.0] {
                let d = 1e-5;
                let lo = solve(tau - d, th, P.sigma, g);
                let mid = solve(tau, th, P.sigma, g);
                let hi = solve(tau + d, th, P.sigma, g);
                let da = (hi.a - lo.a) / (2.0 * d);
                let rhs = (s2 * mid.a * mid.a - 2.0 * th * mid.a + g * th * th / s2) / (1.0 - g);
                assert!((da - rhs).abs() < 1e-6 * (1.0 + rhs.abs()), "A' {g} {tau}");
                let dc = (hi.c - lo.c) / (2.0 * d);
                assert!((dc - 0.5 * s2 * mid.a).abs() < 1e-6 * (1.0 + dc.abs()));
                let k = (s2 * mid.a - th) / ((1.0 - g) * s2);
                assert!((k + th * mid.factor / s2).abs() < 1e-12 * k.abs());
            }
        }
    }

    #[test]
    fn factor_limits() {
        for &g in &[-3.0, -0.2, 0.5, 0.9] {
            let h0 = solve(0.0, P.theta, P.sigma, g);
            assert_eq!((h0.a, h0.c), (0.0, 0.0));
            assert!((h0.factor - 1.0 / (1.0 - g)).abs() < 1e-14);
            let hinf = solve(1e3, P.theta, P.sigma, g).factor;
            assert!((hinf - 1.0 / (1.0 - g).sqrt()).abs() < 1e-14);
        }
        let log = solve(2.0, P.theta, P.sigma, 0.0);
        assert_eq!((log.a, log.c, log.factor), (0.0, 0.0, 1.0));
        let s = P.theta * 2.0;
        assert!((log.c_over_gamma - (s / 4.0 + (-2.0 * s).exp_m1() / 8.0)).abs() < 1e-14);
    }

    #[test]
    fn ce_is_continuous_at_log_utility() {
        let ce0 = certainty_equivalent(0.2, 1.5, 1.0, P, 0.0).unwrap();
        let ce1 = certainty_equivalent(0.2, 1.5, 1.0, P, 1e-9).unwrap();
        assert!((ce0 - ce1).abs() < 1e-8 * ce0);
        assert!(ce0 > 1.5);
    }

    #[test]
    fn path_is_self_financed_and_stops_at_ruin() {
        let x = [0.2, 0.3, 0.1, 0.6];
        let t = [0.0, 0.1, 0.2, 0.3];
        let r = path(&x, &t, 1.0, 1.0, P, -1.0).unwrap();
        let q = position(&x[..1], &t[..1], &[1.0], 1.0, P, -1.0).unwrap()[0];
        assert_eq!(r.q[0], q);
        for i in 0..3 {
            let next = r.wealth[i] + r.q[i] * (x[i + 1] - x[i]);
            assert!((r.wealth[i + 1] - next).abs() < 1e-15);
        }
        let crash = path(&[0.2, -3.0, 0.0], &[0.0, 0.1, 0.2], 1.0, 1.0, P, 0.5).unwrap();
        assert_eq!(crash.ruined_at, Some(1));
        assert_eq!(crash.q[1..], [0.0, 0.0]);
    }

    #[test]
    fn bad_inputs_are_refused() {
        let err = |r: Result<f64>| format!("{:?}", r.unwrap_err());
        assert!(err(certainty_equivalent(0.0, 1.0, 1.0, P, 1.0)).contains("gamma"));
        assert!(err(certainty_equivalent(0.0, 0.0, 1.0, P, 0.5)).contains("wealth"));
        let bad = OuParams { sigma: 0.0, ..P };
        assert!(err(certainty_equivalent(0.0, 1.0, 1.0, bad, 0.5)).contains("sigma"));
        let bad = OuParams { theta: -1.0, ..P };
        assert!(err(certainty_equivalent(0.0, 1.0, 1.0, bad, 0.5)).contains("theta"));
        assert!(position(&[0.0], &[2.0], &[1.0], 1.0, P, 0.5).is_err());
        assert!(coefficients(&[-1.0], 1.0, 1.0, 0.5).is_err());
    }
}
