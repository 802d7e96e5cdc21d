"""Live streams over ccxt.pro WebSockets (`watch_trades`, `watch_ohlcv`, `watch_bids_asks`,
`watch_order_book`; books in core.ingest.book_stream).

One asyncio loop, on one thread, owns every exchange instance. Each stream is a
task that
- reconnects with exponential backoff after a drop (ccxt raises NetworkError),
- is watched by a heartbeat watchdog that recreates a connection silent for longer
  than `watchdog_s`,
- after any gap backfills over REST from the last timestamp it saw, up to the first
  message of the new connection, and de-duplicates (trades by id, bars by open time).
Frames ccxt cannot parse are counted and skipped; the connection stays up. Candles and
trades with impossible values (NaN/inf or negative prices, volumes or amounts, open or close
outside [low, high]) are counted in `invalid` and dropped: the store would refuse them.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import ccxt
import ccxt.pro
import polars as pl

from core.data.schema import TIMEFRAMES, drop_invalid
from core.errors import HftError, InvalidInput
from core.ingest.base import bars_frame, check_timeframe, trades_frame
from core.ingest.book_checksum import BOOK_CHECKS
from core.ingest.book_stream import RESYNC_ERRORS, OnBook, take
from core.ingest.ccxt_rest import CcxtRestSource, make_exchange
from core.ingest.live_book import LiveBook


@dataclass(frozen=True, slots=True)
class VenueConfig:
    """A venue as the stream manager sees it: its name, ccxt id and optional URL overrides."""

    name: str
    ccxt_id: str
    urls: dict[str, Any] | None = None
    simulated: bool = False


@dataclass(frozen=True, slots=True)
class StreamKey:
    venue: str
    symbol: str
    kind: str
    """'trades', 'ohlcv', 'quotes' (best bid and ask) or 'book' (L2 order book)"""
    timeframe: str | None = None

    @property
    def name(self) -> str:
        tail = f":{self.timeframe}" if self.timeframe else ""
        return f"{self.venue}:{self.symbol}:{self.kind}{tail}"


@dataclass
class StreamStatus:
    key: StreamKey
    simulated: bool = False
    state: str = "starting"
    connected: bool = False
    messages: int = 0
    rate_per_s: float = 0.0
    lag_s: float | None = None
    last_message_at: datetime | None = None
    last_error: str = ""
    reconnects: int = 0
    watchdog_trips: int = 0
    malformed: int = 0
    invalid: int = 0
    backfilled: int = 0
    duplicates_dropped: int = 0
    resyncs: int = 0
    """Book streams: times the book was rebuilt from a snapshot (gap, checksum, crossed)."""
    last_trade: dict[str, Any] | None = None
    last_quote: dict[str, Any] | None = None


KINDS = ("ohlcv", "trades", "quotes", "book")

OnTrades = Callable[[StreamKey, pl.DataFrame], None]
OnBars = Callable[[StreamKey, pl.DataFrame, bool], None]
"""on_bars(key, frame, final): final=True for closed bars, False for the forming one."""


class StreamError(HftError):
    pass


def _finite(*values: object) -> bool:
    """Every value a non-negative finite number."""
    return all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
        for v in values
    )


def valid_candle(c: list[Any]) -> bool:
    """[ms, open, high, low, close, volume] the store accepts (zero volume is fine)."""
    _, o, h, lo, cl, v = c[:6]
    return _finite(o, h, lo, cl, v) and lo <= min(o, cl) and max(o, cl) <= h


def valid_trade(t: dict[str, Any]) -> bool:
    return _finite(t.get("price"), t.get("amount"))


class Tally:
    """A stream's message count, last arrival and rate (ccxt and provider streams alike)."""

    def __init__(self, status: StreamStatus) -> None:
        self.status = status
        self.last_data = time.monotonic()
        self.arrivals: deque[tuple[float, int]] = deque()

    def mark(self, n: int) -> None:
        now = time.monotonic()
        self.last_data = now
        self.status.messages += n
        self.status.last_message_at = datetime.now(UTC)
        self.arrivals.append((now, n))
        while self.arrivals and now - self.arrivals[0][0] > 10.0:
            self.arrivals.popleft()

    def rate(self) -> float:
        """Messages per second over the last 10 s."""
        now = time.monotonic()
        return sum(n for t, n in list(self.arrivals) if now - t <= 10.0) / 10.0


