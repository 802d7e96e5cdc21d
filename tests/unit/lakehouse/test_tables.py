"""The single writer per table: group commit, failure propagation, idle exit, schemas."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import time
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from lakehouse import StorageError
from lakehouse import tables as t


def _event(i: int) -> dict[str, object]:
    now = dt.datetime.now(dt.UTC)
    return {"event_id": f"e{i}", "ts": now, "date": now.date(), "action": "a", "outcome": "success"}


def test_group_commit_batches_concurrent_appends(tmp_path: Path) -> None:
    tab = t.Table(tmp_path, t.AUDIT)
    start = tab.latest_version()
    threads = [threading.Thread(target=tab.append, args=([_event(i)],)) for i in range(64)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    df = tab.read()
    assert df.height == 64
    assert df["event_id"].n_unique() == 64
    assert tab.latest_version() - start < 64  # fewer commits than events


def test_failed_commit_reaches_every_waiter(tmp_path: Path) -> None:
    tab = t.Table(tmp_path, t.AUDIT)
    shutil.rmtree(tab.path)
    tab.path.write_text("not a table")
    errors: list[BaseException] = []

    def go(i: int) -> None:
        try:
            tab.append([_event(i)])
        except StorageError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(errors) == 8


def test_idle_writer_exits_and_restarts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(t, "WORKER_IDLE_S", 0.05)
    tab = t.Table(tmp_path, t.AUDIT)
    tab.append([_event(1)])
    deadline = time.monotonic() + 5
    while tab._worker is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert tab._worker is None
    tab.append([_event(2)])
    assert tab.read().height == 2


def test_writer_lock_is_reentrant(tmp_path: Path) -> None:
    tab = t.Table(tmp_path, t.USERS)
    with tab.writer(), tab.writer():
        tab.append_now(t.to_arrow(t.USERS, [{"user_id": "u" * 32, "username": "x"}]))
    assert tab.read().height == 1


def test_schemas_use_utc_timestamps_and_keep_personal_columns_out_of_stats(
    tmp_path: Path,
) -> None:
    personal = {"username", "username_key", "email", "ip", "user_agent", "detail", "key_hint"}
    for spec in t.ALL_SPECS:
        tab = t.Table(tmp_path, spec)
        for field in spec.schema:
            if str(field.type).startswith("timestamp"):
                assert str(field.type) == "timestamp[us, tz=UTC]", (spec.name, field.name)
        config = DeltaTable(str(tab.path)).metadata().configuration
        stats = set(config["delta.dataSkippingStatsColumns"].split(","))
        assert stats == set(spec.stats_columns)
        assert not stats & personal, spec.name
        assert str(tab.read().schema.get("ts", pl.Datetime("us", "UTC"))) in (
            "Datetime(time_unit='us', time_zone='UTC')",
        )
