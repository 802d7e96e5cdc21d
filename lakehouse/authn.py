"""Authentication: logins, session tokens, sessions, logout and password change.

`verify` answers from the in-memory session index (lakehouse.sessions) written through to the
`sessions` table. A logout, password change or disable in this process is seen at once; a
change made by another process is seen at the next refresh probe (lakehouse.accounts).
"""

from __future__ import annotations

import uuid
from typing import Any

from lakehouse import validate
from lakehouse.accounts import Account, Accounts
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
)
from lakehouse.models import User
from lakehouse.passwords import check_policy
from lakehouse.sessions import Session, SessionIndex
from lakehouse.tokens import Claims

TOKEN_CACHE_MAX = 50_000


class Authentication:
    def __init__(
        self, accounts: Accounts, devices: DeviceCookies, ttl_s: float, idle_s: float
    ) -> None:
        self.accounts = accounts
        self.store = accounts.store
        self.throttle = accounts.throttle
        self.hasher = accounts.hasher
        self.devices = devices
        self.ttl_s = ttl_s
        self.idle_s = idle_s
        self.index = SessionIndex(self.store.sessions, self.store.clock)
        self._token_cache: dict[str, Claims] = {}
        accounts.follow(self._reload)

    def _reload(self, force: bool) -> None:
        self.index.reload(force)
        if self.store.jwt_ring.reload_if_changed():
            self._token_cache.clear()  # a retired key must stop verifying at once

    def forget_keys(self) -> None:
        """Drop cached token checks (after a key rotation)."""
        self._token_cache.clear()

    # --- login -----------------------------------------------------------------------------
    def login_with_device(
        self,
        username: str,
        password: str,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
        device: str | None = None,
    ) -> LoginResult:
        """Check the password and open a session; returns its JWT and a fresh device token."""
        if not isinstance(username, str) or not isinstance(password, str):
            raise InvalidCredentials()
        ip = validate.optional_text(ip, "ip", 64)
        ua = validate.optional_text(user_agent, "user_agent", 512)
        try:
            _, key = validate.username(username)
        except InvalidInput:
            key = username.casefold()[:64]
        audit = self.store.audit
        now = self.store.clock()
        self.accounts.refresh()
        uid = self.accounts.by_key.get(key)
        dev = self.devices.verify(device, key, now)
        trust = self.throttle.trust(key, ip, now, dev)
        try:
            self.throttle.check(key, ip, now, dev)
        except Throttled:
            audit.record(
                "login",
                "denied",
                user_id=uid or audit.pseudonym(key),
                ip=ip,
                user_agent=ua,
                detail={"reason": "throttled", "client": trust},
            )
            raise
        acc = self.accounts.by_id.get(uid) if uid else None
        ok = self.hasher.verify(acc.password_hash if acc else None, password[:1024])
        pseudo = acc.user_id if acc else audit.pseudonym(key)
        if not ok or acc is None:
            self.throttle.failure(key, ip, now, dev)
            audit.record(
                "login",
                "failure",
                user_id=pseudo,
                ip=ip,
                user_agent=ua,
                detail={"reason": "bad credentials", "client": trust},
            )
            raise InvalidCredentials()
        if acc.disabled:
            audit.record(
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
            self.accounts.set_password_hash(acc, self.hasher.hash(password), rehash=True)
        sid = uuid.uuid4().hex
        audit.record(
            "login",
            "success",
            user_id=acc.user_id,
            ip=ip,
            user_agent=ua,
            detail={"session": sid, "client": trust},
        )
        self.index.open(Session(sid, acc.user_id, now, now + self.ttl_s, now, now, False, ip, ua))
        token = self.store.tokens.issue(acc.user_id, sid, now, self.ttl_s)
        return LoginResult(token, self.devices.issue(key, now))

    # --- session tokens --------------------------------------------------------------------
    def verify(self, token: str) -> User:
        """The user behind a valid, live session token; raises an AuthError subclass if not."""
        now = self.store.clock()
        self.accounts.refresh_if_due(now)  # other processes' writes and key rotations
        claims = self._token_cache.get(token) if isinstance(token, str) else None
        if claims is None:
            claims = self.store.tokens.decode(token, now)
            if len(self._token_cache) >= TOKEN_CACHE_MAX:
                self._token_cache.clear()
            self._token_cache[token] = claims
        if now >= claims.expires_at:
            raise TokenExpired("session expired; log in again")
        sess = self.index.by_id.get(claims.session_id)
        if sess is None or sess.user_id != claims.user_id:
            raise SessionRevoked("this session is unknown or has ended; log in again")
        if sess.revoked:
            raise SessionRevoked("this session has ended; log in again")
        if now >= sess.expires_at:
            raise TokenExpired("session expired; log in again")
        if now - sess.last_seen > self.idle_s:
            self.revoke([sess.session_id], "idle")
            raise TokenExpired("session timed out after inactivity; log in again")
        acc = self.accounts.by_id.get(claims.user_id)
        if acc is None:
            raise SessionRevoked("this account no longer exists")
        if acc.disabled:
            raise AccountDisabled("this account is disabled; ask an administrator")
        self.index.touched(sess, now)
        return acc.public(claims.session_id)

    def session_of(self, token: object) -> tuple[Claims, Session]:
        claims = self.store.tokens.decode(token, self.store.clock())
        self.accounts.refresh()
        sess = self.index.by_id.get(claims.session_id)
        if sess is None or sess.revoked or sess.user_id != claims.user_id:
            raise SessionRevoked("this session has ended; log in again")
        return claims, sess

    def logout(self, token: str) -> None:
        """End the token's session. An already ended or invalid token is a no-op."""
        try:
            claims = self.store.tokens.decode(token, self.store.clock())
        except InvalidToken:
            return
        self.accounts.refresh()
        sess = self.index.by_id.get(claims.session_id)
        if sess is None or sess.revoked or sess.user_id != claims.user_id:
            return
        self.store.audit.record("logout", "success", user_id=claims.user_id)
        self.revoke([claims.session_id], "logout")

    # --- sessions --------------------------------------------------------------------------
    def revoke(self, session_ids: list[str], reason: str) -> int:
        return self.index.revoke(session_ids, reason)

    def session_ids_of(self, user_id: str) -> list[str]:
        return self.index.ids_of(user_id)

    def list_sessions(self, user_id: str) -> list[dict[str, Any]]:
        """Live sessions of a user, newest first."""
        acc = self.accounts.get(user_id)
        return self.index.live_of(acc.user_id, self.idle_s)

    def revoke_session(self, acting_user: User, session_id: str) -> None:
        """End one session: your own, or anyone's if you are an admin."""
        sid = validate.session_id(session_id)
        acc = self.accounts.require_role(acting_user, "viewer", "revoke_session")
        self.accounts.refresh()
        sess = self.index.by_id.get(sid)
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
        self.revoke([sid], "revoked by user" if sess.user_id == acc.user_id else "admin")

    def revoke_other_sessions(self, token: str) -> int:
        """Log out everywhere else: end every session of the token's user but this one."""
        claims, _ = self.session_of(token)
        others = [sid for sid in self.session_ids_of(claims.user_id) if sid != claims.session_id]
        self.store.audit.record(
            "revoke_other_sessions", "success", user_id=claims.user_id, detail={"n": len(others)}
        )
        return self.revoke(others, "logout elsewhere")

    # --- password --------------------------------------------------------------------------
    def change_password(self, subject: str, old_password: str, new_password: str) -> None:
        """`subject` is a token (keeps that session) or a user id (revokes every session).
        Access tokens are kept (they are revoked one by one on My account)."""
        keep: str | None = None
        if isinstance(subject, str) and subject.count(".") == 2:
            claims, sess = self.session_of(subject)
            uid, keep = claims.user_id, sess.session_id
        else:
            uid = validate.user_id(subject)
        acc: Account = self.accounts.check_password(uid, old_password, action="change_password")
        new = check_policy(new_password, username=acc.username)
        if new == old_password:
            raise InvalidInput("the new password must differ from the old one")
        new_hash = self.hasher.hash(new)
        self.store.audit.record("change_password", "success", user_id=acc.user_id)
        self.accounts.set_password_hash(acc, new_hash, rehash=False)
        self.revoke(
            [sid for sid in self.session_ids_of(acc.user_id) if sid != keep],
            "password changed",
        )
