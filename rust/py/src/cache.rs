//! Bindings: Byte-budgeted hot-tier cache for market data (issue: market data engine).

use pyo3::prelude::*;

pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
