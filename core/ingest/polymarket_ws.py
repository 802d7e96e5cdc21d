"""Live prices from Polymarket's public market WebSocket, for a few outcome tokens.

`PolymarketPrices(asset_ids)` connects in a background thread with its own asyncio loop,
subscribes with `{"assets_ids": [...], "type": "market"}` and keeps, per token, the last
book, best bid, best ask, last trade and tick size from the channel's events:
- `book`: a full snapshot of one token's book (sent on subscribing and after trades);
- `price_change`: `price_changes`, each the new total size at one price of one side
  (BUY: bids, SELL: asks; size 0 removes the level), with the token's best bid and ask;
- `last_trade_price`, `tick_size_change` and `best_bid_ask`.
A frame may hold one event or a list of them. The client sends the text "PING" every
`ping_s` seconds (the server answers "PONG") and answers a server's "PING" with "PONG".
A frame it cannot read is counted in `status().malformed` and skipped. When the connection
drops, or nothing arrives for `stale_s`, it reconnects with exponential backoff and
subscribes again. Nothing here can trade.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from core.config import Settings
from core.errors import InvalidInput
from core.ingest.polymarket import VENUE, check_token, from_ms_text

_LOG = logging.getLogger("hfthot.polymarket_ws")
MAX_ASSETS = 500
"""Tokens one connection may subscribe to (the channel's documented limit)."""


@dataclass(frozen=True, slots=True)
class Quote:
    """What is known of one outcome token: prices are 0..1, the book best price first."""

    asset_id: str
    best_bid: float | None = None
    best_ask: float | None = None
    last_trade_price: float | None = None
    last_trade_size: float | None = None
    last_trade_side: str | None = None
    tick_size: float | None = None
    bids: tuple[tuple[float, float], ...] = ()
    asks: tuple[tuple[float, float], ...] = ()
    updated: datetime | None = None
    """Time of the last event that changed it (the event's own timestamp)."""


@dataclass(frozen=True, slots=True)
class StreamState:
    url: str
    connected: bool
    state: str
    """ "connecting", "live", "reconnecting" or "stopped"."""
    reconnects: int
    messages: int
    malformed: int
    pongs: int
    watchdog_trips: int
    """Connections left because nothing arrived for `stale_s`."""
    last_error: str
    last_message_at: datetime | None


@dataclass
class _Book:
    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)


def _num(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"not a number: {value!r}")
    return float(value)


def _levels(raw: object) -> dict[float, float]:
    if not isinstance(raw, list):
        raise ValueError("book side is not a list")
    return {_num(level["price"]): _num(level["size"]) for level in raw}


