"""The SQL explorer refuses everything docs/security.md lists, clearly, and stays responsive."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
import pytest

from core import QueryRejected, SqlExplorer
from core.data.store import MarketStore
from core.errors import InvalidInput, RejectedError
from tests.unit.market.helpers import bars


@pytest.fixture(scope="module")
def explorer(tmp_path_factory: pytest.TempPathFactory) -> SqlExplorer:
    root = tmp_path_factory.mktemp("sql")
    # An accounts table beside the market data: it must stay unreachable.
    lake = root / "lakehouse" / "users"
    lake.mkdir(parents=True)
    pl.DataFrame({"username": ["alice"], "email": ["a@example.com"]}).write_parquet(
        lake / "part-0.parquet"
    )
    store = MarketStore(root / "market")
    store.write_bars(bars(2000))
    return SqlExplorer(store)


CORPUS = [
    ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
    ("SELECT * FROM read_csv_auto('/etc/passwd')", "read_csv"),
    ("SELECT * FROM '/etc/passwd'", "unknown table"),
    ("COPY (SELECT * FROM bars) TO '/tmp/hfthot-leak.csv'", "COPY"),
    ("COPY bars TO '/tmp/hfthot-leak.parquet' (FORMAT parquet)", "COPY"),
    ("ATTACH '/tmp/hfthot.db' AS x", "ATTACH"),
    ("INSTALL httpfs", "INSTALL"),
    ("LOAD httpfs", "LOAD"),
    ("SET threads = 64", "SET"),
    ("SET enable_external_access = true", "SET"),
    ("PRAGMA version", "PRAGMA"),
    ("CREATE SECRET (TYPE s3, KEY_ID 'x', SECRET 'y')", "CREATE SECRET"),
    ("SELECT getenv('HOME')", "getenv"),
    ("SELECT current_setting('memory_limit')", "current_setting"),
    ("SELECT 1; SELECT 2", "one statement"),
    ("SELECT 1; DROP VIEW bars", "one statement"),
    ("SELECT * FROM duckdb_settings()", "duckdb_settings"),
    ("SELECT * FROM glob('/etc/*')", "glob"),
    ("SELECT * FROM read_parquet('../lakehouse/users/part-0.parquet')", "read_parquet"),
    ("SELECT * FROM users", "unknown table"),
    ("SELECT * FROM main.bars", "plain view names"),
    ("CREATE TABLE t AS SELECT 1", "CREATE"),
    ("DELETE FROM bars", "DELETE"),
    ("WITH x AS (SELECT 1) INSERT INTO bars SELECT * FROM x", "INSERT"),
    ("DESCRIBE bars", "DESCRIBE"),
    ("", "empty"),
]


@pytest.mark.parametrize(("sql", "needle"), CORPUS)
def test_refusal_corpus(explorer: SqlExplorer, sql: str, needle: str) -> None:
    with pytest.raises(QueryRejected, match=needle) as info:
        explorer.run(sql)
    assert isinstance(info.value, RejectedError)
    assert not Path("/tmp/hfthot-leak.csv").exists()  # noqa: S108 (checks nothing leaked)


def test_runaway_queries_time_out_and_the_process_stays_responsive(explorer: SqlExplorer) -> None:
    cases = [
        "SELECT count(*) FROM bars a, bars b, bars c, bars d",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT max(n) FROM t",
    ]
    for sql in cases:
        t0 = time.monotonic()
        with pytest.raises(QueryRejected, match="timeout") as info:
            explorer.run(sql, timeout_s=0.5)
        assert info.value.reason == "timeout"
        assert time.monotonic() - t0 < 30
        assert explorer.run("SELECT count(*) AS n FROM bars")["n"][0] == 2000


def test_row_cap_and_limits(explorer: SqlExplorer) -> None:
    result = explorer.execute("SELECT * FROM bars", max_rows=10)
    assert result.frame.height == 10
    assert result.truncated
    small = explorer.execute("SELECT * FROM bars LIMIT 5", max_rows=10)
    assert small.frame.height == 5
    assert not small.truncated
    union = explorer.run("SELECT 1 AS x UNION ALL SELECT 2 UNION ALL SELECT 3", max_rows=2)
    assert union.height == 2
    with pytest.raises(InvalidInput):
        explorer.run("SELECT 1", max_rows=0)
    with pytest.raises(InvalidInput):
        explorer.run("SELECT 1", timeout_s=0)


def test_query_errors_are_reported(explorer: SqlExplorer) -> None:
    with pytest.raises(QueryRejected, match="no_such_column") as info:
        explorer.run("SELECT no_such_column FROM bars")
    assert info.value.reason == "error"
    with pytest.raises(QueryRejected, match="parse"):
        explorer.run("SELECT FROM WHERE (")


def test_views_and_history(explorer: SqlExplorer) -> None:
    daily = explorer.run("SELECT symbol, day, vwap FROM daily ORDER BY day")
    assert daily.height >= 2
    assert set(explorer.schema()) == {"bars", "trades", "daily", "book_snapshots", "book_deltas"}
    explorer.clear_history("alice")
    explorer.run("SELECT 42 AS answer", user="alice")
    with pytest.raises(QueryRejected):
        explorer.run("PRAGMA version", user="alice")
    hist = explorer.history("alice")
    assert [h["ok"] for h in hist] == [False, True]
    assert hist[1]["sql"] == "SELECT 42 AS answer"
    assert explorer.history("bob") == []
    explorer.clear_history("alice")
    assert explorer.history("alice") == []
    # User ids never become paths.
    explorer.run("SELECT 1", user="../../etc/passwd")
    assert all(p.parent == explorer.history_dir for p in explorer.history_dir.iterdir())


def test_the_connection_itself_is_locked_down(explorer: SqlExplorer, tmp_path: Path) -> None:
    """Second layer: even SQL that got past the parser could not reach files or settings."""
    import duckdb

    from core.data.analytics import Datasets, connect

    store = explorer.store
    lake = store.root.parent / "lakehouse" / "users" / "part-0.parquet"
    con = connect(store, Datasets(store))
    try:
        attempts = [
            "SELECT * FROM read_csv('/etc/passwd')",
            f"SELECT * FROM read_parquet('{lake}')",
            f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'",
            f"ATTACH '{tmp_path / 'x.db'}'",
            "INSTALL httpfs",
            "LOAD httpfs",
        ]
        for sql in attempts:
            with pytest.raises(duckdb.Error):
                con.sql(sql).fetchall()
        with pytest.raises(duckdb.Error, match="lock"):
            con.execute("SET enable_external_access = true")
        settings = dict(
            con.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN "
                "('enable_external_access', 'autoload_known_extensions', "
                "'autoinstall_known_extensions', 'lock_configuration', 'threads')"
            ).fetchall()
        )
        assert settings == {
            "enable_external_access": "false",
            "autoload_known_extensions": "false",
            "autoinstall_known_extensions": "false",
            "lock_configuration": "true",
            "threads": "2",
        }
        assert con.sql("SELECT count(*) FROM bars").fetchall() == [(2000,)]
    finally:
        con.close()
    assert not (tmp_path / "out.csv").exists()
