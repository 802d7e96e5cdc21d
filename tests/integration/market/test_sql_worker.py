"""The worker process itself is locked down: sandbox settings, OS limit, no app environment."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.data.analytics import Datasets
from core.data.store import MarketStore
from core.sql_worker import HEADROOM_MB, Worker, from_ipc, to_ipc
from tests.unit.market.helpers import bars


@pytest.fixture
def worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Worker:
    monkeypatch.setenv("HFT_SECRET_PROBE", "do-not-leak")
    store = MarketStore(tmp_path / "market")
    store.write_bars(bars(100))
    w = Worker.start(256, 2)
    w.wait_ready()
    inputs = Datasets(store).inputs()
    names = list(inputs.tables)
    header, _ = w.request(
        {"op": "views", "spec": inputs.spec, "tables": names},
        [to_ipc(inputs.tables[n]) for n in names],
        time.monotonic() + 30,
    )
    assert header["ok"], header
    yield w  # type: ignore[misc]
    w.kill()


def ask(w: Worker, sql: str) -> list[dict[str, object]]:
    header, payloads = w.request(
        {"op": "query", "sql": sql, "max_rows": 1000, "max_bytes": 2**20}, (), time.monotonic() + 30
    )
    assert header["ok"], header
    return from_ipc(payloads[0]).to_pylist()


def test_worker_connection_is_sandboxed(worker: Worker, tmp_path: Path) -> None:
    # Straight to the worker, past the parser check: the second layer must hold alone.
    rows = ask(
        worker,
        "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', "
        "'autoload_known_extensions', 'autoinstall_known_extensions', 'lock_configuration', "
        "'memory_limit')",
    )
    settings = {r["name"]: r["value"] for r in rows}
    assert settings["enable_external_access"] == "false"
    assert settings["autoload_known_extensions"] == "false"
    assert settings["autoinstall_known_extensions"] == "false"
    assert settings["lock_configuration"] == "true"
    assert settings["memory_limit"].startswith(("244", "256"))
    assert ask(worker, "SELECT count(*) AS n FROM bars") == [{"n": 100}]
    for sql in (
        "SELECT * FROM read_csv('/etc/passwd')",
        f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'",
        "SET enable_external_access = true",
        "INSTALL httpfs",
    ):
        header, _ = worker.request(
            {"op": "query", "sql": sql, "max_rows": 10, "max_bytes": 2**20},
            (),
            time.monotonic() + 30,
        )
        assert not header["ok"], sql
    assert not (tmp_path / "out.csv").exists()


def test_worker_has_the_os_limit_and_none_of_the_app_environment(worker: Worker) -> None:
    pid = worker.proc.pid
    limits = Path(f"/proc/{pid}/limits").read_text()
    line = next(x for x in limits.splitlines() if x.startswith("Max data size"))
    assert str((256 + HEADROOM_MB) * 2**20) in line
    environ = Path(f"/proc/{pid}/environ").read_bytes()
    assert b"HFT_SECRET_PROBE" not in environ