class PolymarketPrices:
    """Best bid, best ask and last trade of `asset_ids`, kept live in a background thread."""

    def __init__(
        self,
        asset_ids: Sequence[str],
        url: str | None = None,
        on_update: Callable[[str, Quote], None] | None = None,
        *,
        settings: Settings | None = None,
        ping_s: float = 10.0,
        stale_s: float | None = None,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        open_timeout_s: float = 10.0,
    ) -> None:
        if isinstance(asset_ids, str) or not asset_ids:
            raise InvalidInput("give a list of one or more outcome token ids")
        ids = list(dict.fromkeys(check_token(a) for a in asset_ids))
        if len(ids) > MAX_ASSETS:
            raise InvalidInput(f"one connection follows at most {MAX_ASSETS} tokens")
        self.asset_ids = ids
        self.url = url or VENUE.url("ws", settings or Settings.from_env())
        if not self.url.startswith(("ws://", "wss://")):
            raise InvalidInput("the Polymarket WebSocket URL must start with ws:// or wss://")
        self.on_update = on_update
        self.ping_s = ping_s
        self.stale_s = stale_s if stale_s is not None else 3 * ping_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.open_timeout_s = open_timeout_s
        self._lock = threading.Lock()
        self._quotes: dict[str, Quote] = {a: Quote(a) for a in ids}
        self._books: dict[str, _Book] = {a: _Book() for a in ids}
        self._state = "connecting"
        self._connected = False
        self._reconnects = self._messages = self._malformed = self._pongs = self._trips = 0
        self._last_error = ""
        self._last_message_at: datetime | None = None
        self._had_data = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="polymarket-ws", daemon=True)
        self._thread.start()
        self._started.wait(5.0)

    # --- public --------------------------------------------------------------------------
    def snapshot(self, asset_id: str) -> Quote:
        """The latest known state of `asset_id` (all None until its first event)."""
        with self._lock:
            if asset_id not in self._quotes:
                raise InvalidInput(f"not subscribed to outcome token {asset_id!r}")
            return self._quotes[asset_id]

    def status(self) -> StreamState:
        with self._lock:
            return StreamState(
                url=self.url,
                connected=self._connected,
                state=self._state,
                reconnects=self._reconnects,
                messages=self._messages,
                malformed=self._malformed,
                pongs=self._pongs,
                watchdog_trips=self._trips,
                last_error=self._last_error,
                last_message_at=self._last_message_at,
            )

    def stop(self, timeout: float = 10.0) -> None:
        """Close the connection and end the thread (idempotent)."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        self._thread.join(timeout)
        with self._lock:
            self._state, self._connected = "stopped", False

    # --- the loop ------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:  # never leave a silent dead thread
            _LOG.warning("polymarket stream ended: %s", exc)
            with self._lock:
                self._last_error = f"{type(exc).__name__}: {exc}"

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._started.set()
        delay = self.backoff_initial_s
        while not self._stopping.is_set():
            try:
                await self._session()
            except (OSError, TimeoutError, WebSocketException) as exc:
                self._error(f"{type(exc).__name__}: {exc}")
            with self._lock:
                self._connected = False
                if self._had_data:  # it was live: the backoff starts again
                    delay, self._had_data = self.backoff_initial_s, False
                if self._stopping.is_set():
                    break
                self._state = "reconnecting"
                self._reconnects += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, self.backoff_max_s)

    async def _session(self) -> None:
        """One connection: subscribe, then read until it ends or goes quiet."""
        assert self._stopping is not None
        async with connect(
            self.url,
            open_timeout=self.open_timeout_s,
            ping_interval=None,  # the channel's keep-alive is the text PING below
            close_timeout=1,
            max_size=2**23,
            logger=_LOG,
        ) as ws:
            await ws.send(json.dumps({"assets_ids": self.asset_ids, "type": "market"}))
            with self._lock:
                self._connected, self._state = True, "live"
            pinger = asyncio.create_task(self._keepalive(ws))
            stop = asyncio.create_task(self._stopping.wait())
            try:
                while not self._stopping.is_set():
                    recv = asyncio.create_task(ws.recv())
                    done, _ = await asyncio.wait(
                        {recv, stop}, timeout=self.stale_s, return_when=asyncio.FIRST_COMPLETED
                    )
                    if recv not in done:
                        recv.cancel()
                        with contextlib.suppress(asyncio.CancelledError, WebSocketException):
                            await recv
                        if not self._stopping.is_set():
                            self._error(f"no message for {self.stale_s:g} s; reconnecting")
                            with self._lock:
                                self._trips += 1
                        break
                    raw = recv.result()
                    await self._on_frame(ws, raw)
            finally:
                for task in (pinger, stop):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def _keepalive(self, ws: ClientConnection) -> None:
        while True:
            await asyncio.sleep(self.ping_s)
            with contextlib.suppress(WebSocketException):
                await ws.send("PING")

    def _error(self, text: str) -> None:
        with self._lock:
            self._last_error = text[:300]

    # --- frames --------------------------------------------------------------------------
    async def _on_frame(self, ws: ClientConnection, raw: str | bytes) -> None:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        now = datetime.now(UTC)
        with self._lock:
            self._messages += 1
            self._last_message_at = now
        if text.strip() == "PONG":
            with self._lock:
                self._pongs += 1
            return
        if text.strip() == "PING":
            await ws.send("PONG")
            return
        try:
            body = json.loads(text)
        except ValueError as exc:
            with self._lock:
                self._skip(exc)
            return
        events = body if isinstance(body, list) else [body]
        with self._lock:
            # a frame is applied whole or not at all: keep the state to put back
            quotes, books = dict(self._quotes), dict(self._books)
            try:
                changed = [a for e in events for a in self._apply(e)]
            except (KeyError, TypeError, ValueError) as exc:
                self._quotes, self._books = quotes, books
                self._skip(exc)
                return
            self._had_data = True
        self._notify(changed)

    def _skip(self, exc: Exception) -> None:
        """Count a frame that could not be read (called under the lock)."""
        self._malformed += 1
        self._last_error = f"malformed frame skipped ({type(exc).__name__}: {exc})"[:300]

    def _apply(self, event: object) -> list[str]:
        """Apply one event (under the lock); the tokens it changed. KeyError, TypeError or
        ValueError when it cannot be read."""
        if not isinstance(event, dict):
            raise ValueError("an event is not an object")
        kind = event.get("event_type")
        if kind == "price_change":
            return self._price_changes(event)
        if kind not in ("book", "last_trade_price", "tick_size_change", "best_bid_ask"):
            return []  # new_market, market_resolved, ...: nothing kept here
        asset = str(event.get("asset_id", ""))
        ts = from_ms_text(event.get("timestamp"))
        if asset not in self._quotes:
            return []
        q = self._quotes[asset]
        if kind == "book":
            book = _Book(_levels(event["bids"]), _levels(event["asks"]))
            self._books[asset] = book
            q = self._with_book(q, book, ts)
        elif kind == "last_trade_price":
            side = event.get("side")
            q = replace(
                q,
                last_trade_price=_num(event["price"]),
                last_trade_size=_num(event["size"]) if "size" in event else None,
                last_trade_side=str(side) if side else None,
                updated=ts,
            )
        elif kind == "tick_size_change":
            q = replace(q, tick_size=_num(event["new_tick_size"]), updated=ts)
        else:
            bid, ask = _num(event["best_bid"]), _num(event["best_ask"])
            q = replace(q, best_bid=bid, best_ask=ask, updated=ts)
        self._quotes[asset] = q
        return [asset]

    def _price_changes(self, event: dict[str, Any]) -> list[str]:
        ts = from_ms_text(event.get("timestamp"))
        changes = event["price_changes"]
        if not isinstance(changes, list):
            raise ValueError("price_changes is not a list")
        changed: list[str] = []
        for ch in changes:
            asset = str(ch["asset_id"])
            price, size, side = _num(ch["price"]), _num(ch["size"]), ch["side"]
            if side not in ("BUY", "SELL"):
                raise ValueError(f"unknown side {side!r}")
            if asset not in self._quotes:
                continue
            old = self._books[asset]
            book = _Book(dict(old.bids), dict(old.asks))  # a new object: the saved one stays
            levels = book.bids if side == "BUY" else book.asks
            if size == 0:
                levels.pop(price, None)
            else:
                levels[price] = size
            self._books[asset] = book
            q = self._with_book(self._quotes[asset], book, ts)
            if ch.get("best_bid") not in (None, ""):
                q = replace(q, best_bid=_num(ch["best_bid"]))
            if ch.get("best_ask") not in (None, ""):
                q = replace(q, best_ask=_num(ch["best_ask"]))
            self._quotes[asset] = q
            changed.append(asset)
        return changed

    @staticmethod
    def _with_book(q: Quote, book: _Book, ts: datetime) -> Quote:
        bids = tuple(sorted(book.bids.items(), reverse=True))
        asks = tuple(sorted(book.asks.items()))
        return replace(
            q,
            bids=bids,
            asks=asks,
            best_bid=bids[0][0] if bids else None,
            best_ask=asks[0][0] if asks else None,
            updated=ts,
        )

    def _notify(self, assets: list[str]) -> None:
        if self.on_update is None:
            return
        for asset in dict.fromkeys(assets):
            try:
                self.on_update(asset, self.snapshot(asset))
            except Exception as exc:  # a caller's callback must not end the stream
                self._error(f"on_update failed: {type(exc).__name__}: {exc}")


def wait_connected(prices: PolymarketPrices, timeout: float) -> bool:
    """True once `prices` is connected (for the CLI and tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if prices.status().connected:
            return True
        time.sleep(0.05)
    return prices.status().connected


__all__ = ["MAX_ASSETS", "PolymarketPrices", "Quote", "StreamState", "wait_connected"]
