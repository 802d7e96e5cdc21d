"""Saved SQL Explorer queries on real Delta tables: CRUD, visibility, roles, validation, a
failed write, and the GDPR export and erasure."""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from core.errors import InvalidInput
from core.research.queries import MAX_CHART_BYTES, SavedQueries, SavedQuery
from lakehouse.errors import NotFound, PermissionDenied, StorageError
from tests.integration.research.conftest import Team
from tests.lakehouse_support import PASSWORD, files_containing

ROOT = Path(__file__).resolve().parents[3]
SQL = "SELECT ts, open, high, low, close FROM bars WHERE symbol = 'SP500' ORDER BY ts"
CHART: dict[str, Any] = {
    "version": 1,
    "kind": "Candlesticks",
    "x": "ts",
    "y": ["close"],
    "ohlc": ["open", "high", "low", "close"],
    "overlays": ["Bollinger"],
    "bb_n": 20,
    "bb_k": 2.0,
}


def test_save_list_get_update_and_delete(team: Team) -> None:
    queries = team.services.queries
    saved = queries.save(
        team.alice, "  SP500 candles  ", SQL, description="Daily bars\nwith bands", chart=CHART
    )
    assert isinstance(saved, SavedQuery)
    assert (saved.name, saved.owner, saved.user_id) == (
        "SP500 candles",
        "alice",
        team.alice.user_id,
    )
    assert (saved.sql, saved.chart, saved.shared) == (SQL, CHART, False)
    assert saved.description == "Daily bars\nwith bands"
    assert saved.created_at == saved.updated_at
    assert saved.created_at.tzinfo is not None
    assert queries.get(team.alice, saved.query_id) == saved
    assert queries.list(team.alice) == [saved]

    plain = queries.save(team.alice, "Row counts", "SELECT count(*) AS n FROM bars")
    assert plain.chart is None
    assert plain.description == ""
    assert [q.name for q in queries.list(team.alice)] == ["Row counts", "SP500 candles"]

    changed = queries.update(
        team.alice, saved.query_id, sql=SQL + " DESC", chart=None, description="newer"
    )
    assert (changed.sql, changed.chart, changed.description) == (SQL + " DESC", None, "newer")
    assert (changed.name, changed.created_at) == (saved.name, saved.created_at)
    assert changed.updated_at > saved.updated_at
    assert [q.name for q in queries.list(team.alice)] == ["SP500 candles", "Row counts"]
    # a fresh reader over the same folder sees the same records
    fresh = SavedQueries(team.services.auth.store)
    assert fresh.get(team.alice, saved.query_id) == changed

    queries.delete(team.alice, saved.query_id)
    assert queries.list(team.alice) == [plain]
    with pytest.raises(NotFound):
        queries.get(team.alice, saved.query_id)
    with pytest.raises(NotFound):
        queries.delete(team.alice, saved.query_id)


def test_private_until_shared_and_only_the_owner_changes_it(team: Team) -> None:
    queries = team.services.queries
    mine = queries.save(team.alice, "Alice private", SQL, chart=CHART)
    assert queries.list(team.bob) == []
    with pytest.raises(NotFound, match="not shared with you"):
        queries.get(team.bob, mine.query_id)
    with pytest.raises(NotFound):  # no hint that it exists
        queries.share(team.bob, mine.query_id, True)
    with pytest.raises(NotFound):
        queries.delete(team.bob, mine.query_id)

    shared = queries.share(team.alice, mine.query_id, True)
    assert shared.shared
    bobs = queries.save(team.bob, "Bob private", "SELECT 1 AS one")
    assert [q.name for q in queries.list(team.bob)] == ["Bob private", "Alice private"]
    assert queries.get(team.bob, mine.query_id).owner == "alice"
    assert [q.name for q in queries.list(team.alice)] == ["Alice private"]
    with pytest.raises(PermissionDenied, match="only the owner"):
        queries.update(team.bob, mine.query_id, sql="SELECT 2 AS two")
    with pytest.raises(PermissionDenied, match="only the owner"):
        queries.share(team.bob, mine.query_id, False)
    with pytest.raises(PermissionDenied, match="owner or an admin"):
        queries.delete(team.bob, mine.query_id)
    assert queries.get(team.alice, mine.query_id).sql == SQL  # unchanged by the refusals

    assert not queries.share(team.alice, mine.query_id, False).shared
    assert [q.name for q in queries.list(team.bob)] == ["Bob private"]
    # an admin may delete anyone's query, shared or not
    queries.delete(team.admin, mine.query_id)
    queries.delete(team.admin, bobs.query_id)
    assert team.services.auth.store.saved_queries.read().height == 0
    audit = team.services.auth.store.audit_table.read()
    audit = audit.filter(pl.col("action") == "saved_query_deleted").sort("ts")
    assert audit["user_id"].to_list() == [team.alice.user_id, team.bob.user_id]
    assert audit["actor_id"].to_list() == [team.admin.user_id] * 2
    assert mine.query_id in audit["detail"][0]


