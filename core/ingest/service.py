"""The ingestion service: one per process, owns every ingestion thread.

- a StreamManager (one asyncio loop thread for every ccxt.pro exchange),
- the demo venue when enabled (Settings.demo_venue), with the default live symbols,
- live rows (closed bars, trades) go into the store's one live buffer
  (`MarketStore.buffer_bars`/`buffer_trades`, visible to reads at once); a flush thread
  writes it every `flush_s`; a failed write keeps the rows buffered and retries them on the
  next flush,
- history jobs (backfill / ingest over REST or yfinance) on worker threads, with progress.

Bad rows (NaN/inf or negative prices, volumes or amounts, open or close outside
[low, high]) would make the store refuse the whole frame. Live data drops them and
counts them (`StreamStatus.invalid` per stream, `WriterStats.rows_dropped` here) before
they reach the buffer, so one bad tick never stops a stream or stays stuck in the buffer;
history jobs skip them and report the count (`Job.skipped`).
"""

from __future__ import annotations

import atexit
import itertools
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from core.data.books import BookEvent
from core.data.resample import resample
from core.data.schema import BARS, drop_invalid
from core.errors import InvalidInput
from core.ingest.base import Source, check_timeframe
from core.ingest.ccxt_rest import source_for
from core.ingest.ccxt_ws import StreamKey, StreamManager, StreamStatus, VenueConfig
from core.ingest.demo_venue import VENUE as DEMO
from core.ingest.demo_venue import DemoVenue
from core.ingest.jobs import Job, MarketWriter, failure_text, job_line, run_job
from core.ingest.live_book import LiveBook
from core.ingest.meter import KeyLedger, key_meter, public_meter
from core.ingest.provider_ws import PROVIDERS, ProviderStreams
from core.ingest.venues import VENUES, Venue, ccxt_venues
from core.ingest.venues import venue as venue_record

if TYPE_CHECKING:
    from core.config import Settings
    from core.data.store import MarketStore

DEFAULT_LIVE_SYMBOLS = ("BTC/USDT", "ETH/USDT")
YAHOO = "yahoo"
_RUNNING: weakref.WeakSet[IngestService] = weakref.WeakSet()


def running() -> list[IngestService]:
    """The services running in this process (the app has at most one)."""
    return [s for s in list(_RUNNING) if s.started]


def stop_all() -> int:
    """Stop every running service in this process (interpreter exit, test teardown)."""
    services = list(_RUNNING)
    for service in services:
        service.stop()
    return len(services)


atexit.register(stop_all)


@dataclass(frozen=True, slots=True)
class WriterStats:
    bars_written: int
    trades_written: int
    bars_buffered: int
    trades_buffered: int
    flushes: int
    last_error: str
    rows_dropped: int = 0
    """Buffered rows dropped for impossible values instead of being written."""


