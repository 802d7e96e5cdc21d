"""Market data sources and the ingestion service.

ccxt REST, ccxt.pro WebSockets, yfinance and the loopback demo venue, one module each.
"""
