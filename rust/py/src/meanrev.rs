//! Bindings: Mean reversion: OU estimation, CARA and power-utility positions, sparse portfolios
//! (docs/compute.md §3).

use kernels::meanrev::cara::{self, Horizon, OuParams};
use kernels::meanrev::ou::{self, OuFit};
use kernels::meanrev::{linalg, power, sparse};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::slice1;
use crate::errors::to_py;

fn fit_dict<'py>(py: Python<'py>, f: &OuFit) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("n", f.n)?;
    d.set_item("a", f.a)?;
    d.set_item("b", f.b)?;
    d.set_item("s2", f.s2)?;
    d.set_item("theta", f.theta)?;
    d.set_item("mu", f.mu)?;
    d.set_item("sigma", f.sigma)?;
    d.set_item("half_life_years", f.half_life_years)?;
    d.set_item("half_life_bars", f.half_life_bars)?;
    d.set_item("llf", f.llf)?;
    d.set_item("se_a", f.se_a)?;
    d.set_item("se_b", f.se_b)?;
    d.set_item("se_theta", f.se_theta)?;
    d.set_item("se_mu", f.se_mu)?;
    d.set_item("se_half_life_years", f.se_half_life_years)?;
    d.set_item("mean_reverting", f.mean_reverting)?;
    Ok(d)
}

/// OU fit with equal spacing: method "conditional" (closed form) or "exact" (MLE).
#[pyfunction]
fn ou_fit<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    dt: f64,
    method: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let x = slice1(&x);
    let exact = match method {
        "conditional" => false,
        "exact" => true,
        other => {
            return Err(PyValueError::new_err(format!(
                "method must be \"conditional\" or \"exact\", got {other:?}"
            )));
        }
    };
    let fit = py
        .detach(|| {
            if exact {
                ou::fit_exact(&x, dt)
            } else {
                ou::fit_conditional(&x, dt)
            }
        })
        .map_err(to_py)?;
    fit_dict(py, &fit)
}

/// OU fit for irregular sampling times `t` (in years).
#[pyfunction]
fn ou_fit_irregular<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    t: PyReadonlyArray1<'py, f64>,
) -> PyResult<Bound<'py, PyDict>> {
    let x = slice1(&x);
    let t = slice1(&t);
    let fit = py.detach(|| ou::fit_irregular(&x, &t)).map_err(to_py)?;
    fit_dict(py, &fit)
}

/// Exact AR(1) log-likelihood with stationary x_0 at (mu, b, s2).
#[pyfunction]
fn ou_exact_loglik(x: PyReadonlyArray1<'_, f64>, mu: f64, b: f64, s2: f64) -> f64 {
    ou::exact_loglik(&slice1(&x), mu, b, s2)
}

/// Rolling OU fits of `cols` series stored one after another (series-major).
/// Returns (fields, flat buffer laid out [series][field][row]).
#[pyfunction]
fn ou_rolling<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    rows: usize,
    cols: usize,
    window: usize,
    dt: f64,
) -> PyResult<(Vec<&'static str>, Bound<'py, PyArray1<f64>>)> {
    let x = slice1(&x);
    let out = py
        .detach(|| ou::rolling_many(&x, rows, cols, window, dt))
        .map_err(to_py)?;
    Ok((ou::ROLLING_FIELDS.to_vec(), out.into_pyarray(py)))
}

fn horizon(name: &str) -> PyResult<Horizon> {
    match name {
        "finite" => Ok(Horizon::Finite),
        "myopic" => Ok(Horizon::Myopic),
        "discrete_myopic" => Ok(Horizon::DiscreteMyopic),
        other => Err(PyValueError::new_err(format!(
            "horizon must be \"finite\", \"myopic\" or \"discrete_myopic\", got {other:?}"
        ))),
    }
}

/// CARA-optimal spread position for each (x, t).
#[pyfunction]
#[pyo3(signature = (x, t, horizon_t, theta, mu, sigma, gamma, kind, dt, q_max=None))]
#[allow(clippy::too_many_arguments)]
fn ou_cara_position<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    t: PyReadonlyArray1<'py, f64>,
    horizon_t: f64,
    theta: f64,
    mu: f64,
    sigma: f64,
    gamma: f64,
    kind: &str,
    dt: f64,
    q_max: Option<f64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let h = horizon(kind)?;
    let x = slice1(&x);
    let t = slice1(&t);
    let p = OuParams { theta, mu, sigma };
    let q = py
        .detach(|| cara::position(&x, &t, horizon_t, p, gamma, h, dt, q_max))
        .map_err(to_py)?;
    Ok(q.into_pyarray(py))
}

