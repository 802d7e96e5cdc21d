"""ccxt REST adapters against recorded payloads served over loopback HTTP.

The real ccxt clients run unchanged (signing, rate limiter, parsing, error
mapping); only their URLs point at the recorded-payload server.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import ccxt
import polars as pl
import pytest

from core.data.schema import BARS, TRADES
from core.errors import InvalidInput
from core.ingest.base import CircuitOpen, SourceError, SourceUnavailable
from core.ingest.ccxt_rest import CcxtRestSource, RetryPolicy, make_exchange
from tests.integration.ingest.recorded import (
    DATA,
    RecordedServer,
    loopback_urls,
    raw,
    recorded,
    serving,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
FAST = RetryPolicy(attempts=3, base_delay_s=0.0, max_delay_s=0.0)


def source(venue: str, srv: RecordedServer, **kw: object) -> CcxtRestSource:
    template = getattr(ccxt, venue)()
    ex = make_exchange(venue, loopback_urls(template, srv.base), rateLimit=1)
    return CcxtRestSource(venue, ex, retry=FAST, **kw)  # type: ignore[arg-type]


BINANCE_INFO = {"/api/v3/exchangeInfo": [recorded("ccxt/binance/exchangeInfo.json")]}


def test_binance_klines_paginate_until_the_end() -> None:
    routes = {
        **BINANCE_INFO,
        "/api/v3/klines": [
            recorded("ccxt/binance/klines_BTCUSDT_1m_page1.json"),
            recorded("ccxt/binance/klines_BTCUSDT_1m_page2.json"),
        ],
    }
    with serving(routes) as srv:
        src = source("binance", srv)
        seen: list[float] = []
        bars = src.fetch_bars(
            "BTC/USDT", "1m", T0, T0 + timedelta(minutes=1200), progress=lambda f, _: seen.append(f)
        )
        calls = srv.hits("/api/v3/klines")
    assert bars.schema == BARS
    assert bars.height == 1200
    assert bars["ts"].is_sorted()
    assert bars["ts"].n_unique() == 1200
    assert bars["ts"][0] == T0
    assert bars["ts"][-1] == T0 + timedelta(minutes=1199)
    assert set(bars["venue"]) == {"binance"}
    assert set(bars["symbol"]) == {"BTC/USDT"}
    assert (bars["high"] >= bars[["open", "close"]].max_horizontal()).all()
    # page 2 starts right after the last bar of page 1; the symbol is sent in Binance's id form
    assert [c.query["startTime"] for c in calls] == [
        str(int(T0.timestamp() * 1000)),
        str(int(T0.timestamp() * 1000) + 1000 * 60_000),
    ]
    assert calls[0].query["symbol"] == "BTCUSDT"
    assert calls[0].query["interval"] == "1m"
    assert seen
    assert seen[-1] == 1.0


def test_binance_agg_trades_window_and_dedupe() -> None:
    routes = {
        **BINANCE_INFO,
        "/api/v3/aggTrades": [
            recorded("ccxt/binance/aggTrades_BTCUSDT_page1.json"),
            recorded("ccxt/binance/aggTrades_BTCUSDT_page2.json"),
            recorded("ccxt/binance/aggTrades_BTCUSDT_page3.json"),
        ],
    }
    with serving(routes) as srv:
        src = source("binance", srv)
        trades = src.fetch_trades("BTC/USDT", T0, T0 + timedelta(hours=2))
        calls = srv.hits("/api/v3/aggTrades")
    assert trades.schema == TRADES
    # page 2 repeats the last trade of page 1 (Binance answers from startTime inclusive);
    # the partial page 2 closes its one-hour window and page 3 starts where it ended
    assert int(calls[2].query["startTime"]) == int(calls[1].query["endTime"]) + 1
    page3 = json.loads((DATA / "ccxt/binance/aggTrades_BTCUSDT_page3.json").read_text())
    late = [t for t in page3 if t["T"] >= int(calls[2].query["startTime"])]
    assert late, "the recorded third page must overlap the third window"
    assert trades.height == 1314 + len(late)
    assert trades["trade_id"].n_unique() == trades.height
    ids = trades["trade_id"].cast(pl.Int64)
    assert (ids.diff().drop_nulls() >= 1).all()
    assert (ids.head(1314).diff().drop_nulls() == 1).all()
    # Binance accepts at most one hour between startTime and endTime
    for c in calls:
        assert int(c.query["endTime"]) - int(c.query["startTime"]) < 3_600_000
    assert set(trades["side"]) <= {"buy", "sell"}


def test_coinbase_candles_and_trades() -> None:
    routes = {
        "/v2/currencies": [recorded("ccxt/coinbase/currencies.json")],
        "/v2/currencies/crypto": [recorded("ccxt/coinbase/currencies_crypto.json")],
        "/v2/exchange-rates": [recorded("ccxt/coinbase/exchange_rates.json")],
        "/api/v3/brokerage/market/products": [
            recorded("ccxt/coinbase/products.json"),
            recorded("ccxt/coinbase/products_future.json"),
        ],
        "/api/v3/brokerage/market/products/BTC-USD/candles": [
            recorded("ccxt/coinbase/candles_page1.json"),
            recorded("ccxt/coinbase/candles_page2.json"),
        ],
        "/api/v3/brokerage/market/products/BTC-USD/ticker": [
            recorded("ccxt/coinbase/ticker_trades.json")
        ],
    }
    with serving(routes) as srv:
        src = source("coinbase", srv)
        bars = src.fetch_bars("BTC/USD", "1m", T0, T0 + timedelta(minutes=400))
        trades = src.fetch_trades("BTC/USD", T0, T0 + timedelta(hours=1))
        candle_calls = srv.hits("/api/v3/brokerage/market/products/BTC-USD/candles")
    assert bars.height == 400
    assert bars["ts"].is_sorted()
    assert bars["ts"][0] == T0
    assert candle_calls[1].query["start"] == str(int(T0.timestamp()) + 300 * 60)
    assert candle_calls[0].query["granularity"] == "ONE_MINUTE"
    assert trades.height == 120
    assert trades["ts"].is_sorted()
    assert set(trades["venue"]) == {"coinbase"}


def test_kraken_ohlc_and_trades() -> None:
    routes = {
        "/0/public/Assets": [recorded("ccxt/kraken/Assets.json")],
        "/0/public/AssetPairs": [recorded("ccxt/kraken/AssetPairs.json")],
        "/0/public/OHLC": [recorded("ccxt/kraken/OHLC.json")],
        "/0/public/Trades": [recorded("ccxt/kraken/Trades.json")],
    }
    with serving(routes) as srv:
        src = source("kraken", srv)
        bars = src.fetch_bars("BTC/USD", "1m", T0, T0 + timedelta(hours=1))
        trades = src.fetch_trades("BTC/USD", T0, T0 + timedelta(hours=1))
        ohlc = srv.hits("/0/public/OHLC")
    assert bars.height == 60
    assert bars["ts"][-1] == T0 + timedelta(minutes=59)
    assert ohlc[0].query["pair"] == "XXBTZUSD"
    assert ohlc[0].query["interval"] == "1"
    assert trades.height == 40
    assert trades["trade_id"].n_unique() == 40


def test_retry_on_network_error_then_success() -> None:
    routes = {
        **BINANCE_INFO,
        "/api/v3/klines": [
            raw("<html>502 Bad Gateway</html>", 502),
            raw("<html>504 Gateway Time-out</html>", 504),
            recorded("ccxt/binance/klines_BTCUSDT_1m_page2.json"),
        ],
    }
    with serving(routes) as srv:
        src = source("binance", srv)
        bars = src.fetch_bars(
            "BTC/USDT", "1m", T0 + timedelta(minutes=1000), T0 + timedelta(minutes=1200)
        )
        assert len(srv.hits("/api/v3/klines")) == 3
    assert bars.height == 200
    assert src.retries == 2


def test_network_error_gives_up_after_the_attempts() -> None:
    routes = {**BINANCE_INFO, "/api/v3/klines": [raw("<html>503</html>", 503)]}
    with serving(routes) as srv:
        src = source("binance", srv)
        with pytest.raises(SourceUnavailable, match=r"Binance did not answer \(3 attempts") as err:
            src.fetch_bars("BTC/USDT", "1m", T0, T0 + timedelta(minutes=10))
        assert len(srv.hits("/api/v3/klines")) == 3
    assert "NetworkError" not in str(err.value)  # the technical cause is in the detail
    assert "503" in err.value.detail


@pytest.mark.parametrize(("status", "name"), [(429, "error_429"), (418, "error_418")])
def test_418_429_open_the_breaker(status: int, name: str) -> None:
    routes = {
        **BINANCE_INFO,
        "/api/v3/klines": [recorded(f"ccxt/binance/{name}.json", status, **{"Retry-After": "120"})],
    }
    with serving(routes) as srv:
        src = source("binance", srv)
        with pytest.raises(CircuitOpen, match=f"HTTP {status}"):
            src.fetch_bars("BTC/USDT", "1m", T0, T0 + timedelta(minutes=10))
        # no retry after a 418/429, and the next call fails fast without touching the venue
        assert len(srv.hits("/api/v3/klines")) == 1
        with pytest.raises(CircuitOpen, match="resume in"):
            src.fetch_bars("BTC/USDT", "1m", T0, T0 + timedelta(minutes=10))
        assert len(srv.hits("/api/v3/klines")) == 1
    assert src.breaker.remaining_s() > 100  # Retry-After honoured


def test_exchange_error_is_not_retried() -> None:
    routes = {
        **BINANCE_INFO,
        "/api/v3/klines": [recorded("ccxt/binance/error_invalid_interval.json", 400)],
    }
    with serving(routes) as srv:
        src = source("binance", srv)
        with pytest.raises(SourceError, match="Binance refused the request") as err:
            src.fetch_bars("BTC/USDT", "1m", T0, T0 + timedelta(minutes=10))
        assert len(srv.hits("/api/v3/klines")) == 1
    assert "Invalid interval" in err.value.detail


def test_kraken_error_body_is_not_retried() -> None:
    routes = {
        "/0/public/Assets": [recorded("ccxt/kraken/Assets.json")],
        "/0/public/AssetPairs": [recorded("ccxt/kraken/AssetPairs.json")],
        "/0/public/OHLC": [recorded("ccxt/kraken/error_unknown_pair.json")],
    }
    with serving(routes) as srv:
        src = source("kraken", srv)
        with pytest.raises((SourceError, InvalidInput)):
            src.fetch_bars("BTC/USD", "1m", T0, T0 + timedelta(minutes=10))
        assert len(srv.hits("/0/public/OHLC")) == 1


def test_bad_input_is_refused_before_any_call() -> None:
    with serving(BINANCE_INFO) as srv:
        src = source("binance", srv)
        with pytest.raises(InvalidInput, match="no market 'DOGE/XYZ'"):
            src.fetch_bars("DOGE/XYZ", "1m", T0, T0 + timedelta(minutes=1))
        with pytest.raises(InvalidInput, match="unknown timeframe"):
            src.fetch_bars("BTC/USDT", "7m", T0)
        with pytest.raises(InvalidInput, match="no time zone"):
            src.fetch_bars("BTC/USDT", "1m", datetime(2024, 1, 1))
        assert srv.hits("/api/v3/klines") == []
    with pytest.raises(InvalidInput, match="unknown venue"):
        make_exchange("mtgox")
