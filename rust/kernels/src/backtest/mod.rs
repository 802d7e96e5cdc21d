//! Vectorised backtest of the mean-reversion signal with costs (docs/compute.md §6).
//!
//! Timing: `u[t]` is the number of spread units held after the close of bar t.
//! It earns `u[t] (s[t+1] - s[t])` on the next bar (no look-ahead) and pays
//! costs on the traded notional `sum_i |(u[t] - u[t-1]) w_i| P[t, i]` at bar t.

// `!(x > 0.0)` is used on purpose: it also rejects NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod metrics;
pub mod stats;
pub mod sweep;

use crate::error::{Result, invalid};

/// Band thresholds, checked; `step` advances the state machine by one bar.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bands {
    z_in: f64,
    z_out: f64,
    /// NaN without a stop: `|z| >= NaN` never fires.
    z_stop: f64,
    cooldown: usize,
    state: f64,
    cool: usize,
}

impl Bands {
    pub(crate) fn new(z_in: f64, z_out: f64, z_stop: Option<f64>, cooldown: usize) -> Result<Self> {
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
        Ok(Self {
            z_in,
            z_out,
            z_stop: z_stop.unwrap_or(f64::NAN),
            cooldown,
            state: 0.0,
            cool: 0,
        })
    }

    /// The state after bar z.
    #[inline]
    pub(crate) fn step(&mut self, zt: f64) -> f64 {
        if zt.is_nan() {
            self.state = 0.0;
            return 0.0;
        }
        if zt.abs() >= self.z_stop {
            if self.state != 0.0 {
                self.cool = self.cooldown;
            }
            self.state = 0.0;
            return 0.0;
        }
        let st = self.state;
        if (st > 0.0 && zt >= -self.z_out) || (st < 0.0 && zt <= self.z_out) {
            self.state = 0.0;
        }
        if self.state == 0.0 {
            if self.cool > 0 {
                self.cool -= 1;
            } else if zt <= -self.z_in {
                self.state = 1.0;
            } else if zt >= self.z_in {
                self.state = -1.0;
            }
        }
        self.state
    }
}

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
    let mut bands = Bands::new(z_in, z_out, z_stop, cooldown)?;
    Ok(z.iter().map(|&zt| bands.step(zt)).collect())
}

/// A running sum with Kahan compensation, for equity over long series (docs/compute.md §6).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kahan {
    sum: f64,
    comp: f64,
}

impl Kahan {
    pub(crate) fn new(start: f64) -> Self {
        Self {
            sum: start,
            comp: 0.0,
        }
    }

    pub(crate) fn sum(&self) -> f64 {
        self.sum
    }

    /// sum += v; returns the new sum.
    #[inline(always)]
    pub(crate) fn add(&mut self, v: f64) -> f64 {
        let y = v - self.comp;
        let tot = self.sum + y;
        self.comp = (tot - self.sum) - y;
        self.sum = tot;
        tot
    }
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

/// The legs of a spread and its trading costs: everything of a ledger but the units.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Legs<'a> {
    /// Row-major, bars x n.
    pub prices: &'a [f64],
    pub n: usize,
    pub weights: &'a [f64],
    pub cost_rates: &'a [f64],
    pub fixed_cost: f64,
    pub capital: f64,
}

