"""Backtest engine vs a plain-Python loop, hand checks, empyrical and property tests."""

from __future__ import annotations

import itertools
import math
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.analytics import backtest as bt
from core.errors import InvalidInput

DATA = Path(__file__).resolve().parents[1] / "data"


def ou_path(
    n: int, theta: float, sigma: float, dt: float, seed: int, mu: float = 0.0
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    b = math.exp(-theta * dt)
    sd = sigma * math.sqrt((1 - b * b) / (2 * theta))
    x = np.empty(n)
    x[0] = mu
    eps = rng.normal(size=n)
    for t in range(1, n):
        x[t] = mu + (x[t - 1] - mu) * b + sd * eps[t]
    return x


def hand_states(z: np.ndarray, z_in: float, z_out: float) -> list[float]:
    out, state = [], 0.0
    for v in z:
        if v != v:
            state = 0.0
        else:
            if (state == 1.0 and v >= -z_out) or (state == -1.0 and v <= z_out):
                state = 0.0
            if state == 0.0:
                if v <= -z_in:
                    state = 1.0
                elif v >= z_in:
                    state = -1.0
        out.append(state)
    return out


def hand_backtest(p: np.ndarray, w: np.ndarray, u: list[float], c: float, k: float) -> dict:
    """docs/compute.md §6 timing and cost rules written as a plain loop (exact sums via fsum)."""
    eq, pnl_l, cost_l, notional = [], [], [], []
    flows, prev_u, prev_s = [k], 0.0, None
    for t in range(p.shape[0]):
        s = sum(p[t, i] * w[i] for i in range(p.shape[1]))
        pnl = 0.0 if prev_s is None else prev_u * (s - prev_s)
        du = u[t] - prev_u
        traded = [abs(du * w[i]) * p[t, i] for i in range(p.shape[1])]
        cost = sum(c * x for x in traded)
        flows += [pnl, -cost]
        eq.append(math.fsum(flows))
        pnl_l.append(pnl)
        cost_l.append(cost)
        notional.append(sum(traded))
        prev_u, prev_s = u[t], s
    r = [eq[t] / eq[t - 1] - 1 for t in range(1, len(eq))]
    mean = sum(r) / len(r)
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / (len(r) - 1))
    down = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / len(r))
    peak, mdd = eq[0], 0.0
    for x in eq:
        peak = max(peak, x)
        mdd = min(mdd, x / peak - 1)
    return {
        "equity": eq,
        "pnl": pnl_l,
        "cost": cost_l,
        "sharpe": math.sqrt(252) * mean / sd,
        "sortino": math.sqrt(252) * mean / down,
        "max_drawdown": mdd,
        "cagr": (eq[-1] / eq[0]) ** (252 / len(r)) - 1,
        "total_cost": sum(cost_l),
        "turnover": sum(notional) / (len(eq) * (sum(eq) / len(eq))),
        "exposure": sum(x != 0 for x in u) / len(u),
        **hand_trips(u, pnl_l, cost_l),
    }


def hand_trips(u: list[float], pnl: list[float], cost: list[float]) -> dict:
    """Round trips: a trip runs from the bar a position opens to the bar it closes (or the
    last bar) and nets the PnL earned while open minus its entry and exit costs; a flip's
    cost is split between the two trips in proportion to the units closed and opened."""
    trips: list[tuple[int, int, float]] = []
    start, acc, prev = -1, 0.0, 0.0
    for t, cur in enumerate(u):
        if start >= 0:
            acc += pnl[t]
        flip = prev != 0 and cur != 0 and (prev > 0) != (cur > 0)
        share = abs(prev) / (abs(prev) + abs(cur)) if flip else 1.0
        if prev != 0 and (cur == 0 or flip):
            trips.append((start, t, acc - cost[t] * share))
            start = -1
        if cur != 0 and (prev == 0 or flip):
            start, acc = t, -cost[t] * (1.0 - share if flip else 1.0)
        elif cur != 0:
            acc -= cost[t]
        prev = cur
    if start >= 0:
        trips.append((start, len(u) - 1, acc))
    n = len(trips)
    return {
        "round_trips": float(n),
        "hit_rate": sum(x[2] > 0 for x in trips) / n if n else math.nan,
        "avg_holding_bars": sum(b - a for a, b, _ in trips) / n if n else math.nan,
    }


