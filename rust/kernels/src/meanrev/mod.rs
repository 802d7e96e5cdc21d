//! Mean reversion: OU, CARA and power-utility positions, sparse portfolios (docs/compute.md §3).

pub mod cara;
pub mod linalg;
pub mod ou;
pub mod power;
pub mod sparse;
