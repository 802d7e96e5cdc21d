//! Bindings: 1-D mean-field game solver, HJB + Fokker–Planck (docs/compute.md §5).
//!
//! The solve runs with the GIL released; the progress callback re-attaches only for its
//! own calls: after the first iteration, then at most every `report_every` seconds.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use kernels::mfg::{self, Coupling, Grid, Method, Options, Problem, Solution};
use kernels::{KernelError, Result as KResult};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::slice1;
use crate::errors::to_py;

fn matrix<'py>(py: Python<'py>, data: Vec<f64>, cols: usize) -> PyResult<Bound<'py, PyAny>> {
    let rows = data.len() / cols;
    let arr = Array2::from_shape_vec((rows, cols), data)
        .map_err(|e| to_py(KernelError::Numerical(format!("bad result shape: {e}"))))?;
    Ok(arr.into_pyarray(py).into_any())
}

fn solution_dict<'py>(py: Python<'py>, s: Solution, n: usize) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("m", matrix(py, s.m, n)?)?;
    d.set_item("u", matrix(py, s.u, n)?)?;
    d.set_item("nu", matrix(py, s.nu, n)?)?;
    d.set_item("field", s.field.into_pyarray(py))?;
    d.set_item("realised", s.realised.into_pyarray(py))?;
    d.set_item("mean", s.mean.into_pyarray(py))?;
    d.set_item("var", s.var.into_pyarray(py))?;
    d.set_item("iterations", s.iterations)?;
    d.set_item("converged", s.converged)?;
    d.set_item("residuals", s.residuals.into_pyarray(py))?;
    d.set_item("density_changes", s.density_changes.into_pyarray(py))?;
    d.set_item("mass_error", s.mass_error)?;
    d.set_item("min_density", s.min_density)?;
    d.set_item("clipped", s.clipped)?;
    Ok(d)
}

fn parse_coupling(name: &str, alpha: f64, kappa_m: f64, kappa_t: f64) -> KResult<Coupling> {
    match name {
        "controls" => Ok(Coupling::Controls { alpha }),
        "mean" => Ok(Coupling::Mean { kappa_m, kappa_t }),
        other => Err(kernels::error::invalid(format!(
            "unknown coupling {other:?}; choose controls or mean"
        ))),
    }
}

fn parse_method(name: &str, damping: f64, depth: usize) -> KResult<Method> {
    match name {
        "picard" => Ok(Method::Picard { damping }),
        "fictitious_play" => Ok(Method::FictitiousPlay),
        "anderson" => Ok(Method::Anderson { damping, depth }),
        other => Err(kernels::error::invalid(format!(
            "unknown method {other:?}; choose picard, fictitious_play or anderson"
        ))),
    }
}

/// Solve the MFG on `len(m0)` nodes of [a, b] and `nt` steps of [0, t_end].
///
/// `callback(iteration, residual)` may stop the run by returning a truthy value
/// (CancelledError); an exception in it is re-raised.
#[pyfunction]
#[pyo3(signature = (
    m0, init, *, a, b, t_end, nt, kappa, eps, phi, g2, coupling, alpha=0.0,
    kappa_m=1.0, kappa_t=1.0, method="picard", damping=0.5, depth=5, tol=1e-10,
    max_iter=500, callback=None, report_every=0.1
))]
#[allow(clippy::too_many_arguments)]
fn mfg_solve<'py>(
    py: Python<'py>,
    m0: PyReadonlyArray1<'py, f64>,
    init: PyReadonlyArray1<'py, f64>,
    a: f64,
    b: f64,
    t_end: f64,
    nt: usize,
    kappa: f64,
    eps: f64,
    phi: f64,
    g2: f64,
    coupling: &str,
    alpha: f64,
    kappa_m: f64,
    kappa_t: f64,
    method: &str,
    damping: f64,
    depth: usize,
    tol: f64,
    max_iter: usize,
    callback: Option<Py<PyAny>>,
    report_every: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let m0 = slice1(&m0);
    let init = slice1(&init);
    let n = m0.len();
    let grid = Grid { a, b, n, t_end, nt };
    let problem = Problem {
        kappa,
        eps,
        phi,
        g2,
        coupling: parse_coupling(coupling, alpha, kappa_m, kappa_t).map_err(to_py)?,
    };
    let opts = Options {
        method: parse_method(method, damping, depth).map_err(to_py)?,
        tol,
        max_iter,
    };
    let every = Duration::from_secs_f64(report_every.clamp(0.0, 3600.0));
    let mut error: Option<PyErr> = None;
    let out = py.detach(|| {
        let mut last: Option<Instant> = None;
        let mut progress = |k: usize, residual: f64| -> bool {
            let Some(cb) = &callback else { return true };
            if last.is_some_and(|t| t.elapsed() < every) {
                return true;
            }
            last = Some(Instant::now());
            Python::attach(|py| {
                match cb
                    .call1(py, (k, residual))
                    .and_then(|r| r.bind(py).is_truthy())
                {
                    Ok(stop) => !stop,
                    Err(e) => {
                        error = Some(e);
                        false
                    }
                }
            })
        };
        mfg::solve(&grid, &problem, &m0, &init, &opts, &mut progress)
    });
    if let Some(e) = error {
        return Err(e);
    }
    solution_dict(py, out.map_err(to_py)?, n)
}

/// Move `m0` forward under the node controls `nu` (nt x n) on [a, b] x [0, t_end].
#[pyfunction]
#[pyo3(signature = (m0, nu, *, a, b, t_end, eps))]
fn mfg_fokker_planck<'py>(
    py: Python<'py>,
    m0: PyReadonlyArray1<'py, f64>,
    nu: PyReadonlyArray2<'py, f64>,
    a: f64,
    b: f64,
    t_end: f64,
    eps: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let m0 = slice1(&m0);
    let n = m0.len();
    let shape = nu.shape();
    if shape[1] != n {
        return Err(to_py(kernels::error::invalid(format!(
            "nu has {} columns but m0 has {n} nodes",
            shape[1]
        ))));
    }
    let grid = Grid {
        a,
        b,
        n,
        t_end,
        nt: shape[0],
    };
    let nu = slice2(&nu);
    let out = py
        .detach(|| mfg::fokker_planck(&grid, eps, &nu, &m0))
        .map_err(to_py)?;
    let d = PyDict::new(py);
    d.set_item("m", matrix(py, out.m, n)?)?;
    d.set_item("mass_error", out.mass_error)?;
    d.set_item("min_density", out.min_density)?;
    d.set_item("clipped", out.clipped)?;
    Ok(d)
}

fn slice2<'a>(arr: &'a PyReadonlyArray2<'_, f64>) -> Cow<'a, [f64]> {
    match arr.as_slice() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(arr.as_array().iter().copied().collect()),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(mfg_solve, m)?)?;
    m.add_function(wrap_pyfunction!(mfg_fokker_planck, m)?)?;
    Ok(())
}
