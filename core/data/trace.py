"""Hot-tier access traces: record what `MarketStore` is asked, and replay it on a cache.

Recording is off unless `HFT_ACCESS_TRACE` names a file (JSON lines; gzip when the
name ends in .gz). The store then appends one record per `get_bars` that uses the
hot tier and one per bars write (a version bump, which drops the series' frames):

    {"op": "open", "pid": 123, "wall": "2026-11-25T04:00:00+00:00", "limit": 67108864}
    {"op": "r", "t": 1.25, "s": "alice", "v": "bundled", "y": "SP500", "tf": "1d",
     "lo": null, "hi": null, "n": null, "ver": 0, "hit": false, "b": 352000}
    {"op": "w", "t": 1.31, "s": null, "v": "demo", "y": "BTC/USDT", "tf": "1m", "ver": 4}

`t` is seconds since the recorder opened (monotonic), `s` the session label set
with `set_session` (None when unknown), `n` the cached tail's rows for a
`get_bars(last=...)` read (else None), `b` the frame's bytes as the hot tier charges
them (`hot.frame_bytes`; traces recorded before 2026-11-25 08:40 UTC used Polars'
`estimated_size`, which undercounts String views, for `b` and their data size alike).
Records are buffered and written when the buffer fills, or by a background
thread at most a second late; the file stops growing at the size limit
(`HFT_ACCESS_TRACE_MB`), and the closing record counts what was dropped. Nothing
here ever raises into the store: a failure is kept in `error` and recording stops.

`replay` runs a trace through the real hot-tier cache (`core._native.HotCache`),
S3-FIFO or LRU, at a given byte budget: a read is a get (a put on a miss), a write
drops the series' entries, as `MarketStore` does.
"""

from __future__ import annotations

import atexit
import contextvars
import datetime as dt
import gzip
import json
import os
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from core.data.hot import ENTRY_OVERHEAD, frame_bytes
from core.errors import InvalidInput

if TYPE_CHECKING:
    import polars as pl

_session: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "hfthot_trace_session", default=None
)


def set_session(label: str | None) -> None:
    """Label the records made from this thread/context (e.g. the signed-in user)."""
    _session.set(label)


