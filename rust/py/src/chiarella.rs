//! Bindings: Franke–Westerhoff / Chiarella agent model, stylized facts, MSM (docs/compute.md §2).

use kernels::Result as KResult;
use kernels::chiarella::facts;
use kernels::chiarella::msm::Objective;
use kernels::chiarella::{self, Model, Rule};
use kernels::error::invalid;
use numpy::{
    IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArray3,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::borrow::Cow;

use crate::arrays::slice1;
use crate::errors::to_py;
use crate::optimize::{outcome_dict, progress_hook, slice2, with_workers};

/// The chartist rule and the run length settings that come with the parameter vector.
#[derive(Clone, Copy)]
struct Spec<'a> {
    rule: &'a str,
    gamma: f64,
    alpha: f64,
    window: usize,
    burn_in: usize,
}

/// Model from [beta, mu, phi, chi, sigma_f, sigma_c, alpha0, alpha_n, alpha_p, sigma_star].
fn model(params: &[f64], spec: Spec<'_>) -> KResult<Model> {
    let Spec {
        rule,
        gamma,
        alpha,
        window,
        burn_in,
    } = spec;
    let [
        beta,
        mu,
        phi,
        chi,
        sigma_f,
        sigma_c,
        alpha0,
        alpha_n,
        alpha_p,
        sigma_star,
    ] = params
    else {
        return Err(invalid("params must hold 10 values"));
    };
    let rule = match rule {
        "fw_linear" => Rule::FwLinear,
        "chiarella_tanh" => Rule::ChiarellaTanh { gamma, alpha },
        "ma_tanh" => Rule::MaTanh { gamma, window },
        _ => {
            return Err(invalid(format!(
                "unknown rule {rule:?}; choose fw_linear, chiarella_tanh or ma_tanh"
            )));
        }
    };
    let m = Model {
        beta: *beta,
        mu: *mu,
        phi: *phi,
        chi: *chi,
        sigma_f: *sigma_f,
        sigma_c: *sigma_c,
        alpha0: *alpha0,
        alpha_n: *alpha_n,
        alpha_p: *alpha_p,
        sigma_star: *sigma_star,
        rule,
        burn_in,
    };
    m.validate()?;
    Ok(m)
}

/// A flat S × T buffer as an (S, T) array, without a copy.
fn rows(py: Python<'_>, v: Vec<f64>, s: usize, t: usize) -> PyResult<Bound<'_, PyAny>> {
    Ok(v.into_pyarray(py).reshape([s, t])?.into_any())
}

/// Simulate paths (seeded, or from injected shocks of shape (S, burn_in + T, k)).
#[pyfunction]
#[pyo3(signature = (params, n_steps, *, rule="fw_linear", gamma=20.0, alpha=0.1,
    window=20, burn_in=500, n_paths=1, seed=0, shocks=None, full=true, workers=0))]
#[allow(clippy::too_many_arguments)]
fn chiarella_simulate<'py>(
    py: Python<'py>,
    params: Vec<f64>,
    n_steps: usize,
    rule: &str,
    gamma: f64,
    alpha: f64,
    window: usize,
    burn_in: usize,
    n_paths: usize,
    seed: u64,
    shocks: Option<PyReadonlyArray3<'py, f64>>,
    full: bool,
    workers: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let spec = Spec {
        rule,
        gamma,
        alpha,
        window,
        burn_in,
    };
    let m = model(&params, spec).map_err(to_py)?;
    let sh: Option<Cow<[f64]>> = shocks.as_ref().map(|a| match a.as_slice() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(a.as_array().iter().copied().collect()),
    });
    if let Some(a) = &shocks
        && (a.shape()[1] != burn_in + n_steps || a.shape()[2] != m.n_shocks())
    {
        return Err(to_py(invalid(format!(
            "shocks must have shape (n_paths, {}, {}), got {:?}",
            burn_in + n_steps,
            m.n_shocks(),
            a.shape()
        ))));
    }
    let run = || match &sh {
        Some(s) => chiarella::simulate_with(&m, n_steps, s, full),
        None => chiarella::simulate(&m, n_steps, n_paths, seed, full),
    };
    // One group of lanes runs on this thread with no rayon at all: handing the job to a
    // pool thread cost more than the whole simulation at S=1 (about 70 µs against
    // 170 µs on the 2-core test machines).
    let direct = shocks.as_ref().map_or(n_paths, |a| a.shape()[0]) <= chiarella::LANES;
    let paths = py
        .detach(|| {
            if direct {
                run()
            } else {
                with_workers(workers, run).and_then(|r| r)
            }
        })
        .map_err(to_py)?;
    let s = paths.len();
    let d = PyDict::new(py);
    d.set_item("returns", rows(py, paths.returns, s, n_steps)?)?;
    if full {
        d.set_item("log_price", rows(py, paths.log_price, s, n_steps)?)?;
        d.set_item("x", rows(py, paths.x, s, n_steps)?)?;
        d.set_item("nf", rows(py, paths.nf, s, n_steps)?)?;
    }
    d.set_item("blown_up", paths.blown_up)?;
    Ok(d)
}

