"""Composition root: `build_engine(settings)` wires the engine's parts together."""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import core
from core import native
from core.config import Settings

if TYPE_CHECKING:
    import polars as pl

    from core.data.store import MarketStore
    from core.ingest.meter import KeyLedger
    from core.ingest.service import IngestService
    from core.sql import SqlExplorer


@dataclass(frozen=True, slots=True)
class DiskFacts:
    path: Path
    free_bytes: int
    total_bytes: int


def disk_facts(path: Path) -> DiskFacts:
    """Free and total bytes of the file system holding `path` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    return DiskFacts(path=path, free_bytes=usage.free, total_bytes=usage.total)


@dataclass(frozen=True, slots=True)
class EngineFacts:
    version: str
    native: native.NativeStatus
    data_dir: Path
    disk: DiskFacts


class Engine:
    """Everything a page, a notebook or the CLI needs, built once per process."""

    def __init__(self, settings: Settings, *, keys: KeyLedger | None = None) -> None:
        """`keys`: users' provider keys and quotas (the accounts backend), for keyed providers."""
        self.settings = settings
        self.keys = keys
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self._store: MarketStore | None = None
        self._sql: SqlExplorer | None = None
        self._store_lock = threading.Lock()
        self.bundled_error: str | None = None

    @property
    def store(self) -> MarketStore:
        """The market store; opened, and the bundled history imported, on first use."""
        with self._store_lock:
            if self._store is None:
                from core.data.store import MarketStore, import_bundled
                from core.errors import HftError

                store = MarketStore(
                    self.settings.market_dir, hot_bytes=self.settings.hot_cache_mb * 2**20
                )
                try:
                    import_bundled(store)
                except (HftError, ImportError, OSError) as exc:
                    self.bundled_error = f"bundled history not imported: {exc}"
                self._store = store
            return self._store

    @property
    def sql(self) -> SqlExplorer:
        """The sandboxed SQL explorer over the market store."""
        store = self.store
        with self._store_lock:
            if self._sql is None:
                from core.sql import SqlExplorer

                self._sql = SqlExplorer(
                    store,
                    timeout_s=self.settings.sql_timeout_s,
                    max_rows=self.settings.sql_max_rows,
                    memory_limit=f"{self.settings.sql_memory_mb}MB",
                )
            return self._sql

    @property
    def ingest(self) -> IngestService:
        """The ingestion service (live streams, demo venue, history jobs); started once."""
        store = self.store
        with self._store_lock:
            service: IngestService | None = getattr(self, "_ingest", None)
            if service is None or not service.started:
                from core.ingest.service import IngestService

                service = IngestService(
                    store, demo=self.settings.demo_venue, keys=self.keys, settings=self.settings
                ).start()
                self._ingest = service
            return service

    def tier_stats(self) -> dict[str, dict[str, Any]]:
        """Hits, misses, hit rate, bytes and latency percentiles per storage tier."""
        return self.store.stats()

    def coverage(self) -> pl.DataFrame:
        """One row per stored series: first, last, rows, files, bytes, and `source`: where
        the data comes from in words (the package and licence of bundled history, SIMULATED
        for the demo venue, the venue's name otherwise)."""
        import polars as pl

        from core.data import bundled

        cov = self.store.coverage()
        labels = bundled.sources()
        out = cov.join(labels, on=["venue", "symbol", "timeframe"], how="left")
        fallback = (
            pl.when(pl.col("venue") == "demo")
            .then(pl.lit("SIMULATED demo venue on this server"))
            .otherwise(pl.format("{} (fetched)", pl.col("venue")))
        )
        return out.with_columns(pl.coalesce("source", fallback).alias("source"))

    def facts(self) -> EngineFacts:
        return EngineFacts(
            version=core.__version__,
            native=native.status(),
            data_dir=self.settings.data_dir,
            disk=disk_facts(self.settings.data_dir),
        )

    def close(self) -> None:
        """Stop background work; safe to call twice."""
        if getattr(self, "_ingest", None) is not None:
            self._ingest.stop()
        if self._sql is not None:
            self._sql.close()
        if self._store is not None:
            self._store.close()


def build_engine(settings: Settings | None = None) -> Engine:
    return Engine(settings or Settings.from_env())
