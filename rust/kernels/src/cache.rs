//! Byte-budgeted hot-tier cache for market data (issue: market data engine).
