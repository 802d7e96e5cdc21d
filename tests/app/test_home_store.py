from __future__ import annotations

import pytest

from tests.app.conftest import AppAs

pytestmark = pytest.mark.app


def test_home_shows_tier_statistics_and_coverage(app_as: AppAs) -> None:
    """Home lists the stored markets; the tier statistics and the full coverage table are on
    the admin System page."""
    home = app_as("viewer").run(timeout=120)
    assert not home.exception
    markets = next(d.value for d in home.dataframe if "Symbol" in d.value.columns)
    assert {"SP500", "NASDAQ", "GOOG", "EURUSD"} <= set(markets["Symbol"])
    assert not any("tier" in d.value.columns for d in home.dataframe)

    at = app_as("admin", "pages/admin_system.py").run(timeout=120)
    assert not at.exception
    labels = {m.label: m.value for m in at.metric}
    for label in ("Hot hit rate", "Hot hit p50", "Warm read p50", "Warm bytes"):
        assert label in labels
    assert labels["Warm bytes"].split()[-1] in {"KiB", "MiB"}
    tables = [t.value for t in at.dataframe]
    tiers = next(t for t in tables if "tier" in t.columns)
    assert set(tiers["tier"]) == {"hot", "warm", "rollup", "analytics"}
    coverage = next(t for t in tables if "symbol" in t.columns)
    assert {"SP500", "NASDAQ", "GOOG", "EURUSD"} <= set(coverage["symbol"])
    assert (coverage["rows"] > 1000).all()
    assert any("bundled" in c.value for c in at.caption)
