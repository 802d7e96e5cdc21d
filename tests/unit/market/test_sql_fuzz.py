"""Fuzzing the SQL explorer (issue #13, item 4).

Random queries from a small grammar over the three views must give either a typed error or
the answer a plain, unrestricted DuckDB connection gives over the same data; hostile
fragments (catalog names, table functions, quoted paths, pragmas, ATTACH/COPY/INSTALL,
comments, semicolons, deep nesting, huge literals) must always be refused; and the explorer
keeps answering. Reproducible: derandomized, no example database.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from core import QueryRejected, SqlExplorer
from core.data.schema import BARS, TRADES
from core.data.store import MarketStore
from core.errors import HftError, InvalidInput
from tests.unit.market.helpers import bars

SETTINGS = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def trades(n: int) -> pl.DataFrame:
    t0 = dt.datetime(2024, 1, 31, tzinfo=dt.UTC)
    return pl.DataFrame(
        {
            "ts": [t0 + dt.timedelta(seconds=7 * i) for i in range(n)],
            "venue": "synthetic",
            "symbol": ["SYN/USD", "ALT/USD"][0:1] * n,
            "price": [100.0 + (i % 17) * 0.25 for i in range(n)],
            "amount": [0.5 + (i % 5) for i in range(n)],
            "side": ["buy" if i % 2 else "sell" for i in range(n)],
            "trade_id": [f"t{i}" for i in range(n)],
        },
        schema=TRADES,
    )


class Pair:
    """The explorer and a plain DuckDB connection over the same rows."""

    def __init__(self, root: Path) -> None:
        self.root = root
        store = MarketStore(root / "market")
        frames = [bars(400, symbol="SYN/USD"), bars(300, symbol="ALT/USD", seed=1)]
        for frame in frames:
            store.write_bars(frame)
        store.buffer_bars(bars(20, symbol="NEW/USD", seed=2))  # buffered rows are in the views
        store.write_trades(trades(200))
        self.explorer = SqlExplorer(store, timeout_s=20)
        self.plain = duckdb.connect()
        all_bars = pl.concat([*frames, bars(20, symbol="NEW/USD", seed=2)]).select(BARS.names())
        self.plain.register("bars", all_bars.to_arrow())
        self.plain.register("trades", trades(200).to_arrow())
        daily = store.rollups.table.drop("pv", "first_ts", "last_ts")
        self.plain.register("daily", daily.to_arrow())

    def reference(self, sql: str) -> pl.DataFrame | None:
        try:
            frame = pl.from_arrow(self.plain.sql(sql).to_arrow_table())
        except duckdb.Error:
            return None
        assert isinstance(frame, pl.DataFrame)
        return frame


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    p = Pair(tmp_path_factory.mktemp("fuzz"))
    yield p  # type: ignore[misc]
    p.explorer.close()
    p.plain.close()


# ------------------------------------------------------------------ grammar

NUMERIC = {
    "bars": ["open", "high", "low", "close", "volume"],
    "daily": ["open", "high", "low", "close", "volume", "vwap"],
    "trades": ["price", "amount"],
}
views = st.sampled_from(sorted(NUMERIC))


@st.composite
def expr(draw: st.DrawFn, view: str, depth: int = 0) -> str:
    if depth >= 3 or draw(st.booleans()):
        if draw(st.integers(0, 3)) == 0:
            return str(draw(st.integers(-5, 5)))
        return draw(st.sampled_from(NUMERIC[view]))
    a = draw(expr(view, depth + 1))
    b = draw(expr(view, depth + 1))
    form = draw(
        st.sampled_from(
            [
                "({} + {})",
                "({} - {})",
                "({} * {})",
                "round({}, 2) + {}",
                "abs({}) - {}",
                "greatest({}, {})",
            ]
        )
    )
    return form.format(a, b)


@st.composite
def core_select(draw: st.DrawFn, aggregate: bool | None = None) -> str:
    view = draw(views)
    e = draw(expr(view))
    where = draw(
        st.sampled_from(
            [
                "",
                " WHERE close > 100",
                " WHERE symbol = 'SYN/USD'",
                " WHERE volume < 3 OR symbol <> 'ALT/USD'",
            ]
        )
    )
    if view == "trades":
        where = where.replace("close", "price").replace("volume", "amount")
    agg = draw(st.booleans()) if aggregate is None else aggregate
    if agg:
        fn = draw(st.sampled_from(["count", "min", "max", "sum", "avg"]))
        return f"SELECT symbol, {fn}({e}) AS v FROM {view}{where} GROUP BY symbol"
    return f"SELECT symbol, {e} AS v FROM {view}{where}"


@st.composite
def query(draw: st.DrawFn) -> tuple[str, int]:
    """A grammar query and its parenthesis nesting depth beyond the core."""
    kind = draw(st.sampled_from(["core", "cte", "sub", "union", "join", "in", "nest", "cte2"]))
    a = draw(core_select())
    if kind == "core":
        return a, 0
    if kind == "cte":
        return f"WITH t AS ({a}) SELECT symbol, v FROM t WHERE v IS NOT NULL", 0
    if kind == "cte2":
        b = draw(core_select(aggregate=True))
        return (
            f"WITH t AS ({a}), u AS (WITH w AS ({b}) SELECT * FROM w) "
            "SELECT t.symbol, t.v - u.v AS v FROM t JOIN u USING (symbol)",
            0,
        )
    if kind == "sub":
        return f"SELECT symbol, v FROM ({a}) s", 0
    if kind == "union":
        b = draw(core_select())
        return f"{a} UNION ALL {b}", 0
    if kind == "join":
        b = draw(core_select(aggregate=True))
        return f"SELECT a.symbol, a.v + b.v AS v FROM ({a}) a JOIN ({b}) b USING (symbol)", 0
    if kind == "in":
        return f"SELECT symbol, v FROM ({a}) s WHERE symbol IN (SELECT symbol FROM daily)", 0
    n = draw(st.integers(1, 60))
    return f"SELECT symbol, {'(' * n}v{')' * n} AS v FROM ({a}) s", n


def outcome(pair: Pair, sql: str) -> tuple[pl.DataFrame | None, HftError | None]:
    """The explorer's answer or typed error (any other exception fails the test)."""
    try:
        return pair.explorer.run(sql), None
    except HftError as exc:
        return None, exc


