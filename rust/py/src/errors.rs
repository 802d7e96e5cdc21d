//! The one mapping from kernel errors to Python exceptions.

use kernels::KernelError;
use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

create_exception!(
    _native,
    NumericalError,
    PyRuntimeError,
    "A kernel's numerics failed."
);
create_exception!(
    _native,
    CancelledError,
    PyRuntimeError,
    "A kernel run was cancelled."
);

pub fn to_py(err: KernelError) -> PyErr {
    match err {
        KernelError::InvalidInput(msg) => PyValueError::new_err(msg),
        KernelError::Numerical(msg) => NumericalError::new_err(msg),
        KernelError::Cancelled => CancelledError::new_err("cancelled"),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("NumericalError", py.get_type::<NumericalError>())?;
    m.add("CancelledError", py.get_type::<CancelledError>())?;
    Ok(())
}
