"""The sandboxed SQL explorer: `SqlExplorer(store).run(sql, timeout_s=..., max_rows=...)`.

Defence in layers (docs/security.md, SQL explorer):
1. sqlglot parses the text (DuckDB dialect). Exactly one statement, and it must be
   a SELECT (optionally WITH, UNION, …), nesting parentheses at most 40 deep. Every
   table reference is resolved in its own scope: it must be a CTE visible where it
   stands (declared by the query or an enclosing one, before it in a WITH list) or
   one of the views `bars`, `trades`, `daily`, `book_snapshots`, `book_deltas`; quoted
   strings and paths are never tables; table functions (read_csv, glob, duckdb_settings,
   …) and functions that read the environment or files (getenv, read_text, …) are refused.
2. The query runs in a worker process (core.sql_worker) under RLIMIT_DATA, on an
   in-memory DuckDB connection with enable_external_access=false, allowed_directories
   = the warm folders, extension autoload/autoinstall off, memory_limit and threads
   set, then lock_configuration=true. It can reach only the market data: the
   accounts lakehouse is never attached or registered, and the worker gets none of
   the app's environment.
3. The worker is killed at the timeout or when its RSS passes the memory limit; the
   result is capped at max_rows (a LIMIT on the outermost query) and in bytes.
4. Every failure is a QueryRejected (or InvalidInput) whose message says what to change
   and shows no server path; duplicate column names are made unique (a, a_2, …).
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import pyarrow as pa
import sqlglot
from sqlglot import Tokenizer, TokenType, exp
from sqlglot.errors import ParseError, TokenError

from core.data.analytics import VIEWS, Datasets
from core.data.store import MarketStore
from core.errors import InvalidInput, QueryRejected
from core.sql_history import QueryHistory
from core.sql_worker import START_TIMEOUT_S, Worker, WorkerError, WorkerPool, from_ipc, to_ipc

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
    "Recorded book: spread and top sizes per snapshot": (
        "SELECT venue, symbol, ts,\n"
        "       min(price) FILTER (side = 'ask') - max(price) FILTER (side = 'bid') AS spread,\n"
        "       count(*) AS levels\n"
        "FROM book_snapshots\nGROUP BY ALL\nORDER BY ts DESC\nLIMIT 50"
    ),
    "Book changes per minute": (
        "SELECT venue, symbol, date_trunc('minute', ts) AS minute, count(*) AS changes,\n"
        "       count(*) FILTER (size = 0) AS removed\n"
        "FROM book_deltas\nGROUP BY ALL\nORDER BY minute DESC\nLIMIT 50"
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
    notes: tuple[str, ...] = ()
    """What the explorer changed in the answer (e.g. duplicate column names made unique)."""


# Statement keywords refused by name; any other unparsable text is a syntax error.
_STATEMENTS = frozenset(
    {
        "ALTER",
        "ANALYZE",
        "ATTACH",
        "BEGIN",
        "CALL",
        "CHECKPOINT",
        "COMMENT",
        "COMMIT",
        "COPY",
        "CREATE",
        "DEALLOCATE",
        "DELETE",
        "DESCRIBE",
        "DETACH",
        "DROP",
        "EXECUTE",
        "EXPLAIN",
        "EXPORT",
        "FORCE",
        "GRANT",
        "IMPORT",
        "INSERT",
        "INSTALL",
        "LOAD",
        "MERGE",
        "PRAGMA",
        "PREPARE",
        "RESET",
        "REVOKE",
        "ROLLBACK",
        "SET",
        "SHOW",
        "SUMMARIZE",
        "TRUNCATE",
        "UPDATE",
        "UPSERT",
        "USE",
        "VACUUM",
    }
)
MAX_NESTING = 40
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _first_keyword(sql: str) -> str:
    words = sql.strip().lstrip("(").split(None, 2)
    if not words:
        return ""
    if words[0].upper() == "CREATE" and len(words) > 1:
        return f"CREATE {words[1].upper()}"
    return words[0].upper()


def _nesting(sql: str) -> int:
    """The deepest parenthesis nesting of `sql` (strings and comments skipped)."""
    depth = deepest = 0
    for token in Tokenizer(dialect="duckdb").tokenize(sql):
        if token.token_type == TokenType.L_PAREN:
            depth += 1
            deepest = max(deepest, depth)
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
    return deepest


def _with_of(node: exp.Expr) -> exp.With | None:
    w = node.args.get("with_") or node.args.get("with")
    return w if isinstance(w, exp.With) else None


def _is_cte_reference(table: exp.Table) -> bool:
    """Whether `table` names a CTE visible where it stands.

    A CTE is visible in the query that declares it and below, never outside; inside
    its WITH list only the CTEs declared before it (and itself, when RECURSIVE).
    """
    name = table.name.lower()
    child: exp.Expr = table
    node = table.parent
    while node is not None:
        if isinstance(node, exp.With):
            ctes = node.expressions
            at = next((i for i, c in enumerate(ctes) if c is child), len(ctes))
            visible = ctes[: at + 1] if node.recursive else ctes[:at]
            if name in {c.alias_or_name.lower() for c in visible}:
                return True
            owner = node.parent  # the query the WITH belongs to: its body is not ours
            if owner is None:
                return False
            child, node = owner, owner.parent
            continue
        with_ = _with_of(node)
        if (
            with_ is not None
            and child is not with_
            and name in {c.alias_or_name.lower() for c in with_.expressions}
        ):
            return True
        child, node = node, node.parent
    return False


def _check_tables(tree: exp.Expression, extra_tables: frozenset[str]) -> None:
    views = ", ".join(VIEWS)
    for cte in tree.find_all(exp.CTE):
        if not _PLAIN_NAME.match(cte.alias_or_name):
            raise QueryRejected(
                f"the CTE name {cte.alias_or_name!r} is not allowed; name CTEs with letters, "
                "digits and _ only"
            )
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            fn = table.this.sql_name() if isinstance(table.this, exp.Func) else "this source"
            name = table.this.name if isinstance(table.this, exp.Anonymous) else fn
            raise QueryRejected(
                f"table function {name.lower()}() is not allowed; query the views {views}"
            )
        if table.args.get("db") or table.args.get("catalog"):
            raise QueryRejected(
                f"{table.sql(dialect='duckdb')} is not allowed; use the plain view names {views}"
            )
        if not _PLAIN_NAME.match(table.name):
            raise QueryRejected(
                f"unknown table {table.name!r}: a quoted string or path is never a table; "
                f"only the views {views} can be queried"
            )
        if _is_cte_reference(table):
            continue
        if table.name.lower() not in set(VIEWS) | extra_tables:
            raise QueryRejected(
                f"unknown table {table.name!r}: only the views {views} (and CTEs declared "
                "in the same query, in scope) can be queried"
            )


def check(sql: str, extra_tables: frozenset[str] = frozenset()) -> exp.Expression:
    """Parse `sql` and refuse anything but one read-only query over the views."""
    if not isinstance(sql, str) or not sql.strip():
        raise QueryRejected("the query is empty")
    if len(sql) > 100_000:
        raise QueryRejected("the query is longer than 100,000 characters; shorten it")
    try:
        depth = _nesting(sql)
    except TokenError:
        raise QueryRejected(
            "could not parse the query: an unterminated string, quote or comment", reason="error"
        ) from None
    if depth > MAX_NESTING:
        raise QueryRejected(
            f"the query nests parentheses {depth} levels deep, more than {MAX_NESTING}; "
            "flatten it (use CTEs: WITH a AS (...), b AS (...) SELECT ...)"
        )
    try:
        trees = [t for t in sqlglot.parse(sql, read="duckdb") if t is not None]
    except (ParseError, TokenError) as exc:
        word = _first_keyword(sql)
        if word and word.split()[0] in _STATEMENTS:
            raise QueryRejected(
                f"{word} statements are not allowed: only one SELECT or WITH query"
            ) from None
        first = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise QueryRejected(
            f"could not parse the query (check the SQL syntax): {first}", reason="error"
        ) from None
    except RecursionError:
        raise QueryRejected(_TOO_DEEP) from None
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
    try:
        for node in tree.walk():
            if isinstance(node, _DENIED_NODES):
                kind = type(node).__name__.upper()
                raise QueryRejected(f"{kind} is not allowed inside a query")
        _check_tables(tree, extra_tables)
        for func in tree.find_all(exp.Func):
            name = (func.name if isinstance(func, exp.Anonymous) else func.sql_name()).lower()
            if any(name.startswith(p) for p in FORBIDDEN_FUNCTIONS):
                raise QueryRejected(f"function {name}() is not allowed in the SQL explorer")
    except RecursionError:
        raise QueryRejected(_TOO_DEEP) from None
    return tree


_TOO_DEEP = "the query is nested too deeply to check; flatten it (fewer nested expressions)"


def _server_paths(store: MarketStore) -> list[tuple[str, str]]:
    """Absolute paths a message must not show, longest first, with their stand-ins."""
    data = Path(store.root).parent
    pairs = {
        str(data.absolute()): "<data dir>",
        str(data.resolve()): "<data dir>",
        str(Path(store.root).resolve()): "<data dir>/market",
        str(Path(__file__).resolve().parent.parent): "<app>",
        sys.prefix: "<python>",
        sys.base_prefix: "<python>",
    }
    return sorted(
        ((p, label) for p, label in pairs.items() if p.startswith("/") and len(p) > 1),
        key=lambda item: -len(item[0]),
    )


VANISHED_RETRIES = 3
T = TypeVar("T")


def _vanished(message: str) -> bool:
    """DuckDB's words for a listed file that is gone (a compaction replaced it)."""
    return "No files found that match the pattern" in message or "No such file" in message