class _Stream(Tally):
    def __init__(self, key: StreamKey, simulated: bool) -> None:
        super().__init__(StreamStatus(key, simulated=simulated))
        self.key = key
        self.task: asyncio.Task[None] | None = None
        self.last_ts_ms: int | None = None
        self.gap_from_ms: int | None = None
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.bars: OrderedDict[int, list[float]] = OrderedDict()
        self.book: LiveBook | None = LiveBook() if key.kind == "book" else None
        self.connection: Any = None
        """The ccxt client that delivered the last message."""

    def remember(self, trade_id: str) -> bool:
        """False when the id was already seen."""
        if trade_id in self.seen:
            return False
        self.seen[trade_id] = None
        if len(self.seen) > 100_000:
            self.seen.popitem(last=False)
        return True

    def message_hashes(self) -> list[str]:
        if self.key.kind == "trades":
            return [f"trade::{self.key.symbol}"]
        if self.key.kind == "quotes":
            return [f"bidask:bookTicker@{self.key.symbol}"]
        if self.key.kind == "book":
            return [f"orderbook::{self.key.symbol}"]
        return [f"ohlcv::{self.key.symbol}::{self.key.timeframe}"]


def _guarded_class(base: type) -> type:
    """A subclass of a ccxt.pro exchange whose clients count and skip unparsable frames, and
    (Kraken, OKX) check each book message's checksum (core.ingest.book_checksum)."""
    checks = BOOK_CHECKS.get(base.__name__)
    bases = (base,) if checks is None else (checks, base)

    class Guarded(*bases):  # type: ignore[misc]
        hft_malformed: int = 0

        def client(self, url: str) -> Any:
            c = super().client(url)
            if not getattr(c, "hft_guarded", False):
                inner = c.handle_text_or_binary_message

                def safe(data: Any) -> None:
                    text = data.decode(errors="replace") if isinstance(data, bytes) else data
                    if isinstance(text, str) and not text.lstrip().startswith(("{", "[")):
                        self.hft_malformed += 1
                        return
                    try:
                        inner(data)
                    except Exception:
                        self.hft_malformed += 1

                c.handle_text_or_binary_message = safe
                c.hft_guarded = True
            return c

    Guarded.__name__ = f"Guarded{base.__name__}"
    return Guarded


