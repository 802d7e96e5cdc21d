//! Bindings: Gaussian hidden Markov model: EM, Viterbi, restarts (COMPUTE-SPEC 1).

use pyo3::prelude::*;

pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
