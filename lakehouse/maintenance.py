"""Table maintenance: audit retention, pruning of ended sessions and access tokens, compaction,
vacuum, checkpoint and log clean-up of every table, and the purge that completes erasures.

While an erasure is pending (a tombstone without `purged_at`) the vacuum runs with zero
retention, so no data file under the root keeps the erased account's personal data; the
per-user files of that account are erased again, then the tombstones are marked purged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import polars as pl
from deltalake.exceptions import DeltaError

from lakehouse.errors import StorageError
from lakehouse.store import Store
from lakehouse.tables import Table

Progress = Callable[[float, str], None]
SESSION_KEEP_DAYS = 1
TOKEN_KEEP_DAYS = 30


def prune_ended(table: Table, key: str, keep_days: int, now: dt.datetime) -> int:
    """Delete rows `keep_days` after they expired or were revoked; returns how many."""
    limit = now - dt.timedelta(days=keep_days)
    gone = table.read().filter(
        (pl.col("expires_at") < limit)
        | (pl.col("revoked_at").is_not_null() & (pl.col("revoked_at") < limit))
    )
    keys = [{key: k} for k in gone[key].to_list()]
    table.delete_matching(keys, [key])
    return len(keys)


def _maintain_table(
    store: Store, tab: Table, audit_cutoff: dt.date, vacuum_hours: int, note: Progress
) -> dict[str, Any]:
    info: dict[str, Any] = {}
    note(0.0, "compacting")
    with tab.writer():
        try:
            if tab.name == "audit_log":
                res = tab.delta().delete(
                    f"date < '{audit_cutoff.isoformat()}'",
                    commit_properties=tab.commit_properties(),
                )
                info["expired_rows"] = int(res.get("num_deleted_rows", 0))
            if tab.name == "sessions":
                # Ended sessions go a day later, with their IP and user agent.
                info["ended_sessions_pruned"] = prune_ended(
                    tab, "session_id", SESSION_KEEP_DAYS, store.now()
                )
            if tab.name == "access_tokens":
                # My account lists revoked and expired tokens until then.
                info["ended_tokens_pruned"] = prune_ended(
                    tab, "token_id", TOKEN_KEEP_DAYS, store.now()
                )
            comp = tab.delta().optimize.compact(commit_properties=tab.commit_properties())
            info["files_compacted"] = int(comp.get("numFilesRemoved", 0))
            note(0.5, "vacuuming")
            removed = tab.delta().vacuum(
                retention_hours=vacuum_hours,
                dry_run=False,
                enforce_retention_duration=False,
                commit_properties=tab.commit_properties(),
            )
            info["files_vacuumed"] = len(removed)
            dtab = tab.delta()
            dtab.create_checkpoint()
            dtab.cleanup_metadata()
        except (DeltaError, OSError) as exc:
            raise StorageError(f"maintenance of {tab.name} failed: {exc}") from exc
    return info


def maintain_tables(
    store: Store,
    *,
    actor: str,
    audit_retention_days: int,
    vacuum_retention_hours: int,
    erase_files: Callable[[str], dict[str, int]] | None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Maintain every table; returns a report per table (and `user_files` after a purge)."""
    s = store
    report: dict[str, Any] = {}
    stones = s.tombstones.read()
    pending = stones.filter(pl.col("purged_at").is_null()) if stones.height else stones
    full_vacuum = pending.height > 0
    s.audit.record("maintain", "success", actor_id=actor, detail={"erasures": pending.height})
    cutoff = (s.now() - dt.timedelta(days=audit_retention_days)).date()
    hours = 0 if full_vacuum else vacuum_retention_hours
    names = list(s.tables)
    for i, name in enumerate(names):

        def note(part: float, what: str, i: int = i, name: str = name) -> None:
            if progress:
                progress((i + part) / len(names), f"{name}: {what}")

        report[name] = _maintain_table(s, s.tables[name], cutoff, hours, note)
    if erase_files is not None and full_vacuum:
        # Files written after the erasure (e.g. by a query still running) go as well.
        erased: dict[str, int] = {}
        for uid in pending["user_id"].to_list():
            for name, n in erase_files(uid).items():
                erased[f"{name}_files_erased"] = erased.get(f"{name}_files_erased", 0) + n
        report["user_files"] = erased
    if full_vacuum:
        s.tombstones.update_rows(
            [{"user_id": u, "purged_at": s.now()} for u in pending["user_id"].to_list()],
            ["user_id"],
        )
    if progress:
        progress(1.0, "done")
    return report