class StreamManager:
    """Owns the asyncio loop thread, the ccxt.pro instances and every live stream."""

    def __init__(
        self,
        on_trades: OnTrades,
        on_bars: OnBars,
        *,
        watchdog_s: float = 30.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        keep_bars: int = 2_000,
        history_s: float = 6 * 3600,
        on_book: OnBook | None = None,
    ) -> None:
        """`history_s`: a new bar stream first backfills this much history over REST.
        `on_book(key, events)` gets every book change (the recorder)."""
        self.on_trades = on_trades
        self.on_bars = on_bars
        self.on_book = on_book
        self.watchdog_s = watchdog_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.keep_bars = keep_bars
        self.history_s = history_s
        self.venues: dict[str, VenueConfig] = {}
        self._exchanges: dict[str, Any] = {}
        self._rest: dict[str, CcxtRestSource] = {}
        self._streams: dict[StreamKey, _Stream] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._lock = threading.Lock()

    # --- lifecycle (any thread) --------------------------------------------------------------
    def start(self) -> StreamManager:
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="ingest-streams", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise StreamError("the stream loop did not start")
        return self

    def stop(self, timeout: float = 15.0) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def add_venue(self, venue: VenueConfig) -> None:
        with self._lock:
            self.venues[venue.name] = venue

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        dog = asyncio.create_task(self._watchdog())
        await self._stop.wait()
        dog.cancel()
        tasks = [s.task for s in self._streams.values() if s.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(dog, *tasks, return_exceptions=True)
        for s in self._streams.values():
            s.status.state, s.status.connected = "stopped", False
        for ex in list(self._exchanges.values()):
            with contextlib.suppress(Exception):
                await ex.close()
        self._exchanges.clear()
        for rest in self._rest.values():
            rest.close()

    def _submit(self, coro: Any, timeout: float = 10.0) -> Any:
        if self._loop is None or not self.running:
            coro.close()
            raise StreamError("the stream manager is not running; start() it first")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # --- subscriptions (any thread) ----------------------------------------------------------
    def subscribe(
        self, venue: str, symbol: str, kind: str, timeframe: str | None = None
    ) -> StreamKey:
        if venue not in self.venues:
            raise InvalidInput(f"unknown venue {venue!r}; known: {', '.join(self.venues)}")
        if kind not in KINDS:
            raise InvalidInput(f"stream kind must be one of {', '.join(KINDS)}; got {kind!r}")
        if kind == "ohlcv":
            check_timeframe(timeframe or "")
        else:
            timeframe = None
        key = StreamKey(venue, symbol, kind, timeframe)
        self._submit(self._add(key))
        return key

    def unsubscribe(self, key: StreamKey) -> bool:
        return bool(self._submit(self._remove(key)))

    def stream_keys(self) -> list[StreamKey]:
        with self._lock:
            return list(self._streams)

    def status(self) -> list[StreamStatus]:
        now = time.time()
        out = []
        with self._lock:
            for s in self._streams.values():
                st = replace(s.status)
                st.rate_per_s = s.rate()
                if s.key.kind == "trades" and s.last_ts_ms is not None:
                    st.lag_s = max(0.0, now - s.last_ts_ms / 1000)
                elif st.last_message_at is not None:
                    st.lag_s = max(0.0, now - st.last_message_at.timestamp())
                ex = self._exchanges.get(s.key.venue)
                st.malformed += int(getattr(ex, "hft_malformed", 0))
                out.append(st)
        return out

    def live_bars(self, key: StreamKey) -> pl.DataFrame:
        """The stream's recent bars, the forming one last (BARS schema)."""
        with self._lock:
            s = self._streams.get(key)
            rows = [list(r) for r in s.bars.values()] if s is not None else []
        if not rows or key.timeframe is None:
            return bars_frame([], key.venue, key.symbol, key.timeframe or "1m")
        return bars_frame(rows, key.venue, key.symbol, key.timeframe)

    def live_book(self, key: StreamKey) -> LiveBook | None:
        """The live book of a 'book' stream (None for other kinds or unknown keys)."""
        with self._lock:
            s = self._streams.get(key)
        return s.book if s is not None else None

    async def _add(self, key: StreamKey) -> None:
        if key in self._streams:
            return
        s = _Stream(key, self.venues[key.venue].simulated)
        if key.kind == "ohlcv" and self.history_s > 0:
            step = TIMEFRAMES[key.timeframe or "1m"] * 1000
            start = int((time.time() - self.history_s) * 1000)
            s.gap_from_ms = start - start % step
        with self._lock:
            self._streams[key] = s
        s.task = asyncio.create_task(self._run_stream(s), name=key.name)

    async def _remove(self, key: StreamKey) -> bool:
        with self._lock:
            s = self._streams.pop(key, None)
        if s is None:
            return False
        if s.task is not None:
            s.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await s.task
        await self._close_clients(s, None)
        return True

    # --- exchanges ---------------------------------------------------------------------------
    def _exchange(self, venue: str) -> Any:
        ex = self._exchanges.get(venue)
        if ex is None:
            cfg = self.venues[venue]
            base = getattr(ccxt.pro, cfg.ccxt_id)
            options: dict[str, Any] = {
                "enableRateLimit": True,
                "newUpdates": True,
                # large caches so a burst between two reads loses nothing
                "options": {"tradesLimit": 20_000, "OHLCVLimit": 2_000},
            }
            if cfg.ccxt_id in ("binance", "okx"):
                options["options"]["fetchMarkets"] = {"types": ["spot"]}
            if cfg.urls:
                options["urls"] = cfg.urls
            ex = _guarded_class(base)(options)
            self._exchanges[venue] = ex
        return ex

    def rest(self, venue: str) -> CcxtRestSource:
        src = self._rest.get(venue)
        if src is None:
            cfg = self.venues[venue]
            src = CcxtRestSource(cfg.ccxt_id, make_exchange(cfg.ccxt_id, cfg.urls), name=cfg.name)
            self._rest[venue] = src
        return src

    async def _close_clients(self, s: _Stream, error: Exception | None) -> int:
        ex = self._exchanges.get(s.key.venue)
        if ex is None or not getattr(ex, "clients", None):
            return 0
        hashes = s.message_hashes()
        clients = list(ex.clients.items())
        mine = [
            (url, c)
            for url, c in clients
            if any(h in c.subscriptions or h in c.futures for h in hashes)
        ]
        if not mine and error is not None:
            # a venue whose message hashes differ: every connection silent as long as this one
            quiet_ms = self.watchdog_s * 1000
            now_ms = time.time() * 1000
            mine = [
                (url, c)
                for url, c in clients
                if c.last_message_at is None or now_ms - c.last_message_at > quiet_ms
            ]
        hit = 0
        for url, client in mine:
            hit += 1
            if error is not None:
                client.on_error(error)  # rejects the pending watch, closes, drops the client
            else:
                with contextlib.suppress(Exception):
                    await client.close()
                ex.clients.pop(url, None)
        return hit

    # --- one stream --------------------------------------------------------------------------
    def _check_connection(self, ex: Any, s: _Stream) -> None:
        """Count a connection that dropped while no watch was waiting on it: ccxt then opens
        a new one at the next watch without raising, so nothing else would notice the gap."""
        hashes = s.message_hashes()
        now = next(
            (c for c in ex.clients.values() if any(h in c.subscriptions for h in hashes)),
            None,
        )
        if now is None:
            return
        if s.connection is not None and now is not s.connection:
            s.status.reconnects += 1
            if s.last_ts_ms is not None and s.gap_from_ms is None:
                s.gap_from_ms = s.last_ts_ms
            if s.book is not None:
                s.book.resync()  # the new connection started from a new snapshot
        s.connection = now

    async def _run_stream(self, s: _Stream) -> None:
        delay = self.backoff_initial_s
        key = s.key
        while True:
            ex = self._exchange(key.venue)
            try:
                s.status.state = "connecting"
                while True:
                    if key.kind == "trades":
                        params = {"name": "aggTrade"} if ex.id == "binance" else {}
                        items = await ex.watch_trades(key.symbol, params=params)
                    elif key.kind == "quotes":
                        quotes = await ex.watch_bids_asks([key.symbol])
                        items = [q for q in quotes.values() if q.get("symbol") == key.symbol]
                    elif key.kind == "book" and s.book is not None:
                        ob = await ex.watch_order_book(key.symbol)
                        self._check_connection(ex, s)
                        events = take(ex, key.symbol, ob, s.book)
                        items = [ob]
                        if events and self.on_book is not None:
                            self.on_book(key, events)
                    else:
                        items = await ex.watch_ohlcv(key.symbol, key.timeframe)
                    self._check_connection(ex, s)
                    s.status.connected = True
                    s.status.state = "live"
                    delay = self.backoff_initial_s
                    s.mark(len(items))
                    if key.kind == "trades":
                        await self._on_trades(s, list(items))
                    elif key.kind == "quotes":
                        self._on_quotes(s, items)
                    elif key.kind == "ohlcv":  # a book went to its live book above
                        await self._on_candles(s, [list(c) for c in items])
            except asyncio.CancelledError:
                s.status.state, s.status.connected = "stopped", False
                raise
            except RESYNC_ERRORS as exc:  # the book fell out of sync: rebuild it at once
                s.status.resyncs += 1
                s.status.state = "resyncing"
                s.status.last_error = f"{type(exc).__name__}: {exc}"[:300]
                if s.book is not None:
                    s.book.resync()
            except (ccxt.BadSymbol, ccxt.BadRequest, ccxt.NotSupported) as exc:
                s.status.state, s.status.connected = "error", False
                s.status.last_error = f"{type(exc).__name__}: {exc}"
                return
            except Exception as exc:  # NetworkError, ExchangeError, parsing: retry later
                s.status.connected = False
                s.status.state = "reconnecting"
                s.status.last_error = f"{type(exc).__name__}: {exc}"[:300]
                s.status.reconnects += 1
                if s.last_ts_ms is not None and s.gap_from_ms is None:
                    s.gap_from_ms = s.last_ts_ms
                await asyncio.sleep(delay)
                delay = min(self.backoff_max_s, delay * 2)
            finally:
                s.connection = None  # an error is counted where it was caught

    async def _on_trades(self, s: _Stream, items: list[dict[str, Any]]) -> None:
        good = []
        for t in items:
            ts, price, amount = t.get("timestamp"), t.get("price"), t.get("amount")
            if not isinstance(ts, int) or not isinstance(price, float | int) or amount is None:
                s.status.malformed += 1
                continue
            if not valid_trade(t):
                s.status.invalid += 1
                continue
            good.append(t)
        if not good:
            return
        first_ms = min(int(t["timestamp"]) for t in good)
        if s.gap_from_ms is not None:
            good = await self._backfill_trades(s, s.gap_from_ms, first_ms) + good
            s.gap_from_ms = None
        fresh = []
        for t in good:
            if s.remember(str(t["id"])):
                fresh.append(t)
            else:
                s.status.duplicates_dropped += 1
        if not fresh:
            return
        frame = trades_frame(fresh, s.key.venue, s.key.symbol)
        last = frame.row(-1, named=True)
        newest: datetime = frame["ts"].max()  # type: ignore[assignment]
        s.last_ts_ms = max(s.last_ts_ms or 0, int(newest.timestamp() * 1000))
        s.status.last_trade = {
            "ts": last["ts"],
            "price": last["price"],
            "amount": last["amount"],
            "side": last["side"],
        }
        self.on_trades(s.key, frame)

    def _on_quotes(self, s: _Stream, quotes: list[dict[str, Any]]) -> None:
        for q in quotes:
            bid, ask = q.get("bid"), q.get("ask")
            if not isinstance(bid, float | int) or not isinstance(ask, float | int):
                s.status.malformed += 1
                continue
            s.status.last_quote = {
                "bid": float(bid),
                "ask": float(ask),
                "received": datetime.now(UTC),
            }

    async def _backfill_trades(self, s: _Stream, from_ms: int, to_ms: int) -> list[dict[str, Any]]:
        s.status.state = "backfilling"
        rest = self.rest(s.key.venue)
        start = datetime.fromtimestamp(from_ms / 1000, tz=UTC)
        end = datetime.fromtimestamp((to_ms + 1) / 1000, tz=UTC)
        try:
            frame = await asyncio.to_thread(rest.fetch_trades, s.key.symbol, start, end)
        except Exception as exc:
            s.status.last_error = f"backfill failed: {type(exc).__name__}: {exc}"[:300]
            return []
        s.status.state = "live"
        frame, dropped = drop_invalid(frame, "trades")
        s.status.invalid += dropped
        rows = [
            {
                "id": r["trade_id"],
                "timestamp": int(r["ts"].timestamp() * 1000),
                "price": r["price"],
                "amount": r["amount"],
                "side": r["side"],
            }
            for r in frame.iter_rows(named=True)
        ]
        fresh = [r for r in rows if str(r["id"]) not in s.seen]
        s.status.backfilled += len(fresh)
        return rows

    async def _on_candles(self, s: _Stream, candles: list[list[Any]]) -> None:
        good = []
        for c in candles:
            if len(c) < 6 or not isinstance(c[0], int) or any(v is None for v in c[1:6]):
                s.status.malformed += 1
                continue
            if not valid_candle(c):
                s.status.invalid += 1
                continue
            good.append(c)
        if not good:
            return
        if s.gap_from_ms is not None:
            first = min(c[0] for c in good)
            if first > s.gap_from_ms:
                good = await self._backfill_bars(s, s.gap_from_ms, first) + good
            s.gap_from_ms = None
        newest_before = next(reversed(s.bars)) if s.bars else None
        with self._lock:
            for c in sorted(good, key=lambda r: r[0]):
                s.bars[int(c[0])] = [float(v) for v in c[:6]]
                s.bars[int(c[0])][0] = int(c[0])
                s.bars.move_to_end(int(c[0]))
            while len(s.bars) > self.keep_bars:
                s.bars.popitem(last=False)
            ordered = sorted(s.bars)
            if ordered != list(s.bars):
                s.bars = OrderedDict((k, s.bars[k]) for k in ordered)
            newest = ordered[-1]
        s.last_ts_ms = newest
        final_rows = [
            s.bars[t]
            for t in ordered
            if t < newest and (newest_before is None or t >= newest_before)
        ]
        if final_rows:
            self.on_bars(
                s.key,
                bars_frame(final_rows, s.key.venue, s.key.symbol, s.key.timeframe or ""),
                True,
            )
        forming = bars_frame([s.bars[newest]], s.key.venue, s.key.symbol, s.key.timeframe or "")
        self.on_bars(s.key, forming, False)

    async def _backfill_bars(self, s: _Stream, from_ms: int, to_ms: int) -> list[list[Any]]:
        s.status.state = "backfilling"
        rest = self.rest(s.key.venue)
        start = datetime.fromtimestamp(from_ms / 1000, tz=UTC)
        end = datetime.fromtimestamp(to_ms / 1000, tz=UTC)
        try:
            frame = await asyncio.to_thread(
                rest.fetch_bars, s.key.symbol, s.key.timeframe or "1m", start, end
            )
        except Exception as exc:
            s.status.last_error = f"backfill failed: {type(exc).__name__}: {exc}"[:300]
            return []
        s.status.state = "live"
        frame, dropped = drop_invalid(frame, "bars")
        s.status.invalid += dropped
        s.status.backfilled += frame.height
        return [
            [int(r[0].timestamp() * 1000), r[1], r[2], r[3], r[4], r[5]]
            for r in frame.select("ts", "open", "high", "low", "close", "volume").iter_rows()
        ]

    # --- watchdog ----------------------------------------------------------------------------
    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, self.watchdog_s / 4))
            now = time.monotonic()
            for s in list(self._streams.values()):
                if not s.status.connected or now - s.last_data <= self.watchdog_s:
                    continue
                silent = now - s.last_data
                err = ccxt.RequestTimeout(
                    f"watchdog: {s.key.name} silent for {silent:.1f} s; reconnecting"
                )
                if await self._close_clients(s, err):
                    s.status.watchdog_trips += 1
                    s.status.connected = False
                    s.last_data = now
