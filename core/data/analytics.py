"""Analytics tier: DuckDB views `bars`, `trades` and `daily` over the store.

The views read the warm Parquet files with DuckDB's own Parquet reader (an explicit
list of the visible files, partition keys from the hive-style paths), plus the
rows still buffered in memory and the daily rollups (registered Arrow tables).

Sandbox: the connection runs with `enable_external_access=false` and
`allowed_directories` set to the warm tier's bars/ and trades/ folders only, so
DuckDB can open no other file (the accounts lakehouse, /etc, …); extension
autoload/autoinstall are off, memory_limit and threads are set, and
`lock_configuration=true` comes last. The SQL explorer's parser check (core.sql)
is the first layer: it lets only one SELECT over the three views through.

Connections are pooled (opening one costs tens of milliseconds); a query can
change nothing in them, and they re-create the views when the store changed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from core.data.schema import BARS, TRADES

if TYPE_CHECKING:
    from core.data.store import MarketStore

VIEWS = ("bars", "trades", "daily")

_HIVE_TYPES = {
    "bars": "{'venue': VARCHAR, 'symbol': VARCHAR, 'timeframe': VARCHAR, 'period': VARCHAR}",
    "trades": "{'venue': VARCHAR, 'symbol': VARCHAR, 'period': VARCHAR}",
}


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class Datasets:
    """The file list of each kind, rebuilt when the store changes."""

    def __init__(self, store: MarketStore) -> None:
        self.store = store
        self._cache: dict[str, tuple[int, str | None]] = {}

    def get(self, kind: str) -> str | None:
        """A read_parquet(...) call over the visible files of `kind`, or None."""
        gen = self.store.generation
        cached = self._cache.get(kind)
        if cached is not None and cached[0] == gen:
            return cached[1]
        files = [str(f.path) for _, f in self.store.warm_files(kind)]
        source = None
        if files:
            listed = ", ".join(_sql_str(f) for f in files)
            source = (
                f"read_parquet([{listed}], hive_partitioning = true, "
                f"hive_types = {_HIVE_TYPES[kind]})"
            )
        self._cache[kind] = (gen, source)
        return source


def _columns(schema: pl.Schema) -> str:
    return ", ".join(schema.names())


def _refresh(con: duckdb.DuckDBPyConnection, store: MarketStore, datasets: Datasets) -> None:
    """(Re)register the store's data on `con` and (re)create the three views.

    Every name in the generated SQL is a constant of this module (S608 does not apply).
    """
    for kind, schema in (("bars", BARS), ("trades", TRADES)):
        cols = _columns(schema)
        parts: list[str] = []
        source = datasets.get(kind)
        if source is not None:
            con.execute(f"CREATE OR REPLACE VIEW _{kind}_files AS SELECT * FROM {source}")  # noqa: S608 (quoted paths)
            parts.append(f"SELECT {cols} FROM _{kind}_files")  # noqa: S608
        buffered = store.buffered(kind)
        if buffered.height:
            con.register(f"_{kind}_buffer", buffered.to_arrow())
            keys = ["venue", "symbol", "timeframe", "ts"] if kind == "bars" else ["trade_id"]
            cond = " AND ".join(f"b.{k} = f.{k}" for k in keys)
            if parts:
                parts[0] = (
                    f"SELECT {cols} FROM _{kind}_files f WHERE NOT EXISTS "  # noqa: S608
                    f"(SELECT 1 FROM _{kind}_buffer b WHERE {cond})"
                )
            parts.append(f"SELECT {cols} FROM _{kind}_buffer")  # noqa: S608
        if not parts:
            con.register(f"_{kind}_empty", pl.DataFrame(schema=schema).to_arrow())
            parts.append(f"SELECT {cols} FROM _{kind}_empty")  # noqa: S608
        con.execute(f"CREATE OR REPLACE VIEW {kind} AS {' UNION ALL '.join(parts)}")
    daily = store.rollups.table.drop("pv", "first_ts", "last_ts")
    con.register("_daily", daily.to_arrow())
    con.execute("CREATE OR REPLACE VIEW daily AS SELECT * FROM _daily")


def connect(
    store: MarketStore,
    datasets: Datasets,
    *,
    memory_limit: str = "1GB",
    threads: int = 2,
) -> duckdb.DuckDBPyConnection:
    """A locked-down in-memory DuckDB connection with the three views."""
    allowed = [str(store.root / kind) + "/" for kind in ("bars", "trades")]
    con = duckdb.connect(
        ":memory:",
        config={
            "autoload_known_extensions": False,
            "autoinstall_known_extensions": False,
            "allow_community_extensions": False,
            "memory_limit": memory_limit,
            "threads": threads,
        },
    )
    try:
        # allowed_directories cannot be set at connect, nor once access is off.
        con.execute("SET allowed_directories = ?", [allowed])
        con.execute("SET enable_external_access = false")
        _refresh(con, store, datasets)
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


class Pool:
    """A few locked-down connections, kept open (opening one costs tens of ms) and
    refreshed when the store has changed since their last use. Nothing a query can do
    persists: only SELECTs reach them and their configuration is locked."""

    def __init__(
        self, store: MarketStore, *, size: int = 2, memory_limit: str = "1GB", threads: int = 2
    ) -> None:
        self.store = store
        self.datasets = Datasets(store)
        self.memory_limit = memory_limit
        self.threads = threads
        self._free: queue.LifoQueue[tuple[duckdb.DuckDBPyConnection, int]] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._size = size
        self._opened = 0

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        item: tuple[duckdb.DuckDBPyConnection, int] | None = None
        with self._lock:
            if self._free.empty() and self._opened < self._size:
                self._opened += 1
                opening = True
            else:
                opening = False
        try:
            if opening:
                gen = self.store.generation
                con = connect(
                    self.store, self.datasets, memory_limit=self.memory_limit, threads=self.threads
                )
            else:
                con, gen = self._free.get()
                if gen != self.store.generation:
                    gen = self.store.generation
                    _refresh(con, self.store, self.datasets)
        except BaseException:
            if opening:
                with self._lock:
                    self._opened -= 1
            raise
        item = (con, gen)
        try:
            yield con
        except BaseException:
            # A connection that failed mid-query is closed, not reused.
            con.close()
            with self._lock:
                self._opened -= 1
            item = None
            raise
        finally:
            if item is not None:
                self._free.put(item)

    def close(self) -> None:
        while not self._free.empty():
            con, _ = self._free.get()
            con.close()
