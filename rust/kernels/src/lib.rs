//! HFThot compute kernels: pure Rust, no Python types.
//!
//! Each module takes plain slices and returns owned vectors so the binding
//! crate can hand them to numpy without a copy.

pub mod error;
pub mod series;

pub use error::{KernelError, Result};
