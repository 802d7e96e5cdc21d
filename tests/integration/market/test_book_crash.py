"""SIGKILL while recording a book (#16: the bars' durability rule): every change and snapshot
whose flush returned is there after the crash, nothing torn or doubled is read, a replay at
the last acknowledged instant equals the book, and recording carries on."""

from __future__ import annotations

import random
import signal
from pathlib import Path

import polars as pl
import pytest

from core.data.books import COMPACT_AFTER
from core.data.store import MarketStore
from tests.integration.market.book_crash_child import SYMBOL, VENUE, batches
from tests.integration.market.crash_support import acks, killed_after, spawn

CHILD = "tests.integration.market.book_crash_child"
COLS = ["ts", "seq", "side", "price", "size"]

Run = tuple[int, int, list[int]]
"""(first batch, batches attempted, batches acknowledged) of one child process."""


def rows(run: Run, acked_only: bool, snapshots: bool) -> pl.DataFrame:
    first, count, acked = run
    chosen = acked if acked_only else range(first, first + count)
    out = []
    for i, (_, events, _, _) in enumerate(batches(first + count, first)):
        if i not in chosen:
            continue
        for e in events:
            if e.snapshot != snapshots:
                continue
            seq = e.seq * len(e.side) if e.snapshot else e.seq
            out.append(
                pl.DataFrame(
                    {"ts": e.ts_us, "seq": seq, "side": e.side, "price": e.price, "size": e.size}
                )
            )
    types = [pl.Int64(), pl.UInt64(), pl.UInt8(), pl.Float64(), pl.Float64()]
    schema = pl.Schema(dict(zip(COLS, types, strict=True)))
    return pl.concat(out).cast(schema) if out else pl.DataFrame(schema=schema)


def stored(store: MarketStore, kind: str) -> pl.DataFrame:
    files = store.books.files(kind)
    assert files, f"no {kind} files"
    frame = pl.concat([pl.read_parquet(f) for f in files])
    return frame.with_columns(pl.col("ts").dt.epoch("us")).select(COLS)


def check(root: Path, runs: list[Run]) -> None:
    store = MarketStore(root)
    try:
        for kind, snapshots in (("book_deltas", False), ("book_snapshots", True)):
            got = stored(store, kind)
            want = pl.concat([rows(r, True, snapshots) for r in runs])
            missing = want.join(got, on=COLS, how="anti")
            assert missing.height == 0, f"{missing.height} acknowledged {kind} rows lost"
            # Only rows some process wrote, each once (never a torn or doubled file).
            wrote = pl.concat([rows(r, False, snapshots) for r in runs])
            assert got.join(wrote, on=COLS, how="anti").height == 0, f"unknown {kind} rows"
            assert got.select(COLS).is_duplicated().sum() == 0, f"{kind} rows read twice"
        last_run = next(r for r in reversed(runs) if r[2])
        first, count, acked = last_run
        ts, _, bids, asks = batches(first + count, first)[max(acked)]
        book = store.book_at(VENUE, SYMBOL, ts, depth=50)
        assert book.bids.rows() == sorted(bids.items(), reverse=True)
        assert book.asks.rows() == sorted(asks.items())
    finally:
        store.close()


@pytest.mark.parametrize(
    ("point", "after", "count"),
    [("before_rename", 3, 12), ("after_rename", 5, 12), ("after_compact_commit", 0, 140)],
)
def test_sigkill_while_recording_a_book(tmp_path: Path, point: str, after: int, count: int) -> None:
    proc = spawn(tmp_path, 0, count, point, after, child=CHILD)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == -signal.SIGKILL, err
    runs: list[Run] = [(0, count, acks(out))]
    assert len(runs[0][2]) >= after
    if point == "after_compact_commit":
        names = {p.name[:2] for p in (tmp_path / "book_deltas").rglob("*.parquet")}
        assert names == {"c-", "d-"}, "the crash should leave covered files behind"
        assert max(runs[0][2]) >= 60 + COMPACT_AFTER - 1  # a whole day partition was filled
    check(tmp_path, runs)
    # A new process (a restarted stream: a snapshot first) records on; all of it reads back.
    first = max(runs[0][2]) + 2  # the batch being flushed at the kill may or may not be there
    proc = spawn(tmp_path, first, 6, child=CHILD)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    runs.append((first, 6, acks(out)))
    assert runs[-1][2] == list(range(first, first + 6))
    check(tmp_path, runs)


@pytest.mark.slow
def test_sigkill_at_random_moments_while_recording(tmp_path: Path) -> None:
    rng = random.Random(17)  # noqa: S311 (kill timings, not security)
    runs: list[Run] = []
    first = 0
    for _ in range(6):
        runs.append((first, 200, killed_after(tmp_path, first, 200, rng.uniform(1.5, 3.5), CHILD)))
        if any(r[2] for r in runs):
            check(tmp_path, runs)
        first = (max(runs[-1][2]) + 2) if runs[-1][2] else first + 1
    assert any(r[2] for r in runs)
