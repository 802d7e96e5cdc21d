"""Parity with backtesting.py 0.6.6 on GOOG (docs/compute.md §6.3).

backtesting.py runs with trade_on_close=True and finalize_trades=True; our engine runs in
units="integer", close-execution mode with close_at_end=True. Two bookkeeping differences
are accounted for, both documented in core.analytics.backtest:
- backtesting.py logs the equity of bar t before the orders decided at close t are filled,
  so its curve equals ours plus that bar's cost;
- it starts calling next() one bar after the indicator's first value, so the first z is
  masked here.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.analytics import backtest as bt
from core.series import rolling_zscore

backtesting = pytest.importorskip("backtesting")

DATA = Path(__file__).resolve().parents[1] / "data"
WINDOW, Z_IN, Z_OUT, UNITS, COMMISSION = 20, 1.5, 0.25, 100, 0.001


def rolling_z(close: np.ndarray) -> np.ndarray:
    s = pd.Series(close)
    return ((s - s.rolling(WINDOW).mean()) / s.rolling(WINDOW).std(ddof=1)).to_numpy()


class ZBand(backtesting.Strategy):  # type: ignore[misc,name-defined]
    """The band rule written independently against backtesting.py's API."""

    def init(self) -> None:
        self.z = self.I(rolling_z, self.data.Close, name="z")
        self.n_bars = len(self.data.df)

    def next(self) -> None:
        if len(self.data) >= self.n_bars - 1:
            return  # finalize_trades closes at the second-to-last close
        z = self.z[-1]
        size = self.position.size
        if (size > 0 and z >= -Z_OUT) or (size < 0 and z <= Z_OUT):
            self.position.close()
            size = 0
        if size == 0:
            if z <= -Z_IN:
                self.buy(size=UNITS)
            elif z >= Z_IN:
                self.sell(size=UNITS)


@pytest.fixture(scope="module")
def goog() -> pd.DataFrame:
    return pd.read_csv(DATA / "goog_daily.csv", index_col=0, parse_dates=True)


@pytest.fixture(scope="module")
def theirs(goog: pd.DataFrame) -> pd.Series:
    run = backtesting.Backtest(
        goog, ZBand, cash=1e6, commission=COMMISSION, trade_on_close=True, finalize_trades=True
    )
    with warnings.catch_warnings():
        # backtesting 0.6.6 uses pandas APIs that pandas 3.1 deprecates
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return run.run()


@pytest.fixture(scope="module")
def ours(goog: pd.DataFrame) -> bt.BacktestResult:
    close = goog["Close"].to_numpy()
    z = rolling_zscore(close, WINDOW)
    z[WINDOW - 1] = np.nan  # backtesting.py's warm-up skips the first defined bar
    return bt.backtest(
        close,
        z=z,
        z_in=Z_IN,
        z_out=Z_OUT,
        u_max=UNITS,
        units="integer",
        cost=COMMISSION,
        capital=1e6,
        close_at_end=True,
        timestamps=goog.index.to_numpy(),
    )


def test_final_equity_trades_and_commissions(theirs: pd.Series, ours: bt.BacktestResult) -> None:
    assert ours.metrics["final_equity"] == pytest.approx(theirs["Equity Final [$]"], rel=1e-9)
    assert ours.metrics["round_trips"] == theirs["# Trades"]
    assert ours.metrics["total_cost"] == pytest.approx(theirs["Commissions [$]"], rel=1e-9)
    assert theirs["# Trades"] > 20


def test_equity_curve(theirs: pd.Series, ours: bt.BacktestResult) -> None:
    curve = theirs._equity_curve["Equity"].to_numpy()
    np.testing.assert_allclose(ours.equity + ours.cost, curve, rtol=1e-9)


def test_geometric_sharpe_and_drawdown(
    theirs: pd.Series, ours: bt.BacktestResult, goog: pd.DataFrame
) -> None:
    curve = ours.equity + ours.cost
    got = bt.geometric_sharpe_bt(curve, goog.index.to_numpy())
    assert got == pytest.approx(theirs["Sharpe Ratio"], rel=1e-9)
    dd = 1 - curve / np.maximum.accumulate(curve)
    assert -dd.max() * 100 == pytest.approx(theirs["Max. Drawdown [%]"], rel=1e-9)
    # the arithmetic Sharpe is a different number: the definitions must not be mixed
    assert abs(ours.metrics["sharpe_arithmetic"] - theirs["Sharpe Ratio"]) > 1e-3


def test_trade_entries_match(theirs: pd.Series, ours: bt.BacktestResult) -> None:
    trades = theirs._trades
    assert ours.trips["entry"].tolist() == trades["EntryBar"].tolist()
    assert ours.trips["exit"].tolist() == trades["ExitBar"].tolist()
    np.testing.assert_allclose(ours.trips["pnl"], trades["PnL"], rtol=1e-9)  # net of commissions


def test_next_open_execution_matches_backtesting_default(goog: pd.DataFrame) -> None:
    """backtesting.py's default fills at the next bar's open; so does execution="next_open"."""
    run = backtesting.Backtest(goog, ZBand, cash=1e6, commission=COMMISSION, finalize_trades=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        stats = run.run()
    close = goog["Close"].to_numpy()
    z = rolling_zscore(close, WINDOW)
    z[WINDOW - 1] = np.nan
    ours = bt.backtest(
        close,
        z=z,
        z_in=Z_IN,
        z_out=Z_OUT,
        u_max=UNITS,
        units="integer",
        cost=COMMISSION,
        capital=1e6,
        close_at_end=True,
        execution="next_open",
        opens=goog["Open"].to_numpy(),
    )
    np.testing.assert_allclose(ours.equity, stats._equity_curve["Equity"].to_numpy(), rtol=1e-9)
    assert ours.metrics["round_trips"] == stats["# Trades"]
    assert ours.metrics["total_cost"] == pytest.approx(stats["Commissions [$]"], rel=1e-9)
    assert ours.trips["entry"].tolist() == stats._trades["EntryBar"].tolist()
    np.testing.assert_allclose(ours.trips["pnl"], stats._trades["PnL"], rtol=1e-9)
