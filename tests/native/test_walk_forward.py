"""Walk-forward validation against a plain loop of backtest() calls (docs/compute.md §6.6)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import astuple
from typing import Any

import numpy as np
import pytest

from core.analytics import backtest as bt
from core.analytics import walkforward as wfm
from core.errors import InvalidInput
from tests.native.test_backtest import ou_path

GRID = {"window": (20, 40), "z_in": (1.5, 2.0, 2.5), "z_out": (0.0, 0.5, 2.0)}
KW: dict[str, Any] = {"u_max": 2000.0, "capital": 1e6}


def legs(seed: int, n: int = 900, theta: float = 12.0) -> np.ndarray:
    """Two legs on one random walk; the spread leg0 - leg1 is an OU with `theta` per year."""
    rng = np.random.default_rng(seed)
    walk = 100 + np.cumsum(rng.normal(0, 0.8, n))
    gap = ou_path(n, theta, 4.0, 1 / 252, seed)
    return np.column_stack([walk + gap + 40, walk + 10 + rng.normal(0, 0.05, n)])


W = np.array([1.0, -1.0])


def oracle(
    p: np.ndarray, train: int, test: int, anchored: bool, cost: float = 5e-4
) -> dict[str, Any]:
    """The walk-forward as a plain loop: every grid point through backtest() in-sample, the
    highest Sharpe (first of equals) traded out of sample on a z-score from numpy."""
    points = [
        (w, zi, zo)
        for w in GRID["window"]
        for zi in GRID["z_in"]
        for zo in GRID["z_out"]
        if zo < zi
    ]
    spread = p @ W
    folds, returns, growths, variances = [], [], [], []
    start = train
    while p.shape[0] - start >= 2:
        end = min(start + test, p.shape[0])
        first = 0 if anchored else start - train
        sharpes = [
            bt.backtest(p[first:start], W, window=w, z_in=zi, z_out=zo, cost=cost, **KW).metrics[
                "sharpe"
            ]
            for w, zi, zo in points
        ]
        best = 0
        for i, sh in enumerate(sharpes):
            if sh > sharpes[best] or (math.isnan(sharpes[best]) and not math.isnan(sh)):
                best = i
        finite = np.array([s for s in sharpes if math.isfinite(s)]) / math.sqrt(252.0)
        variances.append(np.var(finite, ddof=1))
        w, zi, zo = points[best]
        z = [math.nan]
        for t in range(start, end - 1):
            win = spread[t - w + 1 : t + 1]
            z.append((spread[t] - win.mean()) / win.std(ddof=1))
        z.append(math.nan)
        res = bt.backtest(p[start - 1 : end], W, z=z, z_in=zi, z_out=zo, cost=cost, **KW)
        folds.append((first, start, start, end, w, zi, zo, sharpes[best], res))
        returns.append(res.returns)
        growths.append(res.equity[-1] / KW["capital"])
        start += test
    return {
        "folds": folds,
        "returns": np.concatenate(returns),
        "growths": growths,
        "sharpe_var": float(np.mean(variances)),
        "n_trials": len(points),
    }


@pytest.mark.parametrize("anchored", [False, True])
def test_matches_a_plain_loop_of_backtests(anchored: bool) -> None:
    p = legs(3)
    wf = bt.walk_forward(p, GRID, 250, 120, anchored, weights=W, **KW)
    ref = oracle(p, 250, 120, anchored)
    assert len(wf.folds) == len(ref["folds"]) == 6  # 5 full folds and a 50-bar tail
    for fold, (a, b, s, e, w, zi, zo, is_sharpe, res) in zip(wf.folds, ref["folds"], strict=True):
        assert (fold.train_start, fold.train_end, fold.test_start, fold.test_end) == (a, b, s, e)
        assert (fold.window, fold.z_in, fold.z_out) == (w, zi, zo)
        assert fold.is_sharpe == is_sharpe == fold.is_score
        assert fold.oos_sharpe == pytest.approx(res.metrics["sharpe"], rel=1e-12, abs=1e-12)
        assert fold.oos_return == pytest.approx(res.equity[-1] / 1e6 - 1, rel=1e-12, abs=1e-15)
        assert fold.oos_max_drawdown == pytest.approx(res.metrics["max_drawdown"], abs=1e-12)
        assert fold.trades == res.metrics["round_trips"]
        assert res.positions[0] == 0  # flat at the close before the test window
        assert res.positions[-1] == 0  # and flat at its last close
    np.testing.assert_allclose(wf.returns, ref["returns"], rtol=0, atol=1e-15)
    r = ref["returns"]
    assert wf.oos_sharpe == pytest.approx(math.sqrt(252) * r.mean() / r.std(ddof=1), rel=1e-12)
    peak = np.maximum.accumulate(wf.equity)
    assert wf.oos_max_drawdown == pytest.approx((wf.equity / peak - 1).min(), rel=1e-12)
    is_mean = np.mean([f[7] for f in ref["folds"]])
    assert wf.is_sharpe_mean == pytest.approx(is_mean, rel=1e-12)
    assert wf.gap == pytest.approx(is_mean - wf.oos_sharpe, rel=1e-12)
    assert wf.n_trials == ref["n_trials"] == 14
    assert wf.sharpe_var == pytest.approx(ref["sharpe_var"], rel=1e-12)
    expected = bt.deflated_sharpe(r, ref["n_trials"], ref["sharpe_var"])
    assert wf.deflated_sharpe == pytest.approx(expected, rel=1e-10)


def test_stitched_equity_is_the_product_of_fold_growths() -> None:
    p = legs(5)
    wf = bt.walk_forward(p, GRID, 250, 100, weights=W, **KW)
    assert wf.equity[0] == 1e6
    assert (wf.bars[0], wf.bars[-1]) == (249, p.shape[0] - 1)
    assert wf.equity.size == wf.bars.size == wf.returns.size + 1
    level = 1e6
    for fold in wf.folds:
        level *= 1 + fold.oos_return
        assert wf.equity[fold.test_end - 1 - wf.bars[0]] == pytest.approx(level, rel=1e-14)
    assert wf.equity[-1] == pytest.approx(1e6 * np.prod([1 + f.oos_return for f in wf.folds]))
    np.testing.assert_allclose(wf.equity[1:] / wf.equity[:-1] - 1, wf.returns, atol=1e-14)
    assert wf.oos_return == pytest.approx(wf.equity[-1] / 1e6 - 1, rel=1e-14)


def test_changing_later_prices_leaves_earlier_folds_unchanged() -> None:
    p = legs(7)
    wf = bt.walk_forward(p, GRID, 250, 100, weights=W, **KW)
    cut = wf.folds[2].test_end
    q = p.copy()
    q[cut:] += np.random.default_rng(0).normal(0, 5.0, q[cut:].shape)
    wq = bt.walk_forward(q, GRID, 250, 100, weights=W, **KW)
    for k in range(3):
        np.testing.assert_equal(astuple(wq.folds[k]), astuple(wf.folds[k]))
    upto = cut - wf.bars[0]
    np.testing.assert_array_equal(wq.equity[:upto], wf.equity[:upto])
    assert astuple(wq.folds[3]) != astuple(wf.folds[3])


def test_fold_boundaries_rolling_and_anchored() -> None:
    assert wfm.fold_bounds(902, 300, 200, False) == [
        (0, 300, 300, 500),
        (200, 500, 500, 700),
        (400, 700, 700, 900),
        (600, 900, 900, 902),
    ]
    assert wfm.fold_bounds(902, 300, 200, True) == [
        (0, 300, 300, 500),
        (0, 500, 500, 700),
        (0, 700, 700, 900),
        (0, 900, 900, 902),
    ]
    # a one-bar tail cannot start and end flat with a trade in between: dropped
    assert wfm.fold_bounds(901, 300, 200, False)[-1] == (400, 700, 700, 900)
    p = legs(2, n=640)
    ts = np.datetime64("2020-01-01") + np.arange(640).astype("timedelta64[D]")
    wf = bt.walk_forward(p, GRID, 250, 130, True, weights=W, timestamps=ts, **KW)
    assert [(f.train_start, f.test_start, f.test_end) for f in wf.folds] == [
        (0, 250, 380),
        (0, 380, 510),
        (0, 510, 640),
    ]
    fold = wf.folds[1]
    assert fold.train_start_time == dt.datetime(2020, 1, 1)
    assert np.datetime64(fold.test_start_time) == ts[380]
    assert np.datetime64(fold.test_end_time) == ts[509]
    assert np.datetime64(fold.train_end_time) == ts[379]
    np.testing.assert_array_equal(wf.times, ts[249:])


def test_heatmap_trades_every_point_with_fixed_parameters() -> None:
    p = legs(11)
    wf = bt.walk_forward(p, GRID, 250, 150, weights=W, **KW)
    heat = wf.heatmap
    assert heat.columns == [
        "window",
        "z_in",
        "z_out",
        "oos_sharpe",
        "oos_return",
        "is_sharpe_mean",
        "times_chosen",
    ]
    assert heat.height == 14
    assert heat["times_chosen"].sum() == len(wf.folds)
    row = heat.filter((heat["window"] == 40) & (heat["z_in"] == 2.0) & (heat["z_out"] == 0.5))
    growth = []
    for f in wf.folds:
        res = wfm.oos_run(p, W, 40, 2.0, 0.5, f.test_start, f.test_end, 5e-4, KW)
        growth.append(res.returns)
    r = np.concatenate(growth)
    assert row["oos_sharpe"][0] == pytest.approx(math.sqrt(252) * r.mean() / r.std(ddof=1))
    assert row["oos_return"][0] == pytest.approx(np.prod(1 + r) - 1, rel=1e-10)
    chosen = heat.filter(heat["times_chosen"] > 0)
    assert set(zip(chosen["window"], chosen["z_in"], chosen["z_out"], strict=True)) == {
        (f.window, f.z_in, f.z_out) for f in wf.folds
    }


def test_deterministic_and_the_same_on_any_thread_count() -> None:
    p = legs(4)
    one = bt.walk_forward(p, GRID, 250, 100, weights=W, workers=1, **KW)
    two = bt.walk_forward(p, GRID, 250, 100, weights=W, workers=2, **KW)
    np.testing.assert_equal([astuple(f) for f in one.folds], [astuple(f) for f in two.folds])
    np.testing.assert_array_equal(one.equity, two.equity)
    assert one.heatmap.equals(two.heatmap)
    assert one.deflated_sharpe == two.deflated_sharpe


def test_grid_accepts_scalars_and_orders_values() -> None:
    g = bt.Grid.of({"window": [60, 40, 40], "z_in": 2.0, "z_out": (0.5, -0.5)})
    assert g == bt.Grid((40, 60), (2.0,), (-0.5, 0.5))
    assert g.points()[0] == (40, 2.0, -0.5)
    assert bt.Grid.of(g) == g


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"train": 41}, "train (41 bars) must be at least the largest window + 2 (40 + 2)"),
        ({"test": 0}, "test must be a whole number of bars >= 2"),
        ({"grid": {"window": (), "z_in": 2.0, "z_out": 0.5}}, "grid window is empty"),
        ({"grid": {"window": 20, "z_in": (1.0, 2.0), "z_out": (2.0, 3.0)}}, "no point with z_out"),
        ({"grid": {"window": 20, "z_in": 2.0}}, "grid needs values for z_out"),
        ({"grid": {"window": 20, "z_in": 2.0, "z_out": 0, "zin": 1}}, "unknown keys ['zin']"),
        ({"grid": {"window": 2.5, "z_in": 2.0, "z_out": 0}}, "whole numbers >= 3"),
        ({"grid": {"window": 20, "z_in": (2.0, math.nan), "z_out": 0}}, "finite numbers"),
        ({"grid": {"window": 20, "z_in": -1.0, "z_out": -2.0}}, "z_in values must be > 0"),
        ({"test": 700}, "too few rows: 900 bars for train 250 + test 700"),
        ({"select": "profit"}, "select must be one of sharpe, sortino, calmar, cagr"),
        ({"rule": "linear"}, "walk_forward does not take rule"),
        ({"capital": -1.0}, "capital must be a finite number > 0"),
        ({"weights": [1.0]}, "weights must be 2 finite numbers"),
    ],
)
def test_bad_input_is_refused_clearly(change: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"grid": GRID, "train": 250, "test": 100, "weights": W} | KW
    args |= change
    with pytest.raises(InvalidInput) as err:
        bt.walk_forward(legs(1), **args)
    assert message in str(err.value)


def test_nan_prices_are_refused() -> None:
    p = legs(1)
    p[500, 1] = np.nan
    with pytest.raises(InvalidInput, match=r"NaN/inf values \(first at row 500, column 1\)"):
        bt.walk_forward(p, GRID, 250, 100, weights=W)


def test_mean_reverting_spread_earns_out_of_sample() -> None:
    for seed in (1, 2, 3):
        wf = bt.walk_forward(legs(seed, theta=60.0), GRID, 250, 100, weights=W, **KW)
        assert wf.oos_sharpe > 0.5, (seed, wf.oos_sharpe)
        assert sum(f.trades for f in wf.folds) > 10


def test_random_walk_shows_an_in_sample_to_out_of_sample_gap() -> None:
    gaps = []
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        p = 100 + np.cumsum(rng.normal(0, 1.0, (900, 2)), axis=0)
        wf = bt.walk_forward(p, GRID, 250, 100, weights=W, **KW)
        gaps.append(wf.gap)
        assert wf.deflated_sharpe < 0.5
    assert np.mean(gaps) > 0, gaps
