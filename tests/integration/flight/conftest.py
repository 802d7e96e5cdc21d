"""A real Flight server on a free loopback port over a test portal (see portal.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow.flight as fl
import pytest

from core.serve.flight import FlightService
from tests.integration.flight.portal import Portal, make_portal


@pytest.fixture(scope="package")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    p = make_portal(tmp_path_factory.mktemp("flight") / "data", api_rate_per_minute=100_000)
    yield p
    p.services.close()


@pytest.fixture(scope="package")
def service(portal: Portal) -> Iterator[FlightService]:
    with FlightService(lambda: portal.services) as s:
        yield s


@pytest.fixture
def flight(service: FlightService) -> Iterator[fl.FlightClient]:
    client = fl.FlightClient(service.location)
    yield client
    client.close()


@pytest.fixture
def call(portal: Portal) -> Callable[[str | None], fl.FlightCallOptions]:
    """Call options carrying the named token of the portal (None: no header)."""

    def options(name: str | None) -> fl.FlightCallOptions:
        if name is None:
            return fl.FlightCallOptions(timeout=30)
        header = f"Bearer {portal.tokens[name]}".encode()
        return fl.FlightCallOptions(timeout=30, headers=[(b"authorization", header)])

    return options
