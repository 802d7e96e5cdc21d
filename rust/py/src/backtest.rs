//! Bindings: Vectorised backtest of the mean-reversion signal with costs (COMPUTE-SPEC 6).

use pyo3::prelude::*;

pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
