//! Performance metrics of a backtest ledger (docs/compute.md §6).
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
    let mut r = vec![0.0; equity.len().saturating_sub(1)];
    returns_into(equity, pnl, cost, capital, fixed_capital, &mut r);
    r
}

/// `returns` into `out` (length T - 1).
fn returns_into(
    equity: &[f64],
    pnl: &[f64],
    cost: &[f64],
    capital: f64,
    fixed_capital: bool,
    out: &mut [f64],
) {
    if fixed_capital {
        for ((r, p), c) in out.iter_mut().zip(&pnl[1..]).zip(&cost[1..]) {
            *r = (p - c) / capital;
        }
    } else {
        for (r, e) in out.iter_mut().zip(equity.windows(2)) {
            *r = e[1] / e[0] - 1.0;
        }
    }
}

/// Round trips bar by bar; `trips` collects them when given, the counts always.
#[derive(Debug, Default)]
struct TripScan {
    /// A trip is open: its entry bar and net PnL so far.
    open: bool,
    start: usize,
    acc: f64,
    prev: f64,
    count: usize,
    wins: usize,
    held: usize,
}

/// Out of the hot loop, so the scan's state can stay in registers.
#[cold]
#[inline(never)]
fn push_trip(out: &mut Option<&mut Trips>, entry: usize, exit: usize, pnl: f64, closed: bool) {
    if let Some(trips) = out {
        trips.entry.push(entry);
        trips.exit.push(exit);
        trips.pnl.push(pnl);
        trips.closed.push(closed);
    }
}

impl TripScan {
    #[inline]
    fn record(&mut self, exit: usize, pnl: f64, closed: bool, out: &mut Option<&mut Trips>) {
        self.count += 1;
        self.wins += usize::from(pnl > 0.0);
        self.held += exit - self.start;
        if out.is_some() {
            push_trip(out, self.start, exit, pnl, closed);
        }
    }

    #[inline]
    fn step(&mut self, t: usize, cur: f64, pnl: f64, cost: f64, out: &mut Option<&mut Trips>) {
        if self.open {
            self.acc += pnl;
        }
        let prev = self.prev;
        if cur == prev {
            // no trade: a held position pays this bar's cost (if any)
            if cur != 0.0 && self.open {
                self.acc -= cost;
            }
            self.prev = cur;
            return;
        }
        self.trade(t, cur, pnl, cost, out);
    }

    /// A bar where the units change.
    #[inline]
    fn trade(&mut self, t: usize, cur: f64, _pnl: f64, cost: f64, out: &mut Option<&mut Trips>) {
        let prev = self.prev;
        let flip = prev != 0.0 && cur != 0.0 && prev.signum() != cur.signum();
        let closing = prev != 0.0 && (cur == 0.0 || flip);
        let opening = cur != 0.0 && (prev == 0.0 || flip);
        let close_share = if flip {
            prev.abs() / (prev.abs() + cur.abs())
        } else {
            1.0
        };
        if closing && self.open {
            self.open = false;
            self.record(t, self.acc - cost * close_share, true, out);
        }
        if opening {
            let share = if flip { 1.0 - close_share } else { 1.0 };
            self.open = true;
            self.start = t;
            self.acc = -cost * share;
        } else if !closing && cur != 0.0 && self.open {
            self.acc -= cost;
        }
        self.prev = cur;
    }

    fn finish(&mut self, last: usize, out: &mut Option<&mut Trips>) {
        if self.open {
            self.open = false;
            self.record(last, self.acc, false, out);
        }
    }
}

/// Round trips with net PnL. A flip's cost is split between the closing and
/// the opening trip in proportion to the units closed and opened.
pub fn round_trips(units: &[f64], pnl: &[f64], cost: &[f64]) -> Trips {
    let mut trips = Trips::default();
    let mut scan = TripScan::default();
    let mut out = Some(&mut trips);
    for t in 0..units.len() {
        scan.step(t, units[t], pnl[t], cost[t], &mut out);
    }
    scan.finish(units.len().saturating_sub(1), &mut out);
    trips
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
    let cols = Columns {
        equity,
        pnl,
        cost,
        notional,
        units,
    };
    let opts = Options {
        capital,
        periods_per_year,
        rf,
        fixed_capital,
    };
    check(&cols, &opts)?;
    let mut r = vec![0.0; t_len - 1];
    let mut trips = Trips::default();
    let m = compute_into(&cols, &opts, &mut r, Some(&mut trips));
    Ok((m, r, trips))
}

