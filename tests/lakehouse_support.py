"""Helpers shared by the lakehouse unit and integration tests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from lakehouse import Argon2Params, LakehouseAuthBackend, LakehouseClient, User

PASSWORD = "correct horse battery"
ADMIN_PASSWORD = "admin staple pony 42"


class FakeClock:
    """A clock tests can move; starts at the real time."""

    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def make_backend(root: Path, **kwargs: Any) -> LakehouseAuthBackend:
    """A backend with the documented test-only fast Argon2 parameters."""
    kwargs.setdefault("argon2_params", Argon2Params.fast_for_tests())
    kwargs.setdefault("allow_weak_hashing_for_tests", True)
    return LakehouseAuthBackend(root, **kwargs)


def make_client(backend: LakehouseAuthBackend, **kwargs: Any) -> LakehouseClient:
    return LakehouseClient(backend.root, backend=backend, **kwargs)


def make_admin(backend: LakehouseAuthBackend, name: str = "admin1") -> User:
    return backend.bootstrap_admin(name, f"{name}@example.org", ADMIN_PASSWORD)


def all_bytes(folder: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()]


def files_containing(folder: Path, needle: str) -> list[Path]:
    variants = {needle.encode(), needle.lower().encode(), needle.encode("utf-16-le")}
    return [p for p, data in all_bytes(folder) if any(v in data for v in variants)]


# Fixtures shared by tests/unit/lakehouse and tests/integration/lakehouse (their conftests
# import them).
@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "data" / "lakehouse"


@pytest.fixture
def backend(root: Path, clock: FakeClock) -> LakehouseAuthBackend:
    return make_backend(root, clock=clock)


@pytest.fixture
def client(backend: LakehouseAuthBackend) -> LakehouseClient:
    return make_client(backend)


@pytest.fixture
def alice(backend: LakehouseAuthBackend) -> User:
    return backend.register("alice", "alice@example.org", PASSWORD)


@pytest.fixture
def admin(backend: LakehouseAuthBackend) -> User:
    return make_admin(backend)
