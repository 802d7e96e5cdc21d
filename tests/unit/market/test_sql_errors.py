"""Every SQL failure is a clean, typed error that says what to change (issue #13, item 3)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core import QueryRejected, SqlExplorer
from core.data.store import MarketStore
from core.errors import HftError
from tests.unit.market.helpers import bars, explorer_over


@pytest.fixture(scope="module")
def explorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlExplorer]:
    yield from explorer_over(tmp_path_factory.mktemp("errors"), 300)


def outcome(explorer: SqlExplorer, sql: str) -> QueryRejected | None:
    """The QueryRejected `sql` raised, or None when it ran (anything else fails the test)."""
    try:
        explorer.run(sql)
    except QueryRejected as exc:
        return exc
    return None


def test_deep_parentheses_say_flatten(explorer: SqlExplorer) -> None:
    sql = "SELECT " + "(" * 45 + "1" + ")" * 45
    with pytest.raises(QueryRejected, match=r"levels deep") as info:
        explorer.run(sql)
    assert "flatten" in str(info.value)
    assert explorer.run("SELECT " + "(" * 10 + "1" + ")" * 10 + " AS x")["x"][0] == 1


def test_long_expression_chains_are_refused_cleanly(explorer: SqlExplorer) -> None:
    for sql in (
        "SELECT " + " + ".join(["1"] * 5000),
        "SELECT " + "NOT " * 3000 + "true",
        "SELECT " + " || ".join(["'a'"] * 5000),
    ):
        exc = outcome(explorer, sql)
        if exc is not None:
            assert exc.reason in {"policy", "error"}
            assert "Traceback" not in str(exc)


def test_duplicate_column_names_are_made_unique(explorer: SqlExplorer) -> None:
    result = explorer.execute("SELECT * FROM bars a, bars b LIMIT 1")
    names = result.frame.columns
    assert len(names) == len(set(names))
    assert "close" in names
    assert "close_2" in names
    assert any("close_2" in note for note in result.notes)
    same = explorer.execute("SELECT 1 AS x, 2 AS x, 3 AS x_2")
    assert same.frame.columns == ["x", "x_3", "x_2"]
    assert same.frame.row(0) == (1, 2, 3)


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("SELEC 1", "could not parse"),
        ("SELECT FROM WHERE (", "could not parse"),
        ("selct * from bars", "could not parse"),
        ("SELECT 'unterminated", "could not parse"),
        ("INSERT INTO bars VALUES (1)", "INSERT statements are not allowed"),
        ("UPDATE bars SET close = 1", "UPDATE statements are not allowed"),
        ("DROP VIEW bars", "DROP"),
    ],
)
def test_typos_are_parse_errors_and_statements_are_named(
    explorer: SqlExplorer, sql: str, needle: str
) -> None:
    with pytest.raises(QueryRejected, match=needle):
        explorer.run(sql)


def test_messages_never_show_server_paths(tmp_path: Path) -> None:
    """A DuckDB read error names the Parquet file; the user sees no absolute path."""
    store = MarketStore(tmp_path / "market")
    store.write_bars(bars(300))
    ex = SqlExplorer(store)
    try:
        assert ex.run("SELECT count(*) AS n FROM bars")["n"][0] == 300
        for _, f in store.warm_files("bars"):
            Path(f.path).write_bytes(b"PAR1 this is no longer a parquet file PAR1")
        with pytest.raises(HftError) as info:
            ex.run("SELECT * FROM bars")
        message = str(info.value)
        assert str(tmp_path) not in message
        assert str(tmp_path.resolve()) not in message
        assert "Traceback" not in message
    finally:
        ex.close()


def test_schema_errors_never_show_server_paths(tmp_path: Path) -> None:
    """The page shows schema() failures too: the same scrubbing applies."""
    store = MarketStore(tmp_path / "market")
    store.write_bars(bars(300))
    ex = SqlExplorer(store)
    try:
        for _, f in store.warm_files("bars"):
            Path(f.path).unlink()  # a listed file is gone and stays gone
        with pytest.raises(QueryRejected) as info:
            ex.schema()
        assert str(tmp_path.resolve()) not in str(info.value)
        assert str(tmp_path) not in str(info.value)
    finally:
        ex.close()


def test_a_file_replaced_by_compaction_is_read_again(tmp_path: Path) -> None:
    """Live feeds compact warm files while the explorer reads: a listed file that vanished
    between listing and reading makes the explorer list again, not fail."""
    store = MarketStore(tmp_path / "market")
    store.write_bars(bars(300))
    ex = SqlExplorer(store)
    calls: list[int] = []

    def attempt() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise QueryRejected('IO Error: No files found that match the pattern "x.parquet"')
        return 7

    try:
        assert ex._fresh(attempt) == 7
        assert len(calls) == 2
        with pytest.raises(QueryRejected, match="syntax"):
            ex._fresh(lambda: (_ for _ in ()).throw(QueryRejected("syntax error")))
    finally:
        ex.close()
