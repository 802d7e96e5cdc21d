"""Personal access tokens at rest: the token format, its keyed hash and the in-memory index.

A token reads ``hft_pat_<token id: 12 hex>_<secret: 43 base64url>`` (256 random bits). The
table keeps only HMAC-SHA256(key, "<token id>.<secret>") with a key from
`<secrets>/access-token-keys.json` (a KeyRing: 256 random bits, mode 0600) and that key's
kid, so a stolen table or backup cannot be turned back into working tokens.

`TokenIndex` mirrors the `access_tokens` table in memory (token id -> entry) and reloads it
when the table version changes, so checking a token reads no Delta. Last-used times are
kept in memory and written in the background at most once a minute per token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass

from lakehouse.errors import LakehouseError
from lakehouse.secrets import KeyRing
from lakehouse.sessions import ts, utc
from lakehouse.store import Clock
from lakehouse.tables import Table

TOKEN_PREFIX = "hft_pat_"  # noqa: S105 (a prefix, not a secret)
USE_PERSIST_S = 60.0
_TOKEN = re.compile(r"^hft_pat_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_TOKEN_ID = re.compile(r"^[0-9a-f]{12}$")


def parse(token: object) -> tuple[str, str] | None:
    """(token id, secret) of a well-formed token, else None."""
    if not isinstance(token, str) or len(token) != 64:
        return None
    found = _TOKEN.match(token)
    return (found.group(1), found.group(2)) if found else None


def is_token_id(value: object) -> bool:
    return isinstance(value, str) and _TOKEN_ID.match(value) is not None


def new_token() -> tuple[str, str, str]:
    """(token id, secret, token text) from fresh random bits."""
    token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    return token_id, secret, f"{TOKEN_PREFIX}{token_id}_{secret}"


def keyed_hash(key: bytes, token_id: str, secret: str) -> str:
    return hmac.new(key, f"{token_id}.{secret}".encode("ascii"), hashlib.sha256).hexdigest()


@dataclass(slots=True)
class Entry:
    token_id: str
    user_id: str
    name: str
    scopes: tuple[str, ...]
    token_hash: str
    key_id: str
    created_at: float
    expires_at: float
    last_used: float | None
    persisted_last_used: float | None
    revoked_at: float | None

    def matches(self, ring: KeyRing, secret: str) -> bool:
        """Constant-time check of `secret` against the stored keyed hash."""
        key = ring.keys.get(self.key_id)
        if key is None:
            ring.reload_if_changed()
            key = ring.keys.get(self.key_id)
        if key is None:
            return False
        return hmac.compare_digest(keyed_hash(key, self.token_id, secret), self.token_hash)


def scopes_text(scopes: tuple[str, ...]) -> str:
    return ",".join(scopes)


class TokenIndex:
    def __init__(self, table: Table, clock: Clock) -> None:
        self.table = table
        self.clock = clock
        self.by_id: dict[str, Entry] = {}
        self.version = -2
        self._lock = threading.RLock()
        self._flushing = False

    def reload(self, force: bool = False) -> None:
        with self._lock:
            version = self.table.latest_version()
            if not force and version == self.version:
                return
            fresh: dict[str, Entry] = {}
            for r in self.table.read().iter_rows(named=True):
                stored = None if r["last_used_at"] is None else ts(r["last_used_at"])
                old = self.by_id.get(r["token_id"])
                known = [t for t in (stored, old.last_used if old else None) if t is not None]
                used = max(known) if known else None
                fresh[r["token_id"]] = Entry(
                    r["token_id"],
                    r["user_id"],
                    r["name"],
                    tuple(s for s in (r["scopes"] or "").split(",") if s),
                    r["token_hash"],
                    r["key_id"],
                    ts(r["created_at"]),
                    ts(r["expires_at"]),
                    used,
                    stored,
                    None if r["revoked_at"] is None else ts(r["revoked_at"]),
                )
            self.by_id = fresh
            self.version = version

    def add(self, entry: Entry) -> None:
        with self._lock:
            self.by_id[entry.token_id] = entry

    def of_user(self, user_id: str) -> list[Entry]:
        return [e for e in list(self.by_id.values()) if e.user_id == user_id]

    def live_of(self, user_id: str, now: float) -> list[Entry]:
        return [e for e in self.of_user(user_id) if e.revoked_at is None and e.expires_at > now]

    def revoke(self, entries: list[Entry], reason: str) -> None:
        """Commit the revocation of `entries`, then mark them here."""
        if not entries:
            return
        now = self.clock()
        self.table.update_rows(
            [
                {"token_id": e.token_id, "revoked_at": utc(now), "revoked_reason": reason}
                for e in entries
            ],
            ["token_id"],
        )
        with self._lock:
            for e in entries:
                e.revoked_at = now

    def used(self, entry: Entry, now: float) -> None:
        """Note a use; a background write follows when the stored time is a minute old."""
        entry.last_used = now
        last = entry.persisted_last_used
        if last is not None and now - last <= USE_PERSIST_S:
            return
        with self._lock:
            if self._flushing:
                return
            self._flushing = True
        threading.Thread(target=self.flush, daemon=True, name="access-token-use").start()

    def flush(self, *, everything: bool = False) -> None:
        """Write last-used times: those a minute newer than the table's (or all pending)."""
        gap = 0.0 if everything else USE_PERSIST_S
        try:
            with self._lock:
                due = [
                    e
                    for e in self.by_id.values()
                    if e.last_used is not None
                    and (e.persisted_last_used is None or e.last_used - e.persisted_last_used > gap)
                ]
                marks = [e.last_used for e in due]
            if due:
                self.table.update_rows(
                    [
                        {"token_id": e.token_id, "last_used_at": utc(m)}
                        for e, m in zip(due, marks, strict=True)
                        if m is not None
                    ],
                    ["token_id"],
                )
                with self._lock:
                    for e, m in zip(due, marks, strict=True):
                        e.persisted_last_used = m
        except LakehouseError:
            pass  # advisory; the next use or flush retries
        finally:
            with self._lock:
                self._flushing = False


def as_datetime(value: float | None) -> dt.datetime | None:
    return None if value is None else utc(value)
