"""The chart builder under SQL Explorer results: candles, overlays, refusals and the row cap."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.analytics import indicators
from pages._shared import chart_figure, sql_chart
from tests.app.conftest import AppAs
from tests.app.test_sql_explorer import PAGE, run_sql

pytestmark = pytest.mark.app

BARS_SQL = (
    "SELECT ts, open, high, low, close, volume FROM bars "
    "WHERE symbol = 'SP500' ORDER BY ts LIMIT 500"
)


def array(v: object) -> np.ndarray:
    """A plotly trace array from its JSON spec (a list, or base64 with a dtype)."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).astype(float)
    return np.asarray([np.nan if e is None else e for e in v], dtype=np.float64)  # type: ignore[attr-defined]


def draw(at: AppTest, kind: str, overlays: list[str], **numbers: float) -> dict[str, Any]:
    next(s for s in at.selectbox if s.label == "Chart").set_value(kind)
    next(m for m in at.multiselect if m.label.startswith("Overlays")).set_value(overlays)
    for label, value in numbers.items():
        next(n for n in at.number_input if n.label == label).set_value(value)
    next(b for b in at.button if b.label == "Draw chart").click()
    at.run(timeout=120)
    assert not at.exception, at.exception
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    return json.loads(charts[0].proto.spec)  # type: ignore[no-any-return]


def test_candles_with_sma_and_rsi(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE).run(timeout=120)
    run_sql(at, BARS_SQL)
    assert not at.exception
    chart_kinds = next(s for s in at.selectbox if s.label == "Chart").options
    assert chart_kinds == ["Line", "Area", "Candlesticks", "Bar", "Scatter", "Histogram"]
    overlay_names = next(m for m in at.multiselect if m.label.startswith("Overlays")).options
    assert overlay_names == ["SMA", "EMA", "Bollinger", "RSI", "MACD", "VWAP"]
    assert not at.get("plotly_chart")  # nothing drawn before "Draw chart"

    spec = draw(at, "Candlesticks", ["SMA", "RSI"], **{"SMA period": 20})
    close = at.session_state["sql_explorer_result"].frame["close"].to_numpy()
    traces = {t["name"]: t for t in spec["data"]}
    assert set(traces) == {"price", "SMA 20", "RSI 14"}
    candle = traces["price"]
    assert candle["type"] == "candlestick"
    np.testing.assert_allclose(array(candle["close"]), close)
    assert len(array(candle["open"])) == 500
    sma = array(traces["SMA 20"]["y"])
    np.testing.assert_allclose(sma, indicators.sma(close, 20), rtol=0, atol=1e-9)
    assert np.isnan(sma[:19]).all()
    rsi = traces["RSI 14"]
    assert rsi["yaxis"] == "y2"  # the lower panel
    np.testing.assert_allclose(array(rsi["y"]), indicators.rsi(close, 14), atol=1e-9)
    assert spec["layout"]["yaxis2"]["title"]["text"] == "RSI"
    assert spec["layout"]["yaxis2"]["range"] == [0, 100]
    assert spec["layout"]["yaxis"]["title"]["text"] == "Price"

    at.run(timeout=120)  # the chart stays on a plain rerun
    assert len(at.get("plotly_chart")) == 1


def test_line_sorted_with_macd_bollinger_and_daily_vwap(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE).run(timeout=120)
    run_sql(
        at,
        'SELECT ts AS "When", close AS "Close", volume AS "VOLUME" FROM bars '
        "WHERE symbol = 'SP500' ORDER BY ts DESC LIMIT 300",
    )
    assert not at.exception
    assert "Candlesticks" not in next(s for s in at.selectbox if s.label == "Chart").options
    spec = draw(at, "Line", ["Bollinger", "MACD", "VWAP"], **{"MACD fast": 5})
    frame = at.session_state["sql_explorer_result"].frame.sort("When")
    close = frame["Close"].to_numpy()
    traces = {t["name"]: t for t in spec["data"]}
    x = np.array(traces["Close"]["x"], dtype="datetime64[us]")
    assert (np.diff(x) > np.timedelta64(0)).all()  # sorted by the x column before drawing
    np.testing.assert_allclose(array(traces["Close"]["y"]), close)
    upper, _, lower = indicators.bollinger(close, 20, 2.0)
    np.testing.assert_allclose(array(traces["Bollinger upper (20, 2)"]["y"]), upper, atol=1e-9)
    np.testing.assert_allclose(array(traces["Bollinger lower (20, 2)"]["y"]), lower, atol=1e-9)
    line, signal, hist = indicators.macd(close, 5, 26, 9)
    np.testing.assert_allclose(array(traces["MACD (5, 26, 9)"]["y"]), line, atol=1e-9)
    np.testing.assert_allclose(array(traces["MACD histogram"]["y"]), hist, atol=1e-9)
    np.testing.assert_allclose(array(traces["MACD signal"]["y"]), signal, atol=1e-9)
    assert traces["MACD signal"]["yaxis"] == "y2"
    # daily bars restarted each day: the VWAP of one bar is that bar's price
    spec = draw(at, "Line", ["VWAP"])
    cumulative = next(t for t in spec["data"] if t["name"] == "VWAP")
    volume = frame["VOLUME"].to_numpy()
    np.testing.assert_allclose(array(cumulative["y"]), indicators.vwap(close, volume))
    next(c for c in at.checkbox if c.label.startswith("Restart VWAP")).check()
    spec = draw(at, "Line", ["VWAP"])
    daily = next(t for t in spec["data"] if t["name"] == "VWAP (daily)")
    np.testing.assert_allclose(array(daily["y"]), close)
    assert spec["layout"]["xaxis"]["title"]["text"] == "When"


