"""BookStore.coverage: which books were recorded and the span a replay can use (from the
first snapshot to the last change), from the files and from what is still buffered."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from core.data.store import MarketStore
from core.ingest.live_book import LiveBook

DAY1 = dt.datetime(2026, 3, 2, 23, 59, 58, tzinfo=dt.UTC)


def us(t: dt.datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def record(store: MarketStore, venue: str, symbol: str, start: dt.datetime, n: int) -> None:
    """`n` updates one second apart; the first is a snapshot, the rest change one level."""
    book = LiveBook(snapshot_every_s=3600, seq_start=1_000)
    for i in range(n):
        bids = [[100.0 - k, 1.0 + (i if k == 0 else 0)] for k in range(5)]
        asks = [[101.0 + k, 2.0] for k in range(5)]
        t = start + dt.timedelta(seconds=i)
        store.buffer_book(venue, symbol, book.update(bids, asks, us(t)))


def rows(store: MarketStore) -> list[tuple[str, str, dt.datetime, dt.datetime]]:
    return [tuple(r) for r in store.books.coverage().iter_rows()]  # type: ignore[misc]


def test_an_empty_store_has_no_recorded_books(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "market")
    cov = store.books.coverage()
    assert cov.height == 0
    assert cov.schema == pl.Schema(
        {
            "venue": pl.String,
            "symbol": pl.String,
            "first": pl.Datetime("us", "UTC"),
            "last": pl.Datetime("us", "UTC"),
        }
    )
    store.close()


def test_coverage_spans_buffered_written_and_reopened_books(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "market")
    record(store, "demo", "BTC/USDT", DAY1, 5)  # crosses midnight: two day partitions
    end = DAY1 + dt.timedelta(seconds=4)
    want = [("demo", "BTC/USDT", DAY1, end)]
    assert rows(store) == want  # buffered only
    store.flush()
    assert store.books.buffered_rows() == 0
    assert rows(store) == want  # from the files
    assert len(store.books.files("book_deltas")) == 2
    record(store, "demo", "ETH/USDT", DAY1 + dt.timedelta(hours=1), 2)
    eth = (
        "demo",
        "ETH/USDT",
        DAY1 + dt.timedelta(hours=1),
        DAY1 + dt.timedelta(hours=1, seconds=1),
    )
    assert rows(store) == [*want, eth]
    store.close()  # flushes the rest

    again = MarketStore(tmp_path / "market")  # after a restart: from disk
    assert rows(again) == [*want, eth]
    # the span is what book_at can replay: at `first` it has the first snapshot's levels
    first = again.book_at("demo", "BTC/USDT", DAY1, depth=5)
    assert first.bids.rows()[0] == (100.0, 1.0)
    last = again.book_at("demo", "BTC/USDT", end, depth=5)
    assert last.bids.rows()[0] == (100.0, 5.0)
    again.close()


def test_changes_without_a_snapshot_are_not_replayable(tmp_path: Path) -> None:
    """Deltas alone (a snapshot file lost) give no row: nothing could start a replay."""
    store = MarketStore(tmp_path / "market")
    record(store, "demo", "BTC/USDT", DAY1, 3)
    store.flush()
    for f in store.books.files("book_snapshots"):
        f.unlink()
    store.close()
    again = MarketStore(tmp_path / "market")
    assert again.books.coverage().height == 0
    again.close()
