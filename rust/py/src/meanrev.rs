//! Bindings: Mean reversion: OU estimation, CARA positions, sparse portfolios (COMPUTE-SPEC 3).

use pyo3::prelude::*;

pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
