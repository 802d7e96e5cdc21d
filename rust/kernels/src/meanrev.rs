//! Mean reversion: OU estimation, CARA positions, sparse portfolios (COMPUTE-SPEC 3).
