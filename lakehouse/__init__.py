"""Accounts lakehouse: users, sessions, access tokens, audit, API keys, quotas and privacy on
Delta Lake.

Never imports streamlit or core. Start with::

    from lakehouse import LakehouseAuthBackend
    backend = LakehouseAuthBackend(settings.lakehouse_dir)   # secrets: <data dir>/secrets
    client = backend.client()
"""

from lakehouse.access_tokens import SCOPE_MIN_ROLE, SCOPES, AccessToken, TokenUser
from lakehouse.auth import LakehouseAuthBackend
from lakehouse.client import LakehouseClient
from lakehouse.devices import LoginResult
from lakehouse.errors import (
    AccountDisabled,
    AuditWriteError,
    AuthError,
    InvalidCredentials,
    InvalidInput,
    InvalidToken,
    LakehouseError,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    SessionRevoked,
    StorageError,
    Throttled,
    TokenExpired,
    UsernameTaken,
)
from lakehouse.models import ROLES, User
from lakehouse.passwords import Argon2Params
from lakehouse.quotas import DEFAULT_PLANS, PROVIDER_NAMES, Plan
from lakehouse.token_index import TOKEN_PREFIX

__all__ = [
    "DEFAULT_PLANS",
    "PROVIDER_NAMES",
    "ROLES",
    "SCOPES",
    "SCOPE_MIN_ROLE",
    "TOKEN_PREFIX",
    "AccessToken",
    "AccountDisabled",
    "Argon2Params",
    "AuditWriteError",
    "AuthError",
    "InvalidCredentials",
    "InvalidInput",
    "InvalidToken",
    "LakehouseAuthBackend",
    "LakehouseClient",
    "LakehouseError",
    "LoginResult",
    "NotFound",
    "PermissionDenied",
    "Plan",
    "QuotaExceeded",
    "SessionRevoked",
    "StorageError",
    "Throttled",
    "TokenExpired",
    "TokenUser",
    "User",
    "UsernameTaken",
]
