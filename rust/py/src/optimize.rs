//! Bindings: Differential evolution, SHADE and L-SHADE with benchmark functions (COMPUTE-SPEC 4).

use pyo3::prelude::*;

pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
