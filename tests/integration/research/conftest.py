"""Studies on real services: Delta tables, a MarketStore with synthetic bars, fast hashing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.analytics.runs import SeriesInput
from core.data.catalog import SeriesRef, load_series
from core.research.studies import Study
from core.services import Services
from lakehouse import User
from tests.integration.research.sma_kind import run_sma
from tests.lakehouse_support import make_admin
from tests.serve_support import analyst, fast_services
from tests.unit.market.helpers import bars

REF = SeriesRef("synthetic", "SYN/USD", "1m")


@dataclass
class Team:
    services: Services
    alice: User
    bob: User
    admin: User


@pytest.fixture
def team(tmp_path: Path) -> Iterator[Team]:
    services = fast_services(tmp_path / "data")
    try:
        services.engine.store.write_bars(bars(300))
        admin = make_admin(services.auth)
        yield Team(
            services, analyst(services, admin, "alice"), analyst(services, admin, "bob"), admin
        )
    finally:
        services.close()


def save_sma(team: Team, user: User, n: int = 10, title: str = "SMA of SYN") -> Study:
    """Run the test kind on the stored bars and save it as a study of `user`."""
    frame = load_series(REF, team.services.engine.store)
    result = run_sma(frame, n)
    return team.services.studies.save(user, result, [SeriesInput.of(REF, frame)], title)
