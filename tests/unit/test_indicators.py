"""The chart indicators against TA-Lib (the oracle) and, for VWAP, a plain loop."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from functools import cache

import numpy as np
import pytest
import talib

from core.analytics import indicators as ind
from core.data import bundled
from core.errors import InvalidInput

TOL = 1e-9


@cache
def sp500() -> tuple[np.ndarray, np.ndarray, list[dt.datetime]]:
    bars = bundled.load("SP500")
    return bars["close"].to_numpy(), bars["volume"].to_numpy(), bars["ts"].to_list()


def walk(seed: int, size: int = 3000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 + np.cumsum(rng.normal(scale=0.8, size=size))


SERIES: dict[str, Callable[[], np.ndarray]] = {
    "walk-0": lambda: walk(0),
    "walk-1": lambda: walk(1, 700),
    "walk-small-scale": lambda: 1.0 + np.cumsum(np.random.default_rng(2).normal(0, 1e-3, 2000)),
    "sp500": lambda: sp500()[0],
}


@pytest.fixture(params=sorted(SERIES))
def x(request: pytest.FixtureRequest) -> np.ndarray:
    return np.asarray(SERIES[request.param](), dtype=np.float64)


def same(ours: np.ndarray, oracle: np.ndarray) -> None:
    """Equal to TOL, with NaN in exactly the same places (the warm-up)."""
    assert ours.shape == oracle.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(oracle))
    np.testing.assert_allclose(ours, oracle, rtol=0, atol=TOL)


@pytest.mark.parametrize("n", [2, 5, 20, 200])
def test_sma_and_ema_match_talib(x: np.ndarray, n: int) -> None:
    sma, ema = ind.sma(x, n), ind.ema(x, n)
    same(sma, talib.SMA(x, timeperiod=n))
    same(ema, talib.EMA(x, timeperiod=n))
    assert np.isnan(sma[: n - 1]).all()
    assert not np.isnan(sma[n - 1 :]).any()
    assert ema[n - 1] == pytest.approx(x[:n].mean(), abs=TOL)


@pytest.mark.parametrize(("n", "k"), [(20, 2.0), (10, 1.5), (50, 3.0), (2, 1.0)])
def test_bollinger_matches_talib(x: np.ndarray, n: int, k: float) -> None:
    upper, mid, lower = ind.bollinger(x, n, k)
    t_upper, t_mid, t_lower = talib.BBANDS(
        x, timeperiod=n, nbdevup=k, nbdevdn=k, matype=talib.MA_Type.SMA
    )
    same(upper, t_upper)
    same(mid, t_mid)
    same(lower, t_lower)
    # population std: the half width of the last window is k * std(ddof=0)
    assert upper[-1] - mid[-1] == pytest.approx(k * x[-n:].std(ddof=0), rel=1e-9)


@pytest.mark.parametrize("n", [2, 14, 30])
def test_rsi_matches_talib(x: np.ndarray, n: int) -> None:
    ours = ind.rsi(x, n)
    same(ours, talib.RSI(x, timeperiod=n))
    assert np.isnan(ours[:n]).all()
    assert ((ours[n:] >= 0) & (ours[n:] <= 100)).all()


@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (5, 35, 5), (3, 10, 1)])
def test_macd_matches_talib(x: np.ndarray, fast: int, slow: int, signal: int) -> None:
    line, sig, hist = ind.macd(x, fast, slow, signal)
    t_line, t_sig, t_hist = talib.MACD(x, fastperiod=fast, slowperiod=slow, signalperiod=signal)
    same(line, t_line)
    same(sig, t_sig)
    same(hist, t_hist)
    start = (slow - 1) + (signal - 1)
    assert np.isnan(line[:start]).all()
    assert not np.isnan(line[start:]).any()


def test_defaults_are_talibs() -> None:
    x = walk(5, 400)
    same(ind.rsi(x), talib.RSI(x))
    for ours, oracle in zip(ind.macd(x), talib.MACD(x), strict=True):
        same(ours, oracle)
    for ours, oracle in zip(ind.bollinger(x), talib.BBANDS(x, 20, 2.0, 2.0), strict=True):
        same(ours, oracle)


def test_short_input_is_all_warm_up() -> None:
    x = walk(3, 10)
    for out in (ind.sma(x, 20), ind.ema(x, 20), ind.rsi(x, 10), *ind.bollinger(x, 11)):
        assert out.shape == (10,)
        assert np.isnan(out).all()
    for out in ind.macd(x, 3, 5, 7):  # needs 4 + 6 = 10 warm-up values, so 11 rows
        assert out.shape == (10,)
        assert np.isnan(out).all()
    same(ind.rsi(x, 9), talib.RSI(x, 9))  # exactly one value


def test_flat_rsi_is_undefined_not_zero() -> None:
    x = np.concatenate([np.full(20, 5.0), [6.0, 5.5]])
    ours = ind.rsi(x, 14)
    assert np.isnan(ours[14:20]).all()  # TA-Lib writes 0 here
    assert ours[20] == pytest.approx(100.0)
    assert 0 < ours[21] < 100


def vwap_loop(
    price: list[float], volume: list[float], keys: Sequence[object] | None
) -> list[float]:
    out, pv, vol, last = [], 0.0, 0.0, object()
    for i, (p, v) in enumerate(zip(price, volume, strict=True)):
        key = None if keys is None else keys[i]
        if keys is not None and (i == 0 or key != last):
            pv, vol = 0.0, 0.0
        last = key
        pv += p * v
        vol += v
        out.append(pv / vol if vol > 0 else math.nan)
    return out


def test_vwap_matches_a_plain_loop_on_sp500() -> None:
    close, volume, ts = sp500()
    same(ind.vwap(close, volume), np.array(vwap_loop(list(close), list(volume), None)))
    months = [(t.year, t.month) for t in ts]
    monthly = ind.vwap(close, volume, session=months)
    same(monthly, np.array(vwap_loop(list(close), list(volume), months)))
    first_of_month = [i for i in range(1, len(ts)) if months[i] != months[i - 1]]
    assert all(monthly[i] == pytest.approx(close[i]) for i in first_of_month)


def test_vwap_by_day_with_zero_volume() -> None:
    rng = np.random.default_rng(7)
    price = walk(7, 1000)
    volume = rng.integers(0, 5, size=1000).astype(float)
    volume[:3] = 0.0  # nothing traded yet: undefined, not 0
    start = dt.datetime(2024, 1, 2, 9, 30, tzinfo=dt.UTC)
    stamps = np.array([start + dt.timedelta(minutes=7 * i) for i in range(1000)])
    days = [s.date() for s in stamps]
    ours = ind.vwap(price, volume, session=days)
    same(ours, np.array(vwap_loop(list(price), list(volume), days)))
    assert np.isnan(ours[:3]).all()
    assert not np.allclose(ours, ind.vwap(price, volume), equal_nan=True)


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda x: ind.sma(x, 1), "n must be at least 2"),
        (lambda x: ind.ema(x, 0), "n must be at least 2"),
        (lambda x: ind.sma(x, 2.5), "n must be an int"),
        (lambda x: ind.rsi(x, True), "n must be an int"),
        (lambda x: ind.bollinger(x, 20, 0.0), "positive number"),
        (lambda x: ind.bollinger(x, 20, math.nan), "positive number"),
        (lambda x: ind.bollinger(x, 20, "2"), "k must be a number"),
        (lambda x: ind.macd(x, 26, 12), "fast (26) must be shorter than slow (12)"),
        (lambda x: ind.macd(x, 12, 26, 0), "signal must be at least 1"),
        (lambda x: ind.sma(np.where(np.arange(x.size) == 7, np.nan, x), 5), "first at 7"),
        (lambda x: ind.rsi(np.append(x, np.inf)), "NaN/inf"),
        (lambda x: ind.ema(x.reshape(2, -1), 3), "must be 1-D"),
        (lambda x: ind.sma(["a", "b", "c"], 2), "must be numeric"),
        (lambda x: ind.sma([], 2), "at least 1"),
        (lambda x: ind.vwap(x, x[:-1]), "differ in length"),
        (lambda x: ind.vwap(x, -x), "negative"),
        (lambda x: ind.vwap(x, x, session=[1, 2]), "one per row"),
        (lambda x: ind.vwap(x, x, session=[None] * x.size), "missing"),
        (lambda x: ind.vwap(x, x, session=[1, "a"] * (x.size // 2)), "one type per row"),
    ],
)
def test_bad_input_is_a_clear_error(call: object, needle: str) -> None:
    x = walk(9, 40)
    with pytest.raises(InvalidInput) as info:
        call(x)  # type: ignore[operator]
    assert needle in str(info.value)


def test_inputs_are_not_changed() -> None:
    x = walk(4, 300)
    copy = x.copy()
    ind.sma(x, 5), ind.ema(x, 5), ind.bollinger(x), ind.rsi(x), ind.macd(x), ind.vwap(x, x)
    np.testing.assert_array_equal(x, copy)
