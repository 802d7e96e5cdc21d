"""LakehouseAuthBackend: accounts, logins, sessions and roles on Delta tables.

Build one per process over the app's data dir::

    backend = LakehouseAuthBackend(settings.lakehouse_dir)   # secrets in <data dir>/secrets

Signatures worth knowing (the rest follow the issue):

- ``change_password(subject, old_password, new_password)``: `subject` is either a session
  token (the session that asks stays logged in, every other session of the user is
  revoked) or a user id (every session is revoked).
- Admin operations take the ACTING user first (``set_role(acting_user, user_id, role)``)
  and check that user's current role in the users table, not the role field of the object
  passed in.

Sessions: `verify_persistent_token` answers from an in-memory index written through to the
`sessions` table. A logout, password change or disable in this process is seen at once. A
change made by another process (the CLI, a second app process) is picked up when this
process next polls the table versions, at most `refresh_s` seconds later (default 2 s).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from lakehouse import validate
from lakehouse.apikeys import KeyService
from lakehouse.devices import DeviceCookies, LoginResult
from lakehouse.errors import (
    AccountDisabled,
    InvalidCredentials,
    InvalidInput,
    InvalidToken,
    NotFound,
    PermissionDenied,
    SessionRevoked,
    Throttled,
    TokenExpired,
    UsernameTaken,
)
from lakehouse.models import User
from lakehouse.passwords import PRODUCTION, Argon2Params, Hasher, check_policy
from lakehouse.quotas import Plan
from lakehouse.secrets import DEVICE_KEYS_FILE, KeyRing
from lakehouse.sessions import Session, SessionIndex
from lakehouse.store import Clock, Store
from lakehouse.tables import USERS, to_arrow
from lakehouse.throttle import LoginThrottle
from lakehouse.tokens import Claims

DEFAULT_TTL_HOURS = 24.0 * 7
DEFAULT_IDLE_MINUTES = 120.0
TOKEN_CACHE_MAX = 50_000


@dataclass(slots=True)
class _Account:
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


class LakehouseAuthBackend:
    def __init__(
        self,
        root: Path | str,
        *,
        secrets_dir: Path | str | None = None,
        session_ttl_hours: float = DEFAULT_TTL_HOURS,
        session_idle_minutes: float = DEFAULT_IDLE_MINUTES,
        plans: dict[str, Plan] | None = None,
        argon2_params: Argon2Params = PRODUCTION,
        allow_weak_hashing_for_tests: bool = False,
        refresh_s: float = 2.0,
        clock: Clock | None = None,
        on_quota_alert: Callable[[str, str, float], None] | None = None,
    ) -> None:
        if not isinstance(argon2_params, Argon2Params):
            raise InvalidInput("argon2_params must be an Argon2Params")
        if not argon2_params.meets_rfc9106 and allow_weak_hashing_for_tests is not True:
            raise InvalidInput(
                "Argon2 parameters below RFC 9106 low-memory (64 MiB, t=3, p=4) are refused; "
                "only tests may pass allow_weak_hashing_for_tests=True"
            )
        for name, value in (
            ("session_ttl_hours", session_ttl_hours),
            ("session_idle_minutes", session_idle_minutes),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise InvalidInput(f"{name} must be > 0, got {value!r}")
        self.store = Store(root, secrets_dir=secrets_dir, clock=clock)
        self.root = self.store.root
        self.ttl_s = float(session_ttl_hours) * 3600.0
        self.idle_s = float(session_idle_minutes) * 60.0
        self.refresh_s = refresh_s
        self.hasher = Hasher(argon2_params)
        self.throttle = LoginThrottle()
        self.devices = DeviceCookies(KeyRing(self.store.secrets_dir / DEVICE_KEYS_FILE))
        self._lock = threading.RLock()
        self._accounts: dict[str, _Account] = {}
        self._by_key: dict[str, str] = {}
        self._skeletons: set[str] = set()  # TR39 skeletons of every username key
        self._users_version = -2
        self._index = SessionIndex(self.store.sessions, self.store.clock)
        self._token_cache: dict[str, Claims] = {}
        self._next_probe = 0.0
        self._refresh(force=True)
        self.keys = KeyService(self, plans, on_quota_alert)

    # --- index ---------------------------------------------------------------------------
    def _refresh(self, force: bool = False) -> None:
        """Reload users/sessions if their tables changed (cheap version probe)."""
        s = self.store
        with self._lock:
            uv = s.users.latest_version()
            if force or uv != self._users_version:
                df = s.users.read()
                accounts: dict[str, _Account] = {}
                for r in df.iter_rows(named=True):
                    accounts[r["user_id"]] = _Account(
                        r["user_id"],
                        r["username"],
                        r["username_key"],
                        r["email"],
                        r["password_hash"],
                        r["role"],
                        bool(r["disabled"]),
                        r["created_at"],
                    )
                self._accounts = accounts
                self._by_key = {a.username_key: a.user_id for a in accounts.values()}
                self._skeletons = {validate.username_skeleton(k) for k in self._by_key}
                self._users_version = uv
            self._index.reload(force)
            if s.jwt_ring.reload_if_changed():
                self._token_cache.clear()  # a retired key must stop verifying at once
            self._next_probe = s.clock() + self.refresh_s

    def _account(self, user_id: object) -> _Account:
        uid = validate.user_id(user_id)
        self._refresh()
        acc = self._accounts.get(uid)
        if acc is None:
            raise NotFound(f"no account with id {uid}")
        return acc

    def get_user(self, user_id: str) -> User:
        return self._account(user_id).public()

    def find_user(self, username: str) -> User | None:
        """The account with this username (case-insensitive), or None."""
        _, key = validate.username(username)
        self._refresh()
        uid = self._by_key.get(key)
        return self._accounts[uid].public() if uid else None

    def require_role(self, acting_user: object, needed: str, action: str) -> _Account:
        """Deny by default: the acting user must exist now, be enabled and rank high enough."""
        if not isinstance(acting_user, User):
            raise PermissionDenied(f"{action} needs a logged-in user")
        self._refresh()
        acc = self._accounts.get(acting_user.user_id)
        if acc is None or acc.disabled or not acc.public().has_role(needed):
            self.store.audit.record(
                action,
                "denied",
                user_id=acting_user.user_id if acc else None,
                detail={"needed": needed},
            )
            raise PermissionDenied(f"{action} needs the {needed} role")
        return acc

    # --- registration and login ------------------------------------------------------------
    def register(self, username: str, email: str, password: str) -> User:
        """Create a viewer account. Raises InvalidInput / UsernameTaken; changes nothing then."""
        return self._create(username, email, password, "viewer", actor_id=None)

    def bootstrap_admin(self, username: str, email: str, password: str) -> User:
        """Create an admin account. For `hfthot admin create` only (needs shell access)."""
        return self._create(username, email, password, "admin", actor_id="cli")

    def _create(
        self, username: object, email: object, password: object, role: str, actor_id: str | None
    ) -> User:
        name, key = validate.username(username)
        addr = validate.email(email)
        pw = check_policy(password, username=name)
        pw_hash = self.hasher.hash(pw)
        now = self.store.now()
        uid = uuid.uuid4().hex
        with self.store.users.writer():
            self._refresh()
            if key in self._by_key:
                self.store.audit.record(
                    "register",
                    "failure",
                    user_id=self.store.audit.pseudonym(key),
                    actor_id=actor_id,
                    detail={"reason": "username taken"},
                )
                raise UsernameTaken(f"the username {name!r} is taken; choose another")
            if validate.username_skeleton(key) in self._skeletons:
                self.store.audit.record(
                    "register",
                    "failure",
                    user_id=self.store.audit.pseudonym(key),
                    actor_id=actor_id,
                    detail={"reason": "username look-alike"},
                )
                raise UsernameTaken(
                    f"the username {name!r} is too similar to an existing username "
                    "(it looks the same as one); choose another"
                )
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
            self._refresh()
        return self._accounts[uid].public()

    def login(
        self,
        username: str,
        password: str,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
        device: str | None = None,
    ) -> str:
        """Check the password and open a session; returns its JWT.

        Raises InvalidCredentials (same message and Argon2 cost whether or not the username
        exists), Throttled, or AccountDisabled. `device` is the browser's device cookie, if
        any; use `login_with_device` to get the fresh one a success issues.
        """
        return self.login_with_device(
            username, password, ip=ip, user_agent=user_agent, device=device
        ).token

    def login_with_device(
        self,
        username: str,
        password: str,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
        device: str | None = None,
    ) -> LoginResult:
        """Like `login`, and also returns a new device token for the browser to keep.

        An attempt with a valid device token of this account is judged by that device's own
        failure counter, not the account-wide one (see throttle.py), so failures from
        elsewhere cannot keep this browser out.
        """
        if not isinstance(username, str) or not isinstance(password, str):
            raise InvalidCredentials()
        ip = validate.optional_text(ip, "ip", 64)
        ua = validate.optional_text(user_agent, "user_agent", 512)
        try:
            _, key = validate.username(username)
        except InvalidInput:
            key = username.casefold()[:64]
        now = self.store.clock()
        self._refresh()
        uid = self._by_key.get(key)
        dev = self.devices.verify(device, key, now)
        trust = self.throttle.trust(key, ip, now, dev)
        try:
            self.throttle.check(key, ip, now, dev)
        except Throttled:
            self.store.audit.record(
                "login",
                "denied",
                user_id=uid or self.store.audit.pseudonym(key),
                ip=ip,
                user_agent=ua,
                detail={"reason": "throttled", "client": trust},
            )
            raise
        acc = self._accounts.get(uid) if uid else None
        ok = self.hasher.verify(acc.password_hash if acc else None, password[:1024])
        pseudo = acc.user_id if acc else self.store.audit.pseudonym(key)
        if not ok or acc is None:
            self.throttle.failure(key, ip, now, dev)
            self.store.audit.record(
                "login",
                "failure",
                user_id=pseudo,
                ip=ip,
                user_agent=ua,
                detail={"reason": "bad credentials", "client": trust},
            )
            raise InvalidCredentials()
        if acc.disabled:
            self.store.audit.record(
                "login",
                "denied",
                user_id=pseudo,
                ip=ip,
                user_agent=ua,
                detail={"reason": "disabled"},
            )
            raise AccountDisabled("this account is disabled; ask an administrator")
        self.throttle.success(key, ip, now, dev)
        if self.hasher.needs_rehash(acc.password_hash):
            self._set_password_hash(acc, self.hasher.hash(password), rehash=True)
        sid = uuid.uuid4().hex
        self.store.audit.record(
            "login",
            "success",
            user_id=acc.user_id,
            ip=ip,
            user_agent=ua,
            detail={"session": sid, "client": trust},
        )
        self._index.open(Session(sid, acc.user_id, now, now + self.ttl_s, now, now, False, ip, ua))
        token = self.store.tokens.issue(acc.user_id, sid, now, self.ttl_s)
        return LoginResult(token, self.devices.issue(key, now))

    def _set_password_hash(self, acc: _Account, new_hash: str, *, rehash: bool) -> None:
        now = self.store.now()
        with self.store.users.writer():  # read-modify-write of one row
            row = self._row(acc)
            row.update(password_hash=new_hash, updated_at=now)
            if not rehash:
                row["password_changed_at"] = now
            self.store.users.upsert([row])
        self._refresh()

    def _row(self, acc: _Account) -> dict[str, Any]:
        df = self.store.users.read().filter(pl.col("user_id") == acc.user_id)
        if df.height != 1:
            raise NotFound(f"no account with id {acc.user_id}")
        return df.row(0, named=True)

    # --- tokens ----------------------------------------------------------------------------
    def verify_persistent_token(self, token: str) -> User:
        """The user behind a valid, live session token; raises an AuthError subclass if not."""
        now = self.store.clock()
        if now >= self._next_probe:
            self._refresh()  # other processes' writes and key rotations
        claims = self._token_cache.get(token) if isinstance(token, str) else None
        if claims is None:
            claims = self.store.tokens.decode(token, now)
            if len(self._token_cache) >= TOKEN_CACHE_MAX:
                self._token_cache.clear()
            self._token_cache[token] = claims
        if now >= claims.expires_at:
            raise TokenExpired("session expired; log in again")
        sess = self._index.by_id.get(claims.session_id)
        if sess is None or sess.user_id != claims.user_id:
            raise SessionRevoked("this session is unknown or has ended; log in again")
        if sess.revoked:
            raise SessionRevoked("this session has ended; log in again")
        if now >= sess.expires_at:
            raise TokenExpired("session expired; log in again")
        if now - sess.last_seen > self.idle_s:
            self._revoke([sess.session_id], "idle")
            raise TokenExpired("session timed out after inactivity; log in again")
        acc = self._accounts.get(claims.user_id)
        if acc is None:
            raise SessionRevoked("this account no longer exists")
        if acc.disabled:
            raise AccountDisabled("this account is disabled; ask an administrator")
        self._index.touched(sess, now)
        return acc.public(claims.session_id)

    def flush(self) -> None:
        """Write pending last-seen times now (the app may call this at shutdown)."""
        self._index.flush()

    def _session_of(self, token: object) -> tuple[Claims, Session]:
        claims = self.store.tokens.decode(token, self.store.clock())
        self._refresh()
        sess = self._index.by_id.get(claims.session_id)
        if sess is None or sess.revoked or sess.user_id != claims.user_id:
            raise SessionRevoked("this session has ended; log in again")
        return claims, sess

    def _revoke(self, session_ids: list[str], reason: str) -> int:
        return self._index.revoke(session_ids, reason)

    def logout(self, token: str) -> None:
        """End the token's session. An already ended or invalid token is a no-op."""
        try:
            claims = self.store.tokens.decode(token, self.store.clock())
        except InvalidToken:
            return
        self._refresh()
        sess = self._index.by_id.get(claims.session_id)
        if sess is None or sess.revoked or sess.user_id != claims.user_id:
            return
        self.store.audit.record("logout", "success", user_id=claims.user_id)
        self._revoke([claims.session_id], "logout")

    def rotate_token_key(self) -> str:
        """New JWT signing key (kid); the previous key stays valid, older ones retire."""
        self.store.audit.record("rotate_token_key", "success", actor_id="cli")
        kid = self.store.jwt_ring.rotate()
        self._token_cache.clear()
        return kid

    # --- sessions --------------------------------------------------------------------------
    def list_sessions(self, user_id: str) -> list[dict[str, Any]]:
        """Live sessions of a user, newest first."""
        acc = self._account(user_id)
        return self._index.live_of(acc.user_id, self.idle_s)

    def revoke_session(self, acting_user: User, session_id: str) -> None:
        """End one session: your own, or anyone's if you are an admin."""
        sid = validate.session_id(session_id)
        acc = self.require_role(acting_user, "viewer", "revoke_session")
        self._refresh()
        sess = self._index.by_id.get(sid)
        if sess is None:
            raise NotFound("no such session")
        if sess.user_id != acc.user_id and acc.role != "admin":
            self.store.audit.record(
                "revoke_session", "denied", user_id=sess.user_id, actor_id=acc.user_id
            )
            raise PermissionDenied("you can end only your own sessions")
        self.store.audit.record(
            "revoke_session",
            "success",
            user_id=sess.user_id,
            actor_id=acc.user_id,
            detail={"session": sid},
        )
        self._revoke([sid], "revoked by user" if sess.user_id == acc.user_id else "admin")

    def revoke_other_sessions(self, token: str) -> int:
        """Log out everywhere else: end every session of the token's user but this one."""
        claims, _ = self._session_of(token)
        others = [sid for sid in self._index.ids_of(claims.user_id) if sid != claims.session_id]
        self.store.audit.record(
            "revoke_other_sessions", "success", user_id=claims.user_id, detail={"n": len(others)}
        )
        return self._revoke(others, "logout elsewhere")

    def _user_session_ids(self, user_id: str) -> list[str]:
        return self._index.ids_of(user_id)

    # --- passwords -------------------------------------------------------------------------
    def check_password(self, user_id: str, password: object, *, action: str) -> _Account:
        """Re-authentication for sensitive actions; throttled like a login."""
        acc = self._account(user_id)
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

    def change_password(self, subject: str, old_password: str, new_password: str) -> None:
        """`subject` is a token (keeps that session) or a user id (revokes every session)."""
        keep: str | None = None
        if isinstance(subject, str) and subject.count(".") == 2:
            claims, sess = self._session_of(subject)
            uid, keep = claims.user_id, sess.session_id
        else:
            uid = validate.user_id(subject)
        acc = self.check_password(uid, old_password, action="change_password")
        new = check_policy(new_password, username=acc.username)
        if new == old_password:
            raise InvalidInput("the new password must differ from the old one")
        new_hash = self.hasher.hash(new)
        self.store.audit.record("change_password", "success", user_id=acc.user_id)
        self._set_password_hash(acc, new_hash, rehash=False)
        self._revoke(
            [sid for sid in self._user_session_ids(acc.user_id) if sid != keep],
            "password changed",
        )

    # --- admin -----------------------------------------------------------------------------
    def list_users(self, acting_user: User) -> list[User]:
        self.require_role(acting_user, "admin", "list_users")
        return sorted(
            (a.public() for a in self._accounts.values()), key=lambda u: u.username.casefold()
        )

    def _active_admins(self) -> set[str]:
        return {a.user_id for a in self._accounts.values() if a.role == "admin" and not a.disabled}

    def set_role(self, acting_user: User, user_id: str, role: str) -> User:
        new_role = validate.role(role)
        actor = self.require_role(acting_user, "admin", "set_role")
        with self.store.users.writer():  # check and change under one lock
            acc = self._account(user_id)
            only = self._active_admins() == {acc.user_id}
            if acc.role == "admin" and new_role != "admin" and only:
                raise InvalidInput("this is the last admin; make another admin first")
            return self._apply_role(acc, new_role, actor.user_id)

    def set_role_as_operator(self, username: str, role: str) -> User:
        """Change a role from the shell (`hfthot admin set-role`); audited with actor `cli`."""
        new_role = validate.role(role)
        with self.store.users.writer():
            user = self.find_user(username)
            if user is None:
                raise NotFound(f"no account named {username!r}")
            return self._apply_role(self._account(user.user_id), new_role, "cli")

    def _apply_role(self, acc: _Account, new_role: str, actor_id: str) -> User:
        self.store.audit.record(
            "set_role",
            "success",
            user_id=acc.user_id,
            actor_id=actor_id,
            detail={"from": acc.role, "to": new_role},
        )
        row = self._row(acc)
        row.update(role=new_role, updated_at=self.store.now())
        self.store.users.upsert([row])
        self._refresh()
        return self._accounts[acc.user_id].public()

    def disable_user(self, acting_user: User, user_id: str, disabled: bool = True) -> User:
        """Disable (and log out everywhere) or re-enable an account."""
        flag = validate.flag(disabled, "disabled")
        actor = self.require_role(acting_user, "admin", "disable_user")
        with self.store.users.writer():  # check and change under one lock
            acc = self._account(user_id)
            if flag and acc.role == "admin" and self._active_admins() == {acc.user_id}:
                raise InvalidInput("this is the last admin; make another admin first")
            self.store.audit.record(
                "disable_user" if flag else "enable_user",
                "success",
                user_id=acc.user_id,
                actor_id=actor.user_id,
            )
            row = self._row(acc)
            row.update(disabled=flag, updated_at=self.store.now())
            self.store.users.upsert([row])
        if flag:
            self._revoke(self._user_session_ids(acc.user_id), "account disabled")
        self._refresh()
        return self._accounts[acc.user_id].public()

    def list_all_sessions(self, acting_user: User) -> list[dict[str, Any]]:
        """Every live session (admin)."""
        self.require_role(acting_user, "admin", "list_all_sessions")
        out: list[dict[str, Any]] = []
        for uid in list(self._accounts):
            for s in self.list_sessions(uid):
                out.append({"user_id": uid, "username": self._accounts[uid].username, **s})
        return out

    # --- API keys, quotas, consent (delegated) -----------------------------------------------
    def save_api_keys(
        self,
        user_id: str,
        provider_keys: dict[str, str],
        consent: bool,
        *,
        password: str,
    ) -> None:
        self.keys.save(user_id, provider_keys, consent, password=password)

    def get_api_keys(self, user_id: str) -> dict[str, Any]:
        return self.keys.get(user_id)

    def delete_api_key(self, user_id: str, provider: str) -> None:
        self.keys.delete(user_id, provider)

    def reveal_api_key(self, user_id: str, provider: str, *, password: str) -> str:
        return self.keys.reveal(user_id, provider, password=password)

    def update_query_count(self, user_id: str, provider: str, increment: int = 1) -> int:
        return self.keys.update_query_count(user_id, provider, increment)

    def quota_alerts(self, user_id: str) -> list[dict[str, Any]]:
        return self.keys.alerts(user_id)

    def set_consent(self, user_id: str, purpose: str, granted: bool) -> None:
        self.keys.set_consent(user_id, purpose, granted)

    def get_consents(self, user_id: str) -> dict[str, dict[str, Any]]:
        return self.keys.get_consents(user_id)

    def client(self) -> Any:
        """A LakehouseClient sharing this backend (and its session index)."""
        from lakehouse.client import LakehouseClient

        return LakehouseClient(self.root, backend=self)
