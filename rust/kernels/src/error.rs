//! The one error type every kernel returns.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum KernelError {
    /// The caller passed something the kernel cannot work with.
    #[error("{0}")]
    InvalidInput(String),
    /// The numerics failed (singular matrix, blow-up, no convergence).
    #[error("{0}")]
    Numerical(String),
    /// The caller asked the kernel to stop.
    #[error("cancelled")]
    Cancelled,
}

pub type Result<T> = std::result::Result<T, KernelError>;

/// Shorthand for an `InvalidInput` error.
pub fn invalid(msg: impl Into<String>) -> KernelError {
    KernelError::InvalidInput(msg.into())
}
