"""Market data sources (ccxt REST, ccxt.pro WebSockets, yfinance, the loopback demo venue) and the ingestion service."""