def hand_zscore(s: np.ndarray, window: int) -> list[float]:
    """Trailing mean and sd (ddof=1) over `window` bars, NaN during the warm-up."""
    out = []
    for t in range(len(s)):
        if t + 1 < window:
            out.append(math.nan)
            continue
        x = s[t + 1 - window : t + 1].tolist()
        out.append((x[-1] - statistics.fmean(x)) / statistics.stdev(x))
    return out


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    common = 100 + np.cumsum(rng.normal(0, 1, 3000))
    spread = ou_path(3000, 20.0, 3.0, 1 / 252, 4)
    a = common + spread + 50
    b = 0.5 * common + 80
    return np.column_stack([a, b]), np.array([1.0, -2.0])


def test_matches_plain_python_loop(pair: tuple[np.ndarray, np.ndarray]) -> None:
    p, w = pair
    res = bt.backtest(p, w, window=40, z_in=1.5, z_out=0.3, cost=7e-4, capital=1e5, u_max=3.0)
    want_z = hand_zscore(p @ w, 40)
    np.testing.assert_allclose(res.z, want_z, rtol=1e-9, atol=1e-12)
    want_states = hand_states(res.z, 1.5, 0.3)
    assert res.positions.tolist() == [3.0 * s for s in want_states]
    ref = hand_backtest(p, w, res.positions.tolist(), 7e-4, 1e5)
    np.testing.assert_allclose(res.equity, ref["equity"], rtol=1e-12)
    np.testing.assert_allclose(res.cost, ref["cost"], rtol=1e-12, atol=1e-12)
    keys = ("sharpe", "sortino", "max_drawdown", "cagr", "total_cost", "turnover", "exposure")
    for key in (*keys, "round_trips", "hit_rate", "avg_holding_bars"):
        assert res.metrics[key] == pytest.approx(ref[key], rel=1e-12), key
    assert res.metrics["round_trips"] > 5


def test_trade_statistics_with_flips_match_hand_loop() -> None:
    """Jumpy z (sd 2.5, no memory) flips long <-> short often; every trade statistic and the
    cost split of each flip must agree with the plain loop."""
    rng = np.random.default_rng(11)
    p = (50 + np.cumsum(rng.normal(0, 0.5, 800)))[:, None]
    z = rng.normal(0, 2.5, 800)
    res = bt.backtest(p, z=z, z_in=2.0, z_out=0.5, cost=1e-3, capital=1e4, u_max=2.0)
    u = res.positions.tolist()
    assert sum(a * b < 0 for a, b in itertools.pairwise(u)) > 20
    ref = hand_backtest(p, np.ones(1), u, 1e-3, 1e4)
    for key in ("round_trips", "hit_rate", "avg_holding_bars", "turnover", "exposure"):
        assert res.metrics[key] == pytest.approx(ref[key], rel=1e-12), key


def test_band_rule_is_a_scan_not_a_forward_fill() -> None:
    # z jumps from -2.5 to +1 with z_out 0.5: the long must exit though |z| <= z_out never fires.
    z = np.array([np.nan, -2.5, 1.0, 1.0])
    assert bt.band_states(z, 2.0, 0.5).tolist() == [0.0, 1.0, 0.0, 0.0]
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1.5, 5000)
    assert bt.band_states(z, 1.7, 0.2).tolist() == hand_states(z, 1.7, 0.2)


def test_constant_price_has_zero_pnl_and_costs_only_on_trades() -> None:
    p = np.full((50, 1), 20.0)
    z = np.zeros(50)
    z[10], z[11:20], z[20] = -3.0, -1.0, 1.0
    res = bt.backtest(p, z=z, cost=0.001, capital=1000.0, u_max=5.0)
    assert np.all(res.pnl == 0)
    assert np.flatnonzero(res.cost).tolist() == [10, 20]
    assert res.metrics["total_cost"] == pytest.approx(2 * 0.001 * 5 * 20.0, rel=1e-15)


def test_single_round_trip_exact() -> None:
    p = np.array([[10.0], [10.0], [11.0], [13.0], [12.0], [12.0]])
    z = np.array([np.nan, -3.0, -1.0, 0.0, 0.0, 0.0])
    res = bt.backtest(p, z=z, cost=0.002, capital=1000.0, u_max=4.0)
    assert res.positions.tolist() == [0, 4, 4, 0, 0, 0]
    want = 1000 + 4 * (13 - 10) - 0.002 * 4 * 10 - 0.002 * 4 * 13
    assert res.equity[-1] == pytest.approx(want, rel=1e-15)
    assert res.metrics["round_trips"] == 1
    assert res.metrics["hit_rate"] == 1.0
    assert res.metrics["avg_holding_bars"] == 2


