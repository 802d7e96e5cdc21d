//! Mean reversion: OU estimation, CARA positions, sparse portfolios (COMPUTE-SPEC 3).

pub mod cara;
pub mod linalg;
pub mod ou;
pub mod sparse;