/// Pearson kurtosis (biased moments).
#[pyfunction]
fn stat_kurtosis(py: Python<'_>, x: PyReadonlyArray1<'_, f64>) -> f64 {
    let x = slice1(&x);
    py.detach(|| facts::kurtosis(&x))
}

/// ACF at `lags` (full-sample mean, biased denominator).
#[pyfunction]
fn stat_acf<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    lags: Vec<usize>,
) -> Bound<'py, PyArray1<f64>> {
    let x = slice1(&x);
    py.detach(|| facts::acf(&x, &lags)).into_pyarray(py)
}

/// Hill tail index of |x| over the top fraction q.
#[pyfunction]
fn stat_hill(py: Python<'_>, x: PyReadonlyArray1<'_, f64>, q: f64) -> f64 {
    let x = slice1(&x);
    py.detach(|| facts::hill(&x, q))
}

/// Kurtosis of non-overlapping h-period sums.
#[pyfunction]
fn stat_aggregated_kurtosis(py: Python<'_>, x: PyReadonlyArray1<'_, f64>, h: usize) -> f64 {
    let x = slice1(&x);
    py.detach(|| facts::aggregated_kurtosis(&x, h))
}

/// The MSM moment vector of one return series (9, or 10 with the kurtosis last).
#[pyfunction]
#[pyo3(signature = (r, *, kurtosis=false))]
fn chiarella_moments<'py>(
    py: Python<'py>,
    r: PyReadonlyArray1<'py, f64>,
    kurtosis: bool,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let r = slice1(&r);
    let m = py
        .detach(|| facts::moment_vector(&r, kurtosis))
        .map_err(to_py)?;
    Ok(m.into_pyarray(py))
}

/// Moving-block bootstrap replications of the moment vector, shape (B, q).
#[pyfunction]
#[pyo3(signature = (r, block, n_boot, seed, *, kurtosis=false))]
fn chiarella_bootstrap_moments<'py>(
    py: Python<'py>,
    r: PyReadonlyArray1<'py, f64>,
    block: usize,
    n_boot: usize,
    seed: u64,
    kurtosis: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let r = slice1(&r);
    let out = py
        .detach(|| facts::bootstrap_moments(&r, block, n_boot, seed, kurtosis))
        .map_err(to_py)?;
    Ok(out
        .into_pyarray(py)
        .reshape([n_boot, facts::n_moments(kurtosis)])?
        .into_any())
}

/// The MSM problem: what is simulated, what is matched, under which shocks.
struct Problem<'a> {
    free: Vec<String>,
    target: &'a [f64],
    weight: &'a [f64],
    n_steps: usize,
    n_paths: usize,
    seed: u64,
    kurtosis: bool,
}

fn objective(params: &[f64], spec: Spec<'_>, p: Problem<'_>) -> KResult<Objective> {
    let m = model(params, spec)?;
    Objective::new(
        m, p.free, p.target, p.weight, p.n_steps, p.n_paths, p.seed, p.kurtosis,
    )
}

/// J(θ) and the averaged simulated moments (None when a path blows up).
#[pyfunction]
#[pyo3(signature = (params, free, theta, target, weight, *, n_steps, n_paths, seed,
    rule="fw_linear", gamma=20.0, alpha=0.1, window=20, burn_in=500, kurtosis=false))]
