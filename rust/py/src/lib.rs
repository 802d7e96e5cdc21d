//! `core._native`: the thin PyO3 layer over `hfthot-kernels`.
//!
//! Each domain module borrows numpy arrays, releases the GIL around the
//! kernel call, and hands owned vectors back to numpy without copying.

use pyo3::prelude::*;

mod arrays;
mod backtest;
mod book;
mod cache;
mod cec2014;
mod chiarella;
mod errors;
mod hmm;
mod meanrev;
mod mfg;
mod optimize;
mod series;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "BUILD_PROFILE",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    )?;
    errors::register(m)?;
    series::register(m)?;
    hmm::register(m)?;
    optimize::register(m)?;
    chiarella::register(m)?;
    meanrev::register(m)?;
    backtest::register(m)?;
    book::register(m)?;
    mfg::register(m)?;
    cache::register(m)?;
    cec2014::register(m)?;
    Ok(())
}
