"""Series versions and cache keys (core.data.versions); cross-process epochs (core.data.epochs)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from core.data.epochs import Epochs
from core.data.hot import HotTier
from core.data.store import MarketStore
from core.data.trace import AccessTrace
from core.data.versions import TAIL_MIN, SeriesVersions, cache_key, prefix, tail_rows
from core.data.warm import SeriesKey
from core.errors import InvalidInput
from tests.unit.market.helpers import bars

KEY = SeriesKey("bars", "synthetic", "SYN/USD", "1m")


def versions() -> SeriesVersions:
    return SeriesVersions(HotTier(2**20), AccessTrace(None))


def test_a_bump_makes_a_new_key_and_drops_the_old_frames() -> None:
    v = versions()
    old = cache_key(KEY, "1h", None, None, None, v.version(KEY))
    assert old.startswith(prefix(KEY))
    v.hot.put(old, bars(10))
    other = SeriesKey("bars", "synthetic", "OTHER/USD", "1m")
    kept = cache_key(other, "1m", 1, 2, TAIL_MIN, v.version(other))
    v.hot.put(kept, bars(10))
    v.bump(KEY)
    assert v.version(KEY) == 1
    assert v.generation == 1
    assert cache_key(KEY, "1h", None, None, None, v.version(KEY)) != old
    assert v.hot.get(old) is None
    assert v.hot.get(kept) is not None


def test_concurrent_bumps_never_repeat_a_version() -> None:
    v = versions()

    def bump() -> None:
        for _ in range(2000):
            v.bump(KEY)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert v.version(KEY) == 8000
    assert v.generation == 8000


def test_resolution_is_remembered_until_a_bump() -> None:
    v = versions()
    calls: list[str] = []

    def find(kind: str, symbol: str, venue: str | None, timeframe: str) -> SeriesKey | None:
        calls.append(symbol)
        return KEY

    lookup = ("bars", "SYN/USD", None, "1h")
    assert v.resolve(lookup, find) == KEY
    assert v.resolve(lookup, find) == KEY
    assert calls == ["SYN/USD"]
    v.bump(KEY)
    v.resolve(lookup, find)
    assert calls == ["SYN/USD", "SYN/USD"]


@pytest.mark.parametrize(("last", "rows"), [(1, TAIL_MIN), (TAIL_MIN + 1, 2 * TAIL_MIN)])
def test_tail_rows(last: int, rows: int) -> None:
    assert tail_rows(last) == rows


@pytest.mark.parametrize("last", [0, -3, True, 2.5])
def test_tail_rows_refuses_a_bad_count(last: object) -> None:
    with pytest.raises(InvalidInput, match="whole number"):
        tail_rows(last)  # type: ignore[arg-type]


def test_epochs_see_the_other_side_commit(tmp_path: Path) -> None:
    app = Epochs(tmp_path, threading.RLock())
    ingest = Epochs(tmp_path, threading.RLock())
    assert app.changed() is None  # no epoch file yet, nothing seen
    ingest.touch(1)
    assert ingest.changed() is None  # its own commit
    stamp = app.changed()
    assert stamp is not None
    app.seen = stamp
    assert app.changed() is None
    ingest.touch(2)  # replaced again within the same clock tick: the content tells
    assert app.changed() is not None


def test_exclusive_holds_off_another_writer(tmp_path: Path) -> None:
    first = Epochs(tmp_path, threading.RLock())
    second = Epochs(tmp_path, threading.RLock())  # its own lock: only the flock stops it
    order: list[str] = []
    entered = threading.Event()

    def other() -> None:
        entered.set()
        with second.exclusive():
            order.append("second")

    with first.exclusive():
        thread = threading.Thread(target=other)
        thread.start()
        entered.wait()
        time.sleep(0.1)
        order.append("first")
    thread.join(5)
    assert order == ["first", "second"]


def test_a_store_sees_another_stores_writes(tmp_path: Path) -> None:
    app = MarketStore(tmp_path)
    frame = bars(30)
    assert app.get_bars("SYN/USD").height == 0
    other = MarketStore(tmp_path)
    other.write_bars(frame)
    generation = app.generation
    assert app.get_bars("SYN/USD").height == 30  # the hot miss above is not served
    assert app.generation > generation
    assert app.daily(["SYN/USD"])["bars"].sum() == 30
    assert not app.sync()