impl Legs<'_> {
    /// The checks of `ledger` on everything but the units.
    pub(crate) fn check(&self, t_len: usize) -> Result<()> {
        let n = self.n;
        if n == 0 || self.weights.len() != n || self.cost_rates.len() != n {
            return Err(invalid("weights and cost rates need one value per leg"));
        }
        if self.prices.len() != t_len * n {
            return Err(invalid(format!(
                "prices hold {} values, expected {t_len} bars x {n} legs",
                self.prices.len()
            )));
        }
        if !self.prices.iter().all(|p| p.is_finite()) {
            let i = self.prices.iter().position(|p| !p.is_finite()).unwrap_or(0);
            return Err(invalid(format!(
                "prices must be finite; value {} at bar {}, leg {}",
                self.prices[i],
                i / n,
                i % n
            )));
        }
        Ok(())
    }

    /// The checks after the units.
    pub(crate) fn check_costs(&self) -> Result<()> {
        if self.weights.iter().any(|w| !w.is_finite())
            || self
                .cost_rates
                .iter()
                .any(|c| !(c.is_finite() && *c >= 0.0))
        {
            return Err(invalid(
                "weights must be finite and cost rates finite and >= 0",
            ));
        }
        let costs_ok = self.fixed_cost.is_finite() && self.fixed_cost >= 0.0;
        let capital_ok = self.capital.is_finite() && self.capital > 0.0;
        if !(costs_ok && capital_ok) {
            return Err(invalid("fixed cost must be >= 0 and capital > 0"));
        }
        Ok(())
    }

    /// s[t] = sum_i w_i P[t, i], summed in leg order.
    pub(crate) fn spread_into(&self, out: &mut [f64]) {
        for (s, row) in out.iter_mut().zip(self.prices.chunks_exact(self.n)) {
            *s = row.iter().zip(self.weights).map(|(p, w)| p * w).sum();
        }
    }

    /// Traded notional and cost of a change of `du` units at bar t.
    #[inline]
    pub(crate) fn trade(&self, du: f64, t: usize) -> (f64, f64) {
        let row = &self.prices[t * self.n..(t + 1) * self.n];
        let (mut notional, mut cost) = (0.0, 0.0);
        for ((p, w), c) in row.iter().zip(self.weights).zip(self.cost_rates) {
            let leg = (du * w).abs() * p;
            notional += leg;
            cost += c * leg;
        }
        (notional, cost + self.fixed_cost)
    }

    /// Bar t's flows (pnl, notional, cost): `prev_u` units earn the spread move from
    /// `prev_s` to `s` (nothing on bar 0), and moving to `u` trades the difference.
    #[inline(always)]
    pub(crate) fn bar(
        &self,
        t: usize,
        prev_u: f64,
        prev_s: f64,
        u: f64,
        s: f64,
    ) -> (f64, f64, f64) {
        let pnl = if t == 0 { 0.0 } else { prev_u * (s - prev_s) };
        let du = u - prev_u;
        let (notional, cost) = if du != 0.0 {
            self.trade(du, t)
        } else {
            (0.0, 0.0)
        };
        (pnl, notional, cost)
    }

    /// PnL, costs, notional and equity of `units` given the spread, into the output
    /// slices (all of the length of `units`). Inputs must have passed the checks.
    pub(crate) fn run_into(&self, spread: &[f64], units: &[f64], out: LedgerOut<'_>) {
        let t_len = units.len();
        let LedgerOut {
            pnl,
            cost,
            notional,
            equity,
        } = out;
        let (pnl, cost) = (&mut pnl[..t_len], &mut cost[..t_len]);
        let (notional, equity) = (&mut notional[..t_len], &mut equity[..t_len]);
        let spread = &spread[..t_len];
        let mut eq = Kahan::new(self.capital);
        let mut prev_u = 0.0;
        let mut prev_s = spread.first().copied().unwrap_or(f64::NAN);
        for t in 0..t_len {
            let s = spread[t];
            let u = units[t];
            let (p, nt, c) = self.bar(t, prev_u, prev_s, u, s);
            pnl[t] = p;
            cost[t] = c;
            notional[t] = nt;
            equity[t] = eq.add(p - c);
            prev_u = u;
            prev_s = s;
        }
    }
}

/// Output columns of `Legs::run_into`.
pub(crate) struct LedgerOut<'a> {
    pub pnl: &'a mut [f64],
    pub cost: &'a mut [f64],
    pub notional: &'a mut [f64],
    pub equity: &'a mut [f64],
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
    let legs = Legs {
        prices,
        n,
        weights,
        cost_rates,
        fixed_cost,
        capital,
    };
    let t_len = units.len();
    legs.check(t_len)?;
    if let Some((i, u)) = units.iter().enumerate().find(|(_, u)| !u.is_finite()) {
        return Err(invalid(format!(
            "positions must be finite; value {u} at bar {i}"
        )));
    }
    legs.check_costs()?;
    let mut led = Ledger {
        spread: vec![0.0; t_len],
        pnl: vec![0.0; t_len],
        cost: vec![0.0; t_len],
        notional: vec![0.0; t_len],
        equity: vec![0.0; t_len],
    };
    legs.spread_into(&mut led.spread);
    let out = LedgerOut {
        pnl: &mut led.pnl,
        cost: &mut led.cost,
        notional: &mut led.notional,
        equity: &mut led.equity,
    };
    legs.run_into(&led.spread, units, out);
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