def _failure(header: dict[str, Any], explorer: SqlExplorer) -> QueryRejected:
    """A worker's error reply as a QueryRejected that says what to change."""
    kind, reason, detail = (
        header.get("kind"),
        header.get("reason", "error"),
        header.get("message", ""),
    )
    if kind == "too_large":
        return QueryRejected(
            f"the result is {detail}, more than the {explorer.max_result_mb} MB result cap; "
            "select fewer rows or columns, or aggregate first",
            reason="memory",
        )
    if reason == "memory":
        return QueryRejected(
            f"the query needed more than the {explorer.memory_limit} memory limit; "
            "narrow it (WHERE, LIMIT) or aggregate first",
            reason="memory",
        )
    if kind == "sandbox":
        return QueryRejected(f"refused by the sandbox: {_short(detail)}")
    if kind == "duckdb":
        return QueryRejected(f"DuckDB could not run the query: {_short(detail)}", reason="error")
    return QueryRejected(f"the query failed ({kind}); simplify it or try again", reason="error")


def _short(message: str, limit: int = 600) -> str:
    return message if len(message) <= limit else message[:limit] + " …"


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


def _parse_mb(memory_limit: str) -> int:
    """'1GB', '512MB', '1.5GB' -> MB; raises InvalidInput for anything else."""
    m = re.fullmatch(
        r"\s*(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB|KIB|MIB|GIB|TIB)?\s*", memory_limit.upper()
    )
    if m is None:
        raise InvalidInput(f"memory_limit {memory_limit!r} is not a size like '1GB' or '512MB'")
    scale = {"KB": 1 / 1024, "MB": 1, "GB": 1024, "TB": 1024**2}[(m.group(2) or "MB")[0] + "B"]
    mb = int(float(m.group(1)) * scale)
    if mb < 64:
        raise InvalidInput(f"memory_limit {memory_limit!r} is below 64MB; DuckDB needs more")
    return mb


