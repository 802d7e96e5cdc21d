"""History jobs: fetch bars into the store on a worker thread, with progress.

A job belongs to the user who started it and counts the provider requests it made
(`Job.requests`). When a provider's quota is spent (`QuotaPause`), the job pauses with a
message saying when the window resets, waits, and carries on by itself; a user's cancel
ends it instead (`Job.cancel()`), whether it is paused or running.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import polars as pl

from core.data.schema import drop_invalid
from core.errors import HftError
from core.ingest import alpaca, finnhub, polymarket
from core.ingest.base import Source, check_timeframe, count, describe, months_between
from core.ingest.meter import QuotaPause
from core.ingest.venues import Venue

RESUME_MARGIN_S = 1.0
"""Wait this much past a window's reset before trying again (clock skew with the provider)."""


class MarketWriter(Protocol):
    def write_bars(self, df: pl.DataFrame) -> int: ...

    def write_trades(self, df: pl.DataFrame) -> int: ...


class JobCancelled(HftError):
    """The user cancelled the job."""


@dataclass
class Job:
    id: int
    venue: str
    symbols: list[str]
    timeframe: str
    since: datetime
    until: datetime | None
    owner: str | None = None
    """The user id whose key and quota the job uses (None: a public venue, or the CLI)."""
    state: str = "running"
    """running, paused, done or failed."""
    progress: float = 0.0
    message: str = ""
    rows: int = 0
    """Bars of this job now in the store: every valid bar fetched (the write is idempotent,
    so a bar the live stream had already stored counts too)."""
    new_rows: int = 0
    """Of `rows`, the ones the store did not hold yet (new or changed)."""
    skipped: int = 0
    """Bars the venue sent with impossible values (NaN, negative, outside [low, high])."""
    requests: int | None = 0
    """HTTP requests sent to the provider (None where the client library hides them)."""
    resumes_at: datetime | None = None
    """While paused: when the provider's window resets and the job carries on."""
    error: str = ""
    """What went wrong, in words for the user."""
    detail: str = ""
    """The technical cause of `error` (exception chain, URL), for a folded-away section."""
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished: datetime | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def cancel(self) -> bool:
        """Ask the job to stop; True if it was still running or paused."""
        if self.state in ("done", "failed"):
            return False
        self._cancel.set()
        return True

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()


def _requests(src: Source) -> int | None:
    n = getattr(src, "requests", None)
    return n if isinstance(n, int) else None


def _fetch(job: Job, src: Source, symbol: str, i: int, n: int) -> pl.DataFrame:
    """One symbol's bars; waits out quota pauses, stops on cancel."""

    def progress(frac: float, msg: str) -> None:
        if job.cancelled:
            raise JobCancelled("cancelled by the user")
        job.progress = (i + frac) / n
        job.message = msg
        job.requests = _requests(src)

    while True:
        try:
            return src.fetch_bars(symbol, job.timeframe, job.since, job.until, progress=progress)
        except QuotaPause as pause:
            wait = pause.retry_after_s + RESUME_MARGIN_S
            job.resumes_at = datetime.now(UTC) + timedelta(seconds=wait)
            job.state = "paused"
            job.message = f"Paused: {pause} (at {job.resumes_at:%H:%M:%S} UTC)"
            if job._cancel.wait(wait):
                raise JobCancelled("cancelled by the user while paused") from None
            job.state, job.resumes_at = "running", None
        finally:
            job.requests = _requests(src)


def estimate_requests(
    venue: Venue, symbols: int, timeframe: str, since: datetime, until: datetime | None = None
) -> int | None:
    """Provider requests a bars job will send, from the venue's paging rules (None: unknown).
    Market lists that ccxt loads first are not included."""
    end = until or datetime.now(UTC)
    if venue.name == "alpha_vantage":
        return symbols * (1 if timeframe == "1d" else len(months_between(since, end)))
    if venue.name == "finnhub":
        return symbols * max(1, len(finnhub.windows(timeframe, since, end)))
    if venue.name == "alpaca":  # an upper bound: every bar of the clock, stocks trade less
        bars = max(0.0, (end - since).total_seconds()) / check_timeframe(timeframe)
        return symbols * max(1, math.ceil(bars / alpaca.PAGE_LIMIT))
    if venue.name == "polymarket":
        return symbols * max(1, math.ceil((end - since) / polymarket.CHUNK))
    if venue.paging is None:
        return None
    bars = max(0.0, (end - since).total_seconds()) / check_timeframe(timeframe)
    return symbols * max(1, math.ceil(bars / venue.paging.ohlcv_limit))


def run_job(job: Job, src: Source, store: MarketWriter) -> Job:
    """Run one history job in the calling thread, updating `job` as it goes.

    `job.message` always counts bars the same way as the final result: while a symbol is
    fetched, the bars received so far; once written, the bars stored for it."""
    n = len(job.symbols)
    try:
        for i, symbol in enumerate(job.symbols):
            if job.cancelled:
                raise JobCancelled("cancelled by the user")
            frame = _fetch(job, src, symbol, i, n)
            frame, skipped = drop_invalid(frame, "bars")
            job.skipped += skipped
            new = store.write_bars(frame) if frame.height else 0
            job.rows += frame.height
            job.new_rows += new
            job.progress = (i + 1) / n
            job.message = job_line(symbol, frame.height, new, skipped)
        job.state = "done"
    except Exception as exc:
        job.error, job.detail = failure_text(exc)
        job.state = "failed"
    job.requests = _requests(src)
    job.resumes_at = None
    job.finished = datetime.now(UTC)
    return job


def job_line(symbol: str, rows: int, new: int, skipped: int = 0) -> str:
    """ "BTC/USDT: 1,440 rows written (1,380 already stored)"; counts said in words."""
    extra = []
    if rows > new:
        extra.append(f"{rows - new:,} already stored")
    if skipped:
        extra.append(f"{count(skipped, 'bad bar')} skipped")
    tail = f" ({', '.join(extra)})" if extra else ""
    return f"{symbol}: {count(rows, 'row')} written{tail}"


def failure_text(exc: BaseException) -> tuple[str, str]:
    """(message for the user, technical detail) of a failed job."""
    if isinstance(exc, JobCancelled):
        return str(exc), ""
    detail = str(getattr(exc, "detail", "") or describe(exc))
    if isinstance(exc, HftError):
        return str(exc), detail
    return "the job stopped on an unexpected error; see the details", detail
