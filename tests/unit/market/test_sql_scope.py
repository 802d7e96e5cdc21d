"""Every table reference is resolved in its own scope (issue #13, item 1).

A CTE is visible only in the query that declares it and below (and, in its WITH list, only
after its declaration unless RECURSIVE); anything else must be one of the views or refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core import QueryRejected, SqlExplorer
from tests.unit.market.helpers import explorer_over


@pytest.fixture(scope="module")
def explorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlExplorer]:
    yield from explorer_over(tmp_path_factory.mktemp("scope"), 500)


LEAK = 'SELECT y.* FROM (WITH "{0}" AS (SELECT 1 AS a) SELECT a FROM "{0}") x, "{0}" y'

HOSTILE = [
    LEAK.format("duckdb_views"),
    LEAK.format("duckdb_tables"),
    LEAK.format("sqlite_master"),
    LEAK.format("pragma_database_list"),
    LEAK.format("information_schema"),
    "SELECT * FROM (WITH duckdb_views AS (SELECT 1 AS a) SELECT a FROM duckdb_views) x, "
    "duckdb_views y",
    # Declared in a scalar subquery, used outside it.
    "SELECT (WITH duckdb_tables AS (SELECT 1) SELECT 1) AS one, * FROM duckdb_tables",
    # Declared in one UNION branch, used in the other.
    "(WITH sqlite_master AS (SELECT 1 AS a) SELECT a FROM sqlite_master) "
    "UNION ALL SELECT 1 FROM sqlite_master",
    # Used in a CTE declared before it.
    "WITH a AS (SELECT * FROM duckdb_views), duckdb_views AS (SELECT 1 AS x) SELECT * FROM a",
    "WITH RECURSIVE a AS (SELECT * FROM duckdb_views), duckdb_views AS (SELECT 1 AS x) "
    "SELECT * FROM a",
    # A non-recursive CTE does not see itself.
    "WITH duckdb_views AS (SELECT * FROM duckdb_views) SELECT * FROM duckdb_views",
    # A derived table's alias is no table.
    "SELECT * FROM (SELECT 1) AS duckdb_views, duckdb_views",
    # Quoted strings and paths are never tables, not even as CTE names.
    "SELECT * FROM '/etc/*'",
    'SELECT * FROM "data/**/*.parquet"',
    'WITH "market/bars/*" AS (SELECT 1 AS a) SELECT a FROM "market/bars/*"',
    "SELECT * FROM (WITH '/etc/passwd' AS (SELECT 1 AS a) SELECT a FROM '/etc/passwd') x, "
    "'/etc/passwd' y",
    "SELECT * FROM pragma_database_list",
    "SELECT * FROM duckdb_settings",
    "SELECT * FROM main.duckdb_views",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM pg_catalog.pg_class",
]


@pytest.mark.parametrize("sql", HOSTILE)
def test_names_outside_their_scope_are_refused(explorer: SqlExplorer, sql: str) -> None:
    with pytest.raises(QueryRejected) as info:
        explorer.run(sql)
    assert info.value.reason == "policy"


LEGIT = [
    ("WITH a AS (SELECT close FROM bars), b AS (SELECT * FROM a) SELECT count(*) AS n FROM b", 500),
    ("SELECT n FROM (WITH t AS (SELECT 500 AS n) SELECT n FROM t) s", 500),
    ("WITH t AS (SELECT 500 AS n) SELECT (SELECT max(n) FROM t) AS n", 500),
    ("WITH t AS (SELECT 500 AS n) SELECT n FROM (SELECT n FROM t) s", 500),
    (
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 500) "
        "SELECT max(n) AS n FROM r",
        500,
    ),
    ("WITH bars AS (SELECT 500 AS n) SELECT n FROM bars", 500),
    ('WITH "duckdb_views" AS (SELECT 500 AS n) SELECT n FROM "duckdb_views"', 500),
    (
        "WITH a AS (SELECT 1 AS k), b AS (WITH c AS (SELECT k FROM a) SELECT k FROM c) "
        "SELECT count(*) * 500 AS n FROM b JOIN a USING (k)",
        500,
    ),
    ("SELECT count(*) AS n FROM bars WHERE ts IN (WITH t AS (SELECT ts FROM bars) FROM t)", 500),
]


@pytest.mark.parametrize(("sql", "n"), LEGIT)
def test_nested_ctes_in_scope_still_work(explorer: SqlExplorer, sql: str, n: int) -> None:
    assert explorer.run(sql)["n"].to_list() == [n]


def test_no_catalog_row_reaches_the_user(explorer: SqlExplorer) -> None:
    """The leak the issue reported: the catalog's view SQL holds absolute paths."""
    root = str(Path(explorer.store.root).parent)
    for sql in HOSTILE:
        with pytest.raises(QueryRejected) as info:
            explorer.run(sql)
        assert root not in str(info.value)
