"""The hot-tier access recorder (core.data.trace) and its cache replay."""

from __future__ import annotations

import gzip
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from core.config import Settings
from core.data.hot import ENTRY_OVERHEAD, frame_bytes
from core.data.store import TAIL_MIN, MarketStore
from core.data.trace import AccessTrace, load, read_key, replay
from core.errors import InvalidInput
from tests.unit.market.helpers import bars


@dataclass(frozen=True)
class Key:
    venue: str = "synthetic"
    symbol: str = "SYN/USD"
    timeframe: str = "1m"
    kind: str = "bars"


FRAME = pl.DataFrame({"x": [1.0, 2.0, 3.0]})


def test_off_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HFT_ACCESS_TRACE", raising=False)
    assert Settings.from_env({}).access_trace is None
    store = MarketStore(tmp_path / "m")
    store.write_bars(bars(50))
    store.get_bars("SYN/USD")
    assert not store.trace.enabled
    assert store.trace.records == 0
    store.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_settings_read_the_trace_variables(tmp_path: Path) -> None:
    s = Settings.from_env(
        {"HFT_ACCESS_TRACE": str(tmp_path / "t.jsonl"), "HFT_ACCESS_TRACE_MB": "3"}
    )
    assert s.access_trace == (tmp_path / "t.jsonl").resolve()
    assert s.access_trace_mb == 3
    with pytest.raises(InvalidInput, match="HFT_ACCESS_TRACE_MB"):
        Settings.from_env({"HFT_ACCESS_TRACE_MB": "0"})


@pytest.mark.parametrize("name", ["trace.jsonl", "trace.jsonl.gz"])
def test_store_records_reads_and_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    path = tmp_path / name
    monkeypatch.setenv("HFT_ACCESS_TRACE", str(path))
    store = MarketStore(tmp_path / "m")
    assert store.trace.enabled
    store.write_bars(bars(120))
    first = store.get_bars("SYN/USD", timeframe="5m")
    again = store.get_bars("SYN/USD", timeframe="5m")
    assert again is first
    store.get_bars("SYN/USD", cache=False)  # bypasses the hot tier: not recorded
    store.get_bars("NOPE/USD")  # unknown symbol: no hot-tier access
    store.write_bars(
        bars(10, symbol="SYN/USD", seed=3).with_columns(pl.col("close") + 1, pl.col("high") + 1)
    )
    store.get_bars("SYN/USD", timeframe="5m")
    store.get_bars("SYN/USD", last=50)
    store.get_bars("SYN/USD", last=70)  # the same cached tail
    store.close()
    store.trace.close()
    if name.endswith(".gz"):
        with gzip.open(path, "rt") as f:
            assert f.readline().startswith('{"op":"open"')
    recs = load(path)
    ops = [(r["op"], r.get("hit"), r.get("ver")) for r in recs]
    assert ops == [
        ("open", None, None),
        ("w", None, 1),
        ("r", False, 1),
        ("r", True, 1),
        ("w", None, 2),
        ("r", False, 2),
        ("r", False, 2),
        ("r", True, 2),
        ("close", None, None),
    ]
    assert [r.get("n") for r in recs if r["op"] == "r"] == [None, None, None, TAIL_MIN, TAIL_MIN]
    read = recs[2]
    assert (read["v"], read["y"], read["tf"], read["lo"], read["hi"]) == (
        "synthetic",
        "SYN/USD",
        "5m",
        None,
        None,
    )
    assert read["b"] == frame_bytes(first)
    assert read["s"] is None
    assert recs[-1]["records"] == 8
    assert recs[-1]["dropped"] == 0
    ts = [r["t"] for r in recs if "t" in r]
    assert ts == sorted(ts)


