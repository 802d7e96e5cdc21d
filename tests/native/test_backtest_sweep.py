"""The Rust parameter sweep against single backtest() runs, across thread counts and inputs."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from core.analytics import backtest as bt
from core.errors import InvalidInput
from tests.native.test_backtest import ou_path

WINDOWS = (15, 40, 90)
Z_INS = (1.0, 1.75, 2.5)
Z_OUTS = (-0.5, 0.0, 1.0, 2.0)  # 1.0 and 2.0 are skipped for some z_in
COSTS: tuple[Any, ...] = (0.0, 7e-4, (1e-3, 0.0, 5e-4))  # the last one per leg


@pytest.fixture(scope="module")
def legs() -> tuple[np.ndarray, np.ndarray]:
    """Three legs on one random walk; the spread P w is a noisy OU."""
    rng = np.random.default_rng(21)
    t_len = 1200
    walk = 100 + np.cumsum(rng.normal(0, 0.8, t_len))
    gap = ou_path(t_len, 12.0, 4.0, 1 / 252, 5)
    p = np.column_stack([walk + gap + 40, 0.5 * walk + 30 + rng.normal(0, 0.2, t_len), walk + 10])
    return p, np.array([1.0, -0.5, -0.5])


@pytest.fixture
def native_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts calls of the Rust sweep, so a test knows which path ran."""
    calls: list[int] = []
    real = bt.ext.bt_sweep

    def spy(*args: Any, **kw: Any) -> Any:
        calls.append(len(args[4]))
        return real(*args, **kw)

    monkeypatch.setattr(bt.ext, "bt_sweep", spy)
    return calls