class _Key(Protocol):
    @property
    def venue(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def timeframe(self) -> str: ...
    @property
    def kind(self) -> str: ...


_live: weakref.WeakSet[AccessTrace] = weakref.WeakSet()


def _close_all() -> None:
    for rec in list(_live):
        rec.close()


atexit.register(_close_all)


class AccessTrace:
    """A bounded, buffered, thread-safe JSON-lines recorder; `AccessTrace(None)` is off."""

    def __init__(
        self,
        path: Path | str | None,
        *,
        max_bytes: int = 64 * 2**20,
        buffer_records: int = 256,
        flush_s: float = 1.0,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.max_bytes = max_bytes
        self.buffer_records = buffer_records
        self.flush_s = flush_s
        self.records = 0
        self.dropped = 0
        self.error: str | None = None
        self._buf: list[str] = []
        self._written = 0
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._last_flush = self._t0
        self._closed = False
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._written = self.path.stat().st_size if self.path.exists() else 0
        except OSError as exc:
            self._fail(exc)
            return
        self._add(
            {
                "op": "open",
                "pid": os.getpid(),
                "wall": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "limit": max_bytes,
            }
        )
        _live.add(self)
        # Records are never more than about flush_s late on disk, even if the
        # process is killed without running atexit.
        ref = weakref.ref(self)
        threading.Thread(
            target=_tick, args=(ref, flush_s), name="access-trace", daemon=True
        ).start()

    @classmethod
    def from_env(cls) -> AccessTrace:
        """The recorder `HFT_ACCESS_TRACE` asks for; off when unset or unreadable."""
        from core.config import Settings

        try:
            settings = Settings.from_env()
        except InvalidInput:
            return cls(None)
        if settings.access_trace is None:
            return cls(None)
        return cls(settings.access_trace, max_bytes=settings.access_trace_mb * 2**20)

    @property
    def enabled(self) -> bool:
        return self.path is not None and self.error is None and not self._closed

    # ------------------------------------------------------------- hooks
    def read(
        self,
        key: _Key,
        timeframe: str,
        lo: int | None,
        hi: int | None,
        version: int,
        frame: pl.DataFrame,
        hit: bool,
        tail: int | None = None,
    ) -> None:
        """One `get_bars` answered by the hot tier (hit) or put into it (miss); `tail` is
        the cached tail's row count for a `last=` read."""
        if self.path is None:
            return
        try:
            self._add(
                {
                    "op": "r",
                    "t": round(time.monotonic() - self._t0, 4),
                    "s": _session.get(),
                    "v": key.venue,
                    "y": key.symbol,
                    "tf": timeframe,
                    "lo": lo,
                    "hi": hi,
                    "n": tail,
                    "ver": version,
                    "hit": hit,
                    "b": frame_bytes(frame),
                }
            )
        except Exception as exc:  # never raise into a read
            self._fail(exc)

    def write(self, key: _Key, version: int) -> None:
        """A bars series changed (its new version); trades never reach the hot tier."""
        if self.path is None or key.kind != "bars":
            return
        try:
            self._add(
                {
                    "op": "w",
                    "t": round(time.monotonic() - self._t0, 4),
                    "s": _session.get(),
                    "v": key.venue,
                    "y": key.symbol,
                    "tf": key.timeframe,
                    "ver": version,
                }
            )
        except Exception as exc:  # never raise into a write
            self._fail(exc)

    # ----------------------------------------------------------- buffering
    def _add(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            if self._closed or self.error is not None:
                return
            if self._written + sum(map(len, self._buf)) + len(line) > self.max_bytes:
                self.dropped += 1
                return
            self._buf.append(line)
            self.records += 1
            now = time.monotonic()
            if len(self._buf) >= self.buffer_records or now - self._last_flush >= self.flush_s:
                self._flush_locked()

    def _flush_locked(self) -> None:
        self._last_flush = time.monotonic()
        if not self._buf or self.error is not None:
            return
        data = "".join(self._buf).encode()
        self._buf = []
        try:
            assert self.path is not None
            if self.path.suffix == ".gz":
                data = gzip.compress(data)  # one gzip member per flush
            with self.path.open("ab") as f:
                f.write(data)
            self._written = self.path.stat().st_size
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        """Write what is buffered and a closing record; safe to call twice."""
        if self.path is None:
            return
        with self._lock:
            if self._closed:
                return
            if self.error is None:
                end = {"op": "close", "records": self.records, "dropped": self.dropped}
                # The closing record may pass the limit by its own few bytes.
                self._buf.append(json.dumps(end, separators=(",", ":")) + "\n")
                self._flush_locked()
            self._closed = True
        _live.discard(self)

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = f"{type(exc).__name__}: {exc}"
            self._buf = []


def _tick(ref: weakref.ref[AccessTrace], every_s: float) -> None:
    """Flush a recorder's buffer every `every_s` until it is closed or collected."""
    while True:
        time.sleep(every_s)
        rec = ref()
        if rec is None or rec._closed or rec.error is not None:
            return
        if rec._buf:
            rec.flush()
        del rec


# ------------------------------------------------------------------ reading
def load(path: Path | str) -> list[dict[str, Any]]:
    """Every record of a trace file (.jsonl or .jsonl.gz), in order."""
    return list(iter_records(path))


def iter_records(path: Path | str) -> Iterator[dict[str, Any]]:
    p = Path(path)
    if not p.exists():
        raise InvalidInput(f"no trace file at {p}")
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{p}:{n} is not a JSON record: {exc.msg}") from None
            if not isinstance(rec, dict) or "op" not in rec:
                raise InvalidInput(f"{p}:{n} is not a trace record")
            yield rec


@dataclass(frozen=True, slots=True)
class ReplayResult:
    policy: str
    capacity: int
    hits: int
    misses: int
    writes: int
    evictions: int

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


def read_key(rec: dict[str, Any]) -> str:
    """The hot-tier key of a read record (venue, symbol, timeframe, range, tail, version)."""
    tail = rec.get("n")  # absent in traces recorded before `last=` reads
    return f"{rec['v']}|{rec['y']}|{rec['tf']}|{rec['lo']}|{rec['hi']}|{tail}|{rec['ver']}"


def replay(
    records: Iterable[dict[str, Any]], capacity: int, policy: str = "s3fifo"
) -> ReplayResult:
    """Run reads and writes, in order, through a fresh `HotCache` of `capacity` bytes."""
    from core.native import ext

    if capacity <= 0:
        raise InvalidInput(f"capacity must be > 0 bytes, got {capacity}")
    cache = ext.HotCache(capacity, policy)
    hits = misses = writes = 0
    for rec in records:
        op = rec.get("op")
        if op == "r":
            key = read_key(rec)
            if cache.get(key) is not None:
                hits += 1
            else:
                misses += 1
                cache.put(key, True, max(1, int(rec["b"])) + ENTRY_OVERHEAD)
        elif op == "w":
            writes += 1
            cache.remove_prefix(f"{rec['v']}|{rec['y']}|")
    stats = cache.stats()
    return ReplayResult(policy, capacity, hits, misses, writes, int(stats["evictions"]))


@dataclass(frozen=True, slots=True)
class TraceSummary:
    reads: int
    distinct: int
    writes: int
    recorded_hits: int
    span_s: float
    meta: dict[str, Any] | None

    @property
    def best_hit_rate(self) -> float:
        """The most any cache can hit: every distinct read's first access misses."""
        return 1.0 - self.distinct / self.reads if self.reads else 0.0

    @property
    def recorded_hit_rate(self) -> float:
        return self.recorded_hits / self.reads if self.reads else 0.0


def summarize(records: Iterable[dict[str, Any]]) -> TraceSummary:
    """Counts of a trace; `meta` is the provenance record scripts/record_trace.py adds."""
    reads = writes = hits = 0
    keys: set[str] = set()
    times: list[float] = []
    meta: dict[str, Any] | None = None
    for rec in records:
        op = rec.get("op")
        if op == "meta":
            meta = rec
        elif op == "r":
            reads += 1
            hits += bool(rec.get("hit"))
            keys.add(read_key(rec))
        elif op == "w":
            writes += 1
        if op in ("r", "w"):
            times.append(float(rec.get("t", 0.0)))
    span = max(times) - min(times) if times else 0.0
    return TraceSummary(reads, len(keys), writes, hits, span, meta)
