"""The engine part of the app's services (pages/_shared/services.py): one per process."""

from __future__ import annotations

from core.engine import Engine
from pages._shared.services import get_services


def get_engine() -> Engine:
    return get_services().engine