/// Closed-form certainty equivalent of the finite-horizon CARA optimum at t = 0.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn ou_cara_ce(
    x0: f64,
    w0: f64,
    horizon_t: f64,
    theta: f64,
    mu: f64,
    sigma: f64,
    gamma: f64,
) -> PyResult<f64> {
    cara::certainty_equivalent(x0, w0, horizon_t, OuParams { theta, mu, sigma }, gamma)
        .map_err(to_py)
}

type Triple<'py> = (
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
);

/// Power-utility Riccati solution per time to maturity: (A, C, position factor h).
#[pyfunction]
fn ou_power_coefficients<'py>(
    py: Python<'py>,
    tau: PyReadonlyArray1<'py, f64>,
    theta: f64,
    sigma: f64,
    gamma: f64,
) -> PyResult<Triple<'py>> {
    let tau = slice1(&tau);
    let co = py
        .detach(|| power::coefficients(&tau, theta, sigma, gamma))
        .map_err(to_py)?;
    let a: Vec<f64> = co.iter().map(|c| c.a).collect();
    let c: Vec<f64> = co.iter().map(|c| c.c).collect();
    let h: Vec<f64> = co.iter().map(|c| c.factor).collect();
    Ok((a.into_pyarray(py), c.into_pyarray(py), h.into_pyarray(py)))
}

/// Power-utility optimal spread position for each (x, t, wealth).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn ou_power_position<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    t: PyReadonlyArray1<'py, f64>,
    wealth: PyReadonlyArray1<'py, f64>,
    horizon_t: f64,
    theta: f64,
    mu: f64,
    sigma: f64,
    gamma: f64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let (x, t, w) = (slice1(&x), slice1(&t), slice1(&wealth));
    let p = OuParams { theta, mu, sigma };
    let q = py
        .detach(|| power::position(&x, &t, &w, horizon_t, p, gamma))
        .map_err(to_py)?;
    Ok(q.into_pyarray(py))
}

/// Closed-form certainty equivalent of the power-utility optimum at t = 0.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn ou_power_ce(
    x0: f64,
    w0: f64,
    horizon_t: f64,
    theta: f64,
    mu: f64,
    sigma: f64,
    gamma: f64,
) -> PyResult<f64> {
    power::certainty_equivalent(x0, w0, horizon_t, OuParams { theta, mu, sigma }, gamma)
        .map_err(to_py)
}

type Traded<'py> = (
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Option<usize>,
);

/// Self-financed power-optimal trading along a path: (units, wealth, first ruined bar or None).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn ou_power_path<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    t: PyReadonlyArray1<'py, f64>,
    w0: f64,
    horizon_t: f64,
    theta: f64,
    mu: f64,
    sigma: f64,
    gamma: f64,
) -> PyResult<Traded<'py>> {
    let (x, t) = (slice1(&x), slice1(&t));
    let p = OuParams { theta, mu, sigma };
    let r = py
        .detach(|| power::path(&x, &t, w0, horizon_t, p, gamma))
        .map_err(to_py)?;
    Ok((r.q.into_pyarray(py), r.wealth.into_pyarray(py), r.ruined_at))
}

type Picked<'py> = (Vec<usize>, f64, Bound<'py, PyArray1<f64>>);
type Searched<'py> = (Vec<usize>, f64, Bound<'py, PyArray1<f64>>, usize);
type Decomposed<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>);

fn picked(py: Python<'_>, s: sparse::Selection) -> Picked<'_> {
    (s.support, s.nu, s.weights.into_pyarray(py))
}

/// Full Box–Tiao decomposition: (ascending eigenvalues, eigenvectors flat row-major).
#[pyfunction]
fn sparse_box_tiao<'py>(
    py: Python<'py>,
    m: PyReadonlyArray1<'py, f64>,
    g: PyReadonlyArray1<'py, f64>,
    n: usize,
) -> PyResult<Decomposed<'py>> {
    let (m, g) = (slice1(&m), slice1(&g));
    let (vals, vecs) = py.detach(|| sparse::box_tiao(&m, &g, n)).map_err(to_py)?;
    Ok((vals.into_pyarray(py), vecs.into_pyarray(py)))
}

/// Greedy forward path for k = 1..=k_max.
#[pyfunction]
fn sparse_greedy<'py>(
    py: Python<'py>,
    m: PyReadonlyArray1<'py, f64>,
    g: PyReadonlyArray1<'py, f64>,
    n: usize,
    k_max: usize,
) -> PyResult<Vec<Picked<'py>>> {
    let (m, g) = (slice1(&m), slice1(&g));
    let path = py
        .detach(|| sparse::greedy(&m, &g, n, k_max))
        .map_err(to_py)?;
    Ok(path.into_iter().map(|s| picked(py, s)).collect())
}

