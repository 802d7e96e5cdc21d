"""The read path below the hot tier: warm files plus the live buffer, for one series.

Only the files whose time range overlaps the query are read, with the filter pushed down;
buffered rows are merged in (they win over stored rows with the same key). Coarser
timeframes are resampled from the stored one (`core.data.resample`).
"""

from __future__ import annotations

import threading
import time

import polars as pl

from core.data.buffer import LiveBuffer
from core.data.hot import TierCounter
from core.data.resample import resample
from core.data.schema import BARS, TIMEFRAMES, TRADES, TS, row_keys
from core.data.warm import DataFile, Partition, SeriesKey, read_files
from core.errors import InvalidInput


def with_keys(frame: pl.DataFrame, key: SeriesKey) -> pl.DataFrame:
    """A frame of stored columns with the series' venue, symbol and timeframe added."""
    schema = BARS if key.kind == "bars" else TRADES
    if frame.height == 0 and not frame.columns:
        return pl.DataFrame(schema=schema)
    # Built column by column (no query plan): this is on every warm read's path.
    n = frame.height
    consts = {"venue": key.venue, "symbol": key.symbol, "timeframe": key.timeframe}
    cols = [
        pl.Series(name, [consts[name]], dtype=pl.String).new_from_index(0, n)
        if name in consts
        else frame.get_column(name)
        for name in schema.names()
    ]
    return pl.DataFrame(cols)


class Reader:
    """Reads of the series in `parts` (shared with the writer) and `live`."""

    def __init__(
        self,
        parts: dict[SeriesKey, dict[str, Partition]],
        live: LiveBuffer,
        lock: threading.RLock,
        counter: TierCounter,
    ) -> None:
        self.parts = parts
        self.live = live
        self.lock = lock
        self.counter = counter

    def files(self, key: SeriesKey) -> list[DataFile]:
        return [f for part in list(self.parts.get(key, {}).values()) for f in part.files]

    def series(self, kind: str) -> list[SeriesKey]:
        """Every series of `kind` with stored or buffered rows."""
        keys = {
            k
            for k, p in list(self.parts.items())
            if k.kind == kind and any(x.files for x in list(p.values()))
        }
        keys |= set(self.live.keys(kind))
        return sorted(keys, key=lambda k: (k.venue, k.symbol, TIMEFRAMES.get(k.timeframe, 0)))

    def find(self, kind: str, symbol: str, venue: str | None, timeframe: str) -> SeriesKey | None:
        """The stored series that answers `symbol` at `timeframe`: the finest usable one."""
        cands = [k for k in self.series(kind) if k.symbol == symbol and venue in (None, k.venue)]
        if not cands:
            return None
        venues = sorted({k.venue for k in cands})
        if len(venues) > 1:
            raise InvalidInput(
                f"{symbol} is stored for venues {', '.join(venues)}; pass venue= to choose one"
            )
        if kind == "trades":
            return cands[0]
        want = TIMEFRAMES[timeframe]
        usable = [k for k in cands if want % TIMEFRAMES[k.timeframe] == 0]
        if not usable:
            have = ", ".join(k.timeframe for k in cands)
            raise InvalidInput(
                f"{symbol} on {venues[0]} is stored at {have}; {timeframe} cannot be built "
                "from it (ask for that timeframe or a coarser multiple)"
            )
        return min(usable, key=lambda k: TIMEFRAMES[k.timeframe])

    def read_range(
        self, key: SeriesKey, timeframe: str, lo: int | None, hi: int | None
    ) -> pl.DataFrame:
        """Bars in [lo, hi) at `timeframe`; a coarser range starts at its bucket's start."""
        if timeframe != key.timeframe and lo is not None:
            step = TIMEFRAMES[timeframe] * 1_000_000
            lo = lo - lo % step
        frame = self.read_series(key, lo, hi)
        return frame if timeframe == key.timeframe else resample(frame, timeframe)

    def read_tail(
        self, key: SeriesKey, timeframe: str, lo: int | None, hi: int | None, rows: int
    ) -> pl.DataFrame:
        """The newest `rows` bars in [lo, hi): only the newest files that can hold them."""
        ratio = TIMEFRAMES[timeframe] // TIMEFRAMES[key.timeframe]
        need = rows * ratio  # stored bars behind `rows` bars at `timeframe` (at most)
        files = sorted(
            (
                f
                for f in self.files(key)
                if (hi is None or f.ts_min < hi) and (lo is None or f.ts_max >= lo)
            ),
            key=lambda f: f.ts_max,
            reverse=True,
        )
        buffered = self.live.get(key)
        have = buffered.height if buffered is not None else 0
        start = lo
        for i, f in enumerate(files):
            have += f.rows
            if have >= need:
                # Older files may still hold rows newer than this one's first bar.
                floor = min(g.ts_min for g in files[: i + 1])
                start = floor if lo is None else max(lo, floor)
                break
        frame = self.read_range(key, timeframe, start, hi)
        if frame.height < rows and start != lo:
            # Upserts made the files overlap: fewer distinct bars than rows counted.
            frame = self.read_range(key, timeframe, lo, hi)
        return frame.tail(rows)

    def read_series(self, key: SeriesKey, lo: int | None, hi: int | None) -> pl.DataFrame:
        """Stored and buffered rows of one series in [lo, hi), oldest first."""
        t0 = time.perf_counter_ns()
        schema = BARS if key.kind == "bars" else TRADES
        for attempt in range(3):
            files = self.files(key)
            try:
                raw = read_files(tuple(files), lo, hi)
                break
            except (FileNotFoundError, pl.exceptions.ComputeError, OSError):
                # A compaction removed a file under us: re-list and retry.
                if attempt == 2:
                    raise
                with self.lock:
                    for part in self.parts.get(key, {}).values():
                        part.scan(clean=False)
        frame = with_keys(raw, key) if raw.columns else pl.DataFrame(schema=schema)
        buffered = self.live.get(key)
        if buffered is not None and buffered.height:
            keep = buffered
            if lo is not None:
                keep = keep.filter(pl.col("ts") >= pl.lit(lo).cast(TS))
            if hi is not None:
                keep = keep.filter(pl.col("ts") < pl.lit(hi).cast(TS))
            if keep.height:
                keys = row_keys(key.kind)
                frame = pl.concat(
                    [
                        frame.join(keep.select(keys), on=keys, how="anti"),
                        keep.select(frame.columns),
                    ],
                    how="vertical",
                )
        if (len(files) > 1 or buffered is not None) and not frame["ts"].is_sorted():
            frame = frame.sort("ts", maintain_order=True)
        self.counter.record(time.perf_counter_ns() - t0, frame.height > 0)
        return frame if frame.schema == schema else frame.cast(schema)
