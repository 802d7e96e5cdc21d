//! Optimal position in an OU spread under CARA utility (docs/compute.md §3b).
//!
//! With `dW = q dX` and utility `-exp(-gamma W_T)` the HJB is solved by
//! `f(tau, x) = theta^2 tau (x - mu)^2 / (2 sigma^2) + theta^2 tau^2 / 4`, giving
//! `q* = theta (mu - x) / (gamma sigma^2) * (1 + theta (T - t))`.

// `!(x > 0.0)` is used on purpose: it also rejects NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use crate::error::{Result, invalid};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Horizon {
    /// Finite horizon T: myopic demand times the hedging factor 1 + theta (T - t).
    Finite,
    /// Continuous-time myopic (Merton) demand theta (mu - x) / (gamma sigma^2).
    Myopic,
    /// One-period mean-variance over a step dt (exact for Gaussian one-step P&L).
    DiscreteMyopic,
}

#[derive(Debug, Clone, Copy)]
pub struct OuParams {
    pub theta: f64,
    pub mu: f64,
    pub sigma: f64,
}

impl OuParams {
    /// theta > 0, sigma > 0 and mu finite (NaN fails every check).
    pub fn check(&self) -> Result<()> {
        if !(self.theta.is_finite() && self.theta > 0.0) {
            return Err(invalid(format!(
                "theta must be finite and > 0, got {}",
                self.theta
            )));
        }
        if !(self.sigma.is_finite() && self.sigma > 0.0) {
            return Err(invalid(format!(
                "sigma must be finite and > 0, got {}",
                self.sigma
            )));
        }
        if !self.mu.is_finite() {
            return Err(invalid("mu must be finite"));
        }
        Ok(())
    }
}

fn check(p: &OuParams, gamma: f64) -> Result<()> {
    p.check()?;
    if !(gamma.is_finite() && gamma > 0.0) {
        return Err(invalid(format!(
            "gamma must be finite and > 0, got {gamma}"
        )));
    }
    Ok(())
}

/// Optimal units of spread for each (x[i], t[i]); `q_max` clips |q| (the clipped
/// strategy is no longer optimal). NaN x gives NaN q.
#[allow(clippy::too_many_arguments)]
pub fn position(
    x: &[f64],
    t: &[f64],
    horizon_t: f64,
    p: OuParams,
    gamma: f64,
    horizon: Horizon,
    dt: f64,
    q_max: Option<f64>,
) -> Result<Vec<f64>> {
    check(&p, gamma)?;
    if t.len() != x.len() {
        return Err(invalid(format!(
            "x and t differ in length ({} vs {})",
            x.len(),
            t.len()
        )));
    }
    let s2 = p.sigma * p.sigma;
    let scale = match horizon {
        Horizon::Finite | Horizon::Myopic => p.theta / (gamma * s2),
        Horizon::DiscreteMyopic => {
            if !(dt.is_finite() && dt > 0.0) {
                return Err(invalid(format!("dt must be finite and > 0, got {dt}")));
            }
            let b = (-p.theta * dt).exp();
            let one_minus_b = -(-p.theta * dt).exp_m1();
            // one-step variance sigma^2 (1 - b^2) / (2 theta)
            let var = s2 * one_minus_b * (1.0 + b) / (2.0 * p.theta);
            one_minus_b / (gamma * var)
        }
    };
    if horizon == Horizon::Finite {
        if !horizon_t.is_finite() {
            return Err(invalid("the horizon T must be finite"));
        }
        if let Some((i, v)) = t.iter().enumerate().find(|(_, v)| !(**v <= horizon_t)) {
            return Err(invalid(format!("t must be <= T; t[{i}] = {v}")));
        }
    }
    let cap = q_max.unwrap_or(f64::INFINITY);
    if !(cap > 0.0) {
        return Err(invalid("q_max must be > 0"));
    }
    Ok(x.iter()
        .zip(t)
        .map(|(&xi, &ti)| {
            let mut q = scale * (p.mu - xi);
            if horizon == Horizon::Finite {
                q *= 1.0 + p.theta * (horizon_t - ti);
            }
            q.clamp(-cap, cap)
        })
        .collect())
}

/// Certainty equivalent at t = 0 of the finite-horizon optimum.
pub fn certainty_equivalent(
    x0: f64,
    w0: f64,
    horizon_t: f64,
    p: OuParams,
    gamma: f64,
) -> Result<f64> {
    check(&p, gamma)?;
    let y = x0 - p.mu;
    let th2 = p.theta * p.theta;
    Ok(w0
        + (th2 * horizon_t * y * y / (2.0 * p.sigma * p.sigma) + th2 * horizon_t * horizon_t / 4.0)
            / gamma)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_certainty_equivalent() {
        let p = OuParams {
            theta: 3.0,
            mu: 0.0,
            sigma: 0.3,
        };
        let ce = certainty_equivalent(0.2, 0.0, 1.0, p, 2.0).unwrap();
        assert!((ce - 2.125).abs() < 1e-12);
    }

    #[test]
    fn discrete_myopic_tends_to_myopic() {
        let p = OuParams {
            theta: 2.0,
            mu: 1.0,
            sigma: 0.5,
        };
        let x = [0.7];
        let t = [0.0];
        let m = position(&x, &t, 1.0, p, 3.0, Horizon::Myopic, 1.0, None).unwrap()[0];
        let d = position(&x, &t, 1.0, p, 3.0, Horizon::DiscreteMyopic, 1e-7, None).unwrap()[0];
        assert!((m - d).abs() < 1e-6 * m.abs());
    }

    #[test]
    fn clip_caps_the_position() {
        let p = OuParams {
            theta: 2.0,
            mu: 0.0,
            sigma: 0.1,
        };
        let q = position(
            &[-5.0, 5.0],
            &[0.0, 0.0],
            1.0,
            p,
            1.0,
            Horizon::Finite,
            1.0,
            Some(2.0),
        );
        assert_eq!(q.unwrap(), vec![2.0, -2.0]);
    }
}
