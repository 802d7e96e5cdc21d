//! Bindings: 1-D mean-field game solver, HJB + Fokker–Planck (COMPUTE-SPEC 5).

use pyo3::prelude::*;

pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
