from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse import LakehouseAuthBackend, LakehouseClient, User
from tests.lakehouse_support import PASSWORD, FakeClock, make_admin, make_backend, make_client


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