def test_all_flat() -> None:
    p = np.linspace(10, 20, 100)[:, None]
    res = bt.backtest(p, z=np.zeros(100))
    assert math.isnan(res.metrics["sharpe"])
    assert res.metrics["max_drawdown"] == 0.0
    assert res.metrics["round_trips"] == 0


def test_empyrical_metrics(pair: tuple[np.ndarray, np.ndarray]) -> None:
    empyrical = pytest.importorskip("empyrical")
    p, w = pair
    res = bt.backtest(p, w, window=30, z_in=1.2, z_out=0.2, u_max=20.0, capital=1e4)
    r = res.returns
    m = res.metrics
    assert m["sharpe"] == pytest.approx(
        empyrical.sharpe_ratio(r, risk_free=0, period="daily"), rel=1e-10
    )
    assert m["sortino"] == pytest.approx(empyrical.sortino_ratio(r), rel=1e-10)
    assert m["max_drawdown"] == pytest.approx(empyrical.max_drawdown(r), rel=1e-10)
    assert m["cagr"] == pytest.approx(empyrical.annual_return(r), rel=1e-10)
    assert m["calmar"] == pytest.approx(empyrical.calmar_ratio(r), rel=1e-10)
    assert m["volatility"] == pytest.approx(empyrical.annual_volatility(r), rel=1e-10)


def test_doubling_costs_doubles_total_cost(pair: tuple[np.ndarray, np.ndarray]) -> None:
    p, w = pair
    a = bt.backtest(p, w, cost=3e-4)
    b = bt.backtest(p, w, cost=6e-4)
    assert np.array_equal(a.positions, b.positions)
    assert b.metrics["total_cost"] == pytest.approx(2 * a.metrics["total_cost"], rel=1e-14)


def test_scaling_u_max_scales_pnl_and_keeps_sharpe(pair: tuple[np.ndarray, np.ndarray]) -> None:
    p, w = pair
    a = bt.backtest(p, w, u_max=1.0, returns="fixed")
    b = bt.backtest(p, w, u_max=3.0, returns="fixed")
    np.testing.assert_allclose(b.pnl - b.cost, 3 * (a.pnl - a.cost), rtol=1e-12, atol=1e-9)
    assert b.metrics["sharpe"] == pytest.approx(a.metrics["sharpe"], rel=1e-12)


def test_mean_reverting_spread_without_costs_earns() -> None:
    s = ou_path(4000, 50.0, 1.0, 1 / 252, 9, mu=10.0)
    res = bt.backtest(s, cost=0.0, zscore="ou", ou_window=252, refit_every=21)
    assert res.metrics["sharpe"] > 1.0


CAUSAL_CASES = [
    (z, r)
    for z in ("rolling", "ou", "ou_fixed")
    for r in ("bands", "linear", "cara")
    if not (r == "cara" and z == "rolling")  # CARA needs OU parameters
]


@pytest.mark.parametrize(("zscore", "rule"), CAUSAL_CASES)
def test_appending_future_data_does_not_change_past_positions(zscore: str, rule: str) -> None:
    s = ou_path(1500, 10.0, 1.0, 1 / 252, 11, mu=5.0)
    kw = dict(zscore=zscore, rule=rule, ou_window=200, train=300, cara_horizon="myopic", u_max=2.0)
    short = bt.backtest(s[:1000], **kw)  # type: ignore[arg-type]
    full = bt.backtest(s, **kw)  # type: ignore[arg-type]
    np.testing.assert_array_equal(full.positions[:1000], short.positions)
    np.testing.assert_array_equal(full.equity[:1000], short.equity)


def test_trade_pnls_sum_to_net_pnl(pair: tuple[np.ndarray, np.ndarray]) -> None:
    p, w = pair
    res = bt.backtest(p, w, rule="linear", z_scale=1.5)
    assert float(np.sum(res.trips["pnl"])) == pytest.approx(res.metrics["net_pnl"], rel=1e-9)


