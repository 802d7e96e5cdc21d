"""Each mean-reversion kind saved as a study on real services (Delta table, Parquet
artefacts) and rerun from what was stored: the numbers are reproduced exactly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.analytics.runs import RunResult, SeriesInput
from core.analytics.runs.meanrev import (
    BacktestParams,
    MeanRevParams,
    SweepParams,
    WalkForwardParams,
    run_backtest,
    run_meanrev_study,
    run_sweep,
    run_walk_forward,
)
from core.data.catalog import SeriesRef
from core.services import Services
from lakehouse import User
from tests.lakehouse_support import PASSWORD, make_admin
from tests.serve_support import fast_services
from tests.unit.runs_meanrev.support import NAMES, real_bars

REFS = [SeriesRef("bundled", name, "1d") for name in NAMES]


@pytest.fixture
def team(tmp_path: Path) -> Iterator[tuple[Services, User]]:
    services = fast_services(tmp_path / "data")
    try:
        admin = make_admin(services.auth)
        user = services.auth.register("ana", "ana@example.org", PASSWORD)
        yield services, services.auth.set_role(admin, user.user_id, "analyst")
    finally:
        services.close()


def runs() -> dict[str, RunResult]:
    bars = real_bars(700)
    study = run_meanrev_study(bars, MeanRevParams(names=NAMES, last_n=600, utility="power"))
    weights = tuple(float(v) for v in study.portfolio.weights)
    return {
        "meanrev_study": study,
        "meanrev_backtest": run_backtest(
            bars, BacktestParams(names=NAMES, last_n=600, weights=weights, rule="cara")
        ),
        "meanrev_sweep": run_sweep(bars, SweepParams(names=NAMES, last_n=600, weights=weights)),
        "walk_forward": run_walk_forward(
            bars,
            WalkForwardParams(names=NAMES, last_n=600, weights=weights, train=250, test=100),
        ),
    }


def test_saved_studies_rerun_identically(team: tuple[Services, User]) -> None:
    services, user = team
    bars = real_bars(700)
    inputs = [SeriesInput.of(ref, frame) for ref, frame in zip(REFS, bars, strict=True)]
    for kind, result in runs().items():
        saved = services.studies.save(user, result, inputs, f"{kind} of SP500, NASDAQ")
        assert saved.kind == kind
        stored = services.studies.frames(user, saved.study_id)
        assert stored.keys() == result.frames().keys()
        report = services.studies.rerun(user, saved.study_id)
        assert report.identical, (kind, report.summary)
        assert report.metrics == len(result.metrics())
