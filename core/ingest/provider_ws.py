"""Live streams from keyed data providers over their own WebSockets: Alpaca and Finnhub.

One asyncio loop on one thread ("ingest-provider-streams", started on the first subscription)
runs one connection per provider, user and endpoint; every stream of that user on that endpoint
shares it (Alpaca's Basic plan allows one connection per endpoint). The wire formats live in
`alpaca_ws` and `finnhub_ws`.

The user's key is read from the ledger inside the connect coroutine, used for the handshake and
dropped: it is never kept on an object and is scrubbed from every error text. A refused key stops
the connection with "auth failed: check your key on the API keys page" (no retry until someone
subscribes again); a drop reconnects with exponential backoff and subscribes again. Dead TCP
connections are found by the WebSocket protocol's own ping (websockets' default). Frames that
cannot be read are counted (`malformed`) and skipped; trades and bars with impossible values
are counted (`invalid`) and dropped. WebSocket connections are not HTTP requests and no provider
counts them against the request quota, so they are not metered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import polars as pl
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from core.errors import InvalidInput
from core.ingest import alpaca_ws, finnhub_ws
from core.ingest.alpaca import key_pair
from core.ingest.alpaca_ws import AUTH_FAILED, Refusal
from core.ingest.base import bars_frame, trades_frame
from core.ingest.ccxt_ws import (
    OnBars,
    OnTrades,
    StreamError,
    StreamKey,
    StreamStatus,
    valid_candle,
    valid_trade,
)
from core.ingest.http import scrub
from core.ingest.provider_feed import Conn, Feed, Stop, bars_from_trades, on_frame
from core.ingest.venues import venue as venue_record

if TYPE_CHECKING:
    from core.config import Settings
    from core.ingest.meter import KeyLedger

ALPACA, FINNHUB = alpaca_ws.VENUE.name, finnhub_ws.VENUE.name
PROVIDERS: dict[str, tuple[str, ...]] = {ALPACA: alpaca_ws.KINDS, FINNHUB: finnhub_ws.KINDS}
"""Provider -> the stream kinds it sends."""
_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9./:_^=-]{0,39}")
_WIRE = logging.getLogger("hfthot.provider_ws")
_WIRE.setLevel(logging.INFO)  # websockets logs handshakes (a Finnhub URL holds the key) at DEBUG


class ProviderStreams:
    """Alpaca and Finnhub streams with each subscriber's own key, on one loop thread."""

    def __init__(
        self,
        on_trades: OnTrades,
        on_bars: OnBars,
        keys: KeyLedger | None,
        settings: Settings | None = None,
        *,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        handshake_s: float = 10.0,
        keep_bars: int = 2_000,
        keep_trades: int = 50_000,
    ) -> None:
        self.on_trades = on_trades
        self.on_bars = on_bars
        self.keys = keys
        self.settings = settings
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.handshake_s = handshake_s
        self.keep_bars = keep_bars
        self.keep_trades = keep_trades
        self._conns: dict[tuple[str, str, str], Conn] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False

    # --- lifecycle (any thread) --------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> ProviderStreams:
        if self._stopped:
            raise StreamError("the provider streams are stopped")
        if self._thread is None:
            self._thread = threading.Thread(
                target=lambda: asyncio.run(self._main()),
                name="ingest-provider-streams",
                daemon=True,
            )
            self._thread.start()
            if not self._ready.wait(10):
                raise StreamError("the provider stream loop did not start")
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._stopped = True
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        tasks = [c.task for c in self._conns.values() if c.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _submit(self, coro: Any, timeout: float = 10.0) -> Any:
        if self._loop is None or not self.running:
            coro.close()
            raise StreamError("the provider streams are not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # --- subscriptions (any thread) ----------------------------------------------------------
    def subscribe(
        self, venue: str, symbol: str, kind: str, timeframe: str | None, user_id: str | None
    ) -> StreamKey:
        """Stream `kind` of `symbol` from `venue` with `user_id`'s stored key."""
        record = venue_record(venue)
        kinds = PROVIDERS.get(record.name)
        if kinds is None:
            raise InvalidInput(f"{record.title} has no live stream here")
        if kind not in kinds:
            tail = "; Live Market builds candles from its trades" if kinds == ("trades",) else ""
            raise InvalidInput(f"{record.title} streams {', '.join(kinds)} only{tail}")
        if kind == "ohlcv" and timeframe != "1m":
            raise InvalidInput(
                f"{record.title} streams 1-minute bars: subscribe with 1m "
                "(Live Market shows coarser candles built from them)"
            )
        name = symbol.strip().upper()
        if not _SYMBOL.fullmatch(name):
            raise InvalidInput(
                f"{symbol[:40]!r} is not a valid {record.title} symbol "
                f"(e.g. {record.example_symbol})"
            )
        if self.keys is None or not user_id:
            raise InvalidInput(
                f"{record.title} needs your API key: sign in and save one on the API keys page"
            )
        try:  # whether a usable key is stored; it is dropped at once
            stored = self.keys.provider_key(user_id, record.name)
        except LookupError:
            raise InvalidInput(
                f"{record.title} needs your API key: save one on the API keys page"
            ) from None
        if record.name == ALPACA:
            key_pair(stored)  # KEY_ID:SECRET, or InvalidInput naming neither part
        del stored
        key = StreamKey(record.name, name, kind, "1m" if kind == "ohlcv" else None)
        self.start()
        self._submit(self._add(key, user_id))
        return key

    def unsubscribe(self, key: StreamKey) -> bool:
        if not self.running:
            return False
        return bool(self._submit(self._remove(key)))

    def stream_keys(self) -> list[StreamKey]:
        with self._lock:
            return [k for c in self._conns.values() for k in c.feeds]

    def status(self) -> list[StreamStatus]:
        now = time.time()
        out = []
        with self._lock:
            for conn in self._conns.values():
                for feed in conn.feeds.values():
                    st = replace(feed.status)
                    st.rate_per_s = feed.rate()
                    st.malformed += conn.malformed
                    if feed.key.kind == "trades" and feed.last_ts_ms is not None:
                        st.lag_s = max(0.0, now - feed.last_ts_ms / 1000)
                    elif st.last_message_at is not None:
                        st.lag_s = max(0.0, now - st.last_message_at.timestamp())
                    out.append(st)
        return out

    def live_bars(self, venue: str, symbol: str) -> pl.DataFrame:
        """1-minute bars of a symbol: the provider's bars, then bars built from its trades for
        the minutes after the last one (all of them when there is no bar stream)."""
        bars_key = StreamKey(venue, symbol, "ohlcv", "1m")
        trades_key = StreamKey(venue, symbol, "trades")
        rows: list[list[float]] = []
        trades: list[tuple[int, float, float]] = []
        with self._lock:
            for conn in self._conns.values():
                if bars_key in conn.feeds:
                    rows = [list(r) for r in conn.feeds[bars_key].bars.values()]
                if trades_key in conn.feeds:
                    trades = list(conn.feeds[trades_key].trades)
        bars = bars_frame(rows, venue, symbol, "1m")
        built = bars_from_trades(trades, venue, symbol)
        if bars.height:
            built = built.filter(pl.col("ts") > bars["ts"].max())
        return pl.concat([bars, built])

    async def _add(self, key: StreamKey, owner: str) -> None:
        old = self._conn_of(key)
        if old is not None:
            if old.task is not None and not old.task.done():
                return
            await self._remove(key)  # stopped (key refused): start again with this user's key
        url = self._endpoint(key)
        with self._lock:
            conn = self._conns.setdefault((key.venue, owner, url), Conn(key.venue, owner, url))
            feed = conn.feeds[key] = Feed(key, self.keep_trades)
        if conn.task is None or conn.task.done():
            conn.task = asyncio.create_task(self._run(conn), name=f"{key.venue}-stream")
        elif conn.ready and conn.ws is not None:
            feed.status.state, feed.status.connected = "subscribing", True
            await self._send(conn, [key], "subscribe")

    async def _remove(self, key: StreamKey) -> bool:
        conn = self._conn_of(key)
        if conn is None:
            return False
        with self._lock:
            conn.feeds.pop(key)
            if not conn.feeds:
                self._conns.pop((conn.venue, conn.owner, conn.url), None)
        if not conn.feeds and conn.task is not None:
            conn.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await conn.task
        elif conn.ready:
            await self._send(conn, [key], "unsubscribe")
        return True

    async def _send(self, conn: Conn, keys: list[StreamKey], action: str) -> None:
        wire = alpaca_ws if conn.venue == ALPACA else finnhub_ws
        ws = conn.ws
        if ws is not None:
            with contextlib.suppress(ConnectionClosed):
                for text in wire.subscribe_texts(keys, action):
                    await ws.send(text)

    def _conn_of(self, key: StreamKey) -> Conn | None:
        with self._lock:
            return next((c for c in self._conns.values() if key in c.feeds), None)

    def _endpoint(self, key: StreamKey) -> str:
        if key.venue == ALPACA:
            return alpaca_ws.endpoint(key.symbol, self.settings)
        return finnhub_ws.endpoint(self.settings)

    # --- one connection (the loop) -----------------------------------------------------------
    async def _run(self, conn: Conn) -> None:
        delay = self.backoff_initial_s
        title = venue_record(conn.venue).title
        while conn.feeds:
            conn.each(state="connecting", connected=False)
            secrets: tuple[str, ...] = ()
            try:
                stored = await self._key(conn, title)
                secrets = (stored, *stored.partition(":")[::2])
                url = conn.url
                if conn.venue == FINNHUB:
                    url = finnhub_ws.connect_url(url, stored)
                async with connect(url, logger=_WIRE, open_timeout=self.handshake_s) as ws:
                    if conn.venue == ALPACA:
                        await self._alpaca_login(conn, ws, stored)
                    stored = url = ""
                    conn.ws, conn.ready = ws, True
                    await self._subscribe_all(conn)
                    delay = self.backoff_initial_s
                    async for raw in ws:
                        on_frame(conn, raw, self._trades, self._bar)
                raise ConnectionError(f"{title} closed the connection")
            except asyncio.CancelledError:
                conn.each(state="stopped", connected=False)
                raise
            except Stop as exc:
                conn.each(
                    state=exc.state, connected=False, last_error=scrub(str(exc), secrets)[:300]
                )
                return
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in (401, 403):
                    conn.each(state="auth failed", connected=False, last_error=AUTH_FAILED)
                    return
                self._retrying(conn, f"{title} refused the connection (HTTP {status})")
            except Exception as exc:
                self._retrying(conn, scrub(f"{type(exc).__name__}: {exc}", secrets)[:300])
            finally:
                conn.ws, conn.ready = None, False
            await asyncio.sleep(delay)
            delay = min(self.backoff_max_s, delay * 2)

    async def _key(self, conn: Conn, title: str) -> str:
        """The owner's key, decrypted for this handshake only (a table read: off the loop)."""
        keys = self.keys
        try:
            if keys is None:
                raise LookupError(conn.venue)
            return await asyncio.to_thread(keys.provider_key, conn.owner, conn.venue)
        except LookupError:
            text = f"{title} needs your API key: save one on the API keys page"
            raise Stop(Refusal(True, "no key", text)) from None

    def _retrying(self, conn: Conn, text: str) -> None:
        conn.each(state="reconnecting", connected=False, last_error=text)
        for feed in conn.feeds.values():
            feed.status.reconnects += 0 if feed.refused else 1
            feed.confirmed = False

    async def _alpaca_login(self, conn: Conn, ws: ClientConnection, stored: str) -> None:
        if not alpaca_ws.greeted(await self._recv(conn, ws)):
            raise ConnectionError("Alpaca did not greet the connection")
        try:
            text = alpaca_ws.auth_text(stored)
        except InvalidInput as exc:
            raise Stop(Refusal(True, "auth failed", str(exc))) from None
        await ws.send(text)
        refused = alpaca_ws.login_answer(await self._recv(conn, ws))
        if refused is not None and refused.final:
            raise Stop(refused)
        if refused is not None:
            raise ConnectionError(refused.text)

    async def _recv(self, conn: Conn, ws: ClientConnection) -> list[Any]:
        raw = await asyncio.wait_for(ws.recv(), self.handshake_s)
        try:
            reply = json.loads(raw)
        except ValueError:
            conn.malformed += 1
            raise ConnectionError("unreadable handshake frame") from None
        return reply if isinstance(reply, list) else [reply]

    async def _subscribe_all(self, conn: Conn) -> None:
        feeds = [f for f in conn.feeds.values() if not f.refused]
        for f in feeds:  # Finnhub does not confirm subscriptions: live at once
            f.status.state = "subscribing" if conn.venue == ALPACA else "live"
            f.status.connected = True
        await self._send(conn, [f.key for f in feeds], "subscribe")

    # --- frames ------------------------------------------------------------------------------
    def _trades(self, feed: Feed, items: list[dict[str, Any]]) -> None:
        good = [t for t in items if valid_trade(t)]
        feed.status.invalid += len(items) - len(good)
        if not good:
            return
        frame = trades_frame(good, feed.key.venue, feed.key.symbol)
        with self._lock:
            feed.trades.extend((t["timestamp"], t["price"], t["amount"]) for t in good)
        last = frame.row(-1, named=True)
        feed.status.last_trade = {k: last[k] for k in ("ts", "price", "amount", "side")}
        feed.last_ts_ms = max(feed.last_ts_ms or 0, *(int(t["timestamp"]) for t in good))
        self.on_trades(feed.key, frame)

    def _bar(self, feed: Feed, row: list[Any]) -> None:
        if not valid_candle(row):
            feed.status.invalid += 1
            return
        with self._lock:
            feed.bars[row[0]] = row
            feed.bars.move_to_end(row[0])
            while len(feed.bars) > self.keep_bars:
                feed.bars.popitem(last=False)
        # Alpaca sends a minute's bar once the minute is over: it is final
        self.on_bars(feed.key, bars_frame([row], feed.key.venue, feed.key.symbol, "1m"), True)
