"""Per-user SQL explorer history: one JSON-lines file per user under `<market>/sql_history/`.

The file name is a hash of the user id, so a listing of the folder names nobody. The newest
200 records are kept once a file passes 400.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

KEEP, TRIM_AT = 200, 400


class QueryHistory:
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
                path.write_text("\n".join(lines[-KEEP:]) + "\n", encoding="utf-8")

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
        with self._lock:
            self.path(user).unlink(missing_ok=True)
