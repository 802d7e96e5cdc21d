//! HFThot compute kernels: pure Rust, no Python types.
//!
//! Each module takes plain slices and returns owned vectors so the binding
//! crate can hand them to numpy without a copy.

pub mod backtest;
pub mod book;
pub mod cache;
pub mod cec2014;
pub mod chiarella;
pub mod cpu;
pub mod error;
pub mod hmm;
pub mod meanrev;
pub mod mfg;
pub mod optimize;
pub mod rng;
pub mod series;

pub use error::{KernelError, Result};
