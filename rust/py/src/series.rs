//! Series transforms: log returns and rolling z-score.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use crate::arrays::slice1;
use crate::errors::to_py;

/// Log returns of a price series (length n - 1).
#[pyfunction]
fn log_returns<'py>(
    py: Python<'py>,
    prices: PyReadonlyArray1<'py, f64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let x = slice1(&prices);
    let out = py
        .detach(|| kernels::series::log_returns(&x))
        .map_err(to_py)?;
    Ok(out.into_pyarray(py))
}

/// Rolling z-score with a trailing window (NaN during warm-up).
#[pyfunction]
fn rolling_zscore<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    window: usize,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let x = slice1(&x);
    let out = py
        .detach(|| kernels::series::rolling_zscore(&x, window))
        .map_err(to_py)?;
    Ok(out.into_pyarray(py))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(log_returns, m)?)?;
    m.add_function(wrap_pyfunction!(rolling_zscore, m)?)?;
    Ok(())
}