/// The ledger columns metrics read, all of one length.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Columns<'a> {
    pub equity: &'a [f64],
    pub pnl: &'a [f64],
    pub cost: &'a [f64],
    pub notional: &'a [f64],
    pub units: &'a [f64],
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub capital: f64,
    pub periods_per_year: f64,
    pub rf: f64,
    pub fixed_capital: bool,
}

/// The input checks of `compute`.
pub(crate) fn check(c: &Columns<'_>, o: &Options) -> Result<()> {
    let t_len = c.equity.len();
    if t_len < 2
        || [c.pnl.len(), c.cost.len(), c.notional.len(), c.units.len()]
            .iter()
            .any(|&l| l != t_len)
    {
        return Err(invalid(
            "metrics need at least 2 bars and equal-length ledger columns",
        ));
    }
    if !(o.periods_per_year > 0.0) {
        return Err(invalid("periods_per_year must be > 0"));
    }
    Ok(())
}

/// `compute` on checked inputs, returns into `r` (T - 1), trips into `trips` if given.
pub(crate) fn compute_into(
    c: &Columns<'_>,
    o: &Options,
    r: &mut [f64],
    mut trips: Option<&mut Trips>,
) -> Metrics {
    let t_len = c.equity.len();
    let (equity, pnl, cost) = (c.equity, &c.pnl[..t_len], &c.cost[..t_len]);
    let (notional, units) = (&c.notional[..t_len], &c.units[..t_len]);
    let r = &mut r[..t_len - 1];
    returns_into(equity, pnl, cost, o.capital, o.fixed_capital, r);
    let mut pass = Pass::new(equity[0]);
    for &v in r.iter() {
        pass.ret(v, o.rf);
    }
    for t in 0..t_len {
        pass.bar(
            t,
            equity[t],
            pnl[t],
            cost[t],
            notional[t],
            units[t],
            &mut trips,
        );
    }
    pass.finish(equity[t_len - 1], t_len, r, o, &mut trips)
}

/// The first pass of the metrics, fed one return and one bar at a time: every sum
/// runs left to right from -0.0, as `Iterator::sum` does, so the bits are those of one
/// pass per sum. `finish` makes the second pass (two-pass sd) over the returns.
#[derive(Debug)]
pub(crate) struct Pass {
    e0: f64,
    sum_ex: f64,
    sum_r: f64,
    sum_down: f64,
    peak: f64,
    peak_t: usize,
    mdd: f64,
    mdd_ccy: f64,
    mdd_bars: usize,
    sum_eq: f64,
    sum_not: f64,
    sum_cost: f64,
    sum_pnl: f64,
    prev: f64,
    trades: usize,
    exposed: usize,
    scan: TripScan,
}

impl Pass {
    /// `e0` is the equity of bar 0.
    pub(crate) fn new(e0: f64) -> Self {
        Self {
            e0,
            sum_ex: -0.0,
            sum_r: -0.0,
            sum_down: -0.0,
            peak: e0,
            peak_t: 0,
            mdd: 0.0,
            mdd_ccy: 0.0,
            mdd_bars: 0,
            sum_eq: -0.0,
            sum_not: -0.0,
            sum_cost: -0.0,
            sum_pnl: -0.0,
            prev: 0.0,
            trades: 0,
            exposed: 0,
            scan: TripScan::default(),
        }
    }

    /// One return, in order.
    #[inline]
    pub(crate) fn ret(&mut self, v: f64, rf: f64) {
        let ex = v - rf;
        self.sum_ex += ex;
        self.sum_r += v;
        self.sum_down += ex.min(0.0).powi(2);
    }

