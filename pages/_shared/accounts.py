"""The accounts parts of the app's services: one auth backend and one lakehouse client.

Both come from `core.services` (HFT_DATA_DIR: tables under `<data dir>/lakehouse`, secrets
under `<data dir>/secrets`), built once with the engine by `get_services`. The client shares
the backend, so the in-memory session index that `verify_persistent_token` reads is the one
every write goes through, and it has every per-user file source under the data dir (the SQL
explorer history), so the GDPR export and erasure cover them.
"""

from __future__ import annotations

from core.config import Settings
from core.services import build_accounts, build_auth
from lakehouse import LakehouseAuthBackend, LakehouseClient
from pages._shared.services import get_services

__all__ = [
    "build_auth",
    "build_client",
    "get_auth",
    "get_client",
    "session_ttl_seconds",
    "settings",
]

build_client = build_accounts
"""The client over a backend, with the per-user files kept outside the tables."""


def settings() -> Settings:
    return Settings.from_env()


def get_auth() -> LakehouseAuthBackend:
    return get_services().auth


def get_client() -> LakehouseClient:
    return get_services().accounts


def session_ttl_seconds() -> int:
    return int(settings().session_ttl_hours * 3600)
