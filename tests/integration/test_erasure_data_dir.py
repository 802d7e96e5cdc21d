"""GDPR export and erasure cover every file under the data dir, not only the lakehouse.

A real data dir: the market store and SQL explorer under `market/`, the accounts lakehouse
under `lakehouse/`, secrets under `secrets/`. The user's SQL history holds their email and
username; after erasure and maintenance, no byte of any file under the data dir does.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from core.config import Settings
from core.data.store import MarketStore
from core.errors import QueryRejected
from core.sql import SqlExplorer
from core.sql_history import QueryHistory
from lakehouse import LakehouseAuthBackend, LakehouseClient, User
from pages._shared.accounts import build_client
from tests.lakehouse_support import PASSWORD, make_admin, make_backend
from tests.unit.market.helpers import bars

NAME = "Quinn_Vexbold"
EMAIL = "quinn.vexbold@example.org"
AGENT = "QuinnBrowser/2.0"


def traces(folder: Path, needles: tuple[str, ...]) -> list[tuple[str, str]]:
    """(file, needle) for every raw occurrence, UTF-8 or UTF-16-LE, any case."""
    found = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes().lower()
        for needle in needles:
            low = needle.lower()
            if low.encode() in data or low.encode("utf-16-le") in data:
                found.append((str(path.relative_to(folder)), needle))
    return found


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"HFT_DATA_DIR": str(tmp_path / "data")})


@pytest.fixture
def backend(settings: Settings) -> LakehouseAuthBackend:
    return make_backend(settings.lakehouse_dir, secrets_dir=settings.secrets_dir)


def run_queries(settings: Settings, user: User) -> None:
    store = MarketStore(settings.market_dir)
    store.write_bars(bars(50))
    sql = SqlExplorer(store)
    try:
        out = sql.run(f"SELECT '{EMAIL}' AS me, '{NAME}' AS who", user=user.user_id)
        assert out["me"][0] == EMAIL
        with pytest.raises(QueryRejected):  # refused queries are kept in the history too
            sql.run(f"SELECT * FROM read_csv('/etc/{NAME}')", user=user.user_id)
        assert len(sql.history(user.user_id)) == 2
    finally:
        sql.close()
        store.close()


def test_export_and_erasure_cover_the_sql_history(
    settings: Settings, backend: LakehouseAuthBackend
) -> None:
    admin = make_admin(backend)
    user = backend.register(NAME, EMAIL, PASSWORD)
    backend.login(NAME, PASSWORD, ip="192.0.2.77", user_agent=AGENT)
    run_queries(settings, user)
    client = build_client(settings, backend)
    assert traces(settings.data_dir, (EMAIL, NAME))  # the scan sees them before erasure

    blob = client.export_user_data(user.user_id, acting_user=user)
    zf = zipfile.ZipFile(io.BytesIO(blob))
    history = zf.read("sql_history.jsonl").decode()
    assert EMAIL in history
    assert NAME in history
    assert [json.loads(line)["ok"] for line in history.splitlines()] == [True, False]
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["user_files"]["sql_history.jsonl"]["source"] == "sql_history"
    assert manifest["user_files"]["sql_history.jsonl"]["bytes"] == len(history.encode())

    client.erase_user(user.user_id, acting_user=admin)
    client.maintain()
    assert traces(settings.data_dir, (EMAIL, NAME, AGENT)) == []
    # The admin's own data is left alone.
    assert traces(settings.data_dir, ("admin1@example.org",))


def test_maintenance_erases_history_written_after_the_erasure(
    settings: Settings, backend: LakehouseAuthBackend
) -> None:
    """A query still running when the account was erased may write history afterwards."""
    admin = make_admin(backend)
    user = backend.register(NAME, EMAIL, PASSWORD)
    client = build_client(settings, backend)
    client.erase_user(user.user_id, acting_user=admin)
    run_queries(settings, user)  # late writes, keyed by the erased id
    client.maintain()
    assert traces(settings.data_dir, (EMAIL, NAME)) == []


def test_erasure_removes_temp_and_rotated_history_files(tmp_path: Path) -> None:
    history = QueryHistory(tmp_path / "h")
    for i in range(401):  # one past the trim point: the file is rewritten
        history.record("u1", f"SELECT {i}", ok=True, rows=1, elapsed=0.0, error=None)
    history.record("u2", "SELECT 'other'", ok=True, rows=1, elapsed=0.0, error=None)
    path = history.path("u1")
    leftovers = [
        path.with_name(f".{path.stem}.1234.tmp"),  # a trim interrupted by a crash
        path.with_name(f"{path.name}.1"),  # a rotated copy
    ]
    for extra in leftovers:
        extra.write_text('{"sql": "SELECT 1"}\n')
    assert len(history.recent("u1", 1000)) == 200
    exported = history.export_user("u1")
    assert list(exported) == ["sql_history.jsonl"]
    assert exported["sql_history.jsonl"] == path.read_bytes()
    assert history.erase_user("u1") == 3
    assert not path.exists()
    assert not any(p.exists() for p in leftovers)
    assert history.recent("u2")
    assert history.export_user("u1") == {}
    assert history.erase_user("u1") == 0


def test_cli_maintenance_also_erases_the_history(
    settings: Settings, backend: LakehouseAuthBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hfthot lakehouse maintain` builds its client with the same user-data sources."""
    from core.cli import lakehouse as cli

    admin = make_admin(backend)
    user = backend.register(NAME, EMAIL, PASSWORD)
    LakehouseClient(backend.root, backend=backend).erase_user(user.user_id, acting_user=admin)
    run_queries(settings, user)
    monkeypatch.setenv("HFT_DATA_DIR", str(settings.data_dir))
    assert cli.run_maintain(None) == 0
    assert traces(settings.data_dir, (EMAIL, NAME)) == []


def test_the_app_client_is_built_with_the_history_source(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pages/_shared/accounts.get_client (the app's singleton) registers the history."""
    from pages._shared import accounts
    from pages._shared.services import get_services

    monkeypatch.setenv("HFT_DATA_DIR", str(settings.data_dir))
    get_services.clear()
    try:
        client = accounts.get_client()
        sources = client.user_data
        assert [s.name for s in sources] == ["sql_history", "studies"]
        assert isinstance(sources[0], QueryHistory)
        assert sources[0].folder == settings.market_dir / "sql_history"
        assert sources[1].folder == settings.data_dir / "studies"
    finally:
        get_services.clear()
