//! Bindings: Vectorised backtest of the mean-reversion signal with costs (docs/compute.md §6).

use kernels::backtest::sweep::{self, Point, Settings};
use kernels::backtest::{self, metrics, stats};
use kernels::error::invalid;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::slice1;
use crate::errors::to_py;
use crate::optimize::{slice2, with_workers};

/// Band rule with hysteresis as a sequential state machine: states in {-1, 0, 1}.
#[pyfunction]
#[pyo3(signature = (z, z_in, z_out, z_stop=None, cooldown=0))]
fn bt_band_states<'py>(
    py: Python<'py>,
    z: PyReadonlyArray1<'py, f64>,
    z_in: f64,
    z_out: f64,
    z_stop: Option<f64>,
    cooldown: usize,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let z = slice1(&z);
    let s = py
        .detach(|| backtest::band_states(&z, z_in, z_out, z_stop, cooldown))
        .map_err(to_py)?;
    Ok(s.into_pyarray(py))
}

/// Ledger of a spread strategy; `prices` flat row-major (bars x legs).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn bt_ledger<'py>(
    py: Python<'py>,
    prices: PyReadonlyArray1<'py, f64>,
    n: usize,
    weights: PyReadonlyArray1<'py, f64>,
    units: PyReadonlyArray1<'py, f64>,
    cost_rates: PyReadonlyArray1<'py, f64>,
    fixed_cost: f64,
    capital: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let (p, w, u, c) = (
        slice1(&prices),
        slice1(&weights),
        slice1(&units),
        slice1(&cost_rates),
    );
    let led = py
        .detach(|| backtest::ledger(&p, n, &w, &u, &c, fixed_cost, capital))
        .map_err(to_py)?;
    let d = PyDict::new(py);
    d.set_item("spread", led.spread.into_pyarray(py))?;
    d.set_item("pnl", led.pnl.into_pyarray(py))?;
    d.set_item("cost", led.cost.into_pyarray(py))?;
    d.set_item("notional", led.notional.into_pyarray(py))?;
    d.set_item("equity", led.equity.into_pyarray(py))?;
    Ok(d)
}

/// Metric names and values, in the order of the Python metrics dict.
fn metric_items(m: &metrics::Metrics) -> [(&'static str, f64); 21] {
    [
        ("sharpe", m.sharpe),
        ("sharpe_tstat", m.sharpe_tstat),
        ("sortino", m.sortino),
        ("cagr", m.cagr),
        ("volatility", m.volatility),
        ("max_drawdown", m.max_drawdown),
        ("max_drawdown_ccy", m.max_drawdown_ccy),
        ("max_drawdown_bars", m.max_drawdown_bars),
        ("calmar", m.calmar),
        ("turnover", m.turnover),
        ("turnover_annual", m.turnover_annual),
        ("total_cost", m.total_cost),
        ("gross_pnl", m.gross_pnl),
        ("net_pnl", m.net_pnl),
        ("cost_to_gross", m.cost_to_gross),
        ("trades", m.trades),
        ("round_trips", m.round_trips),
        ("hit_rate", m.hit_rate),
        ("avg_holding_bars", m.avg_holding_bars),
        ("exposure", m.exposure),
        ("final_equity", m.final_equity),
    ]
}

type MetricsOut<'py> = (
    Bound<'py, PyDict>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyDict>,
);

/// Metrics, per-period returns and round trips of a ledger.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn bt_metrics<'py>(
    py: Python<'py>,
    equity: PyReadonlyArray1<'py, f64>,
    pnl: PyReadonlyArray1<'py, f64>,
    cost: PyReadonlyArray1<'py, f64>,
    notional: PyReadonlyArray1<'py, f64>,
    units: PyReadonlyArray1<'py, f64>,
    capital: f64,
    periods_per_year: f64,
    rf: f64,
    fixed_capital: bool,
) -> PyResult<MetricsOut<'py>> {
    let (e, p, c, n, u) = (
        slice1(&equity),
        slice1(&pnl),
        slice1(&cost),
        slice1(&notional),
        slice1(&units),
    );
    let (m, r, trips) = py
        .detach(|| {
            metrics::compute(
                &e,
                &p,
                &c,
                &n,
                &u,
                capital,
                periods_per_year,
                rf,
                fixed_capital,
            )
        })
        .map_err(to_py)?;
    let d = PyDict::new(py);
    for (k, v) in metric_items(&m) {
        d.set_item(k, v)?;
    }
    let t = PyDict::new(py);
    let entry: Vec<i64> = trips.entry.iter().map(|&i| i as i64).collect();
    let exit: Vec<i64> = trips.exit.iter().map(|&i| i as i64).collect();
    t.set_item("entry", entry.into_pyarray(py))?;
    t.set_item("exit", exit.into_pyarray(py))?;
    t.set_item("pnl", trips.pnl.into_pyarray(py))?;
    t.set_item("closed", trips.closed)?;
    Ok((d, r.into_pyarray(py), t))
}