def test_bad_input_messages() -> None:
    with pytest.raises(InvalidInput, match="NaN"):
        bt.backtest(np.array([1.0, np.nan, 2.0, 3.0]))
    with pytest.raises(InvalidInput, match="constant"):
        bt.backtest(np.ones(300))
    with pytest.raises(InvalidInput, match="too few rows"):
        bt.backtest(np.arange(1.0, 30.0), window=60)
    with pytest.raises(InvalidInput, match="z_out"):
        bt.band_states(np.zeros(3), 1.0, 1.0)
    with pytest.raises(InvalidInput, match="weights"):
        bt.backtest(np.ones((10, 2)), np.array([1.0]))
    prices = np.column_stack([np.linspace(10, 20, 100), np.linspace(5, 3, 100)])
    with pytest.raises(InvalidInput, match="one rate or one per leg"):
        bt.backtest(prices, cost=[1e-3, 1e-3, 1e-3])
    with pytest.raises(InvalidInput, match="cost rates finite and >= 0"):
        bt.backtest(prices, cost=-1e-3)
    with pytest.raises(InvalidInput, match="cooldown"):
        bt.backtest(prices, window=20, z_stop=3.0, cooldown=-1)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_permuting_returns_keeps_sharpe(seed: int) -> None:
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0005, 0.01, 300)
    equity = 1e4 * np.cumprod(np.r_[1.0, 1 + r])
    perm = 1e4 * np.cumprod(np.r_[1.0, 1 + rng.permutation(r)])
    a = bt.equity_metrics(equity)
    b = bt.equity_metrics(perm)
    assert b["sharpe"] == pytest.approx(a["sharpe"], rel=1e-9)
    assert b["volatility"] == pytest.approx(a["volatility"], rel=1e-9)
    assert b["cagr"] == pytest.approx(a["cagr"], rel=1e-9)
    reversed_ = 1e4 * np.cumprod(np.r_[1.0, 1 + r[::-1]])
    assert bt.equity_metrics(reversed_)["sharpe"] == pytest.approx(a["sharpe"], rel=1e-9)


def test_permutation_changes_drawdown() -> None:
    r = np.r_[np.full(50, 0.01), np.full(50, -0.01)]
    a = bt.equity_metrics(np.cumprod(np.r_[1.0, 1 + r]))
    b = bt.equity_metrics(np.cumprod(np.r_[1.0, 1 + np.tile([0.01, -0.01], 50)]))
    assert a["sharpe"] == pytest.approx(b["sharpe"], rel=1e-12)
    assert a["max_drawdown"] < b["max_drawdown"]


def test_sweep_reuses_z_and_matches_single_runs(pair: tuple[np.ndarray, np.ndarray]) -> None:
    p, w = pair
    rows = bt.sweep(p, w, windows=(20, 40), z_ins=(1.5, 2.0), z_outs=(0.0, 1.8), costs=(0.0, 1e-3))
    assert len(rows) == 2 * (2 + 1) * 2  # z_out 1.8 >= z_in 1.5 is skipped
    for row in rows[::5]:
        one = bt.backtest(
            p, w, window=int(row["window"]), z_in=row["z_in"], z_out=row["z_out"], cost=row["cost"]
        )
        assert one.metrics["final_equity"] == row["final_equity"]
        assert one.metrics["sharpe"] == row["sharpe"]


def test_next_open_execution(pair: tuple[np.ndarray, np.ndarray]) -> None:
    p, w = pair
    rng = np.random.default_rng(8)
    opens = p + rng.normal(0, 0.3, p.shape)
    res = bt.backtest(p, w, execution="next_open", opens=opens, cost=1e-3, rule="linear")
    close = bt.backtest(p, w, cost=1e-3, rule="linear")
    # holdings over bar t are the decision of close t - 1
    np.testing.assert_array_equal(res.positions[1:], close.positions[:-1])
    assert float(np.sum(res.trips["pnl"])) == pytest.approx(res.metrics["net_pnl"], rel=1e-9)
    # with opens equal to the previous close, next-open fills at the close-mode prices; only
    # the last decision (never filled) differs
    same = bt.backtest(
        p, w, execution="next_open", opens=np.vstack([p[:1], p[:-1]]), cost=1e-3, rule="linear"
    )
    want = close.equity[-1] + close.cost[-1]
    assert same.metrics["final_equity"] == pytest.approx(want, rel=1e-12)
    with pytest.raises(InvalidInput, match="open prices"):
        bt.backtest(p, w, execution="next_open")


def test_goog_extract_is_there() -> None:
    g = pd.read_csv(DATA / "goog_daily.csv", index_col=0, parse_dates=True)
    assert g.shape == (2148, 5)
