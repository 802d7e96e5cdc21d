//! Vectorised backtest of the mean-reversion signal with costs (COMPUTE-SPEC 6).