/// backtesting.py's geometric Sharpe of an equity curve; `last_of_day` flags the last
/// bar of each calendar day (None: every bar is a day), A = `periods_per_year`.
#[pyfunction]
#[pyo3(signature = (equity, last_of_day, periods_per_year, rf=0.0))]
fn bt_geometric_sharpe<'py>(
    py: Python<'py>,
    equity: PyReadonlyArray1<'py, f64>,
    last_of_day: Option<PyReadonlyArray1<'py, bool>>,
    periods_per_year: f64,
    rf: f64,
) -> PyResult<f64> {
    let e = slice1(&equity);
    let mask: Option<Vec<bool>> = last_of_day.map(|m| m.as_array().to_vec());
    py.detach(|| {
        stats::geometric_sharpe(&e, mask.as_deref(), periods_per_year, rf, &mut Vec::new())
    })
    .map_err(to_py)
}

/// Expected maximum Sharpe of `n_trials` unskilled trials (Bailey & Lopez de Prado eq. 2).
#[pyfunction]
fn bt_expected_max_sharpe(n_trials: usize, sharpe_var: f64) -> PyResult<f64> {
    stats::expected_max_sharpe(n_trials, sharpe_var).map_err(to_py)
}

/// Deflated Sharpe of one series of per-period returns.
#[pyfunction]
#[pyo3(signature = (returns, n_trials, sharpe_var, rf=0.0))]
fn bt_deflated_sharpe<'py>(
    py: Python<'py>,
    returns: PyReadonlyArray1<'py, f64>,
    n_trials: usize,
    sharpe_var: f64,
    rf: f64,
) -> PyResult<f64> {
    let r = slice1(&returns);
    py.detach(|| stats::deflated_sharpe(&r, n_trials, sharpe_var, rf))
        .map_err(to_py)
}

/// Deflated Sharpe of each row of `returns` (trials x periods), the rows being the trials;
/// `sharpe` their annualised arithmetic Sharpe. Returns (values, N).
#[pyfunction]
fn bt_deflate_grid<'py>(
    py: Python<'py>,
    returns: PyReadonlyArray2<'py, f64>,
    sharpe: PyReadonlyArray1<'py, f64>,
    periods_per_year: f64,
    rf: f64,
) -> PyResult<(Bound<'py, PyArray1<f64>>, usize)> {
    let periods = returns.shape()[1];
    let (r, s) = (slice2(&returns), slice1(&sharpe));
    let (values, n) = py
        .detach(|| {
            let moments: Vec<stats::Moments> = if periods == 0 {
                vec![stats::Moments::default(); s.len()]
            } else {
                r.chunks_exact(periods)
                    .map(|row| stats::Moments::of(row, rf))
                    .collect()
            };
            stats::deflate_grid(&s, &moments, periods_per_year)
        })
        .map_err(to_py)?;
    Ok((values.into_pyarray(py), n))
}

/// Band-rule sweep over grid points (z-series row, z_in, z_out, cost-rate row), in
/// parallel on `workers` threads (0 = all) with the GIL released. Returns
/// {"metrics": {name: (G,)}, "equity": (G, T), "returns": (G, T - 1),
/// "sharpe_geometric_bt": (G,), "deflated_sharpe": (G,), "n_trials": N} in grid order;
/// every point equals the single run bitwise, whatever `workers`. `last_of_day` and
/// `geometric_periods` (default periods_per_year) set the geometric Sharpe's calendar.
#[pyfunction]
#[pyo3(signature = (prices, weights, zs, cost_rates, z_index, z_in, z_out, cost_index, *,
    u_max, z_stop=None, cooldown=0, integer_units=false, close_at_end=false, fixed_cost=0.0,
    capital=1e6, periods_per_year=252.0, rf=0.0, fixed_capital=false, last_of_day=None,
    geometric_periods=None, workers=0))]
