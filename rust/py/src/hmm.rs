//! Bindings: Gaussian hidden Markov model: EM, Viterbi, restarts (docs/compute.md §1).
//!
//! x arrives as a C-contiguous (n, d) float64 array; parameters as flat
//! float64 arrays (covars always k full d x d matrices). Results come back
//! as flat arrays that the façade reshapes without copying.

use kernels::hmm::{self, CovType, Data, FitOptions, InitMethod, OrderBy, Params, StartMode};
use numpy::{IntoPyArray, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::borrow::Cow;

use crate::arrays::slice1;
use crate::errors::to_py;

fn rows<'a>(x: &'a PyReadonlyArray2<'_, f64>) -> (Cow<'a, [f64]>, usize) {
    let d = x.as_array().ncols();
    match x.as_slice() {
        Ok(s) => (Cow::Borrowed(s), d),
        Err(_) => (Cow::Owned(x.as_array().iter().copied().collect()), d),
    }
}

fn params(
    k: usize,
    d: usize,
    startprob: &PyReadonlyArray1<'_, f64>,
    transmat: &PyReadonlyArray1<'_, f64>,
    means: &PyReadonlyArray1<'_, f64>,
    covars: &PyReadonlyArray1<'_, f64>,
) -> Params {
    Params {
        k,
        d,
        startprob: slice1(startprob).into_owned(),
        transmat: slice1(transmat).into_owned(),
        means: slice1(means).into_owned(),
        covars: slice1(covars).into_owned(),
    }
}

fn err(msg: String) -> PyErr {
    to_py(kernels::KernelError::InvalidInput(msg))
}

fn parse_init(s: &str) -> PyResult<InitMethod> {
    match s {
        "kmeans++" => Ok(InitMethod::KMeansPP),
        "hmmlearn" => Ok(InitMethod::Hmmlearn),
        _ => Err(err(format!(
            "init must be 'kmeans++' or 'hmmlearn', got {s:?}"
        ))),
    }
}

fn parse_start(s: &str) -> PyResult<StartMode> {
    match s {
        "free" => Ok(StartMode::Free),
        "stationary" => Ok(StartMode::Stationary),
        _ => Err(err(format!(
            "startprob must be 'free' or 'stationary', got {s:?}"
        ))),
    }
}

fn parse_order(s: &str) -> PyResult<OrderBy> {
    match s {
        "vol" => Ok(OrderBy::Vol),
        "mean" => Ok(OrderBy::Mean),
        "none" => Ok(OrderBy::None),
        _ => Err(err(format!(
            "order_by must be 'vol', 'mean' or 'none', got {s:?}"
        ))),
    }
}

/// EM fit with restarts; returns a dict of flat arrays and diagnostics.
#[pyfunction]
#[pyo3(signature = (x, n_states, covariance_type, *, lengths=None, n_init=10, max_iter=1000,
    tol=1e-8, seed=0, init="kmeans++", startprob="free", reg_covar=1e-6, min_covar=1e-6,
    order_by="vol", init_params=None))]
#[allow(clippy::too_many_arguments)]
fn hmm_fit<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    n_states: usize,
    covariance_type: &str,
    lengths: Option<PyReadonlyArray1<'py, i64>>,
    n_init: usize,
    max_iter: usize,
    tol: f64,
    seed: u64,
    init: &str,
    startprob: &str,
    reg_covar: f64,
    min_covar: f64,
    order_by: &str,
    init_params: Option<ParamArrays<'py>>,
) -> PyResult<Bound<'py, PyDict>> {
    let (xs, d) = rows(&x);
    let lens = lengths.as_ref().map(|l| slice1_i64(l));
    let opts = FitOptions {
        k: n_states,
        cov: CovType::parse(covariance_type).map_err(to_py)?,
        n_init,
        max_iter,
        tol,
        seed,
        init: parse_init(init)?,
        start: parse_start(startprob)?,
        reg_covar,
        min_covar,
        order: parse_order(order_by)?,
    };
    let p0 = init_params
        .as_ref()
        .map(|(s, t, m, c)| params(n_states, d, s, t, m, c));
    let r = py
        .detach(|| {
            let data = Data::new(&xs, d, lens.as_deref())?;
            hmm::fit(&data, &opts, p0.as_ref())
        })
        .map_err(to_py)?;
    let out = PyDict::new(py);
    out.set_item("startprob", r.params.startprob.into_pyarray(py))?;
    out.set_item("transmat", r.params.transmat.into_pyarray(py))?;
    out.set_item("means", r.params.means.into_pyarray(py))?;
    out.set_item("covars", r.params.covars.into_pyarray(py))?;
    out.set_item("log_likelihood", r.log_likelihood)?;
    out.set_item("n_iter", r.n_iter)?;
    out.set_item("converged", r.converged)?;
    out.set_item("history", r.history.into_pyarray(py))?;
    out.set_item("monotone", r.monotone)?;
    out.set_item("reinitialised", r.reinitialised)?;
    out.set_item(
        "restart_log_likelihoods",
        r.restart_log_likelihoods.into_pyarray(py),
    )?;
    out.set_item("best_restart", r.best_restart)?;
    Ok(out)
}

