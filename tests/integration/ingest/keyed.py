"""Shared by the keyed-provider tests: the production meter of a user's key, and its counter."""

from __future__ import annotations

from core.ingest.meter import KeyMeter, key_meter
from core.ingest.venues import venue
from lakehouse import LakehouseAuthBackend, User


def used(backend: LakehouseAuthBackend, user: User, provider: str) -> int:
    """Requests counted on the user's key in the current window."""
    return int(backend.get_api_keys(user.user_id)["provider_keys"][provider]["queries_done"])


def meter_of(backend: LakehouseAuthBackend, user: User, provider: str) -> KeyMeter:
    """The meter the ingest service gives a job of this user (counts in the ledger)."""
    return key_meter(backend, user.user_id, venue(provider))
