"""The state of provider streams and the routing of their frames (see provider_ws).

`Conn` is one WebSocket connection of one user to one provider endpoint; `Feed` is one stream
on it. `on_frame` parses a frame and hands trades and bars to the manager's callbacks.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from websockets.asyncio.client import ClientConnection

from core.ingest import alpaca_ws, finnhub_ws
from core.ingest.alpaca_ws import Refusal
from core.ingest.base import bars_frame
from core.ingest.ccxt_ws import StreamKey, StreamStatus, Tally

ALPACA, FINNHUB = alpaca_ws.VENUE.name, finnhub_ws.VENUE.name


class Stop(Exception):
    """Retrying cannot help (key or plan): stop the connection until someone subscribes again."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.text)
        self.state = refusal.state


class Feed(Tally):
    """One stream: its status, recent bars and trades (for candles built from trades)."""

    def __init__(self, key: StreamKey, keep_trades: int) -> None:
        super().__init__(StreamStatus(key))
        self.key = key
        self.bars: OrderedDict[int, list[float]] = OrderedDict()
        self.trades: deque[tuple[int, float, float]] = deque(maxlen=keep_trades)
        self.last_ts_ms: int | None = None
        self.confirmed = False
        self.refused = False
        self._same_ms = (0, 0)

    def next_id(self, ms: int) -> str:
        """An id for a trade without one: its time and its order within that millisecond."""
        last, n = self._same_ms
        self._same_ms = (ms, n + 1 if ms == last else 0)
        return f"{ms}-{self._same_ms[1]}"


@dataclass(eq=False)
class Conn:
    venue: str
    owner: str
    url: str
    """The endpoint, without the key."""
    feeds: dict[StreamKey, Feed] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    ws: ClientConnection | None = None
    ready: bool = False
    """Authenticated: subscriptions may be sent."""
    malformed: int = 0
    pings: int = 0

    def each(self, **values: Any) -> None:
        """Set status fields of every stream not refused for good."""
        for feed in self.feeds.values():
            if not feed.refused:
                for name, value in values.items():
                    setattr(feed.status, name, value)


def bars_from_trades(
    trades: list[tuple[int, float, float]], venue: str, symbol: str
) -> pl.DataFrame:
    """(ms, price, amount) trades -> 1-minute bars, the forming minute last."""
    if not trades:
        return bars_frame([], venue, symbol, "1m")
    frame = pl.DataFrame(trades, schema=["ms", "price", "amount"], orient="row").sort("ms")
    minute = (pl.col("ms") - pl.col("ms") % 60_000).alias("t")
    out = frame.group_by(minute, maintain_order=True).agg(
        pl.col("price").first().alias("o"),
        pl.col("price").max().alias("h"),
        pl.col("price").min().alias("l"),
        pl.col("price").last().alias("c"),
        pl.col("amount").sum().alias("v"),
    )
    return bars_frame(out.rows(), venue, symbol, "1m")


TradesOut = Callable[[Feed, list[dict[str, Any]]], None]
BarOut = Callable[[Feed, list[Any]], None]


def on_frame(conn: Conn, raw: str | bytes, on_trades: TradesOut, on_bar: BarOut) -> None:
    """Route one frame of a connection to its streams; unreadable frames are counted."""
    try:
        msg = json.loads(raw)
    except ValueError:
        conn.malformed += 1
        return
    if conn.venue == ALPACA and isinstance(msg, list):
        _alpaca(conn, msg, on_trades, on_bar)
    elif conn.venue == FINNHUB and isinstance(msg, dict):
        _finnhub(conn, msg, on_trades)
    else:
        conn.malformed += 1


def _alpaca(conn: Conn, items: list[Any], on_trades: TradesOut, on_bar: BarOut) -> None:
    trades: dict[Feed, list[dict[str, Any]]] = {}
    for item in items:
        if not isinstance(item, dict):
            conn.malformed += 1
            continue
        if item.get("T") == "subscription":
            for f in conn.feeds.values():
                if not f.refused and alpaca_ws.confirmed(item, f.key):
                    f.confirmed = True
                    f.status.state, f.status.connected = "live", True
        elif item.get("T") == "error":
            apply_refusal(conn, alpaca_ws.refusal(item))
        key = alpaca_ws.stream_key(item)
        feed = conn.feeds.get(key) if key is not None else None
        if feed is None:
            continue
        feed.mark(1)
        try:
            if feed.key.kind == "trades":
                trades.setdefault(feed, []).append(alpaca_ws.trade(item))
            elif feed.key.kind == "quotes":
                feed.status.last_quote = alpaca_ws.quote(item)
            else:
                on_bar(feed, alpaca_ws.bar(item))
        except (KeyError, TypeError, ValueError):
            feed.status.malformed += 1
    for feed, batch in trades.items():
        on_trades(feed, batch)


def apply_refusal(conn: Conn, refusal: Refusal) -> None:
    """An error after the handshake: a bad key stops the connection; a refused
    subscription (symbol limit, plan) stops the streams not yet confirmed."""
    if refusal.state == "auth failed":
        raise Stop(refusal)
    if not refusal.final:
        conn.each(last_error=refusal.text)
        return
    for f in conn.feeds.values():
        if not f.confirmed and not f.refused:
            f.status.state, f.status.connected = refusal.state, False
            f.status.last_error = refusal.text
            f.refused = True


def _finnhub(conn: Conn, msg: dict[str, Any], on_trades: TradesOut) -> None:
    kind = msg.get("type")
    if kind == "ping":
        conn.pings += 1
    elif kind == "error":
        apply_refusal(conn, finnhub_ws.error(msg))
    elif kind == "trade":
        data = msg.get("data")
        if not isinstance(data, list):
            conn.malformed += 1
            return
        trades: dict[Feed, list[dict[str, Any]]] = {}
        for item in data:
            feed = conn.feeds.get(finnhub_ws.stream_key(item)) if isinstance(item, dict) else None
            if feed is None:
                conn.malformed += not isinstance(item, dict)
                continue
            feed.mark(1)
            try:
                trades.setdefault(feed, []).append(finnhub_ws.trade(item, feed.next_id))
            except (KeyError, TypeError, ValueError):
                feed.status.malformed += 1
        for feed, batch in trades.items():
            on_trades(feed, batch)