fn slice1_i64(a: &PyReadonlyArray1<'_, i64>) -> Vec<i64> {
    match a.as_slice() {
        Ok(s) => s.to_vec(),
        Err(_) => a.as_array().iter().copied().collect(),
    }
}

type ParamArrays<'py> = (
    PyReadonlyArray1<'py, f64>,
    PyReadonlyArray1<'py, f64>,
    PyReadonlyArray1<'py, f64>,
    PyReadonlyArray1<'py, f64>,
);

type F64Array<'py> = Bound<'py, numpy::PyArray1<f64>>;
type Posteriors<'py> = (F64Array<'py>, F64Array<'py>, f64);
type Sampled<'py> = (F64Array<'py>, Bound<'py, numpy::PyArray1<i64>>);

/// Smoothed posteriors, filtered probabilities (flat n*k) and the log-likelihood.
#[pyfunction]
#[pyo3(signature = (x, n_states, params, lengths=None))]
fn hmm_posteriors<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    n_states: usize,
    params: ParamArrays<'py>,
    lengths: Option<PyReadonlyArray1<'py, i64>>,
) -> PyResult<Posteriors<'py>> {
    let (xs, d) = rows(&x);
    let lens = lengths.as_ref().map(|l| slice1_i64(l));
    let p = self::params(n_states, d, &params.0, &params.1, &params.2, &params.3);
    let (g, f, ll) = py
        .detach(|| {
            let data = Data::new(&xs, d, lens.as_deref())?;
            hmm::posteriors(&data, &p)
        })
        .map_err(to_py)?;
    Ok((g.into_pyarray(py), f.into_pyarray(py), ll))
}

/// Forward log-likelihood.
#[pyfunction]
#[pyo3(signature = (x, n_states, params, lengths=None))]
fn hmm_score<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    n_states: usize,
    params: ParamArrays<'py>,
    lengths: Option<PyReadonlyArray1<'py, i64>>,
) -> PyResult<f64> {
    let (xs, d) = rows(&x);
    let lens = lengths.as_ref().map(|l| slice1_i64(l));
    let p = self::params(n_states, d, &params.0, &params.1, &params.2, &params.3);
    py.detach(|| {
        let data = Data::new(&xs, d, lens.as_deref())?;
        hmm::score(&data, &p)
    })
    .map_err(to_py)
}

/// Viterbi path (int64) and its joint log-probability.
#[pyfunction]
#[pyo3(signature = (x, n_states, params, lengths=None))]
fn hmm_viterbi<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    n_states: usize,
    params: ParamArrays<'py>,
    lengths: Option<PyReadonlyArray1<'py, i64>>,
) -> PyResult<(Bound<'py, numpy::PyArray1<i64>>, f64)> {
    let (xs, d) = rows(&x);
    let lens = lengths.as_ref().map(|l| slice1_i64(l));
    let p = self::params(n_states, d, &params.0, &params.1, &params.2, &params.3);
    let (path, lp) = py
        .detach(|| {
            let data = Data::new(&xs, d, lens.as_deref())?;
            hmm::decode(&data, &p)
        })
        .map_err(to_py)?;
    Ok((path.into_pyarray(py), lp))
}

/// Draw n rows (flat n*d) and their states from the model.
#[pyfunction]
fn hmm_sample<'py>(
    py: Python<'py>,
    n_states: usize,
    n_features: usize,
    params: ParamArrays<'py>,
    n: usize,
    seed: u64,
) -> PyResult<Sampled<'py>> {
    let p = self::params(
        n_states, n_features, &params.0, &params.1, &params.2, &params.3,
    );
    let (x, s) = py.detach(|| hmm::sample(&p, n, seed)).map_err(to_py)?;
    Ok((x.into_pyarray(py), s.into_pyarray(py)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(hmm_fit, m)?)?;
    m.add_function(wrap_pyfunction!(hmm_posteriors, m)?)?;
    m.add_function(wrap_pyfunction!(hmm_score, m)?)?;
    m.add_function(wrap_pyfunction!(hmm_viterbi, m)?)?;
    m.add_function(wrap_pyfunction!(hmm_sample, m)?)?;
    Ok(())
}
