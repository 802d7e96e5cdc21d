//! Vectorised backtest of the mean-reversion signal with costs (COMPUTE-SPEC 6).
//!
//! Timing: `u[t]` is the number of spread units held after the close of bar t.
//! It earns `u[t] (s[t+1] - s[t])` on the next bar (no look-ahead) and pays
//! costs on the traded notional `sum_i |(u[t] - u[t-1]) w_i| P[t, i]` at bar t.

// `!(x > 0.0)` is used on purpose: it also rejects NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod metrics;
pub mod sweep;

use crate::error::{Result, invalid};

/// Band rule with hysteresis, applied sequentially (a state machine).
///
/// Returns the state in {-1, 0, +1} per bar. Flat -> long when z <= -z_in,
/// flat -> short when z >= z_in; long exits when z >= -z_out, short exits when
/// z <= z_out; an exit and the opposite entry on the same bar flip directly.
/// With `z_stop`, |z| >= z_stop forces flat and blocks entries for `cooldown`
/// further bars. NaN z (warm-up) forces flat.
pub fn band_states(
    z: &[f64],
    z_in: f64,
    z_out: f64,
    z_stop: Option<f64>,
    cooldown: usize,
) -> Result<Vec<f64>> {
    if !(z_in.is_finite() && z_out.is_finite() && z_in > 0.0) {
        return Err(invalid(format!(
            "z_in must be > 0 and z_out finite, got {z_in}, {z_out}"
        )));
    }
    if z_out >= z_in {
        return Err(invalid(format!(
            "z_out ({z_out}) must be below z_in ({z_in}) for the bands to have hysteresis"
        )));
    }
    if let Some(s) = z_stop {
        if !(s > z_in) {
            return Err(invalid(format!("z_stop ({s}) must be above z_in ({z_in})")));
        }
    }
    let mut out = Vec::with_capacity(z.len());
    let mut state = 0.0f64;
    let mut cool = 0usize;
    for &zt in z {
        if zt.is_nan() {
            state = 0.0;
            out.push(state);
            continue;
        }
        if let Some(s) = z_stop {
            if zt.abs() >= s {
                if state != 0.0 {
                    cool = cooldown;
                }
                state = 0.0;
                out.push(state);
                continue;
            }
        }
        if (state > 0.0 && zt >= -z_out) || (state < 0.0 && zt <= z_out) {
            state = 0.0;
        }
        if state == 0.0 {
            if cool > 0 {
                cool -= 1;
            } else if zt <= -z_in {
                state = 1.0;
            } else if zt >= z_in {
                state = -1.0;
            }
        }
        out.push(state);
    }
    Ok(out)
}

/// Per-bar ledger of a spread strategy.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub spread: Vec<f64>,
    pub pnl: Vec<f64>,
    pub cost: Vec<f64>,
    pub notional: Vec<f64>,
    pub equity: Vec<f64>,
}

/// Spread, PnL, costs, traded notional and equity (Kahan-compensated sums).
///
/// `prices` is row-major (t_len x n); `units` the position after each close;
/// `cost_rates` a fraction of traded notional per leg; `fixed_cost` per bar with a trade.
pub fn ledger(
    prices: &[f64],
    n: usize,
    weights: &[f64],
    units: &[f64],
    cost_rates: &[f64],
    fixed_cost: f64,
    capital: f64,
) -> Result<Ledger> {
    let t_len = units.len();
    if n == 0 || weights.len() != n || cost_rates.len() != n {
        return Err(invalid("weights and cost rates need one value per leg"));
    }
    if prices.len() != t_len * n {
        return Err(invalid(format!(
            "prices hold {} values, expected {t_len} bars x {n} legs",
            prices.len()
        )));
    }
    if let Some((i, p)) = prices.iter().enumerate().find(|(_, p)| !p.is_finite()) {
        return Err(invalid(format!(
            "prices must be finite; value {p} at bar {}, leg {}",
            i / n,
            i % n
        )));
    }
    if let Some((i, u)) = units.iter().enumerate().find(|(_, u)| !u.is_finite()) {
        return Err(invalid(format!(
            "positions must be finite; value {u} at bar {i}"
        )));
    }
    if weights.iter().any(|w| !w.is_finite())
        || cost_rates.iter().any(|c| !(c.is_finite() && *c >= 0.0))
    {
        return Err(invalid(
            "weights must be finite and cost rates finite and >= 0",
        ));
    }
    let costs_ok = fixed_cost.is_finite() && fixed_cost >= 0.0;
    let capital_ok = capital.is_finite() && capital > 0.0;
    if !(costs_ok && capital_ok) {
        return Err(invalid("fixed cost must be >= 0 and capital > 0"));
    }
    let mut led = Ledger {
        spread: Vec::with_capacity(t_len),
        pnl: Vec::with_capacity(t_len),
        cost: Vec::with_capacity(t_len),
        notional: Vec::with_capacity(t_len),
        equity: Vec::with_capacity(t_len),
    };
    let (mut sum, mut comp) = (capital, 0.0f64);
    let mut prev_u = 0.0;
    let mut prev_s = f64::NAN;
    for t in 0..t_len {
        let row = &prices[t * n..(t + 1) * n];
        let s: f64 = row.iter().zip(weights).map(|(p, w)| p * w).sum();
        let pnl = if t == 0 { 0.0 } else { prev_u * (s - prev_s) };
        let du = units[t] - prev_u;
        let (mut notional, mut cost) = (0.0, 0.0);
        if du != 0.0 {
            for i in 0..n {
                let leg = (du * weights[i]).abs() * row[i];
                notional += leg;
                cost += cost_rates[i] * leg;
            }
            cost += fixed_cost;
        }
        // Kahan step for sum += pnl - cost
        let y = (pnl - cost) - comp;
        let tot = sum + y;
        comp = (tot - sum) - y;
        sum = tot;
        led.spread.push(s);
        led.pnl.push(pnl);
        led.cost.push(cost);
        led.notional.push(notional);
        led.equity.push(sum);
        prev_u = units[t];
        prev_s = s;
    }
    Ok(led)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_through_the_exit_band_still_exits() {
        // z jumps from -2.5 to +1 with z_out 0.5: the long must exit.
        let s = band_states(&[f64::NAN, -2.5, 1.0], 2.0, 0.5, None, 0).unwrap();
        assert_eq!(s, vec![0.0, 1.0, 0.0]);
    }

    #[test]
    fn direct_flip_and_stop() {
        let s = band_states(
            &[-2.1, 2.2, 0.0, 3.5, -2.5, -2.5, -2.5],
            2.0,
            0.5,
            Some(3.0),
            1,
        )
        .unwrap();
        assert_eq!(s, vec![1.0, -1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
        let s = band_states(&[-2.5, -3.5, -2.5, -2.5], 2.0, 0.5, Some(3.0), 1).unwrap();
        assert_eq!(s, vec![1.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn single_round_trip_pnl_is_exact() {
        let prices = [10.0, 10.0, 12.0, 12.0];
        let units = [0.0, 2.0, 0.0, 0.0];
        let l = ledger(&prices, 1, &[1.0], &units, &[0.01], 0.0, 100.0).unwrap();
        let want = 100.0 + 2.0 * 2.0 - 0.01 * 2.0 * 10.0 - 0.01 * 2.0 * 12.0;
        assert!((l.equity[3] - want).abs() < 1e-12);
    }
}
