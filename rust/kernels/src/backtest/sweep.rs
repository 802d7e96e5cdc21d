//! Parameter sweep of the band rule over a (window, z_in, z_out, cost) grid (docs/compute.md §6).
//!
//! Each grid point runs the single-run pipeline (band_states -> units -> ledger ->
//! metrics::compute) in the same arithmetic, so its results are bitwise those of one
//! backtest.
//! Points run in parallel (rayon) and land in grid order, so neither the order nor
//! the values depend on the thread count.
//!
//! The z-series, one per window, come from the caller: computed once per window where
//! the single run computes them, the two paths see the same z.

// `!(x > 0.0)` is used on purpose: it also rejects NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use rayon::prelude::*;

use super::metrics::{self, Metrics};
use super::stats::{self, Moments};
use super::{Bands, Kahan, Legs};
use crate::error::{Result, invalid};

/// Settings shared by every grid point.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub u_max: f64,
    pub z_stop: Option<f64>,
    pub cooldown: usize,
    /// Truncate units toward zero (backtesting.py parity).
    pub integer_units: bool,
    /// Flat from bar T-2 on (backtesting.py's finalize_trades).
    pub close_at_end: bool,
    pub fixed_cost: f64,
    pub capital: f64,
    pub periods_per_year: f64,
    pub rf: f64,
    /// Returns (PnL - C) / K instead of E[t] / E[t-1] - 1.
    pub fixed_capital: bool,
    /// A of the geometric Sharpe (periods_per_year, or 252/365 with a calendar).
    pub geometric_periods: f64,
    /// One flag per bar: the last bar of its calendar day (the geometric Sharpe's
    /// resampling); None without timestamps.
    pub last_of_day: Option<Vec<bool>>,
}

/// One grid point: row `z` of the z-series, the bands, and row `cost` of the cost rates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub z: usize,
    pub z_in: f64,
    pub z_out: f64,
    pub cost: usize,
}

/// Results in grid order. Each point's equity and returns live only in its thread's
/// buffers while its statistics are computed, so memory does not grow with the grid.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sweep {
    pub metrics: Vec<Metrics>,
    /// backtesting.py's geometric Sharpe of each point (`stats::geometric_sharpe`, rf 0).
    pub geometric: Vec<f64>,
    /// Deflated Sharpe of each point, the grid being the trials (`stats::deflate_grid`).
    pub deflated: Vec<f64>,
    /// Points with a finite Sharpe: the N of the deflation.
    pub n_trials: usize,
}

/// Band positions: state * u_max, truncated toward zero for integer units, flat on the
/// last two bars with close_at_end. Adding 0.0 turns -0.0 into 0.0 as the Python path does.
pub fn band_units(states: &[f64], s: &Settings) -> Vec<f64> {
    let mut u: Vec<f64> = states
        .iter()
        .map(|&st| {
            let v = st * s.u_max;
            if s.integer_units { v.trunc() } else { v }
        })
        .collect();
    if s.close_at_end {
        let from = u.len().saturating_sub(2);
        u[from..].fill(0.0);
    }
    u.iter_mut().for_each(|v| *v += 0.0);
    u
}

/// One grid point into `equity` (T) and `returns` (T - 1), with the checks of the single
/// run in its order; `spread` is the spread of `legs`, `legs_ok` the result of its checks.
///
/// One loop does what band_states, band_units, ledger and the first metrics pass do
/// one after the other, in the same arithmetic: the bits are those of the single run.
#[allow(clippy::too_many_arguments)]
fn point_into(
    legs: &Legs<'_>,
    legs_ok: &Result<()>,
    spread: &[f64],
    z: &[f64],
    z_in: f64,
    z_out: f64,
    s: &Settings,
    equity: &mut [f64],
    returns: &mut [f64],
) -> Result<Metrics> {
    let mut bands = Bands::new(z_in, z_out, s.z_stop, s.cooldown)?;
    legs_ok.clone()?;
    let opts = metrics::Options {
        capital: s.capital,
        periods_per_year: s.periods_per_year,
        rf: s.rf,
        fixed_capital: s.fixed_capital,
    };
    if !(opts.periods_per_year > 0.0) {
        return Err(invalid("periods_per_year must be > 0"));
    }
    let t_len = equity.len();
    let (z, spread) = (&z[..t_len], &spread[..t_len]);
    let returns = &mut returns[..t_len - 1];
    // states are -1, 0, 1 and trunc(-x) = -trunc(x): u = state * size (+ 0.0 as band_units)
    let size = if s.integer_units {
        s.u_max.trunc()
    } else {
        s.u_max
    };
    let flat_from = if s.close_at_end { t_len - 2 } else { t_len };
    let mut eq = Kahan::new(legs.capital);
    let (mut prev_u, mut prev_s, mut prev_e) = (0.0f64, f64::NAN, 0.0f64);
    let mut pass = metrics::Pass::new(0.0);
    for t in 0..t_len {
        let st = bands.step(z[t]);
        let u = if t >= flat_from { 0.0 } else { st * size } + 0.0;
        let sp = spread[t];
        let (pnl, notional, cost) = legs.bar(t, prev_u, prev_s, u, sp);
        let sum = eq.add(pnl - cost);
        equity[t] = sum;
        if t == 0 {
            pass = metrics::Pass::new(sum);
        } else {
            let r = if opts.fixed_capital {
                (pnl - cost) / opts.capital
            } else {
                sum / prev_e - 1.0
            };
            returns[t - 1] = r;
            pass.ret(r, opts.rf);
        }
        pass.bar(t, sum, pnl, cost, notional, u, &mut None);
        prev_u = u;
        prev_s = sp;
        prev_e = sum;
    }
    Ok(pass.finish(eq.sum(), t_len, returns, &opts, &mut None))
}

