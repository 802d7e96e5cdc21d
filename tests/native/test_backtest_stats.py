"""The geometric and deflated Sharpe (computed in Rust) against numpy/scipy references
written here, at 1e-12 relative: random curves, NaN/inf, 1 + r <= 0, calendars, overflow."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from core.analytics import backtest as bt
from tests.native.test_backtest import ou_path

GAMMA = 0.5772156649015329


def ref_geometric(
    e: np.ndarray, timestamps: Any = None, a: float = 252.0, rf: float = 0.0, ulp: int = 0
) -> float:
    """backtesting.py 0.6.6's Sharpe Ratio in numpy: last value per calendar day, A = 365
    when weekends make up over 60% of their share of the index, else 252. `ulp` moves
    exp(mean log1p r) by that many ulps (libm and numpy's SIMD exp may differ by one)."""
    e = np.asarray(e, dtype=np.float64)
    if timestamps is not None:
        idx = pd.DatetimeIndex(timestamps)
        e = pd.Series(e, index=idx).groupby(idx.normalize()).last().to_numpy()
        a = 365.0 if idx.day_of_week.isin([5, 6]).mean() > 2 / 7 * 0.6 else 252.0
    e = e[np.isfinite(e)]
    with np.errstate(all="ignore"):
        r = e[1:] / e[:-1] - 1.0
    r = r[np.isfinite(r)]
    if r.size < 2:
        return math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.exp(np.log1p(r).mean())
    for _ in range(abs(ulp)):
        growth = np.nextafter(growth, math.copysign(np.inf, ulp))
    g = 0.0 if np.any(1.0 + r <= 0) else float(growth - 1.0)
    with np.errstate(over="ignore", invalid="ignore"):
        one_g, na = np.float64(1.0 + g), np.float64(a)
        ann = float(one_g**na - 1.0)
        vol2 = float((np.float64(r.var(ddof=1)) + one_g**2) ** na - one_g ** (2 * na))
    vol = math.sqrt(vol2) if vol2 > 0 else math.nan
    return (ann - rf) / vol if vol > 0 else math.nan


def ref_deflated(r: np.ndarray, n: int, var: float, rf: float = 0.0) -> float:
    x = np.asarray(r, dtype=np.float64) - rf
    sd = x.std(ddof=1)
    if not sd > 0:
        return math.nan
    sr = x.mean() / sd
    skew, kurt = stats.skew(x), stats.kurtosis(x, fisher=False)
    sr0 = 0.0
    if n > 1:
        ppf = stats.norm.ppf
        sr0 = math.sqrt(var) * ((1 - GAMMA) * ppf(1 - 1 / n) + GAMMA * ppf(1 - 1 / (n * math.e)))
    denom = 1 - skew * sr + (kurt - 1) / 4 * sr**2
    if not denom > 0:
        return math.nan
    return float(stats.norm.cdf((sr - sr0) * math.sqrt(x.size - 1) / math.sqrt(denom)))


def close_geo(got: float, e: np.ndarray, *args: Any, **kw: Any) -> bool:
    """Within 1e-12 of the numpy value, or of it with exp(mean log1p r) one ulp off: with
    |mean log1p r| ~ 1e-6, (1 + g)^A - 1 turns that ulp into 1e-10 relative."""
    return any(close(got, ref_geometric(e, *args, **kw, ulp=k)) for k in (0, -1, 1))


def close(got: float, want: float, rel: float = 1e-12) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    if want == 0:
        return got == 0 and math.copysign(1, got) == math.copysign(1, want)
    return abs(got - want) <= rel * abs(want)


def curves(seed: int, rows: int = 12, t_len: int = 700) -> np.ndarray:
    """Equity curves with drifts from -3e-3 to 3e-3 per bar and vols 0.2% to 5%."""
    rng = np.random.default_rng(seed)
    drift = rng.uniform(-3e-3, 3e-3, (rows, 1))
    vol = rng.uniform(2e-3, 5e-2, (rows, 1))
    return 1e4 * np.cumprod(1 + drift + vol * rng.standard_normal((rows, t_len)), axis=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_geometric_matches_numpy_on_random_curves(seed: int) -> None:
    for e in curves(seed):
        for a, rf in ((252.0, 0.0), (365.0, 0.02), (12.0, 0.0)):
            want = ref_geometric(e, a=a, rf=rf)
            got = bt.geometric_sharpe_bt(e, periods_per_year=a, rf=rf)
            assert math.isfinite(want)
            assert close_geo(got, e, a=a, rf=rf), (got, want)


def test_geometric_drops_non_finite_values() -> None:
    e = curves(7, rows=4)
    e[0, [3, 100, 101]] = np.nan
    e[1, 50] = np.inf
    e[2, 0] = -np.inf
    e[3, 10] = 0.0  # r = -1 then inf: the inf return is dropped, 1 + r <= 0 stays
    for row in e:
        want = ref_geometric(row)
        assert math.isfinite(want)
        assert close_geo(bt.geometric_sharpe_bt(row), row)
    assert not math.isnan(ref_geometric(e[3]))


def test_geometric_with_a_step_through_zero_has_no_growth() -> None:
    e = np.linspace(500.0, -300.0, 400) + 0.5  # crosses zero: a return with 1 + r < 0
    e[::7] += 3.0
    want = ref_geometric(e, rf=0.01)
    assert close(bt.geometric_sharpe_bt(e, rf=0.01), want)
    # g = 0: the annualised return is 0, the Sharpe -rf / vol
    assert want < 0


def test_geometric_below_three_points_is_nan() -> None:
    for e in ([], [1.0], [1.0, 2.0], [1.0, np.nan, 2.0], [3.0, 3.0, 3.0]):
        assert math.isnan(bt.geometric_sharpe_bt(np.array(e)))


@pytest.mark.parametrize(
    ("freq", "weekends"), [("6h", True), ("B", False), ("D", True), ("90min", True)]
)
def test_geometric_resamples_calendar_days(freq: str, weekends: bool) -> None:
    e = curves(11, rows=3, t_len=900)
    ts = pd.date_range("2021-03-01 09:00", periods=900, freq=freq)
    ts_np = ts.to_numpy()
    assert (ts.day_of_week >= 5).any() == weekends
    for row in e:
        want = ref_geometric(row, ts_np)
        assert math.isfinite(want)
        assert close_geo(bt.geometric_sharpe_bt(row, ts_np, periods_per_year=99.0), row, ts_np)
    # a business-day index without a calendar gives A = 252, with weekends 365
    mask, a = bt._calendar(ts_np, 99.0)
    assert a == (365.0 if weekends else 252.0)
    assert mask is not None
    assert int(mask.sum()) == ts.normalize().nunique()


def test_geometric_overflow_follows_numpy() -> None:
    e = np.array([100.0, 1000.0, 10.0, 1000.0, 10.0, 1000.0, 10.0])
    want = ref_geometric(e)
    got = bt.geometric_sharpe_bt(e)
    assert want == 0
    assert math.copysign(1, want) == -1
    assert close(got, want)
    # rising the same way: +0.0
    up = np.array([10.0, 1000.0, 100.0, 10000.0, 1000.0, 1e5, 1e4])
    assert close(bt.geometric_sharpe_bt(up), ref_geometric(up))


@pytest.mark.parametrize("seed", [3, 4])
def test_deflated_matches_scipy_on_random_returns(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for k in range(10):
        r = 5e-4 * k + 0.01 * (rng.standard_t(3 + k, 800) - 0.2 * rng.exponential(1.0, 800))
        for n, var, rf in ((1, 0.0, 0.0), (7, 3e-4, 1e-5), (500, 1e-3, 0.0)):
            want = ref_deflated(r, n, var, rf)
            assert close(bt.deflated_sharpe(r, n, var, rf), want), (k, n)
    # deep tail: a strongly negative Sharpe against many trials
    r = -2e-3 + 0.01 * rng.standard_normal(2000)
    want = ref_deflated(r, 1000, 1e-3)
    assert 0 < want < 1e-20
    assert close(bt.deflated_sharpe(r, 1000, 1e-3), want)


def test_expected_max_sharpe_matches_scipy_for_large_grids() -> None:
    for n in (2, 3, 48, 960, 10**5, 10**8):
        want = 0.3 * (
            (1 - GAMMA) * stats.norm.ppf(1 - 1 / n) + GAMMA * stats.norm.ppf(1 - 1 / (n * math.e))
        )
        assert close(bt.expected_max_sharpe(n, 0.09), want)


def test_sweep_rows_match_the_references_with_a_weekend_calendar() -> None:
    rng = np.random.default_rng(8)
    t_len = 1500
    common = 100 + np.cumsum(rng.normal(0, 1, t_len))
    p = np.column_stack([common + ou_path(t_len, 15.0, 3.0, 1 / 252, 4) + 50, common + 20])
    w = np.array([1.0, -1.0])
    ts = pd.date_range("2020-01-01", periods=t_len, freq="8h").to_numpy()
    kw: dict[str, Any] = {"windows": (20, 60), "z_ins": (1.0, 2.0), "z_outs": (0.0, 0.5)}
    rows = bt.sweep(p, w, **kw, capital=1e4, timestamps=ts, rf=1e-5, workers=2)
    per_period = np.array([r["sharpe_arithmetic"] for r in rows]) / math.sqrt(252)
    n = int(np.isfinite(per_period).sum())
    var = float(per_period[np.isfinite(per_period)].var(ddof=1))
    assert n == len(rows) == 8
    for row in rows:
        one = bt.backtest(
            p,
            w,
            window=int(row["window"]),
            z_in=row["z_in"],
            z_out=row["z_out"],
            capital=1e4,
            timestamps=ts,
            rf=1e-5,
        )
        assert close_geo(row["sharpe_geometric_bt"], one.equity, ts)
        assert close(row["deflated_sharpe"], ref_deflated(one.returns, n, var, 1e-5))
        assert row["n_trials"] == n
