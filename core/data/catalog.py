"""Which price series an analysis page can pick: the bundled history plus the store.

A SeriesRef names one (venue, symbol, timeframe). Bundled datasets are always
listed, so every analysis page works with no network and an empty store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import polars as pl

from core.data import bundled


class BarSource(Protocol):
    def coverage(self) -> pl.DataFrame: ...

    def get_bars(
        self,
        symbol: str,
        start: object = None,
        end: object = None,
        timeframe: str = "1m",
        venue: str | None = None,
        *,
        last: int | None = None,
    ) -> pl.DataFrame: ...


SIMULATED_VENUE = "demo"
"""The demo venue (core.ingest.demo_venue.VENUE): its series are SIMULATED."""


@dataclass(frozen=True, slots=True)
class SeriesRef:
    venue: str
    symbol: str
    timeframe: str

    @property
    def label(self) -> str:
        """"BTC/USDT · demo (SIMULATED) · 1m": the demo venue's data is always marked."""
        venue = f"{self.venue} (SIMULATED)" if self.venue == SIMULATED_VENUE else self.venue
        return f"{self.symbol} · {venue} · {self.timeframe}"


def list_series(store: BarSource | None = None) -> list[SeriesRef]:
    refs = [SeriesRef(bundled.VENUE, d.symbol, d.timeframe) for d in bundled.DATASETS.values()]
    if store is not None:
        cov = store.coverage()
        for row in cov.select("venue", "symbol", "timeframe").unique().sort(pl.all()).iter_rows():
            ref = SeriesRef(*row)
            if ref not in refs:
                refs.append(ref)
    return refs


def load_series(
    ref: SeriesRef, store: BarSource | None = None, *, last: int | None = None
) -> pl.DataFrame:
    """Bars of `ref` in the BARS schema, oldest first; only the newest `last` when given."""
    if store is not None:
        frame = store.get_bars(ref.symbol, timeframe=ref.timeframe, venue=ref.venue, last=last)
        if frame.height:
            return frame if frame["ts"].is_sorted() else frame.sort("ts")
    if ref.venue == bundled.VENUE:
        frame = bundled.load(ref.symbol)
        return frame if last is None else frame.tail(last)
    from core.errors import InvalidInput

    raise InvalidInput(f"no bars stored for {ref.label}")
