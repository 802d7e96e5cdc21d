"""The accounts singletons: one auth backend and one lakehouse client per process.

Both come from `core.config.Settings` (HFT_DATA_DIR: tables under `<data dir>/lakehouse`,
secrets under `<data dir>/secrets`). The client shares the backend, so the in-memory session
index that `verify_persistent_token` reads is the one every write goes through. It also gets
every per-user file source under the data dir (the SQL explorer history), so the GDPR export
and erasure cover them.
"""

from __future__ import annotations

import streamlit as st

from core.config import Settings
from core.sql_history import QueryHistory, history_folder
from lakehouse import LakehouseAuthBackend, LakehouseClient


def settings() -> Settings:
    return Settings.from_env()


def build_auth(s: Settings) -> LakehouseAuthBackend:
    """Production construction (RFC 9106 Argon2). AppTests swap this factory for a fast one."""
    return LakehouseAuthBackend(
        s.lakehouse_dir,
        secrets_dir=s.secrets_dir,
        session_ttl_hours=s.session_ttl_hours,
        session_idle_minutes=s.session_idle_minutes,
    )


@st.cache_resource(show_spinner="Opening the accounts lakehouse…")
def get_auth() -> LakehouseAuthBackend:
    return build_auth(settings())


def build_client(s: Settings, backend: LakehouseAuthBackend) -> LakehouseClient:
    """The client over `backend`, with the per-user files kept outside the tables."""
    return LakehouseClient(
        s.lakehouse_dir,
        backend=backend,
        audit_retention_days=s.audit_retention_days,
        user_data=[QueryHistory(history_folder(s.market_dir))],
    )


@st.cache_resource(show_spinner=False)
def get_client() -> LakehouseClient:
    return build_client(settings(), get_auth())


def session_ttl_seconds() -> int:
    return int(settings().session_ttl_hours * 3600)
