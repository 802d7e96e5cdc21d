//! Bindings: Franke–Westerhoff / Chiarella agent model, stylized facts and MSM (COMPUTE-SPEC 2).

use pyo3::prelude::*;

pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