def same(a: object, b: object) -> bool:
    """Bitwise-equal floats (NaN equals NaN), plain == otherwise."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def assert_rows_equal(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert list(g) == list(w)
        bad = [k for k in g if not same(g[k], w[k])]
        assert not bad, (g["window"], g["z_in"], g["z_out"], g["cost"], bad)


SETTINGS: list[dict[str, Any]] = [
    {"capital": 1e4, "u_max": 3.0},
    {
        "capital": 1e5,
        "u_max": 2.7,
        "units": "integer",
        "z_stop": 2.9,
        "cooldown": 5,
        "fixed_cost": 2.0,
        "close_at_end": True,
    },
    {
        "capital": 5e3,
        "u_max": 0.6,
        "units": "integer",  # trunc(0.6) == 0: never trades, every Sharpe NaN
    },
    {
        "capital": 2e4,
        "returns": "fixed",
        "rf": 1e-5,
        "periods_per_year": 365,
        "sharpe_kind": "geometric_bt",
        # business days: backtesting.py's A = 252, not periods_per_year
        "timestamps": np.busday_offset("2020-01-01", np.arange(1200), roll="forward"),
        "rule": "bands",
        "zscore": "rolling",
        "size": "units",
        "execution": "close",
    },
]


@pytest.mark.parametrize("settings", SETTINGS, ids=["default", "stop_int_end", "flat", "fixed"])
def test_every_row_equals_the_single_run_bitwise(
    legs: tuple[np.ndarray, np.ndarray], native_calls: list[int], settings: dict[str, Any]
) -> None:
    p, w = legs
    rows = bt.sweep(p, w, windows=WINDOWS, z_ins=Z_INS, z_outs=Z_OUTS, costs=COSTS, **settings)
    assert native_calls == [len(rows)]
    assert len(rows) == 3 * (2 + 3 + 4) * 3
    singles = []
    for row in rows:
        one = bt.backtest(
            p,
            w,
            window=int(row["window"]),
            z_in=row["z_in"],
            z_out=row["z_out"],
            cost=row["cost"],
            **settings,
        )
        singles.append(one)
        params = {k: row[k] for k in ("window", "z_in", "z_out", "cost")}
        tail = {k: row[k] for k in ("n_trials", "deflated_sharpe")}
        assert_rows_equal([params | one.metrics | tail], [row])
    # the deflated Sharpe is deflated_sharpe() of the single run's returns, grid = trials
    a = float(settings.get("periods_per_year", 252.0))
    per_period = np.array([r["sharpe_arithmetic"] for r in rows]) / math.sqrt(a)
    ok = np.isfinite(per_period)
    n = int(ok.sum())
    var = float(per_period[ok].var(ddof=1)) if n >= 2 else 0.0
    for row, one, good in zip(rows, singles, ok, strict=True):
        rf = float(settings.get("rf", 0.0))
        want = bt.deflated_sharpe(one.returns, n, var, rf) if good else math.nan
        assert same(row["deflated_sharpe"], want)
        assert row["n_trials"] == n
    trips = [r["round_trips"] for r in rows]
    if settings.get("u_max", 1.0) >= 1:
        assert min(trips) >= 1
        assert sum(trips) > 200
    else:
        assert max(trips) == 0
        assert n == 0


def test_thread_count_does_not_change_a_bit(legs: tuple[np.ndarray, np.ndarray]) -> None:
    p, w = legs
    kw: dict[str, Any] = {"windows": WINDOWS, "z_ins": Z_INS, "z_outs": Z_OUTS, "costs": COSTS}
    one = bt.sweep(p, w, workers=1, z_stop=3.0, cooldown=2, **kw)
    assert_rows_equal(bt.sweep(p, w, workers=2, z_stop=3.0, cooldown=2, **kw), one)
    assert_rows_equal(bt.sweep(p, w, z_stop=3.0, cooldown=2, **kw), one)
    assert_rows_equal(bt.sweep(p, w, workers=-1, z_stop=3.0, cooldown=2, **kw), one)


@pytest.mark.parametrize(
    "extra",
    [
        {"size": "notional", "gross": 5e3},
        {"rule": "linear", "z_scale": 1.5},
        {"execution": "next_open"},
    ],
    ids=["notional", "linear", "next_open"],
)
def test_other_keywords_fall_back_to_one_backtest_per_point(
    legs: tuple[np.ndarray, np.ndarray], native_calls: list[int], extra: dict[str, Any]
) -> None:
    p, w = legs
    if extra.get("execution") == "next_open":
        extra = extra | {"opens": p + np.random.default_rng(1).normal(0, 0.1, p.shape)}
    rows = bt.sweep(p, w, windows=(40,), z_ins=(1.5, 2.0), z_outs=(0.0,), workers=2, **extra)
    assert native_calls == []
    assert len(rows) == 2
    for row in rows:
        one = bt.backtest(p, w, window=40, z_in=row["z_in"], z_out=row["z_out"], **extra)
        params = {k: row[k] for k in ("window", "z_in", "z_out", "cost")}
        tail = {k: row[k] for k in ("n_trials", "deflated_sharpe")}
        assert_rows_equal([params | one.metrics | tail], [row])


def test_empty_grid(legs: tuple[np.ndarray, np.ndarray], native_calls: list[int]) -> None:
    p, w = legs
    assert bt.sweep(p, w, windows=(20,), z_ins=(1.0,), z_outs=(1.0, 2.0)) == []
    assert native_calls == []


BAD: list[tuple[dict[str, Any], str]] = [
    ({"workers": 0}, "workers must be"),
    ({"workers": True}, "workers must be"),
    ({"workers": 300}, "workers must be"),
    ({"windows": (20, 1199)}, "window 1199 does not fit 1200 bars"),
    ({"windows": (2,)}, "window 2 does not fit"),
    ({"costs": ((1e-3, 2e-3),)}, r"one rate or one per leg \(3\)"),
    ({"costs": (5e-4, -1e-4)}, "cost rates finite and >= 0"),
    ({"z_ins": (-1.0,), "z_outs": (-2.0,)}, "z_in must be > 0"),
    ({"z_ins": ("2",)}, "z_ins and z_outs must be numbers"),
    ({"z_stop": 1.5}, r"z_stop \(1.5\) must be above z_in \(2"),
    ({"u_max": 0.0}, "u_max must be finite and > 0"),
    ({"u_max": "1"}, "u_max must be a number"),
    ({"cooldown": -1}, "cooldown must be an int >= 0"),
    ({"units": "half"}, "units must be"),
    ({"returns": "log"}, "returns must be"),
    ({"sharpe_kind": "sortino"}, "sharpe_kind must be"),
    ({"capital": -1.0}, "capital > 0"),
    ({"periods_per_year": 0}, "periods_per_year must be > 0"),
]


@pytest.mark.parametrize(("kw", "match"), BAD)
def test_bad_input_is_reported_clearly(
    legs: tuple[np.ndarray, np.ndarray], kw: dict[str, Any], match: str
) -> None:
    p, w = legs
    with pytest.raises(InvalidInput, match=match):
        bt.sweep(p, w, **({"windows": (20,), "z_ins": (2.0,), "z_outs": (0.5,)} | kw))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda p, w: bt.sweep(p, w[:2]), "weights must be 3 numbers"),
        (lambda p, w: bt.sweep(p, np.zeros(3)), "not all zero"),
        (lambda p, w: bt.sweep(p[:, :1] * np.nan), "NaN/inf"),
    ],
)
def test_bad_prices_and_weights(
    legs: tuple[np.ndarray, np.ndarray], call: Callable[..., object], match: str
) -> None:
    with pytest.raises(InvalidInput, match=match):
        call(*legs)


def test_volatile_equity_does_not_overflow_the_geometric_sharpe() -> None:
    """backtesting.py's annualised volatility raises var + (1 + g)^2 to the power A; for a
    wildly swinging equity that overflows. numpy (and so backtesting.py) gives inf there and
    a Sharpe of -0.0; ours must agree instead of raising OverflowError."""
    e = np.array([100.0, 1000.0, 10.0, 1000.0, 10.0, 1000.0, 10.0])
    r = e[1:] / e[:-1] - 1
    g = np.exp(np.mean(np.log1p(r))) - 1
    a = np.float64(252.0)
    with np.errstate(over="ignore"):
        vol = np.sqrt((r.var(ddof=1) + (1 + g) ** 2) ** a - (1 + g) ** (2 * a))
        want = float(((1 + g) ** a - 1) / vol)
    got = bt.geometric_sharpe_bt(e)
    assert got == want
    assert math.copysign(1.0, got) == math.copysign(1.0, want)