def depth(sql: str) -> int:
    """Deepest parenthesis nesting (the grammar puts no parenthesis inside quotes)."""
    level = deepest = 0
    for ch in sql:
        level += {"(": 1, ")": -1}.get(ch, 0)
        deepest = max(deepest, level)
    return deepest


def comparable(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


@SETTINGS
@given(q=query())
def test_grammar_queries_are_right_or_a_typed_error(pair: Pair, q: tuple[str, int]) -> None:
    sql, _ = q
    nesting = depth(sql)
    expected = pair.reference(sql)
    got, exc = outcome(pair, sql)
    if exc is not None:
        assert isinstance(exc, QueryRejected), (sql, repr(exc))
        assert str(pair.root) not in str(exc)
        assert expected is None or nesting > 40, (sql, str(exc))
        if nesting > 40:
            assert "flatten" in str(exc)
        return
    assert got is not None
    assert nesting <= 40, sql
    assert expected is not None, sql
    assert_frame_equal(
        comparable(got), comparable(expected), check_dtypes=False, rel_tol=1e-9, abs_tol=1e-9
    )


# ------------------------------------------------------------------ hostile

HOSTILE_SOURCES = [
    "duckdb_views",
    "duckdb_tables()",
    "duckdb_settings()",
    "sqlite_master",
    "pragma_database_list",
    "pragma_database_list()",
    "information_schema.tables",
    "pg_catalog.pg_class",
    "main.bars",
    "'/etc/passwd'",
    '"/etc/passwd"',
    "'data/**/*.parquet'",
    '"data/**/*.parquet"',
    "read_csv('/etc/passwd')",
    "read_text('/etc/passwd')",
    "glob('/etc/*')",
    "query_table('bars')",
    "query('SELECT 1')",
    "parquet_metadata('x.parquet')",
    "sniff_csv('/etc/passwd')",
    "duckdb_functions()",
    "/* c */ duckdb_views",
    "users",
]
HOSTILE_STATEMENTS = [
    "ATTACH '/tmp/x.db' AS x",
    "COPY bars TO '/tmp/hfthot-fuzz.csv'",
    "COPY (SELECT 1) TO '/tmp/hfthot-fuzz.csv'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "PRAGMA database_list",
    "SET enable_external_access = true",
    "RESET lock_configuration",
    "CALL pragma_version()",
    "EXPORT DATABASE '/tmp/hfthot-fuzz'",
    "CREATE TEMP TABLE t AS SELECT 1",
    "DETACH memory",
    "CHECKPOINT",
    "SELECT getenv('HOME')",
    "SELECT current_setting('allowed_directories')",
    "SELECT * FROM bars; DROP VIEW bars",
    "SELECT 1; ATTACH '/tmp/x.db'",
    "SELECT 1 /* ; */; COPY bars TO '/tmp/hfthot-fuzz.csv'",
]


@st.composite
def hostile(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 6))
    src = draw(st.sampled_from(HOSTILE_SOURCES))
    view = draw(views)
    if kind == 0:
        return draw(st.sampled_from(HOSTILE_STATEMENTS))
    if kind == 1:
        return f"SELECT * FROM {src}"
    if kind == 2:
        return f"SELECT * FROM {view} WHERE 1 < (SELECT count(*) FROM {src})"
    if kind == 3:
        name = src.split("(")[0].split(".")[-1].strip("'\"/*c ")
        inner = f'(WITH "{name}" AS (SELECT 1 AS a) SELECT a FROM "{name}") x'
        return f"SELECT * FROM {inner}, {src} y"
    if kind == 4:
        return f"WITH t AS (SELECT * FROM {src}) SELECT * FROM t"
    if kind == 5:
        n = draw(st.integers(41, 400))
        return f"SELECT {'(' * n}1{')' * n}"
    return "SELECT '" + "x" * draw(st.integers(100_001, 150_000)) + "'"


@SETTINGS
@given(sql=hostile())
def test_hostile_queries_are_refused(pair: Pair, sql: str) -> None:
    with pytest.raises(QueryRejected) as info:
        pair.explorer.run(sql)
    assert str(pair.root) not in str(info.value)
    assert not Path("/tmp/hfthot-fuzz.csv").exists()  # noqa: S108 (checks nothing leaked)


@SETTINGS
@given(text=st.text(max_size=200), q=query())
def test_any_text_is_an_answer_or_a_typed_error(pair: Pair, text: str, q: tuple[str, int]) -> None:
    for sql in (text, q[0] + text, text + q[0]):
        _, exc = outcome(pair, sql)
        if exc is not None:
            assert isinstance(exc, QueryRejected | InvalidInput), (sql, repr(exc))
            assert str(pair.root) not in str(exc)


def test_the_explorer_still_answers(pair: Pair) -> None:
    assert pair.explorer.run("SELECT count(*) AS n FROM bars")["n"][0] == 720
    assert pair.explorer.run("SELECT count(*) AS n FROM trades")["n"][0] == 200
