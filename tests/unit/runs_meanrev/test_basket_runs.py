"""The basket runs (backtest, sweep, walk-forward) and the basket they share: the numbers of
the kernels called directly, deterministic, rerun through the registry, typed errors."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from core.analytics import backtest as bt
from core.analytics.runs import KINDS, RunResult, SeriesInput
from core.analytics.runs.meanrev import (
    BacktestParams,
    SweepParams,
    WalkForwardParams,
    run_backtest,
    run_sweep,
    run_walk_forward,
    series_names,
)
from core.analytics.runs.meanrev_basket import BasketParams, prepare_basket, unit_size
from core.data.catalog import SeriesRef
from core.errors import InvalidInput
from tests.runs_support import assert_same_run
from tests.unit.runs_meanrev.support import NAMES, parquet_round_trip, real_bars, rerun

WEIGHTS = (0.6, -0.4)
BARS = 1000


def direct_basket() -> tuple[np.ndarray, np.ndarray]:
    """Log closes of the two real series on their common days, and the days."""
    bars = real_bars(BARS)
    joined = bars[0].select("ts", pl.col("close").alias("a"))
    joined = joined.join(bars[1].select("ts", pl.col("close").alias("b")), on="ts").sort("ts")
    return np.log(joined.select("a", "b").to_numpy()), joined["ts"].to_numpy()


def test_backtest_is_the_kernel_call() -> None:
    bars = real_bars(BARS)
    params = BacktestParams(names=NAMES, weights=WEIGHTS, window=40, z_in=1.5, cost_bp=2.0)
    run = run_backtest(bars, params)
    closes, ts = direct_basket()
    direct = bt.backtest(
        closes, np.array(WEIGHTS), rule="bands", zscore="rolling", window=40, ou_window=40,
        z_in=1.5, z_out=0.5, size="notional", gross=1e6, cost=2e-4, capital=1e6,
        periods_per_year=252.0, timestamps=ts,
    )  # fmt: skip
    np.testing.assert_array_equal(run.result.equity, direct.equity)
    assert run.metrics() == direct.metrics
    frames = run.frames()
    np.testing.assert_array_equal(frames["series"]["equity"].to_numpy(), direct.equity)
    assert frames["trips"].height == direct.metrics["round_trips"]
    parquet_round_trip(run)


def test_cara_backtest_is_clipped_at_two_band_sizes() -> None:
    bars = real_bars(BARS)
    params = BacktestParams(names=NAMES, weights=WEIGHTS, rule="cara", gamma=1e-4)
    run = run_backtest(bars, params)
    units = unit_size(run.basket.closes, np.array(WEIGHTS), 1e6)
    assert np.abs(run.result.positions).max() <= 2.0 * units * (1 + 1e-12)
    assert np.abs(run.result.positions).max() > 0
    assert_same_run(run, rerun(run, bars))


def test_sweep_is_the_kernel_sweep() -> None:
    bars = real_bars(BARS)
    params = SweepParams(
        names=NAMES, weights=WEIGHTS, windows=(20, 60), z_ins=(1.0, 2.0), z_outs=(0.0, 1.0)
    )
    run = run_sweep(bars, params)
    closes, ts = direct_basket()
    w = np.array(WEIGHTS)
    rows = bt.sweep(
        closes, w, windows=(20, 60), z_ins=(1.0, 2.0), z_outs=(0.0, 1.0), costs=(5e-4,),
        u_max=unit_size(closes, w, 1e6), capital=1e6, periods_per_year=252.0, timestamps=ts,
    )  # fmt: skip
    assert run.grid.height == len(rows) == 6  # (1, 1) is no point: exit at the entry band
    assert run.grid["sharpe"].to_list() == [r["sharpe"] for r in rows]
    best = max(rows, key=lambda r: r["sharpe"])
    met = run.metrics()
    assert met["best_sharpe"] == best["sharpe"]
    assert (met["best_window"], met["best_z_in"]) == (best["window"], best["z_in"])
    assert met["n_trials"] == 6
    assert_same_run(run, run_sweep(bars, params))
    assert_same_run(run, rerun(run, bars))
    parquet_round_trip(run)


def test_walk_forward_is_the_kernel_walk_forward() -> None:
    bars = real_bars(BARS)
    params = WalkForwardParams(
        names=NAMES, weights=WEIGHTS, windows=(20, 60), z_ins=(1.5, 2.0), z_outs=(0.0, 0.5),
        train=300, test=150, anchored=True, cost_bp=1.0, capital=5e5,
    )  # fmt: skip
    run = run_walk_forward(bars, params)
    closes, ts = direct_basket()
    w = np.array(WEIGHTS)
    wf = bt.walk_forward(
        closes, {"window": (20, 60), "z_in": (1.5, 2.0), "z_out": (0.0, 0.5)}, 300, 150, True,
        weights=w, cost=1e-4, timestamps=ts, u_max=unit_size(closes, w, 5e5), capital=5e5,
        periods_per_year=252.0,
    )  # fmt: skip
    np.testing.assert_array_equal(run.walk.equity, wf.equity)
    met = run.metrics()
    assert met["oos_sharpe"] == wf.oos_sharpe
    assert met["deflated_sharpe"] == wf.deflated_sharpe
    assert met["folds"] == len(wf.folds) == 5  # 1,000 bars: 300 to train, 5 windows of 150
    frames = run.frames()
    assert frames["folds"].equals(wf.folds_frame())
    assert frames["heatmap"].equals(wf.heatmap)
    np.testing.assert_array_equal(frames["equity"]["equity"].to_numpy(), wf.equity)
    assert frames["equity"].columns == ["bar", "equity", "ts"]
    assert frames["equity"]["bar"].to_list() == wf.bars.tolist()
    assert_same_run(run, run_walk_forward(bars, params))
    again = rerun(run, bars)
    assert again.kind == "walk_forward"
    assert_same_run(run, again)
    parquet_round_trip(run)


@pytest.mark.parametrize("kind", ["meanrev_backtest", "meanrev_sweep", "walk_forward"])
def test_a_changed_input_gives_different_numbers(kind: str) -> None:
    """A rerun is exact only on the same bars: a run on changed bars differs (so the
    equality above is not vacuous)."""
    bars = real_bars(BARS)
    runs: dict[str, RunResult] = {
        "meanrev_backtest": run_backtest(bars, BacktestParams(names=NAMES, weights=WEIGHTS)),
        "meanrev_sweep": run_sweep(bars, SweepParams(names=NAMES, weights=WEIGHTS)),
        "walk_forward": run_walk_forward(
            bars, WalkForwardParams(names=NAMES, weights=WEIGHTS, train=300, test=150)
        ),
    }
    changed = [bars[0].with_columns(pl.col("close") * 1.01), bars[1]]
    changed[0] = changed[0].with_columns(
        pl.when(pl.int_range(pl.len()) == 500).then(pl.col("close") * 1.2).otherwise("close")
    )
    other = KINDS[kind].rerun(changed, runs[kind].params())
    assert runs[kind].metrics() != other.metrics()


def test_basket_aligns_drops_and_keeps_the_newest_rows() -> None:
    days = [dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=i) for i in range(50)]
    a = pl.DataFrame({"ts": days, "close": np.linspace(10.0, 20.0, 50)})
    b = pl.DataFrame({"ts": days[5:], "close": np.linspace(30.0, 40.0, 45)})
    b = b.with_columns(
        pl.when(pl.int_range(pl.len()) == 10).then(float("nan")).otherwise("close").alias("close")
    )
    basket = prepare_basket([a, b], BasketParams(names=("A", "B"), use_log=False, last_n=40))
    assert basket.dropped == 1  # 45 common days, one with a NaN close
    assert basket.closes.shape == (40, 2)
    assert basket.times[-1] == days[-1]
    assert basket.times.dtype == pl.Datetime("us", "UTC")
    assert basket.periods_per_year == 252.0
    hours = [dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=i) for i in range(50)]
    hourly = [a.with_columns(pl.Series("ts", hours)), b.with_columns(pl.Series("ts", hours[5:]))]
    assert prepare_basket(hourly, BasketParams(names=("A", "B"))).periods_per_year == 252.0 * 24


@pytest.mark.parametrize(
    ("names", "count", "message"),
    [
        (("A",), 1, "pick at least two markets"),
        (("A", "A"), 2, "the series names must differ"),
        (("A", "B", "C"), 2, "2 input series for 3 names"),
    ],
)
def test_basket_refuses_bad_inputs(names: tuple[str, ...], count: int, message: str) -> None:
    bars = real_bars(100)[:count]
    with pytest.raises(InvalidInput, match=message):
        prepare_basket(bars, BasketParams(names=names))


def test_log_prices_need_positive_closes() -> None:
    bars = real_bars(100)
    bars[1] = bars[1].with_columns(pl.col("close") * -1.0)
    with pytest.raises(InvalidInput, match="log prices need closes > 0"):
        prepare_basket(bars, BasketParams(names=NAMES))


def test_run_params_are_checked() -> None:
    with pytest.raises(InvalidInput, match="1 weights for 2 series"):
        BacktestParams(names=NAMES, weights=(1.0,))
    with pytest.raises(InvalidInput, match="gamma must be a finite number > 0"):
        BacktestParams(names=NAMES, weights=WEIGHTS, gamma=0.0)
    with pytest.raises(InvalidInput, match="rule must be one of 'bands', 'cara'"):
        KINDS["meanrev_backtest"].rerun(
            real_bars(), {"names": list(NAMES), "weights": list(WEIGHTS), "rule": "linear"}
        )
    bad = WalkForwardParams(names=NAMES, weights=WEIGHTS, windows=(250,), train=100)
    with pytest.raises(InvalidInput, match="at least the largest window"):
        run_walk_forward(real_bars(), bad)
    with pytest.raises(InvalidInput, match="no point with z_out < z_in"):
        run_sweep(
            real_bars(), SweepParams(names=NAMES, weights=WEIGHTS, z_ins=(1.0,), z_outs=(1.0,))
        )


def test_names_and_inputs_of_picked_series() -> None:
    refs = [SeriesRef("bundled", "SP500", "1d"), SeriesRef("bundled", "NASDAQ", "1d")]
    assert series_names(refs) == NAMES
    same = [SeriesRef("a", "BTC", "1m"), SeriesRef("b", "BTC", "1m")]
    assert series_names(same) == ("BTC · a · 1m", "BTC · b · 1m")
    bars = real_bars(300)
    inputs = [SeriesInput.of(ref, frame) for ref, frame in zip(refs, bars, strict=True)]
    assert [i.rows for i in inputs] == [300, 300]