#[allow(clippy::too_many_arguments)]
fn chiarella_objective<'py>(
    py: Python<'py>,
    params: Vec<f64>,
    free: Vec<String>,
    theta: Vec<f64>,
    target: PyReadonlyArray1<'py, f64>,
    weight: PyReadonlyArray2<'py, f64>,
    n_steps: usize,
    n_paths: usize,
    seed: u64,
    rule: &str,
    gamma: f64,
    alpha: f64,
    window: usize,
    burn_in: usize,
    kurtosis: bool,
) -> PyResult<(f64, Option<Bound<'py, PyArray1<f64>>>)> {
    if theta.len() != free.len() {
        return Err(to_py(invalid("theta needs one value per free parameter")));
    }
    let (tg, w) = (slice1(&target), slice2(&weight));
    let spec = Spec {
        rule,
        gamma,
        alpha,
        window,
        burn_in,
    };
    let problem = Problem {
        free,
        target: &tg,
        weight: &w,
        n_steps,
        n_paths,
        seed,
        kurtosis,
    };
    let obj = objective(&params, spec, problem).map_err(to_py)?;
    let (j, m) = py
        .detach(|| -> KResult<_> {
            let m = obj.sim_moments(&theta)?;
            Ok((obj.j_of(m.as_deref()), m))
        })
        .map_err(to_py)?;
    Ok((j, m.map(|v| v.into_pyarray(py))))
}

/// L-SHADE calibration by simulated moments; returns the optimiser's result dict
/// plus the simulated moments at the optimum.
#[pyfunction]
#[pyo3(signature = (params, free, lower, upper, target, weight, *, n_steps, n_paths, seed,
    budget, pop_size=None, rule="fw_linear", gamma=20.0, alpha=0.1, window=20, burn_in=500,
    kurtosis=false, callback=None, workers=0))]
#[allow(clippy::too_many_arguments)]
fn chiarella_calibrate<'py>(
    py: Python<'py>,
    params: Vec<f64>,
    free: Vec<String>,
    lower: PyReadonlyArray1<'py, f64>,
    upper: PyReadonlyArray1<'py, f64>,
    target: PyReadonlyArray1<'py, f64>,
    weight: PyReadonlyArray2<'py, f64>,
    n_steps: usize,
    n_paths: usize,
    seed: u64,
    budget: usize,
    pop_size: Option<usize>,
    rule: &str,
    gamma: f64,
    alpha: f64,
    window: usize,
    burn_in: usize,
    kurtosis: bool,
    callback: Option<Py<PyAny>>,
    workers: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let (lo, hi) = (slice1(&lower), slice1(&upper));
    let (tg, w) = (slice1(&target), slice2(&weight));
    let spec = Spec {
        rule,
        gamma,
        alpha,
        window,
        burn_in,
    };
    let mut cb_err: Option<PyErr> = None;
    let res = py.detach(|| {
        let mut hook = progress_hook(&callback, &mut cb_err);
        with_workers(workers, || -> KResult<_> {
            let problem = Problem {
                free,
                target: &tg,
                weight: &w,
                n_steps,
                n_paths,
                seed,
                kurtosis,
            };
            let obj = objective(&params, spec, problem)?;
            let out = obj.calibrate(&lo, &hi, budget, seed, pop_size, &mut hook)?;
            let m = obj.sim_moments(&out.x)?;
            Ok((out, m))
        })
        .and_then(|r| r)
    });
    if let Some(e) = cb_err {
        return Err(e);
    }
    let (out, m) = res.map_err(to_py)?;
    let d = outcome_dict(py, out)?;
    d.set_item("sim_moments", m.map(|v| v.into_pyarray(py)))?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(chiarella_simulate, m)?)?;
    m.add_function(wrap_pyfunction!(stat_kurtosis, m)?)?;
    m.add_function(wrap_pyfunction!(stat_acf, m)?)?;
    m.add_function(wrap_pyfunction!(stat_hill, m)?)?;
    m.add_function(wrap_pyfunction!(stat_aggregated_kurtosis, m)?)?;
    m.add_function(wrap_pyfunction!(chiarella_moments, m)?)?;
    m.add_function(wrap_pyfunction!(chiarella_bootstrap_moments, m)?)?;
    m.add_function(wrap_pyfunction!(chiarella_objective, m)?)?;
    m.add_function(wrap_pyfunction!(chiarella_calibrate, m)?)?;
    Ok(())
}
