"""Per-user SQL explorer history: one JSON-lines file per user under `<market>/sql_history/`.

The file name is a hash of the user id, so a listing of the folder names nobody. The newest
200 records are kept once a file passes 400 (rewritten through a temp file and a rename).

`QueryHistory` is also a user-data source of the accounts lakehouse (lakehouse.userdata): the
GDPR export holds the user's file as `sql_history.jsonl` and the erasure deletes it, with any
temp or rotated copy. The app and the CLI register it from the settings
(`history_folder(settings.market_dir)`), so it works without starting the SQL explorer.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

KEEP, TRIM_AT = 200, 400
FOLDER = "sql_history"
EXPORT_NAME = "sql_history.jsonl"


def history_folder(market_dir: Path) -> Path:
    """Where the SQL explorer over the store at `market_dir` keeps its history."""
    return market_dir / FOLDER


class QueryHistory:
    name = "sql_history"
    """Its name as a user-data source (export manifest, maintenance report)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()

    def path(self, user: str) -> Path:
        digest = hashlib.sha256(user.encode()).hexdigest()[:24]
        return self.folder / f"{digest}.jsonl"

    def record(
        self, user: str, sql: str, *, ok: bool, rows: int, elapsed: float, error: str | None
    ) -> None:
        entry = {
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "sql": sql[:20_000],
            "ok": ok,
            "rows": rows,
            "elapsed_ms": round(elapsed * 1000, 3),
            "error": error,
        }
        path = self.path(user)
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")
            lines = path.read_text(encoding="utf-8").splitlines()
            if len(lines) > TRIM_AT:
                tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp")
                tmp.write_text("\n".join(lines[-KEEP:]) + "\n", encoding="utf-8")
                os.replace(tmp, path)

    def recent(self, user: str, limit: int = 50) -> list[dict[str, Any]]:
        """The user's most recent queries, newest first."""
        path = self.path(user)
        if not path.exists():
            return []
        out: list[dict[str, Any]] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out[::-1][:limit]

    def clear(self, user: str) -> None:
        self.erase_user(user)

    def _files(self, user: str) -> list[Path]:
        """The user's file, temp files of an interrupted trim, and rotated copies."""
        path = self.path(user)
        if not self.folder.is_dir():
            return []
        stem = path.stem
        return sorted(
            p
            for p in self.folder.iterdir()
            if p == path or p.name.startswith((f".{stem}.", f"{path.name}."))
        )

    def export_user(self, user_id: str) -> dict[str, bytes]:
        """{"sql_history.jsonl": the user's history} or {} when they have none."""
        path = self.path(user_id)
        with self._lock:
            try:
                return {EXPORT_NAME: path.read_bytes()}
            except FileNotFoundError:
                return {}

    def erase_user(self, user_id: str) -> int:
        """Delete the user's history files; returns how many there were."""
        with self._lock:
            files = self._files(user_id)
            for p in files:
                p.unlink(missing_ok=True)
            return len(files)
