"""The sandboxed SQL explorer: `SqlExplorer(store).run(sql, timeout_s=..., max_rows=...)`.

Defence in layers (SECURITY.md, SQL explorer):
1. sqlglot parses the text (DuckDB dialect). Exactly one statement, and it must be
   a SELECT (optionally WITH, UNION, …). Every table it names must be one of the
   views `bars`, `trades`, `daily` or a CTE of the query; table functions
   (read_csv, glob, duckdb_settings, …) and functions that read the environment
   or files (getenv, read_text, …) are refused.
2. The DuckDB connection is fresh per query, in memory, with
   enable_external_access=false, extension autoload/autoinstall off,
   memory_limit and threads set, then lock_configuration=true. It can reach
   only the registered market data: the accounts lakehouse is never attached
   or registered.
3. A watchdog thread calls interrupt() at the timeout; the result is capped at
   max_rows (a LIMIT is added to the outermost query).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from core.data.analytics import VIEWS, Pool
from core.data.store import MarketStore
from core.errors import InvalidInput, QueryRejected
from core.sql_history import QueryHistory

FORBIDDEN_FUNCTIONS = (
    "read_",
    "glob",
    "getenv",
    "current_setting",
    "duckdb_",
    "pragma_",
    "sniff_csv",
    "parquet_",
    "query",
    "iceberg_",
    "delta_scan",
    "sqlite_",
    "postgres_",
    "mysql_",
    "load_",
    "install_",
    "which_secret",
    "json_execute_serialized_sql",
    "enable_",
    "disable_",
    "checkpoint",
    "force_checkpoint",
    "system",
)

EXAMPLES: dict[str, str] = {
    "Daily VWAP and OHLC per symbol (rollups)": (
        "SELECT symbol, day, open, high, low, close, volume, vwap\n"
        "FROM daily\nORDER BY symbol, day DESC\nLIMIT 100"
    ),
    "Bars per series": (
        "SELECT venue, symbol, timeframe, count(*) AS bars, min(ts) AS first, max(ts) AS last\n"
        "FROM bars\nGROUP BY ALL\nORDER BY venue, symbol"
    ),
    "Monthly returns of the S&P 500": (
        "SELECT date_trunc('month', ts) AS month,\n"
        "       last(close ORDER BY ts) / first(open ORDER BY ts) - 1 AS ret\n"
        "FROM bars\nWHERE symbol = 'SP500'\nGROUP BY month\nORDER BY month DESC\nLIMIT 24"
    ),
    "Largest daily ranges": (
        "SELECT symbol, day, (high - low) / open AS range_pct\n"
        "FROM daily\nORDER BY range_pct DESC\nLIMIT 20"
    ),
    "Trades per minute": (
        "SELECT venue, symbol, date_trunc('minute', ts) AS minute, count(*) AS trades,\n"
        "       sum(amount) AS volume\nFROM trades\nGROUP BY ALL\nORDER BY minute DESC\nLIMIT 50"
    ),
}

_DENIED_NODES: tuple[type[exp.Expression], ...] = tuple(
    getattr(exp, name)
    for name in (
        "Insert",
        "Update",
        "Delete",
        "Create",
        "Drop",
        "Alter",
        "Command",
        "Set",
        "Pragma",
        "Copy",
        "Attach",
        "Detach",
        "Use",
        "Merge",
        "Install",
        "Describe",
        "Summarize",
        "Transaction",
        "Commit",
        "Rollback",
        "LoadData",
        "Into",
        "TruncateTable",
        "Export",
    )
    if hasattr(exp, name)
)

_QUERY_ROOTS = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery)


@dataclass(frozen=True, slots=True)
class QueryResult:
    frame: pl.DataFrame
    elapsed_s: float
    truncated: bool
    sql: str


def _first_keyword(sql: str) -> str:
    words = sql.strip().lstrip("(").split(None, 2)
    if not words:
        return ""
    if words[0].upper() == "CREATE" and len(words) > 1:
        return f"CREATE {words[1].upper()}"
    return words[0].upper()


def check(sql: str, extra_tables: frozenset[str] = frozenset()) -> exp.Expression:
    """Parse `sql` and refuse anything but one read-only query over the views."""
    if not isinstance(sql, str) or not sql.strip():
        raise QueryRejected("the query is empty")
    if len(sql) > 100_000:
        raise QueryRejected("the query is longer than 100,000 characters")
    try:
        trees = [t for t in sqlglot.parse(sql, read="duckdb") if t is not None]
    except (ParseError, TokenError) as exc:
        word = _first_keyword(sql)
        if word and word not in {"SELECT", "WITH", "FROM", "VALUES", "("}:
            raise QueryRejected(
                f"{word} statements are not allowed: only one SELECT or WITH query"
            ) from None
        first = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise QueryRejected(f"could not parse the query: {first}", reason="error") from None
    if not trees:
        raise QueryRejected("the query is empty")
    if len(trees) > 1:
        raise QueryRejected(
            f"only one statement is allowed, found {len(trees)}; remove the extra ';' parts"
        )
    tree = trees[0]
    if not isinstance(tree, _QUERY_ROOTS):
        kind = type(tree).__name__.upper()
        if kind in {"COMMAND", "CREATE"} or not kind.isalpha():
            kind = _first_keyword(sql) or kind
        raise QueryRejected(f"{kind} statements are not allowed: only one SELECT or WITH query")
    for node in tree.walk():
        if isinstance(node, _DENIED_NODES):
            kind = type(node).__name__.upper()
            raise QueryRejected(f"{kind} is not allowed inside a query")
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    allowed = set(VIEWS) | ctes | set(extra_tables)
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            fn = table.this.sql_name() if isinstance(table.this, exp.Func) else "this source"
            name = table.this.name if isinstance(table.this, exp.Anonymous) else fn
            raise QueryRejected(
                f"table function {name.lower()}() is not allowed; query the views "
                f"{', '.join(VIEWS)}"
            )
        if table.args.get("db") or table.args.get("catalog"):
            raise QueryRejected(
                f"{table.sql(dialect='duckdb')} is not allowed; use the plain view names "
                f"{', '.join(VIEWS)}"
            )
        if table.name.lower() not in allowed:
            raise QueryRejected(
                f"unknown table {table.name!r}: only the views {', '.join(VIEWS)} can be queried"
            )
    for func in tree.find_all(exp.Func):
        name = (func.name if isinstance(func, exp.Anonymous) else func.sql_name()).lower()
        if any(name.startswith(p) for p in FORBIDDEN_FUNCTIONS):
            raise QueryRejected(f"function {name}() is not allowed in the SQL explorer")
    return tree


def _limited(tree: exp.Expression, cap: int) -> str:
    """The query with a LIMIT of at most `cap` on its outermost level."""
    limit = tree.args.get("limit")
    current: int | None = None
    if isinstance(limit, exp.Limit):
        value = limit.args.get("expression")
        if isinstance(value, exp.Literal) and value.is_int:
            current = int(value.this)
    if current is None or current > cap:
        tree = tree.copy()
        if isinstance(tree, exp.Subquery):
            tree = exp.select("*").from_(tree)
        tree.set("limit", exp.Limit(expression=exp.Literal.number(cap)))
    return tree.sql(dialect="duckdb")


class SqlExplorer:
    """Run one read-only SQL query over the market views, safely."""

    def __init__(
        self,
        store: MarketStore,
        *,
        memory_limit: str = "1GB",
        threads: int = 2,
        timeout_s: float = 10.0,
        max_rows: int = 100_000,
        history_dir: Path | None = None,
    ) -> None:
        self.store = store
        self.memory_limit = memory_limit
        self.threads = threads
        self.timeout_s = timeout_s
        self.max_rows = max_rows
        self.history_dir = history_dir or store.root / "sql_history"
        self.queries = QueryHistory(self.history_dir)
        self._pool = Pool(store, size=2, memory_limit=memory_limit, threads=threads)

    def run(
        self,
        sql: str,
        *,
        timeout_s: float | None = None,
        max_rows: int | None = None,
        user: str | None = None,
    ) -> pl.DataFrame:
        return self.execute(sql, timeout_s=timeout_s, max_rows=max_rows, user=user).frame

    def execute(
        self,
        sql: str,
        *,
        timeout_s: float | None = None,
        max_rows: int | None = None,
        user: str | None = None,
    ) -> QueryResult:
        """Run `sql`; raises QueryRejected with a clear message when refused or failed."""
        timeout = self.timeout_s if timeout_s is None else float(timeout_s)
        cap = self.max_rows if max_rows is None else int(max_rows)
        if not timeout > 0:
            raise InvalidInput("timeout_s must be > 0")
        if cap < 1:
            raise InvalidInput("max_rows must be >= 1")
        t0 = time.perf_counter()
        try:
            tree = check(sql)
            frame, truncated = self._run(_limited(tree, cap + 1), timeout, cap)
        except QueryRejected as exc:
            elapsed = time.perf_counter() - t0
            self.store.counters["analytics"].record(int(elapsed * 1e9), False)
            self._remember(user, sql, ok=False, rows=0, elapsed=elapsed, error=str(exc))
            raise
        elapsed = time.perf_counter() - t0
        self.store.counters["analytics"].record(int(elapsed * 1e9), True)
        self._remember(user, sql, ok=True, rows=frame.height, elapsed=elapsed, error=None)
        return QueryResult(frame, elapsed, truncated, sql)

    def _run(self, sql: str, timeout: float, cap: int) -> tuple[pl.DataFrame, bool]:
        self.store.sync()
        with self._pool.connection() as con:
            timer = threading.Timer(timeout, con.interrupt)
            timer.daemon = True
            timer.start()
            try:
                table = con.sql(sql).to_arrow_table()
            except duckdb.InterruptException:
                raise QueryRejected(
                    f"the query ran longer than the {timeout:g} s timeout and was stopped; "
                    "narrow it (WHERE, LIMIT) or aggregate first",
                    reason="timeout",
                ) from None
            except duckdb.OutOfMemoryException:
                raise QueryRejected(
                    f"the query needed more than the {self.memory_limit} memory limit; "
                    "narrow it or aggregate first",
                    reason="memory",
                ) from None
            except duckdb.PermissionException as exc:
                raise QueryRejected(f"refused by the sandbox: {exc}") from None
            except duckdb.Error as exc:
                raise QueryRejected(
                    f"DuckDB could not run the query: {exc}", reason="error"
                ) from None
            finally:
                timer.cancel()
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        truncated = frame.height > cap
        return (frame.head(cap) if truncated else frame), truncated

    # ------------------------------------------------------------- schema
    def schema(self) -> dict[str, list[tuple[str, str]]]:
        """Column names and types of each view."""
        out: dict[str, list[tuple[str, str]]] = {}
        with self._pool.connection() as con:
            for view in VIEWS:
                rows = con.execute(f"DESCRIBE {view}").fetchall()
                out[view] = [(str(r[0]), str(r[1])) for r in rows]
        return out

    def close(self) -> None:
        self._pool.close()

    # ------------------------------------------------------------ history
    def _remember(
        self,
        user: str | None,
        sql: str,
        *,
        ok: bool,
        rows: int,
        elapsed: float,
        error: str | None,
    ) -> None:
        if user:
            self.queries.record(user, sql, ok=ok, rows=rows, elapsed=elapsed, error=error)

    def history(self, user: str, limit: int = 50) -> list[dict[str, Any]]:
        """The user's most recent queries, newest first."""
        return self.queries.recent(user, limit)

    def clear_history(self, user: str) -> None:
        self.queries.clear(user)
