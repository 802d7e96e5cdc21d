"""Personal access tokens: create (password again), list, revoke, and check one per API call.

A token grants scopes (`SCOPES`); the account's current role still applies on every use, so a
viewer's token cannot run SQL even with the `sql:run` scope (`SCOPE_MIN_ROLE`). The token text
is returned once by `create` and never stored, logged or audited (see lakehouse.token_index
for the format and the keyed hash). Creation and revocation are audited; refused uses are
audited as `token_use_failed`, at most once a minute per token id and reason and at most
FAILURE_AUDITS_PER_MINUTE in all, so a flood of bad tokens cannot flood the audit log.
Disabling or erasing an account revokes its tokens; a password change keeps them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from dataclasses import dataclass

from lakehouse import validate
from lakehouse.accounts import Account, Accounts
from lakehouse.errors import (
    AccountDisabled,
    AuditWriteError,
    InvalidInput,
    InvalidToken,
    LakehouseError,
    NotFound,
    PermissionDenied,
    TokenExpired,
)
from lakehouse.models import ROLE_RANK, User
from lakehouse.secrets import ACCESS_TOKEN_KEYS_FILE, KeyRing
from lakehouse.sessions import utc
from lakehouse.tables import ACCESS_TOKENS, to_arrow
from lakehouse.token_index import (
    TOKEN_PREFIX,
    Entry,
    TokenIndex,
    as_datetime,
    is_token_id,
    keyed_hash,
    new_token,
    parse,
    scopes_text,
)

SCOPES = ("market:read", "sql:run", "analytics:run", "account:read", "studies:read")
SCOPE_MIN_ROLE = {
    "market:read": "viewer",
    "sql:run": "analyst",
    "analytics:run": "analyst",
    "account:read": "viewer",
    "studies:read": "analyst",
}
MAX_LIVE_TOKENS = 20
NAME_MAX = 60
MAX_DAYS = 365
FAILURE_AUDIT_EVERY_S = 60.0
FAILURE_AUDITS_PER_MINUTE = 30

__all__ = ["SCOPES", "SCOPE_MIN_ROLE", "TOKEN_PREFIX", "AccessToken", "AccessTokens", "TokenUser"]


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A token as its owner sees it (never the secret): name, scopes and times (UTC)."""

    token_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: dt.datetime
    expires_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    def status(self, now: dt.datetime) -> str:
        """ "revoked", "expired" or "active" at `now`."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if now >= self.expires_at else "active"


@dataclass(frozen=True, slots=True)
class TokenUser:
    """Who an accepted access token speaks for, and what it may do."""

    user: User
    token_id: str
    scopes: tuple[str, ...]


def _scopes(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
        raise InvalidInput("scopes must be a list of scope names, e.g. ['market:read']")
    for s in value:
        if s not in SCOPES:
            raise InvalidInput(f"unknown scope {str(s)[:40]!r}; choose from {', '.join(SCOPES)}")
    if not value:
        raise InvalidInput(f"choose at least one scope: {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in value)


def _name(value: object) -> str:
    name = validate.text(value, "token name").strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise InvalidInput(f"token name must have 1 to {NAME_MAX} characters, got {len(name)}")
    if not name.isprintable():
        raise InvalidInput("token name must not contain control characters")
    return name


def _days(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
        raise InvalidInput(f"expires_in_days must be a whole number from 1 to {MAX_DAYS}")
    return value


def _public(e: Entry) -> AccessToken:
    return AccessToken(
        e.token_id,
        e.name,
        e.scopes,
        utc(e.created_at),
        utc(e.expires_at),
        as_datetime(e.last_used),
        as_datetime(e.revoked_at),
    )


class AccessTokens:
    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts
        self.store = accounts.store
        self.table = self.store.access_tokens
        self.ring = KeyRing(self.store.secrets_dir / ACCESS_TOKEN_KEYS_FILE)
        self.index = TokenIndex(self.table, self.store.clock)
        self._lock = threading.Lock()
        self._failed: dict[tuple[str, str], float] = {}  # (token id, reason) -> last audit
        self._window = (0.0, 0)  # start of the current minute, audits written in it
        self._suppressed = 0
        accounts.follow(self._reload)

    def _reload(self, force: bool) -> None:
        self.index.reload(force)
        self.ring.reload_if_changed()

    # --- owner's operations ------------------------------------------------------------------
    def create(
        self,
        user_id: str,
        name: str,
        scopes: list[str] | tuple[str, ...],
        expires_in_days: int,
        *,
        password: str,
    ) -> str:
        """A new token; its text is returned now and never again."""
        uid = validate.user_id(user_id)
        label, granted, days = _name(name), _scopes(scopes), _days(expires_in_days)
        acc = self.accounts.check_password(uid, password, action="access_token_create")
        if acc.disabled:
            raise AccountDisabled("this account is disabled; ask an administrator")
        with self.table.writer():
            self.accounts.refresh()
            now = self.store.clock()
            live = self.index.live_of(uid, now)
            if len(live) >= MAX_LIVE_TOKENS:
                raise InvalidInput(
                    f"you have {MAX_LIVE_TOKENS} live access tokens, the most allowed; "
                    "revoke one first"
                )
            if any(e.name.casefold() == label.casefold() for e in live):
                raise InvalidInput(f"you already have a live token named {label!r}; pick another")
            token_id, secret, text = new_token()
            while token_id in self.index.by_id:
                token_id, secret, text = new_token()
            entry = Entry(
                token_id,
                uid,
                label,
                granted,
                keyed_hash(self.ring.current, token_id, secret),
                self.ring.current_kid,
                now,
                now + days * 86400.0,
                None,
                None,
                None,
            )
            self.store.audit.record(
                "access_token_created",
                "success",
                user_id=uid,
                detail={
                    "token_id": token_id,
                    "scopes": list(granted),
                    "expires_at": utc(entry.expires_at).isoformat(),
                },
            )
            row = {
                "token_id": token_id,
                "user_id": uid,
                "name": label,
                "scopes": scopes_text(granted),
                "token_hash": entry.token_hash,
                "key_id": entry.key_id,
                "created_at": utc(now),
                "expires_at": utc(entry.expires_at),
            }
            self.table.append_now(to_arrow(ACCESS_TOKENS, [row]))
            self.index.add(entry)
        return text

    def list(self, user_id: str) -> list[AccessToken]:
        """Every token of the user, revoked and expired ones too, newest first."""
        acc = self.accounts.get(user_id)
        entries = sorted(
            self.index.of_user(acc.user_id), key=lambda e: (e.created_at, e.token_id), reverse=True
        )
        return [_public(e) for e in entries]

    def revoke(self, user_id: str, token_id: str) -> None:
        """Revoke one of the user's tokens (a revoked one stays revoked)."""
        acc = self.accounts.get(user_id)
        if not isinstance(token_id, str):
            raise InvalidInput(f"token_id must be a string, got {type(token_id).__name__}")
        with self.table.writer():
            self.accounts.refresh()
            entry = self.index.by_id.get(token_id) if is_token_id(token_id) else None
            if entry is None or entry.user_id != acc.user_id:
                raise NotFound("no such access token on this account")
            if entry.revoked_at is not None:
                return
            self.store.audit.record(
                "access_token_revoked",
                "success",
                user_id=acc.user_id,
                detail={"token_id": entry.token_id, "reason": "revoked by user"},
            )
            self.index.revoke([entry], "revoked by user")

    def revoke_all(self, user_id: str, reason: str, actor_id: str | None = None) -> int:
        """Revoke every live token of the user (disable, erasure); returns how many."""
        with self.table.writer():
            self.accounts.refresh()
            live = self.index.live_of(user_id, self.store.clock())
            if live:
                self.store.audit.record(
                    "access_token_revoked",
                    "success",
                    user_id=user_id,
                    actor_id=actor_id,
                    detail={"n": len(live), "reason": reason},
                )
                self.index.revoke(live, reason)
        return len(live)

    def flush(self) -> None:
        """Write pending last-used times now."""
        self.index.flush(everything=True)

    # --- a call with a token -----------------------------------------------------------------
    def authenticate(self, token: str, scope: str, *, ip: str | None = None) -> TokenUser:
        """The account a token speaks for, if it is valid now for `scope` under the account's
        current role; else InvalidToken, TokenExpired, AccountDisabled or PermissionDenied."""
        if scope not in SCOPE_MIN_ROLE:
            raise InvalidInput(f"unknown scope {str(scope)[:40]!r}; use one of {', '.join(SCOPES)}")
        now = self.store.clock()
        self.accounts.refresh_if_due(now)
        parts = parse(token)
        if parts is None:
            bad = InvalidToken(f"malformed access token; it reads {TOKEN_PREFIX}<id>_<secret>")
            raise self._refused(bad, "malformed", None, None, scope, ip, now)
        entry = self.index.by_id.get(parts[0])
        if entry is None or not entry.matches(self.ring, parts[1]):
            owner = entry.user_id if entry else None
            bad = InvalidToken("this access token is not valid")
            reason = "unknown token" if entry is None else "wrong secret"
            raise self._refused(bad, reason, parts[0], owner, scope, ip, now)
        acc = self._usable(entry, scope, ip, now)
        self.index.used(entry, now)
        return TokenUser(acc.public(), entry.token_id, entry.scopes)

    def _usable(self, entry: Entry, scope: str, ip: str | None, now: float) -> Account:
        """The token's account if the token may be used for `scope` now; else raises."""
        acc = self.accounts.by_id.get(entry.user_id)
        exc: LakehouseError
        if entry.revoked_at is not None:
            reason, exc = "revoked", InvalidToken("this access token was revoked; create a new one")
        elif now >= entry.expires_at:
            reason, exc = "expired", TokenExpired("this access token has expired; create a new one")
        elif acc is None:
            reason, exc = "no account", InvalidToken("this access token's account no longer exists")
        elif acc.disabled:
            reason, exc = (
                "disabled",
                AccountDisabled("this account is disabled; ask an administrator"),
            )
        elif scope not in entry.scopes:
            reason = "scope not granted"
            exc = PermissionDenied(
                f"this access token lacks the {scope} scope; create one with it on My account"
            )
        elif ROLE_RANK.get(acc.role, -1) < ROLE_RANK[SCOPE_MIN_ROLE[scope]]:
            reason = "role too low"
            exc = PermissionDenied(
                f"the {scope} scope needs the {SCOPE_MIN_ROLE[scope]} role; "
                f"this account has the {acc.role} role"
            )
        else:
            return acc
        raise self._refused(exc, reason, entry.token_id, entry.user_id, scope, ip, now)

    def _refused(
        self,
        exc: LakehouseError,
        reason: str,
        token_id: str | None,
        user_id: str | None,
        scope: str,
        ip: str | None,
        now: float,
    ) -> LakehouseError:
        """Audit a refused use unless one like it was audited in the last minute; returns
        `exc` for the caller to raise."""
        with self._lock:
            key = (token_id or "", reason)
            last = self._failed.get(key)
            start, written = self._window
            if now - start >= 60.0:
                start, written = now, 0
            if (last is not None and now - last < FAILURE_AUDIT_EVERY_S) or (
                written >= FAILURE_AUDITS_PER_MINUTE
            ):
                self._suppressed += 1
                return exc
            self._window = (start, written + 1)
            self._failed[key] = now
            if len(self._failed) > 10_000:
                self._failed = {k: t for k, t in self._failed.items() if now - t < 60.0}
            suppressed, self._suppressed = self._suppressed, 0
        detail: dict[str, object] = {"reason": reason, "scope": scope}
        if token_id is not None:
            detail["token_id"] = token_id
        if suppressed:
            detail["similar_not_recorded"] = suppressed
        outcome = "denied" if isinstance(exc, PermissionDenied | AccountDisabled) else "failure"
        with contextlib.suppress(AuditWriteError):  # the call is refused either way
            self.store.audit.record(
                "token_use_failed", outcome, user_id=user_id, ip=ip, detail=detail
            )
        return exc