class IngestService:
    def __init__(
        self,
        store: MarketStore | None,
        *,
        demo: bool = False,
        live_symbols: tuple[str, ...] = DEFAULT_LIVE_SYMBOLS,
        flush_s: float = 2.0,
        watchdog_s: float = 30.0,
        history_s: float = 6 * 3600,
        demo_options: dict[str, Any] | None = None,
        keys: KeyLedger | None = None,
        settings: Settings | None = None,
    ) -> None:
        """`demo_options` go to DemoVenue (markets, seed, history_minutes, ...). `keys` holds
        users' provider keys and quotas (keyed providers need it); `settings` gives the
        providers' base URLs (HFT_ALPHA_VANTAGE_URL, ...)."""
        self.store = store
        self.keys = keys
        self.settings = settings
        self.demo_options = demo_options or {}
        self.demo_enabled = demo
        self.live_symbols = live_symbols
        self.flush_s = flush_s
        self.manager = StreamManager(
            self._on_trades,
            self._on_bars,
            watchdog_s=watchdog_s,
            history_s=history_s,
            on_book=self._on_book,
        )
        self.providers = ProviderStreams(self._on_trades, self._on_bars, keys, settings)
        """Alpaca and Finnhub streams with each subscriber's own key."""
        self.demo: DemoVenue | None = None
        self._count_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._jobs: dict[int, Job] = {}
        self._job_ids = itertools.count(1)
        self.bars_written = 0
        self.trades_written = 0
        self.flushes = 0
        self.rows_dropped = 0
        self.last_write_error = ""
        self.started = False
        for name, record in ccxt_venues().items():
            if record.live and record.ccxt_id:
                self.manager.add_venue(VenueConfig(name, record.ccxt_id))

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> IngestService:
        if self.started:
            return self
        self.started = True
        _RUNNING.add(self)
        self.manager.start()
        self._flusher = threading.Thread(target=self._flush_loop, name="ingest-flush", daemon=True)
        self._flusher.start()
        if self.demo_enabled:
            self.start_demo()
        return self

    def start_demo(self) -> DemoVenue:
        if self.demo is None:
            self.demo = DemoVenue(**self.demo_options).start()
            self.manager.add_venue(VenueConfig(DEMO, "binance", self.demo.ccxt_urls(), True))
            for symbol in self.live_symbols:
                self.subscribe(DEMO, symbol, "ohlcv", "1m")
                self.subscribe(DEMO, symbol, "trades")
                self.subscribe(DEMO, symbol, "quotes")
                self.subscribe(DEMO, symbol, "book")
        return self.demo

    def stop(self) -> None:
        """Stop streams, flush what is buffered, stop the demo venue. Safe to call twice."""
        if not self.started:
            return
        self.started = False
        _RUNNING.discard(self)
        self.manager.stop()
        self.providers.stop()
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(15)
        self.flush()
        if self.demo is not None:
            self.demo.stop()
            self.demo = None

    # --- live subscriptions ------------------------------------------------------------------
    def venues(self) -> list[str]:
        """Venues that can stream: the ccxt ones (and the demo venue), then keyed providers."""
        return [*self.manager.venues, *(p for p in PROVIDERS if p not in self.manager.venues)]

    def is_simulated(self, venue: str) -> bool:
        cfg = self.manager.venues.get(venue)
        return bool(cfg and cfg.simulated)

    def subscribe(
        self,
        venue: str,
        symbol: str,
        kind: str = "ohlcv",
        timeframe: str | None = "1m",
        *,
        user_id: str | None = None,
    ) -> StreamKey:
        """A live stream; a keyed provider (Alpaca, Finnhub) streams with `user_id`'s stored
        key, read when it connects."""
        if venue in PROVIDERS:
            return self.providers.subscribe(venue, symbol, kind, timeframe, user_id)
        if venue in VENUES:  # what the registry says the venue streams
            record = venue_record(venue)
            if not record.live:
                raise InvalidInput(f"{record.title} has no live stream here")
            if kind not in record.live:
                raise InvalidInput(
                    f"{record.title} streams {', '.join(record.live)} only; not {kind!r}"
                )
        return self.manager.subscribe(venue, symbol, kind, timeframe)

    def unsubscribe(self, key: StreamKey) -> bool:
        if key.venue in PROVIDERS:
            return self.providers.unsubscribe(key)
        return self.manager.unsubscribe(key)

    def subscriptions(self) -> list[StreamKey]:
        return self.manager.stream_keys() + self.providers.stream_keys()

    def status(self) -> list[StreamStatus]:
        return self.manager.status() + self.providers.status()

    def live_symbols_of(self, venue: str) -> list[str]:
        return sorted({k.symbol for k in self.subscriptions() if k.venue == venue})

    def live_bars(self, venue: str, symbol: str, timeframe: str = "1m") -> pl.DataFrame:
        """Recent bars of a live symbol, the forming bar last; coarser frames are resampled.
        A keyed provider's bars come from its bar stream or are built from its trades."""
        step = check_timeframe(timeframe)
        if venue in PROVIDERS:
            bars = self.providers.live_bars(venue, symbol)
            return bars if timeframe == "1m" else resample(bars, timeframe)
        streams = [
            k
            for k in self.manager.stream_keys()
            if k.venue == venue and k.symbol == symbol and k.kind == "ohlcv"
        ]
        exact = [k for k in streams if k.timeframe == timeframe]
        if exact:
            return self.manager.live_bars(exact[0])
        finer = sorted(
            (
                k
                for k in streams
                if k.timeframe
                and check_timeframe(k.timeframe) < step
                and step % check_timeframe(k.timeframe) == 0
            ),
            key=lambda k: check_timeframe(k.timeframe or "1m"),
        )
        if not finer:
            return pl.DataFrame(schema=BARS)
        return resample(self.manager.live_bars(finer[0]), timeframe)

    def streams_candles(self, venue: str, symbol: str) -> bool:
        """Whether a stream of the symbol gives candles: ohlcv, or a keyed provider's trades."""
        kinds = {s.key.kind for s in self.stream_status(venue, symbol)}
        return "ohlcv" in kinds or (venue in PROVIDERS and "trades" in kinds)

    def last_trade(self, venue: str, symbol: str) -> dict[str, Any] | None:
        for st in self.status():
            if st.key.venue == venue and st.key.symbol == symbol and st.last_trade:
                return st.last_trade
        return None

    def spread(self, venue: str, symbol: str) -> dict[str, Any] | None:
        """The last best bid and ask of a symbol: from its quote stream, else from its live
        book (`source` says which); None when it has neither."""
        for st in self.status():
            if st.key.venue == venue and st.key.symbol == symbol and st.last_quote:
                q = dict(st.last_quote)
                q["spread"] = q["ask"] - q["bid"]
                q["source"] = "quotes"
                return q
        book = self.live_book(venue, symbol)
        view = book.view(1) if book is not None else None
        if view is None or view.spread is None:
            return None
        bid, ask = view.bids[0][0], view.asks[0][0]
        return {"bid": bid, "ask": ask, "spread": ask - bid, "source": "book"}

    def live_book(self, venue: str, symbol: str) -> LiveBook | None:
        """The live L2 book of a symbol with a 'book' stream, else None."""
        for key in self.manager.stream_keys():
            if key.venue == venue and key.symbol == symbol and key.kind == "book":
                return self.manager.live_book(key)
        return None

    def stream_status(self, venue: str, symbol: str) -> list[StreamStatus]:
        return [s for s in self.status() if s.key.venue == venue and s.key.symbol == symbol]

    # --- writes ------------------------------------------------------------------------------
    def _on_trades(self, key: StreamKey, frame: pl.DataFrame) -> None:
        self._hold(frame, "trades")

    def _on_bars(self, key: StreamKey, frame: pl.DataFrame, final: bool) -> None:
        if final:
            self._hold(frame, "bars")

    def _on_book(self, key: StreamKey, events: list[BookEvent]) -> None:
        """Record a live book's changes (flushed with the bars and trades)."""
        if self.store is not None:
            self.store.buffer_book(key.venue, key.symbol, events)

    def _hold(self, frame: pl.DataFrame, kind: str) -> None:
        """Put live rows into the store's buffer; bad rows are dropped and counted. Runs on
        a stream's thread: never raises and never waits for a write."""
        store = self.store
        if store is None or frame.height == 0:
            return
        good, dropped = frame, 0
        try:
            good, dropped = drop_invalid(frame, kind)
            if kind == "bars":
                store.buffer_bars(good, autoflush=False)
            else:
                store.buffer_trades(good, autoflush=False)
        except Exception as exc:  # a frame the store refuses whole: drop it, keep streaming
            dropped += good.height
            self.last_write_error = f"{type(exc).__name__}: {exc}"[:300]
        if dropped:
            with self._count_lock:
                self.rows_dropped += dropped

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_s):
            self.flush()

    def flush(self) -> int:
        """Write what is buffered; on failure keep it for the next flush. Returns rows written."""
        with self._write_lock:
            store = self.store
            if store is None:
                return 0
            before = dict(store.live.written)
            try:
                if store.live or store.books.buffered_rows():
                    store.flush()
                self.last_write_error = ""
            except Exception as exc:  # the rows stay in the store's buffer
                self.last_write_error = f"{type(exc).__name__}: {exc}"[:300]
            bars = store.live.written["bars"] - before["bars"]
            trades = store.live.written["trades"] - before["trades"]
            self.bars_written += bars
            self.trades_written += trades
            self.flushes += 1
            return bars + trades

    def writer_stats(self) -> WriterStats:
        live = self.store.live if self.store is not None else None
        nb = live.rows("bars") if live is not None else 0
        nt = live.rows("trades") if live is not None else 0
        return WriterStats(
            self.bars_written,
            self.trades_written,
            nb,
            nt,
            self.flushes,
            self.last_write_error,
            self.rows_dropped,
        )

    # --- history jobs ------------------------------------------------------------------------
    def source(self, venue: str, user_id: str | None = None) -> Source:
        """The history source for `venue`; keyed providers use `user_id`'s own key, and every
        provider with a quota is metered (the user's key, or this server's IP)."""
        record = venue_record(venue)
        if record.name == YAHOO:
            from core.ingest.yahoo import YahooSource

            return YahooSource()
        if record.key_required:
            return self._keyed_source(record, user_id)
        if record.name == "polymarket":
            from core.ingest.polymarket import PolymarketSource

            return PolymarketSource(public_meter(record), self.settings)
        cfg = self.manager.venues.get(venue)
        if cfg is None or not record.history:
            raise InvalidInput(f"{record.title} has no history source yet")
        meter = None if cfg.simulated or record.quota is None else public_meter(record)
        return source_for(cfg.ccxt_id, cfg.urls, name=cfg.name, meter=meter)

    def _keyed_source(self, record: Venue, user_id: str | None) -> Source:
        if not record.history:
            raise InvalidInput(f"{record.title} has no history source yet")
        if self.keys is None or user_id is None:
            raise InvalidInput(
                f"{record.title} needs your API key: sign in and save one on the API keys page"
            )
        keys, uid = self.keys, user_id
        try:
            keys.provider_key(uid, record.name)  # fail now, not on the first page
        except LookupError:
            raise InvalidInput(
                f"{record.title} needs your API key: save one on the API keys page"
            ) from None
        meter = key_meter(keys, uid, record)
        if record.name == "alpha_vantage":
            from core.ingest.alpha_vantage import AlphaVantageSource

            return AlphaVantageSource(
                lambda: keys.provider_key(uid, record.name),
                meter,
                base_url=record.url("rest", self.settings),
            )
        if record.name == "alpaca":
            from core.ingest.alpaca import AlpacaSource, key_pair

            return AlpacaSource(
                lambda: key_pair(keys.provider_key(uid, record.name)),
                meter,
                base_url=record.url("data", self.settings),
            )
        if record.name == "finnhub":
            from core.ingest.finnhub import FinnhubSource

            return FinnhubSource(
                lambda: keys.provider_key(uid, record.name),
                meter,
                base_url=record.url("rest", self.settings),
            )
        raise InvalidInput(f"{record.title} has no history source yet")

    def start_job(
        self,
        venue: str,
        symbols: list[str],
        timeframe: str,
        since: datetime,
        until: datetime | None = None,
        *,
        user_id: str | None = None,
    ) -> Job:
        """Fetch history for `symbols` into the store on a worker thread; poll `job(id)`.
        A keyed provider uses `user_id`'s key and quota; the job records its owner."""
        check_timeframe(timeframe)
        if not symbols:
            raise InvalidInput("name at least one symbol")
        if self.store is None:
            raise InvalidInput("no store to write into")
        src = self.source(venue, user_id)
        job = Job(next(self._job_ids), venue, list(symbols), timeframe, since, until, user_id)
        self._jobs[job.id] = job
        threading.Thread(
            target=run_job, args=(job, src, self.store), name=f"ingest-job-{job.id}", daemon=True
        ).start()
        return job

    def cancel_job(self, job_id: int, user_id: str | None = None) -> bool:
        """Cancel a running or paused job; only its owner may (None: the operator)."""
        job = self.job(job_id)
        if user_id is not None and job.owner not in (None, user_id):
            raise InvalidInput("only the user who started a job can cancel it")
        return job.cancel()

    def jobs(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda j: -j.id)

    def job(self, job_id: int) -> Job:
        return self._jobs[job_id]


def wait_for(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    """Poll `predicate()` until true or `timeout` s pass (for the CLI and tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


__all__ = [
    "DEFAULT_LIVE_SYMBOLS",
    "IngestService",
    "Job",
    "MarketWriter",
    "WriterStats",
    "failure_text",
    "job_line",
    "resample",
    "run_job",
    "running",
    "stop_all",
    "wait_for",
]
