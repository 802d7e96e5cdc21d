"""One declarative record per venue or data provider: the `Venue` registry.

Everything the portal knows about a venue lives in its record: what kind it is, whether a
user's key is needed and which fields it has, the request quota, the timeframes and symbol
format, its base URLs (each overridable by an `HFT_*` setting, so tests point them at loopback
servers), and how its REST history pages. Sources, the stream manager, the Data and Live
Market pages and the quota ledger read these records instead of keeping their own lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from core.errors import InvalidInput

if TYPE_CHECKING:
    from core.config import Settings

KINDS = ("exchange", "broker data", "market data", "prediction market", "simulated")


@dataclass(frozen=True, slots=True)
class Quota:
    """A request budget: `limit` requests per `window_s`, counted per user key or per IP."""

    limit: int
    window_s: int
    per: str
    """"key" (each user's own key) or "ip" (this server's address, shared by every user)."""
    basis: str
    """Where the number comes from, in a few words."""

    def describe(self) -> str:
        """ "200 requests per minute (your key)" """
        window = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}.get(self.window_s)
        who = "your key" if self.per == "key" else "this server's IP"
        noun = "request" if self.limit == 1 else "requests"
        return f"{self.limit:,} {noun} per {window or f'{self.window_s} s'} ({who})"


@dataclass(frozen=True, slots=True)
class Paging:
    """How a ccxt venue pages its REST history: rows per call, end time, trade windows."""

    ohlcv_limit: int
    trades_limit: int
    ohlcv_until: bool
    trades_window_ms: int | None


@dataclass(frozen=True, slots=True)
class Venue:
    name: str
    """Id used in the store, jobs, streams and the key ledger (lowercase)."""
    title: str
    kind: str
    timeframes: tuple[str, ...]
    symbol_format: str
    example_symbol: str
    urls: Mapping[str, str]
    """Purpose ("rest", "ws", ...) -> the real host."""
    url_settings: Mapping[str, str] = field(default_factory=dict)
    """Purpose -> the Settings field that overrides it (HFT_<FIELD>)."""
    key_fields: tuple[str, ...] = ()
    """What a user's key consists of ("key", "secret", "passphrase"); () when none."""
    key_required: bool = False
    quota: Quota | None = None
    history: bool = False
    """A history source exists for it (Data page jobs, `hfthot ingest`)."""
    live: tuple[str, ...] = ()
    """Stream kinds the live manager can subscribe to."""
    ccxt_id: str | None = None
    paging: Paging | None = None

    @property
    def simulated(self) -> bool:
        return self.kind == "simulated"

    def url(self, purpose: str, settings: Settings | None = None) -> str:
        """The base URL for `purpose`: the setting when one is set, else the real host."""
        if purpose not in self.urls:
            raise InvalidInput(f"{self.title} has no {purpose!r} URL")
        setting = self.url_settings.get(purpose)
        if settings is not None and setting:
            value = str(getattr(settings, setting))
            if value:
                return value.rstrip("/")
        return self.urls[purpose]

    def describe(self) -> str:
        """One line for a picker: the title and what using it takes."""
        if self.simulated:
            return f"{self.title} (SIMULATED, works offline)"
        if self.key_required:
            return f"{self.title} (needs your API key)"
        return f"{self.title} (public, needs network)"


ALL_TIMEFRAMES = ("1m", "5m", "15m", "1h", "4h", "1d")