def test_names_are_unique_per_owner_ignoring_case(team: Team) -> None:
    queries = team.services.queries
    first = queries.save(team.alice, "Daily VWAP", SQL)
    with pytest.raises(InvalidInput, match="already have a saved query named 'daily vwap'"):
        queries.save(team.alice, "daily vwap", SQL)
    other = queries.save(team.alice, "Other", SQL)
    with pytest.raises(InvalidInput, match="already have"):
        queries.update(team.alice, other.query_id, name="DAILY vwap")
    assert queries.update(team.alice, first.query_id, name="Daily vwap").name == "Daily vwap"
    assert queries.save(team.bob, "DAILY VWAP", SQL).owner == "bob"  # another owner: fine
    assert team.services.auth.store.saved_queries.read().height == 3


def _nan_chart() -> dict[str, Any]:
    return {**CHART, "bb_k": float("nan")}


BAD_INPUT: list[tuple[str, object, str]] = [
    ("name", "", "1 to 100 characters"),
    ("name", "x" * 101, "1 to 100 characters, got 101"),
    ("name", "bad\x07name", "control characters"),
    ("name", 42, "must be text"),
    ("description", "d" * 2001, "at most 2,000 characters"),
    ("description", "bell\x07", "control characters"),
    ("sql", "   ", "the SQL is empty"),
    ("sql", "SELECT 1 AS x -- " + "y" * 100_000, "longer than 100,000 characters"),
    ("sql", "DROP TABLE bars", "would refuse this query: DROP"),
    ("sql", "SELECT * FROM read_csv('/etc/passwd')", "read_csv() is not allowed"),
    ("sql", "SELECT 1; SELECT 2", "only one statement"),
    ("sql", "SELECT * FROM users", "unknown table 'users'"),
    ("sql", "SELEC 1", "could not parse"),
    ("chart", ["Line"], "a dict from the chart builder"),
    ("chart", {"x": "ts"}, "needs its chart kind"),
    ("chart", _nan_chart(), "only text, numbers"),
    ("chart", {**CHART, "when": object()}, "only text, numbers"),
    ("chart", {**CHART, "pad": "p" * MAX_CHART_BYTES}, "at most 8,192 bytes"),
    ("shared", "yes", "true or false"),
]


def test_bad_input_is_refused_and_nothing_is_written(team: Team) -> None:
    queries = team.services.queries
    good = queries.save(team.alice, "Good name", SQL, chart=CHART)
    for field, value, message in BAD_INPUT:
        args: dict[str, Any] = {"name": "Other name", "sql": SQL, "chart": CHART}
        args[field] = value
        with pytest.raises(InvalidInput, match=re.escape(message)) as caught:
            queries.save(team.alice, **args)
        shown = str(caught.value)
        assert str(team.services.settings.data_dir) not in shown  # no server path
        assert "site-packages" not in shown
        with pytest.raises(InvalidInput, match=re.escape(message)):
            queries.update(team.alice, good.query_id, **{field: value})
    assert team.services.auth.store.saved_queries.read().height == 1
    assert queries.get(team.alice, good.query_id) == good


