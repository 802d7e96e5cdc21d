"""SIGKILL during a flush or a compaction leaves the store readable and loses no
acknowledged bar (acknowledged = write_bars or flush returned)."""

from __future__ import annotations

import random
import signal
from pathlib import Path

import polars as pl
import pytest

from core.data.store import MarketStore
from tests.integration.market.crash_support import acks, killed_after, spawn
from tests.unit.market.helpers import bars

FRAME = bars(30 * 400)


def check_store(root: Path, acked: list[int]) -> pl.DataFrame:
    store = MarketStore(root, compact_after=3)
    got = store.get_bars("SYN/USD", cache=False)
    assert got["ts"].is_unique().all(), "duplicate bars after the crash"
    assert got["ts"].is_sorted()
    want = pl.concat([FRAME.slice(30 * i, 30) for i in acked]) if acked else FRAME.clear()
    missing = want.join(got, on="ts", how="anti")
    assert missing.height == 0, f"{missing.height} acknowledged bars lost"
    # Whatever is stored is exactly what was written (never a torn or mixed row).
    assert got.join(FRAME, on=list(FRAME.columns), how="anti").height == 0
    # Rollups agree with the bars after recovery.
    daily = store.daily(["SYN/USD"])
    assert daily["bars"].sum() == got.height
    assert not list(root.rglob(".tmp-*"))
    return got


@pytest.mark.parametrize(
    ("point", "after"),
    [("before_rename", 4), ("after_rename", 4), ("after_compact_commit", 1), ("before_rename", 2)],
)
def test_sigkill_at_each_commit_step(tmp_path: Path, point: str, after: int) -> None:
    proc = spawn(tmp_path, 0, 12, point, after)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err
    acked = acks(out)
    assert len(acked) >= after
    names = {p.name[:2] for p in tmp_path.rglob("*.parquet") if "period=" in str(p)}
    if point == "after_compact_commit":
        assert names == {"c-", "d-"}, "the crash should leave covered files behind"
    got = check_store(tmp_path, acked)
    # Later writes work and recover the unacknowledged batch by idempotent re-ingest.
    store = MarketStore(tmp_path, compact_after=3)
    for i in range(12):
        store.write_bars(FRAME.slice(30 * i, 30))
    assert store.get_bars("SYN/USD").height == 360 >= got.height


@pytest.mark.slow
def test_sigkill_at_random_moments(tmp_path: Path) -> None:
    rng = random.Random(11)  # noqa: S311 (kill timings, not security)
    acked: list[int] = []
    first = 0
    for _ in range(8):
        new = killed_after(tmp_path, first, 40, rng.uniform(0.8, 2.5))
        acked += new
        check_store(tmp_path, acked)
        first = (max(new) + 1) if new else first
        if first >= 360:
            break
    assert acked