    /// Bar t of the ledger, in order.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn bar(
        &mut self,
        t: usize,
        e: f64,
        pnl: f64,
        cost: f64,
        notional: f64,
        u: f64,
        trips: &mut Option<&mut Trips>,
    ) {
        if e >= self.peak {
            self.peak = e;
            self.peak_t = t;
        }
        self.mdd = self.mdd.min(e / self.peak - 1.0);
        self.mdd_ccy = self.mdd_ccy.min(e - self.peak);
        self.mdd_bars = self.mdd_bars.max(t - self.peak_t);
        self.sum_eq += e;
        self.sum_not += notional;
        self.sum_cost += cost;
        self.sum_pnl += pnl;
        self.trades += usize::from(u != self.prev);
        self.exposed += usize::from(u != 0.0);
        self.prev = u;
        self.scan.step(t, u, pnl, cost, trips);
    }

    /// The metrics, after all T bars and the T - 1 returns `r`.
    pub(crate) fn finish(
        mut self,
        e_last: f64,
        t_len: usize,
        r: &[f64],
        o: &Options,
        trips: &mut Option<&mut Trips>,
    ) -> Metrics {
        self.scan.finish(t_len - 1, trips);
        let rf = o.rf;
        let n_r = r.len() as f64;
        let ann = o.periods_per_year.sqrt();
        let mu = self.sum_ex / n_r;
        let mu_r = self.sum_r / n_r;
        let (mut ss_ex, mut ss_r) = (-0.0f64, -0.0f64);
        if rf == 0.0 && !rf.is_sign_negative() {
            // r - 0.0 is r bit for bit: one sum serves both
            for &v in r {
                ss_ex += (v - mu) * (v - mu);
            }
            ss_r = ss_ex;
        } else {
            for &v in r {
                let ex = v - rf;
                ss_ex += (ex - mu) * (ex - mu);
                ss_r += (v - mu_r) * (v - mu_r);
            }
        }
        let sd_of = |ss: f64| {
            if r.len() < 2 {
                f64::NAN
            } else {
                (ss / (r.len() - 1) as f64).sqrt()
            }
        };
        let sd = sd_of(ss_ex);
        let sharpe = if sd > 0.0 { ann * mu / sd } else { f64::NAN };
        let sharpe_tstat = if sd > 0.0 {
            mu / sd * n_r.sqrt()
        } else {
            f64::NAN
        };
        let down = (self.sum_down / n_r).sqrt();
        let sortino = if down > 0.0 {
            ann * mu / down
        } else if mu > 0.0 {
            f64::INFINITY
        } else {
            f64::NAN
        };
        // Equity path: in fixed-capital mode compounding is replaced by K + cumulative
        // PnL, which is the ledger equity in both modes.
        let growth = e_last / self.e0;
        let years = n_r / o.periods_per_year;
        let cagr = if growth > 0.0 {
            growth.powf(1.0 / years) - 1.0
        } else {
            f64::NAN
        };
        let volatility = sd_of(ss_r) * ann;
        let mdd = self.mdd;
        let calmar = if mdd < 0.0 {
            cagr / mdd.abs()
        } else {
            f64::NAN
        };
        let mean_eq = self.sum_eq / t_len as f64;
        let turnover = self.sum_not / (t_len as f64 * mean_eq);
        let (total_cost, gross_pnl) = (self.sum_cost, self.sum_pnl);
        let n_trips = self.scan.count;
        let (hit_rate, avg_holding) = if n_trips > 0 {
            let k = n_trips as f64;
            (self.scan.wins as f64 / k, self.scan.held as f64 / k)
        } else {
            (f64::NAN, f64::NAN)
        };
        Metrics {
            sharpe,
            sharpe_tstat,
            sortino,
            cagr,
            volatility,
            max_drawdown: mdd,
            max_drawdown_ccy: self.mdd_ccy,
            max_drawdown_bars: self.mdd_bars as f64,
            calmar,
            turnover,
            turnover_annual: turnover * o.periods_per_year,
            total_cost,
            gross_pnl,
            net_pnl: gross_pnl - total_cost,
            cost_to_gross: if gross_pnl != 0.0 {
                total_cost / gross_pnl.abs()
            } else {
                f64::NAN
            },
            trades: self.trades as f64,
            round_trips: n_trips as f64,
            hit_rate,
            avg_holding_bars: avg_holding,
            exposure: self.exposed as f64 / t_len as f64,
            final_equity: e_last,
        }
    }
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
