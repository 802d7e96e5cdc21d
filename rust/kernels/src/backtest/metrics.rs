//! Performance metrics of a backtest ledger (COMPUTE-SPEC 6).
//!
//! Returns: equity mode `r[t] = E[t] / E[t-1] - 1`, fixed-capital mode
//! `r[t] = (PnL[t] - C[t]) / K`, for t = 1..T-1. Sharpe is arithmetic:
//! `sqrt(A) mean(r - rf) / sd(r - rf)` with ddof = 1.

// `!(x > 0.0)` is used on purpose: it also rejects NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use crate::error::{Result, invalid};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    pub sharpe: f64,
    pub sharpe_tstat: f64,
    pub sortino: f64,
    pub cagr: f64,
    pub volatility: f64,
    pub max_drawdown: f64,
    pub max_drawdown_ccy: f64,
    pub max_drawdown_bars: f64,
    pub calmar: f64,
    pub turnover: f64,
    pub turnover_annual: f64,
    pub total_cost: f64,
    pub gross_pnl: f64,
    pub net_pnl: f64,
    pub cost_to_gross: f64,
    pub trades: f64,
    pub round_trips: f64,
    pub hit_rate: f64,
    pub avg_holding_bars: f64,
    pub exposure: f64,
    pub final_equity: f64,
}

/// One round trip: a run of bars with the same non-zero position sign.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trips {
    pub entry: Vec<usize>,
    pub exit: Vec<usize>,
    pub pnl: Vec<f64>,
    /// false for the trip still open at the last bar (marked to market).
    pub closed: Vec<bool>,
}

pub fn returns(
    equity: &[f64],
    pnl: &[f64],
    cost: &[f64],
    capital: f64,
    fixed_capital: bool,
) -> Vec<f64> {
    (1..equity.len())
        .map(|t| {
            if fixed_capital {
                (pnl[t] - cost[t]) / capital
            } else {
                equity[t] / equity[t - 1] - 1.0
            }
        })
        .collect()
}

/// Round trips with net PnL. A flip's cost is split between the closing and
/// the opening trip in proportion to the units closed and opened.
pub fn round_trips(units: &[f64], pnl: &[f64], cost: &[f64]) -> Trips {
    let mut trips = Trips::default();
    let mut open: Option<(usize, f64)> = None;
    let mut prev = 0.0f64;
    for t in 0..units.len() {
        if let Some((_, acc)) = open.as_mut() {
            *acc += pnl[t];
        }
        let cur = units[t];
        let flip = prev != 0.0 && cur != 0.0 && prev.signum() != cur.signum();
        let closing = prev != 0.0 && (cur == 0.0 || flip);
        let opening = cur != 0.0 && (prev == 0.0 || flip);
        let close_share = if flip {
            prev.abs() / (prev.abs() + cur.abs())
        } else {
            1.0
        };
        if closing {
            if let Some((start, acc)) = open.take() {
                trips.entry.push(start);
                trips.exit.push(t);
                trips.pnl.push(acc - cost[t] * close_share);
                trips.closed.push(true);
            }
        }
        if opening {
            let share = if flip { 1.0 - close_share } else { 1.0 };
            open = Some((t, -cost[t] * share));
        } else if !closing && cur != 0.0 {
            if let Some((_, acc)) = open.as_mut() {
                *acc -= cost[t];
            }
        }
        prev = cur;
    }
    if let Some((start, acc)) = open {
        trips.entry.push(start);
        trips.exit.push(units.len() - 1);
        trips.pnl.push(acc);
        trips.closed.push(false);
    }
    trips
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

fn sd1(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return f64::NAN;
    }
    let m = mean(x);
    (x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() - 1) as f64).sqrt()
}

