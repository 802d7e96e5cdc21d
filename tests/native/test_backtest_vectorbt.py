"""vectorbt as a second oracle for the multi-leg backtest (docs/compute.md §6.4).

Our positions (spread units u) become per-leg target amounts u * w_i, and vectorbt's
`Portfolio.from_orders(size_type="targetamount", cash_sharing=True, group_by=True)` fills
them at the close with `fees` as a fraction of traded value: the same timing and cost rule
as ours, so the equity must agree to 1e-8 (fractional units, close execution). Separately,
`Portfolio.from_signals` with the four band signals must reproduce our band state machine.

Known differences, checked below rather than hidden:
- vectorbt's returns start at bar 0 (value[0] / init_cash - 1) while ours start at bar 1
  (E[1] / E[0] - 1); its Sharpe equals ours on the equity curve prefixed with the capital.
- `pf.trades` (exit trades) are per leg: a spread round trip on n legs is n trades.
- vectorbt's default year_freq is 365 days, so its default Sharpe is sqrt(365 / 252) ours.
vectorbt's import and numba JIT take tens of seconds here, so the module is marked slow.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.analytics import backtest as bt
from tests.native.test_backtest import ou_path

vbt = pytest.importorskip("vectorbt")

pytestmark = pytest.mark.slow

K, COST = 1e5, 7e-4


@pytest.fixture(scope="module")
def legs() -> tuple[np.ndarray, np.ndarray]:
    """Three legs around one common trend; the spread 1, -0.5, -0.8 is an OU."""
    rng = np.random.default_rng(11)
    n = 2500
    common = 100 + np.cumsum(rng.normal(0, 0.8, n))
    other = 60 + np.cumsum(rng.normal(0, 0.5, n))
    spread = ou_path(n, 25.0, 4.0, 1 / 252, 5)
    a = 0.5 * common + 0.8 * other + spread + 40
    return np.column_stack([a, common + 30, other + 20]), np.array([1.0, -0.5, -0.8])


def vbt_portfolio(p: np.ndarray, w: np.ndarray, u: np.ndarray, cost: float) -> object:
    idx = pd.date_range("2001-01-02", periods=p.shape[0], freq="B")
    cols = [f"leg{i}" for i in range(p.shape[1])]
    close = pd.DataFrame(p, index=idx, columns=cols)
    target = pd.DataFrame(np.outer(u, w), index=idx, columns=cols)
    return vbt.Portfolio.from_orders(
        close,
        size=target,
        size_type="targetamount",
        fees=cost,
        freq="1D",
        cash_sharing=True,
        group_by=True,
        init_cash=K,
    )


@pytest.mark.parametrize(
    ("rule", "u_max"),
    [("bands", 4.0), ("bands", 2.5), ("linear", 3.0)],
)
def test_equity_and_metrics_match_vectorbt(
    legs: tuple[np.ndarray, np.ndarray], rule: str, u_max: float
) -> None:
    p, w = legs
    res = bt.backtest(
        p, w, rule=rule, window=40, z_in=1.5, z_out=0.2, cost=COST, capital=K, u_max=u_max
    )
    pf = vbt_portfolio(p, w, res.positions, COST)
    value = pf.value().to_numpy()
    np.testing.assert_allclose(value, res.equity, rtol=1e-8, atol=0)
    m = res.metrics
    assert pf.total_return() == pytest.approx(res.equity[-1] / K - 1, rel=1e-8)
    assert pf.max_drawdown() == pytest.approx(m["max_drawdown"], rel=1e-8)
    # same Sharpe once the bar-0 return against the initial cash is included
    ours_k = bt.equity_metrics(np.r_[K, res.equity])["sharpe"]
    assert pf.sharpe_ratio(year_freq="252 days") == pytest.approx(ours_k, rel=1e-8)
    assert pf.sharpe_ratio() == pytest.approx(ours_k * math.sqrt(365 / 252), rel=1e-8)
    # the extra zero return moves the Sharpe only slightly (warm-up bars are flat)
    assert pf.sharpe_ratio(year_freq="252 days") == pytest.approx(m["sharpe"], rel=2e-3)
    if rule == "bands":
        assert m["round_trips"] > 5
        assert pf.trades.count() == p.shape[1] * m["round_trips"]
        assert pf.positions.count() == p.shape[1] * m["round_trips"]


def test_direct_flip_matches_vectorbt(legs: tuple[np.ndarray, np.ndarray]) -> None:
    """z jumps across both bands: a long flips straight to a short on one bar."""
    p, w = legs
    n = p.shape[0]
    z = np.full(n, np.nan)
    z[50:] = 0.0
    z[100], z[101:140], z[140] = -2.5, -1.0, 2.5  # enter long, hold, flip short
    z[141:200], z[200] = 1.0, 0.0  # hold the short, exit
    res = bt.backtest(p, w, z=z, z_in=2.0, z_out=0.5, cost=COST, capital=K, u_max=3.0)
    assert res.positions[100] == 3.0
    assert res.positions[140] == -3.0
    assert res.positions[200] == 0.0
    pf = vbt_portfolio(p, w, res.positions, COST)
    np.testing.assert_allclose(pf.value().to_numpy(), res.equity, rtol=1e-8, atol=0)
    assert res.metrics["round_trips"] == 2
    assert pf.trades.count() == 2 * p.shape[1]
    assert res.metrics["total_cost"] == pytest.approx(
        float(pf.orders.values["fees"].sum()),
        rel=1e-10,
    )


def test_band_rule_matches_vectorbt_signals() -> None:
    """vectorbt's from_signals with the four band signals reproduces our state machine,
    direct flips included, on a single spread."""
    rng = np.random.default_rng(21)
    n = 3000
    price = 200 + np.cumsum(rng.normal(0, 1.0, n))
    z = rng.normal(0, 1.3, n)
    z[:30] = np.nan  # warm-up
    z_in, z_out, u_max = 1.6, 0.4, 5.0
    res = bt.backtest(price, z=z, z_in=z_in, z_out=z_out, cost=COST, capital=K, u_max=u_max)
    u = res.positions
    flips = np.sum(u[1:] * u[:-1] < 0)
    assert flips > 20
    idx = pd.date_range("2001-01-02", periods=n, freq="B")
    with np.errstate(invalid="ignore"):
        pf = vbt.Portfolio.from_signals(
            pd.Series(price, index=idx),
            entries=z <= -z_in,
            exits=z >= -z_out,
            short_entries=z >= z_in,
            short_exits=z <= z_out,
            size=u_max,
            size_type="amount",
            fees=COST,
            init_cash=K,
            freq="1D",
        )
    np.testing.assert_array_equal(pf.assets().to_numpy(), u)
    np.testing.assert_allclose(pf.value().to_numpy(), res.equity, rtol=1e-8, atol=0)
    assert pf.trades.count() == res.metrics["round_trips"]
