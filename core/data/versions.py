"""Series versions and hot-tier cache keys, in one place.

Every change to a series (a write, a buffered add, another process's commit) bumps its
version; a hot-tier key carries the version it was read at, so no frame read before a
change is served after it. The store's generation counts every change of any series (the
analytics tier rebuilds its views when it moves). Symbol resolution is memoised here too,
and forgotten on every bump (a new series can change what a symbol resolves to).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from core.data.hot import HotTier
from core.data.trace import AccessTrace
from core.data.warm import SeriesKey
from core.errors import InvalidInput

TAIL_MIN = 16_384
"""Smallest tail the hot tier keeps for `get_bars(last=...)`."""

Lookup = tuple[str, str, str | None, str]
"""(kind, symbol, venue or None, timeframe) as a caller asks for a series."""


def tail_rows(last: int) -> int:
    """Rows of the cached tail that serves `last` bars: TAIL_MIN or the next power of two."""
    if isinstance(last, bool) or not isinstance(last, int) or last < 1:
        raise InvalidInput(f"last must be a whole number of bars >= 1, got {last!r}")
    return max(TAIL_MIN, 1 << (last - 1).bit_length())


def cache_key(
    key: SeriesKey, timeframe: str, lo: int | None, hi: int | None, span: int | None, version: int
) -> str:
    """The hot-tier key of a read; it starts with `prefix(key)`."""
    return f"{key.kind}|{key.venue}|{key.symbol}|{timeframe}|{lo}|{hi}|{span}|{version}"


def prefix(key: SeriesKey) -> str:
    """Every hot-tier key of the series' venue and symbol starts with this."""
    return f"{key.kind}|{key.venue}|{key.symbol}|"


class SeriesVersions:
    """Per-series versions, the store generation, and the symbol resolution memo."""

    def __init__(self, hot: HotTier, trace: AccessTrace) -> None:
        self.hot = hot
        self.trace = trace
        self.generation = 0
        self._versions: dict[tuple[str, str, str], int] = {}
        self._resolved: dict[Lookup, SeriesKey | None] = {}
        self._lock = threading.Lock()

    def version(self, key: SeriesKey) -> int:
        return self._versions.get((key.kind, key.venue, key.symbol), 0)

    def bump(self, key: SeriesKey) -> None:
        """The series changed: a new version, and its cached frames dropped."""
        vkey = (key.kind, key.venue, key.symbol)
        with self._lock:  # writers and live producers bump from different threads
            version = self._versions[vkey] = self._versions.get(vkey, 0) + 1
            self.generation += 1
            self._resolved = {}
        self.trace.write(key, version)
        self.hot.drop_prefix(prefix(key))

    def bump_generation(self) -> None:
        """Files changed but no series' rows did (a compaction)."""
        with self._lock:
            self.generation += 1

    def resolve(
        self, lookup: Lookup, find: Callable[[str, str, str | None, str], SeriesKey | None]
    ) -> SeriesKey | None:
        """`find(*lookup)`, remembered until the next bump."""
        resolved = self._resolved
        if lookup in resolved:
            return resolved[lookup]
        found = find(*lookup)
        resolved[lookup] = found
        return found