_RECORDS = (
    Venue(
        "demo",
        "Demo venue",
        "simulated",
        ALL_TIMEFRAMES,
        "BASE/QUOTE",
        "BTC/USDT",
        urls={},
        history=True,
        live=("ohlcv", "trades", "quotes", "book"),
        ccxt_id="binance",
        paging=Paging(1000, 1000, True, 3_600_000),
    ),
    Venue(
        "binance",
        "Binance",
        "exchange",
        ALL_TIMEFRAMES,
        "BASE/QUOTE",
        "BTC/USDT",
        urls={"rest": "https://api.binance.com", "ws": "wss://stream.binance.com:9443"},
        key_fields=("key", "secret"),
        quota=Quota(6000, 60, "ip", "spot REST request weight per IP per minute"),
        history=True,
        live=("ohlcv", "trades", "quotes", "book"),
        ccxt_id="binance",
        # klines: 1000 per call, endTime honoured; aggTrades: start/end at most 1 h apart
        paging=Paging(1000, 1000, True, 3_600_000),
    ),
    Venue(
        "coinbase",
        "Coinbase",
        "exchange",
        ("1m", "5m", "15m", "1h", "1d"),
        "BASE/QUOTE",
        "BTC/USD",
        urls={"rest": "https://api.coinbase.com", "ws": "wss://advanced-trade-ws.coinbase.com"},
        key_fields=("key", "secret"),
        quota=Quota(10, 1, "ip", "public REST endpoints per IP per second"),
        history=True,
        live=("ohlcv", "trades", "quotes"),
        ccxt_id="coinbase",
        # candles: 300 per call, ccxt derives the end from since + 300 bars; trades need an
        # end and come newest first, so they are read in 5-minute windows
        paging=Paging(300, 1000, False, 300_000),
    ),
    Venue(
        "kraken",
        "Kraken",
        "exchange",
        ALL_TIMEFRAMES,
        "BASE/QUOTE",
        "BTC/USD",
        urls={"rest": "https://api.kraken.com", "ws": "wss://ws.kraken.com"},
        key_fields=("key", "secret"),
        quota=Quota(1, 1, "ip", "public REST calls per IP per second"),
        history=True,
        live=("ohlcv", "trades", "quotes", "book"),
        ccxt_id="kraken",
        # OHLC: 720 per call from `since`; Trades: 1000 from `since`
        paging=Paging(720, 1000, False, None),
    ),
    Venue(
        "okx",
        "OKX",
        "exchange",
        ALL_TIMEFRAMES,
        "BASE/QUOTE",
        "BTC/USDT",
        urls={"rest": "https://www.okx.com", "ws": "wss://ws.okx.com:8443"},
        key_fields=("key", "secret", "passphrase"),
        quota=Quota(20, 2, "ip", "public data requests per IP per 2 seconds (most endpoints)"),
        live=("book",),
        ccxt_id="okx",
        # no history source yet: its REST paging is not tested against OKX payloads
    ),
    Venue(
        "yahoo",
        "Yahoo Finance",
        "market data",
        ("1m", "5m", "15m", "1h", "1d"),
        "ticker",
        "^GSPC",
        urls={"rest": "https://query2.finance.yahoo.com"},
        history=True,
    ),
    Venue(
        "alpaca",
        "Alpaca",
        "broker data",
        ALL_TIMEFRAMES,
        "ticker or BASE/QUOTE",
        "AAPL",
        urls={"data": "https://data.alpaca.markets", "stream": "wss://stream.data.alpaca.markets"},
        url_settings={"data": "alpaca_data_url", "stream": "alpaca_stream_url"},
        key_fields=("key", "secret"),
        key_required=True,
        quota=Quota(200, 60, "key", "market data requests per minute (Basic plan)"),
        history=True,
        live=("ohlcv", "trades", "quotes"),
    ),
    Venue(
        "finnhub",
        "Finnhub",
        "market data",
        ("1m", "5m", "15m", "1h", "1d"),
        "ticker or EXCHANGE:PAIR",
        "AAPL",
        urls={"rest": "https://finnhub.io/api/v1", "ws": "wss://ws.finnhub.io"},
        url_settings={"rest": "finnhub_url", "ws": "finnhub_ws_url"},
        key_fields=("key",),
        key_required=True,
        quota=Quota(60, 60, "key", "API calls per minute (free plan)"),
        history=True,
        live=("trades",),
    ),
    Venue(
        "alpha_vantage",
        "Alpha Vantage",
        "market data",
        ("1m", "5m", "15m", "1h", "1d"),
        "ticker",
        "IBM",
        urls={"rest": "https://www.alphavantage.co"},
        url_settings={"rest": "alpha_vantage_url"},
        key_fields=("key",),
        key_required=True,
        quota=Quota(25, 86400, "key", "requests per day (free plan)"),
        history=True,
    ),
    Venue(
        "polymarket",
        "Polymarket",
        "prediction market",
        ("1m", "1h", "1d"),
        "outcome token id",
        "the id the Prediction markets page shows",
        urls={
            "gamma": "https://gamma-api.polymarket.com",
            "clob": "https://clob.polymarket.com",
            "ws": "wss://ws-subscriptions-clob.polymarket.com/ws/market",
        },
        url_settings={
            "gamma": "polymarket_gamma_url",
            "clob": "polymarket_clob_url",
            "ws": "polymarket_ws_url",
        },
        quota=Quota(9000, 10, "ip", "CLOB API general limit per 10 seconds"),
        history=True,
    ),
)

VENUES: Mapping[str, Venue] = MappingProxyType({v.name: v for v in _RECORDS})


def venue(name: object) -> Venue:
    """The record named `name`; InvalidInput listing the known names otherwise."""
    if isinstance(name, str) and name in VENUES:
        return VENUES[name]
    raise InvalidInput(f"unknown venue {name!r}; choose one of {', '.join(VENUES)}")


def ccxt_venues() -> dict[str, Venue]:
    """The real venues reached through ccxt (history and live), by name."""
    return {n: v for n, v in VENUES.items() if v.ccxt_id and not v.simulated}


def history_venues() -> list[Venue]:
    """Venues a history job can use, the simulated one first (it works with no network)."""
    return sorted((v for v in VENUES.values() if v.history), key=lambda v: not v.simulated)


def keyed() -> list[Venue]:
    """Providers whose requests are made with a user's own key (the API keys page); those
    that cannot work without one first."""
    return sorted((v for v in VENUES.values() if v.key_fields), key=lambda v: not v.key_required)


def titles() -> dict[str, str]:
    return {n: v.title for n, v in VENUES.items()}