/// Brute force over all supports of size k: (support, nu, weights, subsets tried).
#[pyfunction]
fn sparse_exhaustive<'py>(
    py: Python<'py>,
    m: PyReadonlyArray1<'py, f64>,
    g: PyReadonlyArray1<'py, f64>,
    n: usize,
    k: usize,
) -> PyResult<Searched<'py>> {
    let (m, g) = (slice1(&m), slice1(&g));
    let (s, count) = py
        .detach(|| sparse::exhaustive(&m, &g, n, k))
        .map_err(to_py)?;
    let (support, nu, w) = picked(py, s);
    Ok((support, nu, w, count))
}

/// Truncated power from flat (n_starts x n) starts, polished: (support, nu, weights, iterations).
#[pyfunction]
fn sparse_tpower<'py>(
    py: Python<'py>,
    m: PyReadonlyArray1<'py, f64>,
    g: PyReadonlyArray1<'py, f64>,
    n: usize,
    k: usize,
    starts: PyReadonlyArray1<'py, f64>,
    max_iter: usize,
) -> PyResult<Searched<'py>> {
    let (m, g, st) = (slice1(&m), slice1(&g), slice1(&starts));
    if n == 0 || st.len() % n != 0 {
        return Err(PyValueError::new_err(
            "starts must hold whole vectors of length n",
        ));
    }
    let starts: Vec<Vec<f64>> = st.chunks(n).map(<[f64]>::to_vec).collect();
    let (s, iters) = py
        .detach(|| sparse::truncated_power(&m, &g, n, k, &starts, max_iter))
        .map_err(to_py)?;
    let (support, nu, w) = picked(py, s);
    Ok((support, nu, w, iters))
}

/// 1-in-1-out local search from a support: (support, nu, weights, swaps made).
#[pyfunction]
fn sparse_swaps<'py>(
    py: Python<'py>,
    m: PyReadonlyArray1<'py, f64>,
    g: PyReadonlyArray1<'py, f64>,
    n: usize,
    support: Vec<usize>,
    max_swaps: usize,
) -> PyResult<Searched<'py>> {
    let (m, g) = (slice1(&m), slice1(&g));
    let (s, made) = py
        .detach(|| sparse::swaps(&m, &g, n, &support, max_swaps))
        .map_err(to_py)?;
    let (support, nu, w) = picked(py, s);
    Ok((support, nu, w, made))
}

/// Exact smallest generalised eigenpair on a given support: (support, nu, weights).
#[pyfunction]
fn sparse_on_support<'py>(
    py: Python<'py>,
    m: PyReadonlyArray1<'py, f64>,
    g: PyReadonlyArray1<'py, f64>,
    n: usize,
    support: Vec<usize>,
) -> PyResult<Picked<'py>> {
    let (m, g) = (slice1(&m), slice1(&g));
    let s = py
        .detach(|| sparse::polish(&m, &g, n, &support))
        .map_err(to_py)?;
    Ok(picked(py, s))
}

/// Condition number (largest / smallest eigenvalue) of a symmetric n x n matrix.
#[pyfunction]
fn sym_condition_number(py: Python<'_>, a: PyReadonlyArray1<'_, f64>, n: usize) -> PyResult<f64> {
    let a = slice1(&a);
    if a.len() != n * n {
        return Err(PyValueError::new_err("matrix must be n x n"));
    }
    Ok(py.detach(|| linalg::condition_number(&a, n)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(ou_fit, m)?)?;
    m.add_function(wrap_pyfunction!(ou_fit_irregular, m)?)?;
    m.add_function(wrap_pyfunction!(ou_exact_loglik, m)?)?;
    m.add_function(wrap_pyfunction!(ou_rolling, m)?)?;
    m.add_function(wrap_pyfunction!(ou_cara_position, m)?)?;
    m.add_function(wrap_pyfunction!(ou_cara_ce, m)?)?;
    m.add_function(wrap_pyfunction!(ou_power_coefficients, m)?)?;
    m.add_function(wrap_pyfunction!(ou_power_position, m)?)?;
    m.add_function(wrap_pyfunction!(ou_power_ce, m)?)?;
    m.add_function(wrap_pyfunction!(ou_power_path, m)?)?;
    m.add_function(wrap_pyfunction!(sparse_box_tiao, m)?)?;
    m.add_function(wrap_pyfunction!(sparse_greedy, m)?)?;
    m.add_function(wrap_pyfunction!(sparse_exhaustive, m)?)?;
    m.add_function(wrap_pyfunction!(sparse_tpower, m)?)?;
    m.add_function(wrap_pyfunction!(sparse_swaps, m)?)?;
    m.add_function(wrap_pyfunction!(sparse_on_support, m)?)?;
    m.add_function(wrap_pyfunction!(sym_condition_number, m)?)?;
    Ok(())
}
