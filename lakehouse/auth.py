"""LakehouseAuthBackend: the accounts façade over the lakehouse's parts.

Build one per process over the app's data dir::

    backend = LakehouseAuthBackend(settings.lakehouse_dir)   # secrets in <data dir>/secrets

It composes, each in its own module, depending downward only:

- `accounts` (lakehouse.accounts): the users table as an index, registration, role checks,
  re-authentication (`check_password`).
- `authn` (lakehouse.authn): logins, session tokens, sessions, logout, password change.
- `access_tokens` (lakehouse.access_tokens): personal access tokens for the API.
- `admin` (lakehouse.admin): accounts list, roles, disabling, all sessions, key rotation.
- `keys` (lakehouse.apikeys): provider API keys, quotas and consents.

Signatures worth knowing (the rest follow the issue):

- ``change_password(subject, old_password, new_password)``: `subject` is either a session
  token (the session that asks stays logged in, every other session of the user is
  revoked) or a user id (every session is revoked). Access tokens are kept.
- Admin operations take the ACTING user first (``set_role(acting_user, user_id, role)``)
  and check that user's current role in the users table, not the role field of the object
  passed in.

Sessions and access tokens are checked from in-memory indexes written through to their
tables. A change in this process is seen at once; a change made by another process (the CLI,
a second app process) when this process next polls the table versions, at most `refresh_s`
seconds later (default 2 s).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lakehouse.access_tokens import AccessToken, AccessTokens, TokenUser
from lakehouse.accounts import Account, Accounts
from lakehouse.admin import Admin
from lakehouse.apikeys import KeyService
from lakehouse.authn import Authentication
from lakehouse.client import LakehouseClient
from lakehouse.devices import DeviceCookies, LoginResult
from lakehouse.errors import InvalidInput
from lakehouse.models import User
from lakehouse.passwords import PRODUCTION, Argon2Params, Hasher
from lakehouse.quotas import Plan
from lakehouse.secrets import DEVICE_KEYS_FILE, KeyRing
from lakehouse.store import Clock, Store
from lakehouse.throttle import LoginThrottle

DEFAULT_TTL_HOURS = 24.0 * 7
DEFAULT_IDLE_MINUTES = 120.0


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
        self.accounts = Accounts(self.store, self.hasher, self.throttle, refresh_s)
        self.authn = Authentication(self.accounts, self.devices, self.ttl_s, self.idle_s)
        self.access_tokens = AccessTokens(self.accounts)
        self.admin = Admin(self.accounts, self.authn, self.access_tokens)
        self.accounts.refresh(force=True)
        self.keys = KeyService(self.accounts, plans, on_quota_alert)

    # --- the index (kept for tests and benchmarks) -------------------------------------------
    @property
    def _accounts(self) -> dict[str, Account]:
        return self.accounts.by_id

    @property
    def _by_key(self) -> dict[str, str]:
        return self.accounts.by_key

    @property
    def _next_probe(self) -> float:
        return self.accounts.next_probe

    @_next_probe.setter
    def _next_probe(self, value: float) -> None:
        self.accounts.next_probe = value

    def _refresh(self, force: bool = False) -> None:
        """Reload users, sessions and access tokens if their tables changed."""
        self.accounts.refresh(force)

    def _account(self, user_id: object) -> Account:
        return self.accounts.get(user_id)

    def _active_admins(self) -> set[str]:
        return self.accounts.active_admins()

    def _revoke(self, session_ids: list[str], reason: str) -> int:
        return self.authn.revoke(session_ids, reason)

    def _user_session_ids(self, user_id: str) -> list[str]:
        return self.authn.session_ids_of(user_id)

    # --- accounts ----------------------------------------------------------------------------
    def get_user(self, user_id: str) -> User:
        return self.accounts.get(user_id).public()

    def find_user(self, username: str) -> User | None:
        """The account with this username (case-insensitive), or None."""
        acc = self.accounts.find(username)
        return acc.public() if acc else None

    def require_role(self, acting_user: object, needed: str, action: str) -> Account:
        """Deny by default: the acting user must exist now, be enabled and rank high enough."""
        return self.accounts.require_role(acting_user, needed, action)

    def register(self, username: str, email: str, password: str) -> User:
        """Create a viewer account. Raises InvalidInput / UsernameTaken; changes nothing then."""
        return self.accounts.create(username, email, password, "viewer", actor_id=None)

    def bootstrap_admin(self, username: str, email: str, password: str) -> User:
        """Create an admin account. For `hfthot admin create` only (needs shell access)."""
        return self.accounts.create(username, email, password, "admin", actor_id="cli")

    def check_password(self, user_id: str, password: object, *, action: str) -> Account:
        """Re-authentication for sensitive actions; throttled like a login."""
        return self.accounts.check_password(user_id, password, action=action)

    # --- logins and sessions -----------------------------------------------------------------
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
        return self.authn.login_with_device(
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
        return self.authn.login_with_device(
            username, password, ip=ip, user_agent=user_agent, device=device
        )

    def verify_persistent_token(self, token: str) -> User:
        """The user behind a valid, live session token; raises an AuthError subclass if not."""
        return self.authn.verify(token)

    def flush(self) -> None:
        """Write pending last-seen and last-used times now (the app calls this at shutdown)."""
        self.authn.index.flush()
        self.access_tokens.flush()

    def logout(self, token: str) -> None:
        """End the token's session. An already ended or invalid token is a no-op."""
        self.authn.logout(token)

    def list_sessions(self, user_id: str) -> list[dict[str, Any]]:
        """Live sessions of a user, newest first."""
        return self.authn.list_sessions(user_id)

    def revoke_session(self, acting_user: User, session_id: str) -> None:
        """End one session: your own, or anyone's if you are an admin."""
        self.authn.revoke_session(acting_user, session_id)

    def revoke_other_sessions(self, token: str) -> int:
        """Log out everywhere else: end every session of the token's user but this one."""
        return self.authn.revoke_other_sessions(token)

    def change_password(self, subject: str, old_password: str, new_password: str) -> None:
        """`subject` is a token (keeps that session) or a user id (revokes every session)."""
        self.authn.change_password(subject, old_password, new_password)

    # --- access tokens -----------------------------------------------------------------------
    def create_access_token(
        self,
        user_id: str,
        name: str,
        scopes: list[str] | tuple[str, ...],
        expires_in_days: int,
        *,
        password: str,
    ) -> str:
        """A new personal access token (`hft_pat_...`), returned once and stored only as a
        keyed hash. Needs the account password again."""
        return self.access_tokens.create(user_id, name, scopes, expires_in_days, password=password)

    def list_access_tokens(self, user_id: str) -> list[AccessToken]:
        """The user's tokens, revoked and expired ones too, newest first."""
        return self.access_tokens.list(user_id)

    def revoke_access_token(self, user_id: str, token_id: str) -> None:
        """Revoke one of the user's tokens; NotFound if it is not theirs."""
        self.access_tokens.revoke(user_id, token_id)

    def authenticate_access_token(
        self, token: str, scope: str, *, ip: str | None = None
    ) -> TokenUser:
        """The account behind an access token valid now for `scope` (role included)."""
        return self.access_tokens.authenticate(token, scope, ip=ip)

    # --- admin -------------------------------------------------------------------------------
    def list_users(self, acting_user: User) -> list[User]:
        return self.admin.list_users(acting_user)

    def set_role(self, acting_user: User, user_id: str, role: str) -> User:
        return self.admin.set_role(acting_user, user_id, role)

    def set_role_as_operator(self, username: str, role: str) -> User:
        """Change a role from the shell (`hfthot admin set-role`); audited with actor `cli`."""
        return self.admin.set_role_as_operator(username, role)

    def disable_user(self, acting_user: User, user_id: str, disabled: bool = True) -> User:
        """Disable (log out everywhere, revoke access tokens) or re-enable an account."""
        return self.admin.disable_user(acting_user, user_id, disabled)

    def list_all_sessions(self, acting_user: User) -> list[dict[str, Any]]:
        """Every live session (admin)."""
        return self.admin.list_all_sessions(acting_user)

    def rotate_token_key(self) -> str:
        """New JWT signing key (kid); the previous key stays valid, older ones retire."""
        return self.admin.rotate_token_key()

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

    def quota_status(self, user_id: str, provider: str) -> dict[str, Any]:
        return self.keys.quota(user_id, provider)

    def provider_key(self, user_id: str, provider: str) -> str:
        return self.keys.provider_key(user_id, provider)

    def spend_quota(self, user_id: str, provider: str) -> None:
        return self.keys.spend(user_id, provider)

    def quota_alerts(self, user_id: str) -> list[dict[str, Any]]:
        return self.keys.alerts(user_id)

    def set_consent(self, user_id: str, purpose: str, granted: bool) -> None:
        self.keys.set_consent(user_id, purpose, granted)

    def get_consents(self, user_id: str) -> dict[str, dict[str, Any]]:
        return self.keys.get_consents(user_id)

    def client(self) -> LakehouseClient:
        """A LakehouseClient sharing this backend (and its session index)."""
        return LakehouseClient(self.root, backend=self)
