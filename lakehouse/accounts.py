"""The users table as an in-memory index: lookups, registration, role checks, re-authentication.

`Accounts.refresh` reloads the users table when its version changed (a cheap probe of the
`_delta_log` file names) and then runs every follower registered with `follow`: the session
index, the access-token index and the key rings reload the same way. Readers on the hot path
call `refresh_if_due`, which probes at most once every `refresh_s` seconds, so a change made by
another process (the CLI, a second app process) is seen within that interval.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from lakehouse import validate
from lakehouse.errors import InvalidCredentials, NotFound, PermissionDenied, UsernameTaken
from lakehouse.models import User
from lakehouse.passwords import Hasher, check_policy
from lakehouse.store import Store
from lakehouse.tables import USERS, to_arrow
from lakehouse.throttle import LoginThrottle


@dataclass(slots=True)
class Account:
    user_id: str
    username: str
    username_key: str
    email: str
    password_hash: str
    role: str
    disabled: bool
    created_at: dt.datetime

    def public(self, session_id: str | None = None) -> User:
        return User(
            self.user_id,
            self.username,
            self.email,
            self.role,
            self.disabled,
            self.created_at,
            session_id,
        )


class Accounts:
    def __init__(
        self, store: Store, hasher: Hasher, throttle: LoginThrottle, refresh_s: float
    ) -> None:
        self.store = store
        self.hasher = hasher
        self.throttle = throttle
        self.refresh_s = refresh_s
        self.lock = threading.RLock()
        self.by_id: dict[str, Account] = {}
        self.by_key: dict[str, str] = {}
        self.skeletons: set[str] = set()  # TR39 skeletons of every username key
        self.version = -2
        self.next_probe = 0.0
        self._followers: list[Callable[[bool], None]] = []

    # --- index ---------------------------------------------------------------------------
    def follow(self, reload: Callable[[bool], None]) -> None:
        """Run `reload(force)` on every refresh too (indexes of other tables, key rings)."""
        self._followers.append(reload)

    def refresh(self, force: bool = False) -> None:
        """Reload the users table if it changed, then every follower."""
        with self.lock:
            version = self.store.users.latest_version()
            if force or version != self.version:
                by_id: dict[str, Account] = {}
                for r in self.store.users.read().iter_rows(named=True):
                    by_id[r["user_id"]] = Account(
                        r["user_id"],
                        r["username"],
                        r["username_key"],
                        r["email"],
                        r["password_hash"],
                        r["role"],
                        bool(r["disabled"]),
                        r["created_at"],
                    )
                self.by_id = by_id
                self.by_key = {a.username_key: a.user_id for a in by_id.values()}
                self.skeletons = {validate.username_skeleton(k) for k in self.by_key}
                self.version = version
            for reload in self._followers:
                reload(force)
            self.next_probe = self.store.clock() + self.refresh_s

    def refresh_if_due(self, now: float) -> None:
        if now >= self.next_probe:
            self.refresh()

    def get(self, user_id: object) -> Account:
        uid = validate.user_id(user_id)
        self.refresh()
        acc = self.by_id.get(uid)
        if acc is None:
            raise NotFound(f"no account with id {uid}")
        return acc

    def find(self, username: object) -> Account | None:
        """The account with this username (case-insensitive), or None."""
        _, key = validate.username(username)
        self.refresh()
        uid = self.by_key.get(key)
        return self.by_id[uid] if uid else None

    def active_admins(self) -> set[str]:
        return {a.user_id for a in self.by_id.values() if a.role == "admin" and not a.disabled}

    def require_role(self, acting_user: object, needed: str, action: str) -> Account:
        """Deny by default: the acting user must exist now, be enabled and rank high enough."""
        if not isinstance(acting_user, User):
            raise PermissionDenied(f"{action} needs a logged-in user")
        self.refresh()
        acc = self.by_id.get(acting_user.user_id)
        if acc is None or acc.disabled or not acc.public().has_role(needed):
            self.store.audit.record(
                action,
                "denied",
                user_id=acting_user.user_id if acc else None,
                detail={"needed": needed},
            )
            raise PermissionDenied(f"{action} needs the {needed} role")
        return acc

    # --- registration ----------------------------------------------------------------------
    def create(
        self, username: object, email: object, password: object, role: str, actor_id: str | None
    ) -> User:
        """A new account. Raises InvalidInput / UsernameTaken; changes nothing then."""
        name, key = validate.username(username)
        addr = validate.email(email)
        pw = check_policy(password, username=name)
        pw_hash = self.hasher.hash(pw)
        now = self.store.now()
        uid = uuid.uuid4().hex
        with self.store.users.writer():
            self.refresh()
            reason = None
            if key in self.by_key:
                reason, text = "username taken", "is taken"
            elif validate.username_skeleton(key) in self.skeletons:
                reason = "username look-alike"
                text = "is too similar to an existing username (it looks the same as one)"
            if reason is not None:
                self.store.audit.record(
                    "register",
                    "failure",
                    user_id=self.store.audit.pseudonym(key),
                    actor_id=actor_id,
                    detail={"reason": reason},
                )
                raise UsernameTaken(f"the username {name!r} {text}; choose another")
            self.store.audit.record(
                "register", "success", user_id=uid, actor_id=actor_id, detail={"role": role}
            )
            row = {
                "user_id": uid,
                "username": name,
                "username_key": key,
                "email": addr,
                "password_hash": pw_hash,
                "role": role,
                "disabled": False,
                "created_at": now,
                "updated_at": now,
                "password_changed_at": now,
            }
            self.store.users.append_now(to_arrow(USERS, [row]))
            self.refresh()
        return self.by_id[uid].public()

    # --- changes to one row ----------------------------------------------------------------
    def row(self, acc: Account) -> dict[str, Any]:
        df = self.store.users.read().filter(pl.col("user_id") == acc.user_id)
        if df.height != 1:
            raise NotFound(f"no account with id {acc.user_id}")
        return df.row(0, named=True)

    def update(self, acc: Account, **changes: Any) -> Account:
        """Read-modify-write of the account's row under the table's writer lock."""
        with self.store.users.writer():
            row = self.row(acc)
            row.update(changes, updated_at=self.store.now())
            self.store.users.upsert([row])
        self.refresh()
        return self.by_id[acc.user_id]

    def set_password_hash(self, acc: Account, new_hash: str, *, rehash: bool) -> None:
        changes: dict[str, Any] = {"password_hash": new_hash}
        if not rehash:
            changes["password_changed_at"] = self.store.now()
        self.update(acc, **changes)

    def check_password(self, user_id: str, password: object, *, action: str) -> Account:
        """Re-authentication for sensitive actions; throttled like a login."""
        acc = self.get(user_id)
        now = self.store.clock()
        self.throttle.check(acc.username_key, None, now)
        if not isinstance(password, str) or not self.hasher.verify(
            acc.password_hash, password[:1024]
        ):
            self.throttle.failure(acc.username_key, None, now)
            self.store.audit.record(
                action, "failure", user_id=acc.user_id, detail={"reason": "wrong password"}
            )
            raise InvalidCredentials("the password is not correct")
        return acc