#[allow(clippy::too_many_arguments)]
fn bt_sweep<'py>(
    py: Python<'py>,
    prices: PyReadonlyArray2<'py, f64>,
    weights: PyReadonlyArray1<'py, f64>,
    zs: PyReadonlyArray2<'py, f64>,
    cost_rates: PyReadonlyArray2<'py, f64>,
    z_index: Vec<usize>,
    z_in: Vec<f64>,
    z_out: Vec<f64>,
    cost_index: Vec<usize>,
    u_max: f64,
    z_stop: Option<f64>,
    cooldown: usize,
    integer_units: bool,
    close_at_end: bool,
    fixed_cost: f64,
    capital: f64,
    periods_per_year: f64,
    rf: f64,
    fixed_capital: bool,
    last_of_day: Option<PyReadonlyArray1<'py, bool>>,
    geometric_periods: Option<f64>,
    workers: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let (t_len, n) = (prices.shape()[0], prices.shape()[1]);
    let g = z_index.len();
    let shapes_ok = weights.len() == n && zs.shape()[1] == t_len && cost_rates.shape()[1] == n;
    if !shapes_ok || [z_in.len(), z_out.len(), cost_index.len()] != [g; 3] {
        return Err(to_py(invalid(format!(
            "sweep needs prices (T, n) = ({t_len}, {n}), {n} weights, z-series (windows, {t_len}), \
             cost rates (costs, {n}) and {g} values in each grid column"
        ))));
    }
    let points: Vec<Point> = (0..g)
        .map(|k| Point {
            z: z_index[k],
            z_in: z_in[k],
            z_out: z_out[k],
            cost: cost_index[k],
        })
        .collect();
    let settings = Settings {
        u_max,
        z_stop,
        cooldown,
        integer_units,
        close_at_end,
        fixed_cost,
        capital,
        periods_per_year,
        rf,
        fixed_capital,
        geometric_periods: geometric_periods.unwrap_or(periods_per_year),
        last_of_day: last_of_day.map(|m| m.as_array().to_vec()),
    };
    let (p, w, z, c) = (
        slice2(&prices),
        slice1(&weights),
        slice2(&zs),
        slice2(&cost_rates),
    );
    let out = py
        .detach(|| {
            with_workers(workers, || {
                sweep::sweep(&p, n, &w, &z, &c, &points, &settings)
            })
            .and_then(|r| r)
        })
        .map_err(to_py)?;
    let mut columns: Vec<(&'static str, Vec<f64>)> = metric_items(&metrics::Metrics::default())
        .iter()
        .map(|(k, _)| (*k, Vec::with_capacity(g)))
        .collect();
    for m in &out.metrics {
        for (col, (_, v)) in columns.iter_mut().zip(metric_items(m)) {
            col.1.push(v);
        }
    }
    let met = PyDict::new(py);
    for (k, v) in columns {
        met.set_item(k, v.into_pyarray(py))?;
    }
    let d = PyDict::new(py);
    d.set_item("metrics", met)?;
    d.set_item("sharpe_geometric_bt", out.geometric.into_pyarray(py))?;
    d.set_item("deflated_sharpe", out.deflated.into_pyarray(py))?;
    d.set_item("n_trials", out.n_trials)?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(bt_band_states, m)?)?;
    m.add_function(wrap_pyfunction!(bt_ledger, m)?)?;
    m.add_function(wrap_pyfunction!(bt_metrics, m)?)?;
    m.add_function(wrap_pyfunction!(bt_sweep, m)?)?;
    m.add_function(wrap_pyfunction!(bt_geometric_sharpe, m)?)?;
    m.add_function(wrap_pyfunction!(bt_expected_max_sharpe, m)?)?;
    m.add_function(wrap_pyfunction!(bt_deflated_sharpe, m)?)?;
    m.add_function(wrap_pyfunction!(bt_deflate_grid, m)?)?;
    Ok(())
}