/// The checks of the single run on the legs (units are finite here: u_max is).
fn check_legs(legs: &Legs<'_>, t_len: usize) -> Result<()> {
    legs.check(t_len)?;
    legs.check_costs()
}

/// The statistics of a point after its ledger, as the single run computes them:
/// (metrics, geometric Sharpe, moments of the returns for the deflated Sharpe).
fn point_stats(
    m: Metrics,
    equity: &[f64],
    returns: &[f64],
    s: &Settings,
    scratch: &mut Vec<f64>,
) -> Result<(Metrics, f64, Moments)> {
    let mask = s.last_of_day.as_deref();
    let geo = stats::geometric_sharpe(equity, mask, s.geometric_periods, 0.0, scratch)?;
    Ok((m, geo, Moments::of(returns, s.rf)))
}

/// Every grid point of the band rule.
///
/// `prices` is row-major (t_len x n), `zs` holds the z-series row-major (windows x
/// t_len), `rates` the per-leg cost rates row-major (costs x n). Run it inside a rayon
/// pool to choose the thread count. An invalid point fails the sweep with the error of
/// the first such point in grid order.
///
/// The spread and the input checks are shared by all points; each point runs as one
/// loop into its thread's equity and returns buffers.
pub fn sweep(
    prices: &[f64],
    n: usize,
    weights: &[f64],
    zs: &[f64],
    rates: &[f64],
    points: &[Point],
    s: &Settings,
) -> Result<Sweep> {
    if n == 0 || prices.len() % n != 0 || prices.len() / n < 2 {
        return Err(invalid(format!(
            "prices must be (bars x {n} legs) with at least 2 bars, got {} values",
            prices.len()
        )));
    }
    let t_len = prices.len() / n;
    if zs.len() % t_len != 0 || rates.len() % n != 0 {
        return Err(invalid(format!(
            "z-series need {t_len} values per window and cost rates {n} per cost"
        )));
    }
    let (n_z, n_c) = (zs.len() / t_len, rates.len() / n);
    if let Some(p) = points.iter().find(|p| p.z >= n_z || p.cost >= n_c) {
        return Err(invalid(format!(
            "grid point {p:?} refers to a missing z-series ({n_z}) or cost ({n_c})"
        )));
    }
    if !(s.u_max.is_finite() && s.u_max > 0.0) {
        return Err(invalid("u_max must be finite and > 0"));
    }
    if let Some(m) = &s.last_of_day {
        if m.len() != t_len {
            return Err(invalid(format!(
                "the calendar-day mask has {} flags for {t_len} bars",
                m.len()
            )));
        }
    }
    let legs_of = |c: usize| Legs {
        prices,
        n,
        weights,
        cost_rates: &rates[c * n..(c + 1) * n],
        fixed_cost: s.fixed_cost,
        capital: s.capital,
    };
    // checks per cost row, run once (only rows some point uses)
    let checks: Vec<Result<()>> = (0..n_c)
        .map(|c| {
            if points.iter().any(|p| p.cost == c) {
                check_legs(&legs_of(c), t_len)
            } else {
                Ok(())
            }
        })
        .collect();
    // shared by all points (harmless garbage when the checks fail: no point uses it then)
    let mut spread = vec![0.0; t_len];
    let spread_legs = Legs {
        prices,
        n,
        weights,
        cost_rates: &[],
        fixed_cost: 0.0,
        capital: 1.0,
    };
    spread_legs.spread_into(&mut spread);
    let buffers = || (vec![0.0; t_len], vec![0.0; t_len - 1], Vec::new());
    // Collected in grid order; the first error in that order wins, whatever thread hit it.
    let results: Vec<Result<(Metrics, f64, Moments)>> = points
        .par_iter()
        .map_init(buffers, |(equity, returns, scratch), p| {
            let z = &zs[p.z * t_len..(p.z + 1) * t_len];
            let ok = &checks[p.cost];
            let m = point_into(
                &legs_of(p.cost),
                ok,
                &spread,
                z,
                p.z_in,
                p.z_out,
                s,
                equity,
                returns,
            )?;
            point_stats(m, equity, returns, s, scratch)
        })
        .collect();
    let results: Vec<(Metrics, f64, Moments)> = results.into_iter().collect::<Result<_>>()?;
    let sharpe: Vec<f64> = results.iter().map(|r| r.0.sharpe).collect();
    let moments: Vec<Moments> = results.iter().map(|r| r.2).collect();
    let (deflated, n_trials) = stats::deflate_grid(&sharpe, &moments, s.periods_per_year)?;
    Ok(Sweep {
        geometric: results.iter().map(|r| r.1).collect(),
        metrics: results.into_iter().map(|r| r.0).collect(),
        deflated,
        n_trials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backtest::{band_states, ledger};
    use crate::series::rolling_zscore;

    fn settings() -> Settings {
        Settings {
            u_max: 2.5,
            z_stop: None,
            cooldown: 0,
            integer_units: false,
            close_at_end: false,
            fixed_cost: 0.0,
            capital: 1e4,
            periods_per_year: 252.0,
            rf: 0.0,
            fixed_capital: false,
            geometric_periods: 252.0,
            last_of_day: None,
        }
    }

    /// Two legs sharing a random walk plus a mean-reverting gap, row-major.
    fn pair(t_len: usize) -> Vec<f64> {
        let (mut x, mut walk, mut gap, mut out) = (7u64, 100.0, 0.0, Vec::new());
        let mut draw = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        for _ in 0..t_len {
            walk += draw();
            gap = 0.9 * gap + 2.0 * draw();
            out.extend([walk + gap + 50.0, walk + 20.0]);
        }
        out
    }

    /// The single-run path written out step by step, as the Python backtest runs it.
    fn single(
        p: &[f64],
        w: &[f64],
        z: &[f64],
        zi: f64,
        zo: f64,
        c: &[f64],
        s: &Settings,
    ) -> (Metrics, Vec<f64>, Vec<f64>) {
        let st = band_states(z, zi, zo, s.z_stop, s.cooldown).unwrap();
        let mut u: Vec<f64> = st.iter().map(|v| v * s.u_max).collect();
        if s.integer_units {
            u.iter_mut().for_each(|v| *v = v.trunc());
        }
        if s.close_at_end {
            let k = u.len();
            u[k - 2] = 0.0;
            u[k - 1] = 0.0;
        }
        let u: Vec<f64> = u.iter().map(|v| v + 0.0).collect();
        let l = ledger(p, w.len(), w, &u, c, s.fixed_cost, s.capital).unwrap();
        let args = (s.capital, s.periods_per_year, s.rf, s.fixed_capital);
        let (m, r, _) = metrics::compute(
            &l.equity,
            &l.pnl,
            &l.cost,
            &l.notional,
            &u,
            args.0,
            args.1,
            args.2,
            args.3,
        )
        .unwrap();
        (m, l.equity, r)
    }

    fn bits(m: &Metrics) -> Vec<u64> {
        let v = [
            m.sharpe,
            m.sharpe_tstat,
            m.sortino,
            m.cagr,
            m.volatility,
            m.max_drawdown,
            m.max_drawdown_ccy,
            m.max_drawdown_bars,
            m.calmar,
            m.turnover,
            m.turnover_annual,
            m.total_cost,
            m.gross_pnl,
            m.net_pnl,
            m.cost_to_gross,
            m.trades,
            m.round_trips,
            m.hit_rate,
            m.avg_holding_bars,
            m.exposure,
            m.final_equity,
        ];
        v.iter().map(|x| x.to_bits()).collect()
    }

    fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(f)
    }

    #[test]
    fn every_point_equals_the_single_run_for_any_thread_count() {
        let t_len = 1500;
        let p = pair(t_len);
        let w = [1.0, -0.8];
        let spread: Vec<f64> = p.chunks(2).map(|r| r[0] * w[0] + r[1] * w[1]).collect();
        let windows = [20usize, 45];
        let zs: Vec<f64> = windows
            .iter()
            .flat_map(|&l| rolling_zscore(&spread, l).unwrap())
            .collect();
        let rates = [0.0, 0.0, 1e-3, 5e-4];
        let mut points = Vec::new();
        for z in 0..windows.len() {
            for (zi, zo) in [(1.0, 0.0), (1.5, 0.5), (2.0, -0.5)] {
                for cost in 0..2 {
                    points.push(Point {
                        z,
                        z_in: zi,
                        z_out: zo,
                        cost,
                    });
                }
            }
        }
        let variants = [
            settings(),
            Settings {
                z_stop: Some(2.6),
                cooldown: 3,
                integer_units: true,
                ..settings()
            },
            Settings {
                close_at_end: true,
                fixed_cost: 1.5,
                fixed_capital: true,
                rf: 1e-5,
                ..settings()
            },
        ];
        for s in &variants {
            let one = in_pool(1, || sweep(&p, 2, &w, &zs, &rates, &points, s).unwrap());
            let two = in_pool(2, || sweep(&p, 2, &w, &zs, &rates, &points, s).unwrap());
            assert_eq!(
                one.metrics.iter().map(bits).collect::<Vec<_>>(),
                two.metrics.iter().map(bits).collect::<Vec<_>>()
            );
            let bits_of = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits_of(&one.geometric), bits_of(&two.geometric));
            assert_eq!(bits_of(&one.deflated), bits_of(&two.deflated));
            assert_eq!(one.n_trials, two.n_trials);
            assert!(one.geometric.iter().all(|g| g.is_finite()));
            assert!(one.metrics.iter().map(|m| m.round_trips).sum::<f64>() > 20.0);
            for (k, pt) in points.iter().enumerate() {
                let z = &zs[pt.z * t_len..(pt.z + 1) * t_len];
                let c = &rates[pt.cost * 2..pt.cost * 2 + 2];
                let (want, e, r) = single(&p, &w, z, pt.z_in, pt.z_out, c, s);
                assert_eq!(bits(&one.metrics[k]), bits(&want), "point {pt:?}");
                assert_eq!(e[t_len - 1], want.final_equity);
                // the statistics of the single run's equity and returns, bit for bit
                let geo = stats::geometric_sharpe(&e, None, 252.0, 0.0, &mut Vec::new()).unwrap();
                assert_eq!(one.geometric[k].to_bits(), geo.to_bits());
                let per_period: Vec<f64> = one
                    .metrics
                    .iter()
                    .map(|m| m.sharpe / s.periods_per_year.sqrt())
                    .filter(|v| v.is_finite())
                    .collect();
                let n = per_period.len();
                let mean = per_period.iter().sum::<f64>() / n as f64;
                let v = per_period.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
                let dsr = stats::deflated_sharpe(&r, n, v, s.rf).unwrap();
                assert!((one.deflated[k] - dsr).abs() <= 1e-9 * dsr.abs(), "{pt:?}");
                assert_eq!(one.n_trials, n);
            }
        }
    }

    #[test]
    fn first_bad_point_in_grid_order_fails_the_sweep() {
        let p = pair(200);
        let z = vec![0.0; 200];
        let pt = |zi, zo| Point {
            z: 0,
            z_in: zi,
            z_out: zo,
            cost: 0,
        };
        let pts = [pt(2.0, 0.5), pt(-1.0, -2.0), pt(1.0, 1.5)];
        let err = sweep(&p, 2, &[1.0, -1.0], &z, &[0.0, 0.0], &pts, &settings()).unwrap_err();
        assert!(err.to_string().contains("z_in must be > 0"), "{err}");
        let bad = [Point {
            cost: 1,
            ..pt(2.0, 0.5)
        }];
        let err = sweep(&p, 2, &[1.0, -1.0], &z, &[0.0, 0.0], &bad, &settings()).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
        let err = sweep(
            &p,
            2,
            &[1.0, -1.0],
            &z[..150],
            &[0.0, 0.0],
            &[],
            &settings(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("per window"), "{err}");
        let empty = sweep(&p, 2, &[1.0, -1.0], &z, &[0.0, 0.0], &[], &settings()).unwrap();
        assert!(empty.metrics.is_empty() && empty.deflated.is_empty());
    }
}
