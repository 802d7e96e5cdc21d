"""Runaway SQL is really bounded: worker processes under OS limits (issue #13, item 2).

The two probes the issue measured (36-50 s and 8.2 GB; 3 GB past the timeout) must end within
timeout + 1 s as a typed QueryRejected, neither the app nor the worker may grow past the
memory limit + 256 MB, and the next query must work.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from core import QueryRejected, SqlExplorer
from core.data.store import MarketStore
from tests.unit.market.helpers import bars

LIMIT_MB = 256
TIMEOUT_S = 2.0
PROBES = [
    "SELECT len(list_transform(range(100000000), x -> x * 2))",
    "SELECT repeat('x', 1000000000)",
    "SELECT count(*) FROM bars a, bars b, bars c, bars d",
    "SELECT length(string_agg(repeat('y', 100000), ',')) FROM (SELECT unnest(range(100000)) AS i)",
]


@pytest.fixture
def explorer(tmp_path: Path) -> SqlExplorer:
    store = MarketStore(tmp_path / "market")
    store.write_bars(bars(2000))
    ex = SqlExplorer(store, memory_limit=f"{LIMIT_MB}MB", timeout_s=TIMEOUT_S)
    yield ex  # type: ignore[misc]
    ex.close()


class PeakRss:
    """Samples this process's resident memory every 5 ms while running."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.peak = self.me.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.me.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_runaway_queries_end_in_time_within_memory(explorer: SqlExplorer) -> None:
    assert explorer.run("SELECT count(*) AS n FROM bars")["n"][0] == 2000  # workers warm
    budget = (LIMIT_MB + 256) * 2**20
    for sql in PROBES:
        base = psutil.Process().memory_info().rss
        with PeakRss() as app:
            t0 = time.monotonic()
            with pytest.raises(QueryRejected) as info:
                explorer.run(sql, timeout_s=TIMEOUT_S)
            took = time.monotonic() - t0
        assert info.value.reason in {"timeout", "memory"}, (sql, str(info.value))
        assert took < TIMEOUT_S + 1.0, (sql, took)
        assert app.peak - base < budget, (sql, (app.peak - base) / 2**20)
        t1 = time.monotonic()
        assert explorer.run("SELECT count(*) AS n FROM bars")["n"][0] == 2000
        assert time.monotonic() - t1 < TIMEOUT_S + 1.0
    stats = explorer.worker_stats()
    assert 0 < stats["peak_mb"] < LIMIT_MB + 256, stats


def test_a_one_row_huge_string_is_a_typed_error(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "market")
    store.write_bars(bars(10))
    ex = SqlExplorer(store, memory_limit="1GB", timeout_s=20, max_result_mb=16)
    try:
        with pytest.raises(QueryRejected, match=r"result cap|memory limit") as info:
            ex.run("SELECT repeat('x', 100000000) AS s")
        assert info.value.reason == "memory"
        assert ex.run("SELECT repeat('x', 1000) AS s")["s"][0] == "x" * 1000
    finally:
        ex.close()


def test_concurrent_queries_share_the_pool(explorer: SqlExplorer) -> None:
    results: list[object] = []

    def one(i: int) -> None:
        try:
            frame = explorer.run(f"SELECT {i} AS i, count(*) AS n FROM bars")
            results.append((frame["i"][0], frame["n"][0]))
        except QueryRejected as exc:
            results.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [(i, 2000) for i in range(6)]  # type: ignore[type-var]


def workers_of(pid: int) -> list[int]:
    return [p.pid for p in psutil.Process(pid).children() if "core.sql_worker" in p.cmdline()]


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_close_and_parent_death_leave_no_worker(explorer: SqlExplorer, tmp_path: Path) -> None:
    fresh = SqlExplorer(explorer.store)
    fresh.run("SELECT 1")
    pids = fresh.workers.pids()  # other explorers of this process may hold workers too
    assert pids
    assert set(pids) <= set(workers_of(os.getpid()))
    fresh.close()
    end = time.monotonic() + 5  # SIGKILL is sent at once; the kernel may take a moment
    while time.monotonic() < end and any(running(p) for p in pids):
        time.sleep(0.05)
    assert not any(running(p) for p in pids)

    script = textwrap.dedent(
        f"""
        import sys, time
        from core import SqlExplorer
        from core.data.store import MarketStore
        ex = SqlExplorer(MarketStore({str(tmp_path / "child")!r}))
        ex.run("SELECT 1")
        print("ready", flush=True)
        time.sleep(600)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"ready"
        orphans = workers_of(child.pid)
        assert orphans
        child.send_signal(signal.SIGKILL)
        child.wait()
        end = time.monotonic() + 5
        while time.monotonic() < end and any(psutil.pid_exists(p) for p in orphans):
            time.sleep(0.05)
        assert not any(psutil.pid_exists(p) for p in orphans)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