def test_ranges_and_session_label(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.jsonl"
    monkeypatch.setenv("HFT_ACCESS_TRACE", str(path))
    store = MarketStore(tmp_path / "m")
    store.write_bars(bars(120))
    seen: list[str | None] = []

    def as_user() -> None:
        from core.data.trace import set_session

        set_session("alice")
        store.get_bars("SYN/USD", "2024-01-30T22:30:00Z", "2024-01-30T23:00:00Z")
        seen.append("done")

    t = threading.Thread(target=as_user)
    t.start()
    t.join()
    store.trace.close()
    read = next(r for r in load(path) if r["op"] == "r")
    assert read["s"] == "alice"
    assert read["lo"] == 1706653800000000
    assert read["hi"] == 1706655600000000
    assert seen == ["done"]


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    rec = AccessTrace(path, buffer_records=7)
    threads, per = 8, 400

    def work(i: int) -> None:
        key = Key(symbol=f"S{i}")
        for n in range(per):
            if n % 4 == 0:
                rec.write(key, n)
            else:
                rec.read(key, "1m", n, n + 1, 0, FRAME, n % 2 == 0)

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    rec.close()
    lines = path.read_text().splitlines()
    recs = [json.loads(line) for line in lines]
    body = [r for r in recs if r["op"] in ("r", "w")]
    assert len(body) == threads * per
    for i in range(threads):
        mine = [r for r in body if r["y"] == f"S{i}"]
        # Each thread's own records stay in its order.
        assert [r.get("lo", r.get("ver")) for r in mine] == list(range(per))
    assert recs[-1] == {"op": "close", "records": threads * per + 1, "dropped": 0}


def test_size_bound_stops_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    rec = AccessTrace(path, max_bytes=2_000, buffer_records=3)
    for n in range(200):
        rec.read(Key(), "1m", n, None, 0, FRAME, False)
    rec.close()
    body = path.read_text()
    closing = body.splitlines()[-1]
    assert len(body) - len(closing) - 1 <= 2_000
    end = json.loads(closing)
    assert end["dropped"] > 0
    assert end["records"] + end["dropped"] == 201  # the open record counts
    assert len(body.splitlines()) == end["records"] + 1


def test_buffered_records_reach_the_file_without_a_close(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    rec = AccessTrace(path, flush_s=0.2)
    rec.read(Key(), "1m", None, None, 0, FRAME, False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and '"op":"r"' not in (
        path.read_text() if path.exists() else ""
    ):
        time.sleep(0.05)
    assert [r["op"] for r in load(path)] == ["open", "r"]
    rec.close()


def test_never_raises_into_the_store(tmp_path: Path) -> None:
    target = tmp_path / "a-dir"
    target.mkdir()  # a directory: the append fails
    rec = AccessTrace(target, buffer_records=1)
    rec.read(Key(), "1m", None, None, 0, FRAME, False)
    rec.write(Key(), 1)
    rec.close()
    assert rec.error is not None
    assert not rec.enabled


def test_bad_trace_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"op":"open"}\nnot json\n')
    with pytest.raises(InvalidInput, match=r"t.jsonl:2"):
        load(path)
    with pytest.raises(InvalidInput, match="no trace file"):
        load(tmp_path / "missing.jsonl")


def _r(symbol: str, ver: int = 0, b: int = 100) -> dict[str, object]:
    return {
        "op": "r",
        "v": "x",
        "y": symbol,
        "tf": "1m",
        "lo": None,
        "hi": None,
        "ver": ver,
        "b": b,
    }


@pytest.mark.parametrize("policy", ["s3fifo", "lru"])
def test_replay_hand_made_trace(policy: str) -> None:
    w = 100 + ENTRY_OVERHEAD
    trace = [
        {"op": "open"},
        _r("A"),  # miss
        _r("B"),  # miss
        _r("A"),  # hit
        _r("A"),  # hit
        _r("B"),  # hit
        {"op": "w", "v": "x", "y": "A", "tf": "1m", "ver": 1},
        _r("A", ver=1),  # miss: new version
        _r("A", ver=1),  # hit
        _r("B"),  # hit: the write touched A only
        _r("C", b=10 * w),  # miss: larger than the whole budget, never cached
        _r("B"),  # hit
    ]
    res = replay(trace, capacity=4 * w, policy=policy)
    assert (res.hits, res.misses, res.writes) == (6, 4, 1)
    assert res.hit_rate == pytest.approx(0.6)
    assert read_key(_r("A", ver=3)) == "x|A|1m|None|None|None|3"
    assert read_key({**_r("A", ver=3), "n": 32768}) == "x|A|1m|None|None|32768|3"


def test_replay_budget_decides(tmp_path: Path) -> None:
    # Three entries cycling through room for two: LRU misses every time.
    cycle = [_r(s) for s in "ABC"] * 20
    w = 100 + ENTRY_OVERHEAD
    assert replay(cycle, 3 * w, "lru").hit_rate == pytest.approx(57 / 60)
    assert replay(cycle, 2 * w, "lru").hits == 0
    with pytest.raises(InvalidInput):
        replay(cycle, 0)


def _write_trace(path: Path, records: list[dict[str, object]]) -> None:
    body = "".join(json.dumps(r) + "\n" for r in records)
    path.write_bytes(gzip.compress(body.encode()))


META = {
    "op": "meta",
    "recorded": "2026-11-25T04:00:00+00:00",
    "by": "scripts/record_trace.py",
    "commit": "abc1234",
    "knobs": {"users": 2, "minutes": 1, "seed": 1, "symbols": 3, "days": 2, "app_cache_mb": 8},
    "data": {
        "memory_bytes": 40 * (100 + ENTRY_OVERHEAD),
        "disk_bytes": 20 * (100 + ENTRY_OVERHEAD),
    },
}


def test_cli_replays_a_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.cli import main

    path = tmp_path / "t.jsonl.gz"
    _write_trace(path, [META, *([_r(s) for s in "ABCD"] * 5)])
    assert main(["trace", "replay", str(path)]) == 0  # 10% of 40 entries: room for 4
    out = capsys.readouterr().out
    assert "20 reads (4 distinct)" in out
    assert "no cache can beat 80.0%" in out
    assert "s3fifo   80.0%" in out
    assert main(["trace", "replay", str(path), "--budget-mb", "0.0001"]) == 0
    assert "lru       0.0%" in capsys.readouterr().out
    empty = tmp_path / "empty.jsonl.gz"
    _write_trace(empty, [META])
    assert main(["trace", "replay", str(empty)]) == 1
    assert "no reads" in capsys.readouterr().err


def test_bench_paragraph_of_a_recorded_trace(tmp_path: Path) -> None:
    from benchmarks.bench_store import recorded_trace_lines

    assert "No recorded trace" in recorded_trace_lines(tmp_path)[0]
    _write_trace(tmp_path / "small.jsonl.gz", [META, *([_r(s) for s in "ABCD"] * 5)])
    text = recorded_trace_lines(tmp_path)[0]
    assert "recorded on 2026-11-25" in text
    assert "20 hot-tier reads, 4 distinct, 0 writes" in text
    assert "**S3-FIFO 80.0%**, plain LRU 80.0%" in text  # room for all 4 in memory
    assert "S3-FIFO 0.0%, LRU 0.0%" in text  # 10% of the disk size: room for 2 of 4, cycling
    assert "**NOT met**" in text