class SqlExplorer:
    """Run one read-only SQL query over the market views, safely.

    Queries run in worker processes (core.sql_worker) under the memory limit, killed at the
    timeout; every failure is a QueryRejected (or InvalidInput) whose message says what to
    change and names no server path.
    """

    def __init__(
        self,
        store: MarketStore,
        *,
        memory_limit: str = "1GB",
        threads: int = 2,
        timeout_s: float = 10.0,
        max_rows: int = 100_000,
        history_dir: Path | None = None,
        workers: int = 2,
        max_result_mb: int = 256,
    ) -> None:
        self.store = store
        self.memory_limit = memory_limit
        self.memory_mb = _parse_mb(memory_limit)
        self.threads = threads
        self.timeout_s = timeout_s
        self.max_rows = max_rows
        self.max_result_mb = max_result_mb
        self.history_dir = history_dir or store.root / "sql_history"
        self.queries = QueryHistory(self.history_dir)
        self.datasets = Datasets(store)
        self.workers = WorkerPool(size=workers, memory_mb=self.memory_mb, threads=threads)
        self.workers.ensure()  # warm up in the background
        self._hidden = _server_paths(store)
        # The view inputs as Arrow IPC, serialized once per store generation for all workers.
        self._ipc: tuple[int, list[pa.Buffer]] = (-1, [])
        self._ipc_lock = threading.Lock()

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
        deadline = time.monotonic() + timeout
        try:
            try:
                tree = check(sql)
                limited = _limited(tree, cap + 1)
                frame, truncated, notes = self._run(limited, deadline, timeout, cap)
            except QueryRejected as exc:
                raise QueryRejected(self._scrub(str(exc)), reason=exc.reason) from None
            except InvalidInput as exc:
                raise InvalidInput(self._scrub(str(exc))) from None
            except RecursionError:
                raise QueryRejected(_TOO_DEEP) from None
            except Exception as exc:  # every failure is a typed, short error
                raise QueryRejected(
                    f"the query failed ({type(exc).__name__}); simplify it or try again",
                    reason="error",
                ) from None
        except (QueryRejected, InvalidInput) as exc:
            elapsed = time.perf_counter() - t0
            self.store.counters["analytics"].record(int(elapsed * 1e9), False)
            self._remember(user, sql, ok=False, rows=0, elapsed=elapsed, error=str(exc))
            raise
        elapsed = time.perf_counter() - t0
        self.store.counters["analytics"].record(int(elapsed * 1e9), True)
        self._remember(user, sql, ok=True, rows=frame.height, elapsed=elapsed, error=None)
        return QueryResult(frame, elapsed, truncated, sql, notes)

    def _scrub(self, message: str) -> str:
        """No absolute server path (data dir, code, interpreter) in a user-facing message."""
        for path, label in self._hidden:
            message = message.replace(path, label)
        return message

    def _views(self, worker: Worker, deadline: float) -> None:
        """Send the worker the view inputs when the store changed since its last query."""
        inputs = self.datasets.inputs()
        if worker.generation == inputs.generation:
            return
        names = list(inputs.tables)
        with self._ipc_lock:
            if self._ipc[0] != inputs.generation:
                self._ipc = (inputs.generation, [to_ipc(inputs.tables[n]) for n in names])
            payloads = self._ipc[1]
        header, _ = worker.request(
            {"op": "views", "spec": inputs.spec, "tables": names}, payloads, deadline
        )
        if not header.get("ok"):
            raise _failure(header, self)
        worker.generation = inputs.generation

    def _fresh(self, attempt: Callable[[], T]) -> T:
        """Run `attempt`, again after a short wait when a warm file it listed was replaced
        meanwhile (a compaction between listing the files and reading them)."""
        for tries in range(VANISHED_RETRIES):
            self.store.sync()
            try:
                return attempt()
            except QueryRejected as exc:
                if tries == VANISHED_RETRIES - 1 or not _vanished(str(exc)):
                    raise
            time.sleep(0.05 * (tries + 1))
        raise AssertionError("unreachable")

    def _run(
        self, sql: str, deadline: float, timeout: float, cap: int
    ) -> tuple[pl.DataFrame, bool, tuple[str, ...]]:
        return self._fresh(lambda: self._run_once(sql, deadline, timeout, cap))

    def _run_once(
        self, sql: str, deadline: float, timeout: float, cap: int
    ) -> tuple[pl.DataFrame, bool, tuple[str, ...]]:
        try:
            with self.workers.worker(deadline) as worker:
                self._views(worker, deadline)
                header, payloads = worker.request(
                    {
                        "op": "query",
                        "sql": sql,
                        "max_rows": cap,
                        "max_bytes": self.max_result_mb * 2**20,
                    },
                    (),
                    deadline,
                )
                if not header.get("ok"):
                    if header.get("reason") == "memory":
                        worker.kill()  # a fresh worker, not one that may keep the memory
                    raise _failure(header, self)
        except WorkerError as exc:
            raise self._worker_failure(exc, timeout) from None
        table = from_ipc(payloads[0])
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return frame, bool(header["truncated"]), tuple(header.get("notes", ()))

    def _worker_failure(self, exc: WorkerError, timeout: float) -> QueryRejected:
        if exc.reason == "timeout":
            busy = str(exc) == "busy"
            return QueryRejected(
                "every SQL worker stayed busy past the timeout; try again in a moment"
                if busy
                else f"the query ran longer than the {timeout:g} s timeout and was stopped; "
                "narrow it (WHERE, LIMIT) or aggregate first",
                reason="timeout",
            )
        if exc.reason == "crashed":
            return QueryRejected(
                "the SQL worker stopped while running the query; run it again, and if it "
                "stops again, simplify it",
                reason="error",
            )
        if exc.reason == "memory":
            return QueryRejected(
                f"the query needed more than the {self.memory_limit} memory limit and was "
                "stopped; narrow it (WHERE, LIMIT) or aggregate first",
                reason="memory",
            )
        return QueryRejected(f"the SQL explorer could not run the query: {exc}", reason="error")

    # ------------------------------------------------------------- schema
    def schema(self) -> dict[str, list[tuple[str, str]]]:
        """Column names and types of each view."""
        try:
            header = self._fresh(self._schema_once)
        except QueryRejected as exc:
            raise QueryRejected(self._scrub(str(exc)), reason=exc.reason) from None
        out: dict[str, list[tuple[str, str]]] = {view: [] for view in VIEWS}
        for row in header["schema"]:
            out[row["view"]].append((row["column"], row["type"]))
        return out

    def _schema_once(self) -> dict[str, Any]:
        deadline = time.monotonic() + max(self.timeout_s, START_TIMEOUT_S)
        try:
            with self.workers.worker(deadline) as worker:
                self._views(worker, deadline)
                header, _ = worker.request({"op": "schema", "views": list(VIEWS)}, (), deadline)
        except WorkerError as exc:
            raise self._worker_failure(exc, self.timeout_s) from None
        if not header.get("ok"):
            raise _failure(header, self)
        return header

    def worker_stats(self) -> dict[str, float]:
        """Peak resident memory (MB) of any worker so far, restarts, the memory limit."""
        peaks = [w.peak_mb for w in self.workers._workers]
        return {
            "peak_mb": max([self.workers.peak_mb, *peaks]),
            "restarts": float(self.workers.restarts),
            "memory_mb": float(self.memory_mb),
        }

    def close(self) -> None:
        self.workers.close()

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
