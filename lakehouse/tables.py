"""Delta table schemas and one writer per table.

Every write to a table goes through its `Table`: a process-wide thread lock plus an
exclusive `flock` on `<root>/.locks/<name>.lock` (so the CLI and the app do not race),
and `CommitProperties(max_commit_retries=...)` as a last resort. Small appends are
group-committed: callers enqueue rows and block until the batch holding them is committed,
so an acknowledged write is on disk and a failed one raises.

Personal columns (username, email, ip, user agent, ...) are kept out of Delta file
statistics with `delta.dataSkippingStatsColumns`, so `_delta_log` never holds them; after
erasure and a vacuum no file under the root contains them (docs/security.md, Art. 17).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError, TableNotFoundError

from lakehouse.errors import StorageError

UTC_TS = pa.timestamp("us", tz="UTC")
MAX_COMMIT_RETRIES = 100
MAX_BATCH_ROWS = 5000
WORKER_IDLE_S = 5.0


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    stats_columns: tuple[str, ...]
    partition_by: tuple[str, ...] = ()
    secret_columns: tuple[str, ...] = ()
    """Never shown by time travel or export (hashes, ciphertext)."""


USERS = TableSpec(
    "users",
    pa.schema(
        [
            ("user_id", pa.string()),
            ("username", pa.string()),
            ("username_key", pa.string()),
            ("email", pa.string()),
            ("password_hash", pa.string()),
            ("role", pa.string()),
            ("disabled", pa.bool_()),
            ("created_at", UTC_TS),
            ("updated_at", UTC_TS),
            ("password_changed_at", UTC_TS),
        ]
    ),
    key=("user_id",),
    stats_columns=("user_id", "created_at"),
    secret_columns=("password_hash",),
)

SESSIONS = TableSpec(
    "sessions",
    pa.schema(
        [
            ("session_id", pa.string()),
            ("user_id", pa.string()),
            ("created_at", UTC_TS),
            ("expires_at", UTC_TS),
            ("last_seen_at", UTC_TS),
            ("revoked_at", UTC_TS),
            ("revoke_reason", pa.string()),
            ("ip", pa.string()),
            ("user_agent", pa.string()),
        ]
    ),
    key=("session_id",),
    stats_columns=("session_id", "user_id", "created_at", "expires_at"),
)

AUDIT = TableSpec(
    "audit_log",
    pa.schema(
        [
            ("event_id", pa.string()),
            ("ts", UTC_TS),
            ("date", pa.date32()),
            ("user_id", pa.string()),
            ("actor_id", pa.string()),
            ("action", pa.string()),
            ("outcome", pa.string()),
            ("ip", pa.string()),
            ("user_agent", pa.string()),
            ("detail", pa.string()),
        ]
    ),
    key=("event_id",),
    stats_columns=("event_id", "ts", "user_id", "action", "outcome"),
    partition_by=("date",),
)

API_KEYS = TableSpec(
    "api_keys",
    pa.schema(
        [
            ("user_id", pa.string()),
            ("provider", pa.string()),
            ("kid", pa.string()),
            ("nonce", pa.binary()),
            ("ciphertext", pa.binary()),
            ("key_hint", pa.string()),
            ("created_at", UTC_TS),
            ("updated_at", UTC_TS),
        ]
    ),
    key=("user_id", "provider"),
    stats_columns=("user_id", "provider", "updated_at"),
    secret_columns=("nonce", "ciphertext"),
)

API_USAGE = TableSpec(
    "api_usage",
    pa.schema(
        [
            ("ts", UTC_TS),
            ("date", pa.date32()),
            ("user_id", pa.string()),
            ("provider", pa.string()),
            ("count", pa.int64()),
        ]
    ),
    key=("ts", "user_id", "provider"),
    stats_columns=("ts", "date", "user_id", "provider"),
)

CONSENTS = TableSpec(
    "consents",
    pa.schema(
        [
            ("user_id", pa.string()),
            ("purpose", pa.string()),
            ("granted", pa.bool_()),
            ("ts", UTC_TS),
        ]
    ),
    key=("user_id", "purpose", "ts"),
    stats_columns=("user_id", "purpose", "ts"),
)

TOMBSTONES = TableSpec(
    "tombstones",
    pa.schema(
        [
            ("user_id", pa.string()),
            ("erased_at", UTC_TS),
            ("actor_id", pa.string()),
            ("purged_at", UTC_TS),
        ]
    ),
    key=("user_id",),
    stats_columns=("user_id", "erased_at", "purged_at"),
)

ACCESS_TOKENS = TableSpec(
    "access_tokens",
    pa.schema(
        [
            ("token_id", pa.string()),
            ("user_id", pa.string()),
            ("name", pa.string()),
            ("scopes", pa.string()),  # comma-separated, e.g. "market:read,sql:run"
            ("token_hash", pa.string()),  # HMAC-SHA256 of the secret (lakehouse.token_index)
            ("key_id", pa.string()),  # kid of the HMAC key
            ("created_at", UTC_TS),
            ("expires_at", UTC_TS),
            ("last_used_at", UTC_TS),
            ("revoked_at", UTC_TS),
            ("revoked_reason", pa.string()),
        ]
    ),
    key=("token_id",),
    stats_columns=("token_id", "user_id", "created_at", "expires_at", "revoked_at"),
    secret_columns=("token_hash",),
)

# --- research workflow: studies, saved queries, alerts (core/research, core/alerts) ---------
STUDIES = TableSpec(
    "studies",
    pa.schema(
        [
            ("study_id", pa.string()),
            ("user_id", pa.string()),  # the owner
            ("kind", pa.string()),  # core.analytics.runs.KINDS
            ("title", pa.string()),
            ("params", pa.string()),  # JSON
            ("inputs", pa.string()),  # JSON list of SeriesInput records (with sha256)
            ("code_version", pa.string()),
            ("metrics", pa.string()),  # JSON name -> number (NaN as null)
            ("artefacts", pa.string()),  # JSON list of frame names (Parquet under the data dir)
            ("shared", pa.bool_()),
            ("created_at", UTC_TS),
            ("updated_at", UTC_TS),
        ]
    ),
    key=("study_id",),
    stats_columns=("study_id", "user_id", "kind", "created_at"),
)

SAVED_QUERIES = TableSpec(
    "saved_queries",
    pa.schema(
        [
            ("query_id", pa.string()),
            ("user_id", pa.string()),  # the owner
            ("name", pa.string()),
            ("description", pa.string()),
            ("sql", pa.string()),
            ("chart", pa.string()),  # JSON chart spec (pages/_shared/sql_chart.py), or null
            ("shared", pa.bool_()),
            ("created_at", UTC_TS),
            ("updated_at", UTC_TS),
        ]
    ),
    key=("query_id",),
    stats_columns=("query_id", "user_id", "created_at"),
)

ALERT_RULES = TableSpec(
    "alert_rules",
    pa.schema(
        [
            ("rule_id", pa.string()),
            ("user_id", pa.string()),
            ("name", pa.string()),
            ("kind", pa.string()),  # core.alerts.rules.KINDS
            ("params", pa.string()),  # JSON
            ("venue", pa.string()),
            ("symbol", pa.string()),
            ("timeframe", pa.string()),
            ("query_id", pa.string()),  # for query_rows
            ("cooldown_s", pa.int64()),
            ("webhook_url", pa.string()),
            ("webhook_kid", pa.string()),  # the webhook signing secret, sealed like API keys
            ("webhook_nonce", pa.binary()),
            ("webhook_secret", pa.binary()),
            ("enabled", pa.bool_()),
            ("created_at", UTC_TS),
            ("updated_at", UTC_TS),
            ("last_fired_at", UTC_TS),
        ]
    ),
    key=("rule_id",),
    stats_columns=("rule_id", "user_id", "created_at"),
    secret_columns=("webhook_nonce", "webhook_secret"),
)

ALERT_EVENTS = TableSpec(
    "alert_events",
    pa.schema(
        [
            ("event_id", pa.string()),
            ("rule_id", pa.string()),
            ("user_id", pa.string()),
            ("ts", UTC_TS),  # when it fired
            ("date", pa.date32()),
            ("message", pa.string()),
            ("value", pa.float64()),
            ("data_ts", UTC_TS),  # the bar or result that fired it
            ("read_at", UTC_TS),
        ]
    ),
    key=("event_id",),
    stats_columns=("event_id", "rule_id", "user_id", "ts", "date"),
    partition_by=("date",),
)

ALERT_DELIVERIES = TableSpec(
    "alert_deliveries",
    pa.schema(
        [
            ("delivery_id", pa.string()),
            ("event_id", pa.string()),
            ("rule_id", pa.string()),
            ("user_id", pa.string()),
            ("ts", UTC_TS),
            ("attempt", pa.int64()),
            ("status", pa.string()),  # delivered, failed (will retry), dead_letter
            ("http_status", pa.int64()),
            ("error", pa.string()),
        ]
    ),
    key=("delivery_id",),
    stats_columns=("delivery_id", "event_id", "rule_id", "user_id", "ts"),
)

ALL_SPECS: tuple[TableSpec, ...] = (
    USERS,
    SESSIONS,
    AUDIT,
    API_KEYS,
    API_USAGE,
    CONSENTS,
    TOMBSTONES,
    ACCESS_TOKENS,
    STUDIES,
    SAVED_QUERIES,
    ALERT_RULES,
    ALERT_EVENTS,
    ALERT_DELIVERIES,
)
SPECS_BY_NAME = {s.name: s for s in ALL_SPECS}

_THREAD_LOCKS: dict[str, threading.RLock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(path: Path) -> threading.RLock:
    key = str(path.resolve())
    with _THREAD_LOCKS_GUARD:
        lock = _THREAD_LOCKS.get(key)
        if lock is None:
            lock = _THREAD_LOCKS[key] = threading.RLock()
        return lock


_DEPTHS: dict[str, threading.local] = {}


def _depth(path: Path) -> threading.local:
    key = str(path.resolve())
    with _THREAD_LOCKS_GUARD:
        local = _DEPTHS.get(key)
        if local is None:
            local = _DEPTHS[key] = threading.local()
        return local


def to_arrow(spec: TableSpec, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    cols = {f.name: [r.get(f.name) for r in rows] for f in spec.schema}
    return pa.table(cols, schema=spec.schema)


class Table:
    """One Delta table and its single writer."""

    def __init__(self, root: Path, spec: TableSpec) -> None:
        self.spec = spec
        self.path = root / spec.name
        self._lock_file = root / ".locks" / f"{spec.name}.lock"
        self._tlock = _thread_lock(self.path)
        self._depth = _depth(self.path)
        self._queue: queue.Queue[tuple[pa.Table, Future[None]]] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._worker_guard = threading.Lock()
        self.ensure()

    @property
    def name(self) -> str:
        return self.spec.name

    # --- locking -----------------------------------------------------------------------
    @contextlib.contextmanager
    def writer(self) -> Iterator[None]:
        """Exclusive write access across threads and processes (re-entrant per thread)."""
        with self._tlock:
            depth = getattr(self._depth, "n", 0)
            if depth:
                self._depth.n = depth + 1
                try:
                    yield
                finally:
                    self._depth.n = depth
                return
            self._lock_file.parent.mkdir(parents=True, exist_ok=True)
            with open(self._lock_file, "a+b") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                self._depth.n = 1
                try:
                    yield
                finally:
                    self._depth.n = 0
                    fcntl.flock(f, fcntl.LOCK_UN)

    def ensure(self) -> None:
        if (self.path / "_delta_log").is_dir() and self.latest_version() >= 0:
            return
        with self.writer():
            if DeltaTable.is_deltatable(str(self.path)):
                return
            config = {"delta.dataSkippingStatsColumns": ",".join(self.spec.stats_columns)}
            try:
                DeltaTable.create(
                    str(self.path),
                    schema=self.spec.schema,
                    partition_by=list(self.spec.partition_by) or None,
                    configuration=config,
                    name=self.spec.name,
                )
            except (DeltaError, OSError) as exc:
                raise StorageError(f"cannot create table {self.path}: {exc}") from exc

    @staticmethod
    def commit_properties(**metadata: str) -> CommitProperties:
        return CommitProperties(
            max_commit_retries=MAX_COMMIT_RETRIES, custom_metadata=metadata or None
        )

    # --- writes ------------------------------------------------------------------------
    def append_now(self, data: pa.Table) -> None:
        """Append under the writer lock (caller may already hold it)."""
        if data.num_rows == 0:
            return
        with self.writer():
            try:
                write_deltalake(
                    str(self.path),
                    data,
                    mode="append",
                    partition_by=list(self.spec.partition_by) or None,
                    commit_properties=self.commit_properties(),
                )
            except (DeltaError, OSError, pa.ArrowException) as exc:
                raise StorageError(f"cannot append to {self.name}: {exc}") from exc

    def append(self, rows: Sequence[Mapping[str, Any]], timeout_s: float = 60.0) -> None:
        """Group-commit append: blocks until the rows are committed, raises if not."""
        data = to_arrow(self.spec, rows)
        fut: Future[None] = Future()
        self._queue.put((data, fut))
        self._ensure_worker()  # after the put, so an exiting worker cannot strand it
        try:
            fut.result(timeout=timeout_s)
        except TimeoutError as exc:
            raise StorageError(f"write to {self.name} not acknowledged in {timeout_s} s") from exc

    def _ensure_worker(self) -> None:
        with self._worker_guard:
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._drain, name=f"lakehouse-writer-{self.name}", daemon=True
                )
                self._worker.start()

    def _drain(self) -> None:
        """The table's single writer: commits queued rows in batches; exits when idle."""
        while True:
            try:
                first = self._queue.get(timeout=WORKER_IDLE_S)
            except queue.Empty:
                with self._worker_guard:
                    if self._queue.empty():
                        self._worker = None
                        return
                continue
            batch = [first]
            rows = first[0].num_rows
            while rows < MAX_BATCH_ROWS:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
                rows += item[0].num_rows
            try:
                self.append_now(pa.concat_tables([b[0] for b in batch]))
            except Exception as exc:  # every waiter learns the failure
                for _, fut in batch:
                    fut.set_exception(
                        exc if isinstance(exc, StorageError) else StorageError(str(exc))
                    )
            else:
                for _, fut in batch:
                    fut.set_result(None)

    def _merge(self, source: pa.Table, on: Sequence[str]) -> Any:
        predicate = " AND ".join(f"t.{c} = s.{c}" for c in on)
        return DeltaTable(str(self.path)).merge(
            source,
            predicate,
            source_alias="s",
            target_alias="t",
            commit_properties=self.commit_properties(),
        )

    def upsert(self, rows: Sequence[Mapping[str, Any]], on: Sequence[str] | None = None) -> None:
        """Insert or replace whole rows matched on the key columns (no SQL from user data)."""
        if not rows:
            return
        source = to_arrow(self.spec, rows)
        with self.writer():
            try:
                (
                    self._merge(source, on or self.spec.key)
                    .when_matched_update_all()
                    .when_not_matched_insert_all()
                    .execute()
                )
            except (DeltaError, OSError, pa.ArrowException) as exc:
                raise StorageError(f"cannot update {self.name}: {exc}") from exc

    def update_rows(self, rows: Sequence[Mapping[str, Any]], on: Sequence[str]) -> None:
        """Set the non-key columns given in `rows` on the rows matching their `on` columns."""
        if not rows:
            return
        names = list(rows[0])
        fields = [self.spec.schema.field(c) for c in names]
        source = pa.table({f.name: pa.array([r[f.name] for r in rows], f.type) for f in fields})
        updates = {c: f"s.{c}" for c in names if c not in on}
        with self.writer():
            try:
                self._merge(source, on).when_matched_update(updates).execute()
            except (DeltaError, OSError, pa.ArrowException) as exc:
                raise StorageError(f"cannot update {self.name}: {exc}") from exc

    def delete_matching(self, keys: Sequence[Mapping[str, Any]], on: Sequence[str]) -> None:
        if not keys:
            return
        fields = [self.spec.schema.field(c) for c in on]
        source = pa.table({f.name: pa.array([k[f.name] for k in keys], f.type) for f in fields})
        with self.writer():
            try:
                self._merge(source, on).when_matched_delete().execute()
            except (DeltaError, OSError, pa.ArrowException) as exc:
                raise StorageError(f"cannot remove rows of {self.name}: {exc}") from exc

    # --- reads -------------------------------------------------------------------------
    def latest_version(self) -> int:
        """Newest commit number, from the _delta_log file names (cheap; no table load)."""
        best = -1
        try:
            with os.scandir(self.path / "_delta_log") as it:
                for entry in it:
                    name = entry.name
                    if name.endswith(".json") and name[:20].isdigit():
                        best = max(best, int(name[:20]))
        except FileNotFoundError:
            return -1
        if best < 0:
            with contextlib.suppress(OSError, ValueError):
                last = (self.path / "_delta_log" / "_last_checkpoint").read_text()
                best = int(json.loads(last)["version"])
        return best

    def read(self, version: int | None = None) -> pl.DataFrame:
        """The table (latest or at `version`). A latest read retries if a concurrent vacuum
        removed a file of the snapshot it had just loaded."""
        attempts = 3 if version is None else 1
        for attempt in range(attempts):
            try:
                return pl.read_delta(str(self.path), version=version)
            except (DeltaError, TableNotFoundError, OSError, pl.exceptions.PolarsError) as exc:
                if attempt == attempts - 1:
                    raise StorageError(f"cannot read {self.name}: {exc}") from exc
        raise AssertionError("unreachable")

    def delta(self) -> DeltaTable:
        """A fresh DeltaTable (never share one across threads)."""
        try:
            return DeltaTable(str(self.path))
        except (DeltaError, TableNotFoundError, OSError) as exc:
            raise StorageError(f"cannot open {self.name}: {exc}") from exc