def test_results_without_numbers_are_refused_politely(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE).run(timeout=120)
    run_sql(at, "SELECT DISTINCT symbol FROM bars ORDER BY symbol")
    assert not at.exception
    assert any("needs at least one row and one numeric column" in i.value for i in at.info)
    assert not any(b.label == "Draw chart" for b in at.button)
    run_sql(at, "SELECT ts, close FROM bars WHERE false")
    assert any("this result has no rows" in i.value for i in at.info)


def test_plotted_rows_are_capped_with_a_caption(
    app_as: AppAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chart_figure, "MAX_POINTS", 120)
    at = app_as("analyst", PAGE).run(timeout=120)
    run_sql(at, "SELECT ts, close FROM bars WHERE symbol = 'SP500' ORDER BY ts DESC LIMIT 300")
    spec = draw(at, "Histogram", [])
    assert spec["data"][0]["type"] == "histogram"
    assert len(array(spec["data"][0]["x"])) == 120
    assert any("first 120 of 300 rows" in c.value for c in at.caption)


def test_bar_on_text_keeps_the_query_order_and_bad_overlays_are_explained() -> None:
    import polars as pl

    frame = pl.DataFrame({"sym": ["b", "a", "c"], "n": [3.0, 1.0, 2.0]})
    fig, notes = sql_chart.build_figure(frame, sql_chart.ChartSpec("Bar", "sym", ("n",)))
    assert list(fig.data[0].x) == ["b", "a", "c"]
    assert notes == []
    gaps = pl.DataFrame({"t": [1, 2, 3, 4], "y": [1.0, None, 2.0, 3.0]})
    spec = sql_chart.ChartSpec("Line", "t", ("y",), ("SMA",), sma_n=2)
    fig, notes = sql_chart.build_figure(gaps, spec)
    assert [t.name for t in fig.data] == ["Y"]
    assert notes == ["No overlays: y has 1 missing values."]
    with pytest.raises(sql_chart.InvalidInput, match="at least one numeric column"):
        sql_chart.build_figure(frame, sql_chart.ChartSpec("Line", "sym", ()))
    spec = sql_chart.ChartSpec("Line", "t", ("y",), ("MACD",), macd_fast=30)
    _, notes = sql_chart.build_figure(gaps.fill_null(1.5), spec)
    assert notes[0] == "MACD not drawn: fast (30) must be shorter than slow (26)"


def test_chart_specs_round_trip_as_json_and_bad_ones_are_refused() -> None:
    import polars as pl

    from core.research.queries import chart_json

    spec = sql_chart.ChartSpec(
        "Candlesticks", "t", ("C",), ("Bollinger", "RSI"), bb_n=30, bb_k=2.5,
        ohlc=("O", "H", "L", "C"), vwap_daily=True,
    )  # fmt: skip
    data = json.loads(json.dumps(sql_chart.spec_to_dict(spec), allow_nan=False))
    assert data["version"] == 1
    assert data["ohlc"] == ["O", "H", "L", "C"]
    assert sql_chart.spec_from_dict(data) == spec
    assert chart_json(data) is not None  # the saved-query check takes it as it is
    plain = sql_chart.ChartSpec("Line", "ts", ("close",))
    assert sql_chart.spec_from_dict(sql_chart.spec_to_dict(plain)) == plain
    assert sql_chart.spec_from_dict({"version": 1, "kind": "Bar", "x": "d"}).y == ()

    # candles from the saved columns, whatever their names
    frame = pl.DataFrame({"t": [1, 2, 3], "O": [1.0, 2, 3], "H": [2.0, 3, 4], "L": [0.5, 1, 2]})
    frame = frame.with_columns(C=pl.Series([1.5, 2.5, 3.5]))
    assert sql_chart.ohlc_columns(frame) is None
    fig, _ = sql_chart.build_figure(frame, replace_overlays(spec))
    assert list(fig.data[0].close) == [1.5, 2.5, 3.5]
    with pytest.raises(sql_chart.InvalidInput, match="need the numeric columns O, H, L, C"):
        sql_chart.build_figure(frame.drop("H"), spec)

    good = sql_chart.spec_to_dict(plain)
    bad: list[tuple[object, str]] = [
        (None, "format this version cannot read"),
        ({**good, "version": 2}, "format this version cannot read"),
        ({**good, "colour": "red"}, "unknown chart settings: colour"),
        ({**good, "kind": "Pie"}, "unknown chart kind 'Pie'"),
        ({**good, "x": 5}, "x axis must be a column name"),
        ({**good, "y": "close"}, "list of at most 100 column names"),
        ({**good, "y": [1]}, "must hold column names"),
        ({**good, "overlays": ["Ichimoku"]}, "overlays must be some of SMA"),
        ({**good, "overlays": ["SMA", "SMA"]}, "overlays must be some of"),
        ({**good, "ohlc": ["o", "h", "l"]}, "four columns"),
        ({**good, "sma_n": 1}, "SMA period must be a whole number from 2 to 10000"),
        ({**good, "sma_n": True}, "SMA period must be a whole number"),
        ({**good, "rsi_n": 14.0}, "RSI period must be a whole number"),
        ({**good, "bb_k": "2"}, "Bollinger width (std) must be a number from 0.1 to 10"),
        ({**good, "bb_k": 11.0}, "Bollinger width"),
        ({**good, "vwap_daily": "yes"}, "true or false"),
    ]
    for data, message in bad:
        with pytest.raises(sql_chart.InvalidInput) as caught:
            sql_chart.spec_from_dict(data)
        assert message in str(caught.value), (data, str(caught.value))


def replace_overlays(spec: sql_chart.ChartSpec) -> sql_chart.ChartSpec:
    """`spec` without overlays (three rows are too few for any)."""
    from dataclasses import replace

    return replace(spec, overlays=())