def test_roles_and_accounts_are_checked(team: Team) -> None:
    services = team.services
    queries = services.queries
    viewer = services.auth.register("vera", "vera@example.org", PASSWORD)
    with pytest.raises(PermissionDenied, match="analysts only"):
        queries.save(viewer, "Mine", SQL)
    with pytest.raises(PermissionDenied, match="analysts only"):
        queries.list(viewer)
    saved = queries.save(team.alice, "Shared one", SQL, shared=True)
    with pytest.raises(PermissionDenied):
        queries.get(viewer, saved.query_id)
    # by user id (the alerts evaluator runs a saved query for its rule's owner)
    assert queries.get(team.alice.user_id, saved.query_id) == saved
    assert queries.get(team.bob.user_id, saved.query_id).sql == SQL
    with pytest.raises(PermissionDenied, match="analysts only"):
        queries.get(viewer.user_id, saved.query_id)
    with pytest.raises(NotFound, match="no such user"):
        queries.get("0" * 32, saved.query_id)
    demoted = services.auth.set_role(team.admin, team.bob.user_id, "viewer")
    with pytest.raises(PermissionDenied):
        queries.get(demoted.user_id, saved.query_id)
    services.auth.disable_user(team.admin, team.alice.user_id)
    with pytest.raises(PermissionDenied, match="disabled"):
        queries.get(team.alice.user_id, saved.query_id)
    for bad in ("../../etc/passwd", "", "A" * 32, 7):
        with pytest.raises(NotFound):
            queries.get(team.admin, bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="signed-in user"):
        queries.list(None)  # type: ignore[arg-type]


CHILD = """
import resource, signal, sys
from core.research.queries import SavedQueries
from lakehouse.store import Store
queries = SavedQueries(Store(sys.argv[1], secrets_dir=sys.argv[2]))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (16_384, 16_384))
try:
    queries.save(sys.argv[3], "Too big to write", sys.argv[4])
except Exception as exc:
    print(type(exc).__name__)
else:
    print("saved")
"""


def test_a_failed_write_leaves_nothing_and_the_table_keeps_working(team: Team) -> None:
    settings = team.services.settings
    queries = team.services.queries
    before = queries.save(team.alice, "Before", SQL)
    noise = secrets.token_urlsafe(60_000)  # incompressible: its Parquet file passes the limit
    big_sql = f"SELECT '{noise}' AS noise"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(settings.lakehouse_dir), str(settings.secrets_dir),
         team.alice.user_id, big_sql],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == StorageError.__name__
    rows = team.services.auth.store.saved_queries.read()
    assert rows["name"].to_list() == ["Before"]
    assert queries.list(team.alice) == [before]
    after = queries.save(team.alice, "Too big to write", big_sql)  # no limit here: it lands
    assert queries.get(team.alice, after.query_id).sql == big_sql


def test_in_the_gdpr_export_and_gone_after_erasure(team: Team) -> None:
    services = team.services
    queries = services.queries
    marker = "Zqv7 basis monitor"
    mine = queries.save(
        team.alice, marker, SQL, description="kept for the export", chart=CHART, shared=True
    )
    queries.save(team.bob, "Bob keeps this", "SELECT 1 AS one", shared=True)
    blob = services.accounts.export_user_data(team.alice.user_id)
    zf = zipfile.ZipFile(io.BytesIO(blob))
    [row] = json.loads(zf.read("saved_queries.json"))
    assert (row["query_id"], row["name"], row["sql"]) == (mine.query_id, marker, SQL)
    assert json.loads(row["chart"]) == CHART
    assert row["shared"] is True
    assert marker in zf.read("saved_queries.csv").decode()
    assert json.loads(zf.read("manifest.json"))["files"]["saved_queries"] == 1

    lakehouse_dir = services.settings.lakehouse_dir
    assert files_containing(lakehouse_dir, marker)
    services.accounts.erase_user(team.alice.user_id, acting_user=team.admin)
    rows = services.auth.store.saved_queries.read()
    assert rows.filter(pl.col("user_id") == team.alice.user_id).height == 0
    assert [q.name for q in queries.list(team.bob)] == ["Bob keeps this"]
    with pytest.raises(NotFound):
        queries.get(team.bob, mine.query_id)
    services.accounts.maintain()
    assert files_containing(lakehouse_dir, marker) == []
