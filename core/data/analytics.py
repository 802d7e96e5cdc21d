"""Analytics tier: DuckDB views `bars`, `trades`, `daily`, `book_snapshots` and
`book_deltas` over the store.

The views read the warm Parquet files with DuckDB's own Parquet reader (an explicit
list of the visible files, partition keys from the hive-style paths), plus the
rows still buffered in memory and the daily rollups (registered Arrow tables).

The SQL explorer runs them in worker processes (core.sql_worker): `view_inputs` is what a
worker needs to build them (the file lists, the buffered rows and the rollups as Arrow),
cached per store generation. `connect` opens the same sandbox in this process.

Sandbox: the connection runs with `enable_external_access=false` and
`allowed_directories` set to the warm tier's bars/, trades/ and book folders only, so
DuckDB can open no other file (the accounts lakehouse, /etc, …); extension
autoload/autoinstall are off, memory_limit and threads are set, and
`lock_configuration=true` comes last. The SQL explorer's parser check (core.sql)
is the first layer: it lets only one SELECT over the three views through.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from core.data.schema import BARS, TRADES
from core.sql_worker import open_sandbox

if TYPE_CHECKING:
    from core.data.store import MarketStore

VIEWS = ("bars", "trades", "daily", "book_snapshots", "book_deltas")
BOOK_KINDS = ("book_snapshots", "book_deltas")
# a book row: side 0/1 shown as 'bid'/'ask'
BOOK_COLUMNS = [
    "ts",
    "venue",
    "symbol",
    "seq",
    "CASE side WHEN 0 THEN 'bid' ELSE 'ask' END AS side",
    "price",
    "size",
]

_HIVE_TYPES = {
    "bars": "{'venue': VARCHAR, 'symbol': VARCHAR, 'timeframe': VARCHAR, 'period': VARCHAR}",
    "trades": "{'venue': VARCHAR, 'symbol': VARCHAR, 'period': VARCHAR}",
    "book": "{'venue': VARCHAR, 'symbol': VARCHAR, 'date': VARCHAR}",
}
_KEYS = {"bars": ["venue", "symbol", "timeframe", "ts"], "trades": ["trade_id"]}
# buffered book rows are never in a file yet; the keys only guard the union
_BOOK_KEYS = ["venue", "symbol", "seq", "ts", "price"]


@dataclass(frozen=True, slots=True)
class ViewInputs:
    """Everything the three views are built from, at one store generation."""

    generation: int
    spec: dict[str, Any]
    tables: dict[str, pa.Table]


class Datasets:
    """The view inputs, rebuilt when the store changes."""

    def __init__(self, store: MarketStore) -> None:
        self.store = store
        self._cached: ViewInputs | None = None
        self._lock = threading.Lock()

    def inputs(self) -> ViewInputs:
        with self._lock:
            gen = self.store.generation
            if self._cached is not None and self._cached.generation == gen:
                return self._cached
            self._cached = view_inputs(self.store, gen)
            return self._cached


def view_inputs(store: MarketStore, generation: int) -> ViewInputs:
    kinds: dict[str, Any] = {}
    tables: dict[str, pa.Table] = {}
    for kind, schema in (("bars", BARS), ("trades", TRADES)):
        kinds[kind] = {
            # Absolute: a worker process does not share this process's working directory.
            "files": [os.path.abspath(f.path) for _, f in store.warm_files(kind)],
            "hive_types": _HIVE_TYPES[kind],
            "columns": list(schema.names()),
            "keys": _KEYS[kind],
        }
        tables[f"{kind}_buffer"] = store.buffered(kind).to_arrow()
    for kind in BOOK_KINDS:
        kinds[kind] = {
            "files": [os.path.abspath(p) for p in store.books.files(kind)],
            "hive_types": _HIVE_TYPES["book"],
            "columns": BOOK_COLUMNS,
            "keys": _BOOK_KEYS,
        }
        tables[f"{kind}_buffer"] = store.books.buffered(kind)
    tables["daily"] = store.rollups.table.drop("pv", "first_ts", "last_ts").to_arrow()
    allowed = [
        os.path.abspath(store.root / kind) + "/" for kind in ("bars", "trades", *BOOK_KINDS)
    ]
    return ViewInputs(generation, {"kinds": kinds, "allowed": allowed}, tables)


def connect(
    store: MarketStore,
    datasets: Datasets,
    *,
    memory_limit: str = "1GB",
    threads: int = 2,
) -> duckdb.DuckDBPyConnection:
    """A locked-down in-memory DuckDB connection with the three views, in this process."""
    inputs = datasets.inputs()
    return open_sandbox(inputs.spec, inputs.tables, memory_limit=memory_limit, threads=threads)
