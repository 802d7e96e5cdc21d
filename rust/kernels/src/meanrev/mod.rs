//! Mean reversion: OU estimation, CARA and power-utility positions, sparse portfolios (COMPUTE-SPEC 3).

pub mod cara;
pub mod linalg;
pub mod ou;
pub mod power;
pub mod sparse;
