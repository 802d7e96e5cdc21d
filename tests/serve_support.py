"""Helpers shared by the REST, Flight, client and notebook tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from core.config import Settings
from core.services import Services, build_auth, build_services
from lakehouse import Argon2Params, LakehouseAuthBackend, User
from tests.lakehouse_support import PASSWORD


def fast_auth(settings: Settings, **extra: Any) -> LakehouseAuthBackend:
    """The production backend wiring with the documented test-only Argon2 parameters."""
    return build_auth(
        settings,
        argon2_params=Argon2Params.fast_for_tests(),
        allow_weak_hashing_for_tests=True,
        **extra,
    )


def fast_services(data_dir: Path, **settings: Any) -> Services:
    """Services over `data_dir` (no demo venue, Flight off unless asked) with fast hashing."""
    settings.setdefault("demo_venue", False)
    settings.setdefault("flight_port", 0)
    base = dataclasses.replace(Settings(), data_dir=data_dir, **settings)
    base.validate()
    return build_services(base, auth_factory=fast_auth)


def analyst(services: Services, admin: User, name: str) -> User:
    user = services.auth.register(name, f"{name}@example.org", PASSWORD)
    return services.auth.set_role(admin, user.user_id, "analyst")
