//! Bindings: the CEC 2014 suite (F1..F30) as a batch objective and as a
//! Rust-native objective for the optimiser (docs/compute.md §4).

use std::sync::Arc;

use kernels::cec2014::{self, Problem};
use kernels::optimize::{Config, Method, Preset};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::slice1;
use crate::errors::to_py;
use crate::optimize::{outcome_dict, progress_hook, slice2, with_workers};

/// One CEC 2014 function with its shift, rotation and shuffle data.
#[pyclass(frozen, module = "core._native")]
struct Cec2014Problem {
    inner: Arc<Problem>,
}

#[pymethods]
impl Cec2014Problem {
    #[new]
    #[pyo3(signature = (fn_id, dim, shift, rotation=None, shuffle=None))]
    fn new(
        py: Python<'_>,
        fn_id: usize,
        dim: usize,
        shift: PyReadonlyArray2<'_, f64>,
        rotation: Option<PyReadonlyArray2<'_, f64>>,
        shuffle: Option<PyReadonlyArray1<'_, i64>>,
    ) -> PyResult<Self> {
        let s = slice2(&shift);
        let m = rotation.as_ref().map(slice2);
        let perm: Option<Vec<i64>> = shuffle.as_ref().map(|a| a.as_array().to_vec());
        let p = py
            .detach(|| Problem::new(fn_id, dim, &s, m.as_deref(), perm.as_deref()))
            .map_err(to_py)?;
        Ok(Self { inner: Arc::new(p) })
    }

    /// F at each row of `x` (N, D), in parallel on `workers` threads (0 = all).
    #[pyo3(signature = (x, workers=0))]
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
        workers: usize,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let d = self.inner.dim();
        if x.shape()[1] != d {
            return Err(to_py(kernels::error::invalid(format!(
                "x must have {d} columns, got {}",
                x.shape()[1]
            ))));
        }
        let xs = slice2(&x);
        let mut out = vec![0.0; x.shape()[0]];
        let p = &self.inner;
        py.detach(|| with_workers(workers, || p.eval_batch(&xs, &mut out)))
            .map_err(to_py)?;
        Ok(out.into_pyarray(py))
    }

    #[getter]
    fn fn_id(&self) -> usize {
        self.inner.id()
    }

    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    #[getter]
    fn f_global(&self) -> f64 {
        self.inner.f_global()
    }

    #[getter]
    fn x_global<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.x_global().to_vec().into_pyarray(py)
    }
}

/// (components, needs rotation, needs shuffle) of function `fn_id`.
#[pyfunction]
fn cec2014_layout(fn_id: usize) -> PyResult<(usize, bool, bool)> {
    let k = cec2014::components(fn_id).map_err(to_py)?;
    Ok((
        k,
        cec2014::needs_rotation(fn_id),
        cec2014::needs_shuffle(fn_id),
    ))
}

/// Minimise a CEC 2014 function with the optimiser, evaluating each generation
/// natively (rayon, GIL released); same result dict as `de_minimize`.
#[pyfunction]
#[pyo3(signature = (problem, lower, upper, *, method="lshade", preset="lshade2014",
    pop_size=None, max_evals, seed, target=None, stagnation=None, workers=0, callback=None))]
#[allow(clippy::too_many_arguments)]
fn cec2014_minimize<'py>(
    py: Python<'py>,
    problem: &Cec2014Problem,
    lower: PyReadonlyArray1<'py, f64>,
    upper: PyReadonlyArray1<'py, f64>,
    method: &str,
    preset: &str,
    pop_size: Option<usize>,
    max_evals: usize,
    seed: u64,
    target: Option<f64>,
    stagnation: Option<usize>,
    workers: usize,
    callback: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut cfg = Config::new(Method::parse(method).map_err(to_py)?, max_evals, seed);
    cfg.preset = Preset::parse(preset).map_err(to_py)?;
    cfg.pop_size = pop_size;
    cfg.target = target;
    cfg.stagnation = stagnation;
    let (lo, hi) = (slice1(&lower), slice1(&upper));
    let p = Arc::clone(&problem.inner);
    if lo.len() != p.dim() {
        return Err(to_py(kernels::error::invalid(format!(
            "bounds must have {} pairs, got {}",
            p.dim(),
            lo.len()
        ))));
    }
    let mut cb_err: Option<PyErr> = None;
    let out = py.detach(|| {
        let mut hook = progress_hook(&callback, &mut cb_err);
        with_workers(workers, || {
            let mut eval = |xs: &[f64], _d: usize, out: &mut [f64]| {
                p.eval_batch(xs, out);
                Ok(())
            };
            kernels::optimize::minimize(&cfg, &lo, &hi, None, &mut eval, &mut hook)
        })
        .and_then(|r| r)
    });
    if let Some(e) = cb_err {
        return Err(e);
    }
    outcome_dict(py, out.map_err(to_py)?)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Cec2014Problem>()?;
    m.add_function(wrap_pyfunction!(cec2014_layout, m)?)?;
    m.add_function(wrap_pyfunction!(cec2014_minimize, m)?)?;
    Ok(())
}
