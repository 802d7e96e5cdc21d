"""The in-memory session index, written through to the `sessions` table.

`verify_persistent_token` answers from this index without touching Delta. Every change
(login, logout, revocation) is committed to the table first and then applied here; the
index reloads from the table when its version changes (another process wrote). Last-seen
times are kept in memory and persisted in the background at most once a minute per
session, so the idle timeout survives restarts without a write per request.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Any

from lakehouse.errors import LakehouseError
from lakehouse.store import Clock
from lakehouse.tables import Table

TOUCH_PERSIST_S = 60.0


@dataclass(slots=True)
class Session:
    session_id: str
    user_id: str
    created_at: float
    expires_at: float
    last_seen: float
    persisted_last_seen: float
    revoked: bool
    ip: str | None
    user_agent: str | None


def ts(x: Any) -> float:
    return 0.0 if x is None else float(x.timestamp())


def utc(x: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(x, dt.UTC)


class SessionIndex:
    def __init__(self, table: Table, clock: Clock) -> None:
        self.table = table
        self.clock = clock
        self.by_id: dict[str, Session] = {}
        self.version = -2
        self._lock = threading.RLock()
        self._flushing = False

    def reload(self, force: bool = False) -> None:
        with self._lock:
            v = self.table.latest_version()
            if not force and v == self.version:
                return
            now = self.clock()
            fresh: dict[str, Session] = {}
            for r in self.table.read().iter_rows(named=True):
                exp = ts(r["expires_at"])
                revoked = r["revoked_at"] is not None
                if exp <= now and not revoked:
                    continue
                seen = ts(r["last_seen_at"])
                old = self.by_id.get(r["session_id"])
                fresh[r["session_id"]] = Session(
                    r["session_id"],
                    r["user_id"],
                    ts(r["created_at"]),
                    exp,
                    max(seen, old.last_seen if old else 0.0),
                    seen,
                    revoked,
                    r["ip"],
                    r["user_agent"],
                )
            self.by_id = fresh
            self.version = v

    def open(self, sess: Session) -> None:
        """Commit a new session row, then index it."""
        self.table.append(
            [
                {
                    "session_id": sess.session_id,
                    "user_id": sess.user_id,
                    "created_at": utc(sess.created_at),
                    "expires_at": utc(sess.expires_at),
                    "last_seen_at": utc(sess.last_seen),
                    "ip": sess.ip,
                    "user_agent": sess.user_agent,
                }
            ]
        )
        with self._lock:
            self.by_id[sess.session_id] = sess

    def revoke(self, session_ids: list[str], reason: str) -> int:
        with self._lock:
            live = [s for s in session_ids if s in self.by_id and not self.by_id[s].revoked]
        if not live:
            return 0
        now = utc(self.clock())
        self.table.update_rows(
            [{"session_id": sid, "revoked_at": now, "revoke_reason": reason} for sid in live],
            ["session_id"],
        )
        with self._lock:
            for sid in live:
                self.by_id[sid].revoked = True
        return len(live)

    def ids_of(self, user_id: str) -> list[str]:
        return [
            s.session_id
            for s in list(self.by_id.values())
            if s.user_id == user_id and not s.revoked
        ]

    def live_of(self, user_id: str, idle_s: float) -> list[dict[str, Any]]:
        now = self.clock()
        out = [
            {
                "session_id": s.session_id,
                "created_at": utc(s.created_at),
                "last_seen_at": utc(s.last_seen),
                "expires_at": utc(s.expires_at),
                "ip": s.ip,
                "user_agent": s.user_agent,
            }
            for s in list(self.by_id.values())
            if s.user_id == user_id
            and not s.revoked
            and s.expires_at > now
            and now - s.last_seen <= idle_s
        ]
        return sorted(out, key=lambda r: r["created_at"], reverse=True)

    def touched(self, sess: Session, now: float) -> None:
        sess.last_seen = now
        if now - sess.persisted_last_seen > TOUCH_PERSIST_S:
            with self._lock:
                if self._flushing:
                    return
                self._flushing = True
            threading.Thread(target=self.flush, daemon=True, name="session-touch").start()

    def flush(self) -> None:
        """Persist last-seen times older than a minute (advisory; failures retry later)."""
        try:
            with self._lock:
                due = [
                    s
                    for s in self.by_id.values()
                    if not s.revoked and s.last_seen - s.persisted_last_seen > TOUCH_PERSIST_S
                ]
                marks = [s.last_seen for s in due]
            if due:
                self.table.update_rows(
                    [
                        {"session_id": s.session_id, "last_seen_at": utc(m)}
                        for s, m in zip(due, marks, strict=True)
                    ],
                    ["session_id"],
                )
                with self._lock:
                    for s, m in zip(due, marks, strict=True):
                        s.persisted_last_seen = m
        except LakehouseError:
            pass
        finally:
            with self._lock:
                self._flushing = False