/// Every metric of one run. `rf` is the risk-free return per period.
#[allow(clippy::too_many_arguments)]
pub fn compute(
    equity: &[f64],
    pnl: &[f64],
    cost: &[f64],
    notional: &[f64],
    units: &[f64],
    capital: f64,
    periods_per_year: f64,
    rf: f64,
    fixed_capital: bool,
) -> Result<(Metrics, Vec<f64>, Trips)> {
    let t_len = equity.len();
    if t_len < 2
        || [pnl.len(), cost.len(), notional.len(), units.len()]
            .iter()
            .any(|&l| l != t_len)
    {
        return Err(invalid(
            "metrics need at least 2 bars and equal-length ledger columns",
        ));
    }
    if !(periods_per_year > 0.0) {
        return Err(invalid("periods_per_year must be > 0"));
    }
    let r = returns(equity, pnl, cost, capital, fixed_capital);
    let ex: Vec<f64> = r.iter().map(|v| v - rf).collect();
    let ann = periods_per_year.sqrt();
    let mu = mean(&ex);
    let sd = sd1(&ex);
    let sharpe = if sd > 0.0 { ann * mu / sd } else { f64::NAN };
    let sharpe_tstat = if sd > 0.0 {
        mu / sd * (ex.len() as f64).sqrt()
    } else {
        f64::NAN
    };
    let down = (ex.iter().map(|v| v.min(0.0).powi(2)).sum::<f64>() / ex.len() as f64).sqrt();
    let sortino = if down > 0.0 {
        ann * mu / down
    } else if mu > 0.0 {
        f64::INFINITY
    } else {
        f64::NAN
    };
    // Equity path: in fixed-capital mode compounding is replaced by K + cumulative PnL,
    // which is the ledger equity in both modes.
    let growth = equity[t_len - 1] / equity[0];
    let years = r.len() as f64 / periods_per_year;
    let cagr = if growth > 0.0 {
        growth.powf(1.0 / years) - 1.0
    } else {
        f64::NAN
    };
    let volatility = sd1(&r) * ann;
    let (mut peak, mut peak_t) = (equity[0], 0usize);
    let (mut mdd, mut mdd_ccy, mut mdd_bars) = (0.0f64, 0.0f64, 0usize);
    for (t, &e) in equity.iter().enumerate() {
        if e >= peak {
            peak = e;
            peak_t = t;
        }
        mdd = mdd.min(e / peak - 1.0);
        mdd_ccy = mdd_ccy.min(e - peak);
        mdd_bars = mdd_bars.max(t - peak_t);
    }
    let calmar = if mdd < 0.0 {
        cagr / mdd.abs()
    } else {
        f64::NAN
    };
    let mean_eq = mean(equity);
    let total_notional: f64 = notional.iter().sum();
    let turnover = total_notional / (t_len as f64 * mean_eq);
    let total_cost: f64 = cost.iter().sum();
    let gross_pnl: f64 = pnl.iter().sum();
    let trips = round_trips(units, pnl, cost);
    let n_trips = trips.pnl.len();
    let hit_rate = if n_trips > 0 {
        trips.pnl.iter().filter(|p| **p > 0.0).count() as f64 / n_trips as f64
    } else {
        f64::NAN
    };
    let avg_holding = if n_trips > 0 {
        trips
            .entry
            .iter()
            .zip(&trips.exit)
            .map(|(a, b)| (b - a) as f64)
            .sum::<f64>()
            / n_trips as f64
    } else {
        f64::NAN
    };
    let mut prev = 0.0;
    let mut trades = 0usize;
    for &u in units {
        if u != prev {
            trades += 1;
        }
        prev = u;
    }
    let m = Metrics {
        sharpe,
        sharpe_tstat,
        sortino,
        cagr,
        volatility,
        max_drawdown: mdd,
        max_drawdown_ccy: mdd_ccy,
        max_drawdown_bars: mdd_bars as f64,
        calmar,
        turnover,
        turnover_annual: turnover * periods_per_year,
        total_cost,
        gross_pnl,
        net_pnl: gross_pnl - total_cost,
        cost_to_gross: if gross_pnl != 0.0 {
            total_cost / gross_pnl.abs()
        } else {
            f64::NAN
        },
        trades: trades as f64,
        round_trips: n_trips as f64,
        hit_rate,
        avg_holding_bars: avg_holding,
        exposure: units.iter().filter(|u| **u != 0.0).count() as f64 / t_len as f64,
        final_equity: equity[t_len - 1],
    };
    Ok((m, r, trips))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_flat_has_nan_sharpe_and_no_drawdown() {
        let e = vec![100.0; 10];
        let z = vec![0.0; 10];
        let (m, _, t) = compute(&e, &z, &z, &z, &z, 100.0, 252.0, 0.0, false).unwrap();
        assert!(m.sharpe.is_nan());
        assert_eq!(m.max_drawdown, 0.0);
        assert_eq!(t.pnl.len(), 0);
    }

    #[test]
    fn flip_splits_cost() {
        let units = [0.0, 1.0, -3.0, 0.0];
        let pnl = [0.0, 0.0, 2.0, 6.0];
        let cost = [0.0, 1.0, 4.0, 3.0];
        let t = round_trips(&units, &pnl, &cost);
        assert_eq!(t.entry, vec![1, 2]);
        assert_eq!(t.exit, vec![2, 3]);
        assert!((t.pnl[0] - (2.0 - 1.0 - 1.0)).abs() < 1e-15);
        assert!((t.pnl[1] - (6.0 - 3.0 - 3.0)).abs() < 1e-15);
    }
}
