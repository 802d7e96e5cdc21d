"""Charts from a SQL Explorer result: the form (kind, columns, overlays) and its saved form.

`chart_builder(frame)` draws the form under a result and, once "Draw chart" is pressed, the
figure; the choice is kept in session state, so the chart stays (and follows a new result with
the same columns) until the user changes it. The figure itself is
`pages._shared.chart_figure.build_figure(frame, spec)`.

A saved query keeps its chart as a JSON-safe dict: `chart_spec(frame)` is the drawn chart's
(None when nothing drawn fits `frame`), `apply_spec(data)` restores one: the chart is drawn
and the form's widgets are set from it (through their session-state keys, before they are
drawn on the next run).
"""

from __future__ import annotations

from typing import Any

import polars as pl
import streamlit as st

from core.errors import InvalidInput
from pages._shared.chart_figure import (
    DEFAULTS,
    KINDS,
    OHLC,
    OVERLAYS,
    ChartSpec,
    build_figure,
    check,
    numeric_columns,
    ohlc_columns,
    volume_column,
    x_choices,
)
from pages._shared.format import md_escape

SPEC_KEY = "sql_chart_spec"
PENDING_KEY = "sql_chart_pending"  # a restored spec, put into the widgets on the next run
COLUMNS_KEY = "sql_chart_columns"  # the result columns the widgets were last set for
SPEC_VERSION = 1
NUMBERS: dict[str, tuple[str, float, float]] = {
    "sma_n": ("SMA period", 2, 10_000),
    "ema_n": ("EMA period", 2, 10_000),
    "bb_n": ("Bollinger period", 2, 10_000),
    "bb_k": ("Bollinger width (std)", 0.1, 10.0),
    "rsi_n": ("RSI period", 2, 10_000),
    "macd_fast": ("MACD fast", 2, 10_000),
    "macd_slow": ("MACD slow", 3, 10_000),
    "macd_signal": ("MACD signal", 1, 10_000),
}
"""The chart's numbers: form label, lowest and highest value."""
COLUMN = {"sma_n": 0, "ema_n": 0, "bb_n": 1, "bb_k": 1, "rsi_n": 2, "macd_fast": 3}
COLUMN |= {"macd_slow": 3, "macd_signal": 4}  # the form column of each number
FIELDS = ("kind", "x", "y", "overlays", *NUMBERS, "vwap_daily")
KEYS = {name: f"sql_chart_{name}" for name in FIELDS}
"""The form widget's session-state key of each ChartSpec field."""


def spec_to_dict(spec: ChartSpec) -> dict[str, Any]:
    """`spec` as a JSON-safe dict (the form a saved query keeps)."""
    data = {name: getattr(spec, name) for name in FIELDS}
    data |= {"y": list(spec.y), "overlays": list(spec.overlays), "ohlc": list(spec.ohlc)}
    return {"version": SPEC_VERSION, **data}


def _texts(value: object, what: str, most: int) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > most:
        raise InvalidInput(f"{what} must be a list of at most {most} column names")
    if not all(isinstance(v, str) and 0 < len(v) <= 300 for v in value):
        raise InvalidInput(f"{what} must hold column names")
    return tuple(value)


def spec_from_dict(data: object) -> ChartSpec:
    """The ChartSpec a dict from `spec_to_dict` describes; InvalidInput saying what is wrong."""
    if not isinstance(data, dict) or data.get("version") != SPEC_VERSION:
        raise InvalidInput("this chart was saved in a format this version cannot read")
    unknown = set(data) - {"version", "ohlc", *FIELDS}
    if unknown:
        raise InvalidInput(f"unknown chart settings: {', '.join(sorted(map(str, unknown)))}")
    kind, x = data.get("kind"), data.get("x")
    if kind not in KINDS:
        raise InvalidInput(f"unknown chart kind {str(kind)[:40]!r}")
    if not isinstance(x, str) or not 0 < len(x) <= 300:
        raise InvalidInput("the chart's x axis must be a column name")
    overlays = _texts(data.get("overlays", []), "overlays", len(OVERLAYS))
    if not set(overlays) <= set(OVERLAYS) or len(set(overlays)) < len(overlays):
        raise InvalidInput(f"overlays must be some of {', '.join(OVERLAYS)}")
    ohlc = _texts(data.get("ohlc", []), "the candlestick columns", len(OHLC))
    if ohlc and len(ohlc) != len(OHLC):
        raise InvalidInput("candlesticks need four columns: open, high, low and close")
    numbers: dict[str, Any] = {}
    for name, (title, low, high) in NUMBERS.items():
        value = data.get(name, getattr(DEFAULTS, name))
        whole = isinstance(value, int) and not isinstance(value, bool)
        real = whole or (name == "bb_k" and isinstance(value, float))
        if not real or not low <= value <= high:
            kind_of = "number" if name == "bb_k" else "whole number"
            raise InvalidInput(f"{title} must be a {kind_of} from {low:g} to {high:g}")
        numbers[name] = float(value) if name == "bb_k" else value
    daily = data.get("vwap_daily", False)
    if not isinstance(daily, bool):
        raise InvalidInput("the daily VWAP setting must be true or false")
    y = _texts(data.get("y", []), "the y columns", 100)
    return ChartSpec(str(kind), x, y, overlays, **numbers, vwap_daily=daily, ohlc=ohlc)


def chart_spec(frame: pl.DataFrame | None) -> dict[str, Any] | None:
    """The drawn chart as a dict, when it is drawn from `frame` (None otherwise)."""
    spec: ChartSpec | None = st.session_state.get(SPEC_KEY)
    if spec is None or frame is None or check(frame, spec):
        return None
    return spec_to_dict(spec)


def apply_spec(data: object) -> ChartSpec:
    """Restore a saved chart (InvalidInput if it is not one): drawn once a result fits it,
    and put into the form's widgets before they are drawn."""
    spec = spec_from_dict(data)
    st.session_state[SPEC_KEY] = st.session_state[PENDING_KEY] = spec
    return spec


def _set_widgets(frame: pl.DataFrame, kinds: list[str], xs: list[str]) -> None:
    """Set the form's widgets from a restored spec, or when the result's columns changed:
    to the drawn chart if it fits the result, else to defaults for it."""
    pending: ChartSpec | None = st.session_state.pop(PENDING_KEY, None)
    columns = [f"{c}:{t}" for c, t in frame.schema.items()]
    missing = any(k not in st.session_state for k in KEYS.values())
    if pending is None and not missing and st.session_state.get(COLUMNS_KEY) == columns:
        return
    st.session_state[COLUMNS_KEY] = columns
    spec = pending or st.session_state.get(SPEC_KEY)
    if spec is None or check(frame, spec) or spec.kind not in kinds:
        ohlc, numbers = ohlc_columns(frame), numeric_columns(frame)
        y = (ohlc or {}).get("close") or next((c for c in numbers if c != xs[0]), numbers[0])
        spec = ChartSpec("Candlesticks" if ohlc else "Line", xs[0], (y,))
    numbers = numeric_columns(frame)
    values = spec_to_dict(spec) | {
        "x": spec.x if spec.x in xs else xs[0],
        "y": [c for c in spec.y if c in numbers],
        "overlays": [o for o in spec.overlays if o != "VWAP" or volume_column(frame)],
    }
    for name, key in KEYS.items():
        st.session_state[key] = values[name]


def _form(frame: pl.DataFrame) -> ChartSpec | None:
    """The chart form; the chosen spec once "Draw chart" is pressed."""
    ohlc, numbers, volume = ohlc_columns(frame), numeric_columns(frame), volume_column(frame)
    kinds = [k for k in KINDS if k != "Candlesticks" or ohlc]
    xs = x_choices(frame)
    _set_widgets(frame, kinds, xs)
    with st.form("sql_chart_form"):
        kind_col, x_col, y_col = st.columns([1, 1, 2])
        kind_col.selectbox("Chart", kinds, key=KEYS["kind"])
        x_col.selectbox(
            "X axis", xs, key=KEYS["x"],
            help="Not used by histograms. Rows are sorted by a time or number column.",
        )  # fmt: skip
        y_col.multiselect(
            "Y axis", numbers, key=KEYS["y"], help="Candlesticks use open/high/low/close."
        )
        st.multiselect(
            "Overlays (line, area and candlestick charts)",
            [o for o in OVERLAYS if o != "VWAP" or volume],
            key=KEYS["overlays"],
            help="On the close for candlesticks, else on the first Y column. RSI and MACD get "
            "panels of their own; VWAP needs a volume column.",
        )
        places = st.columns(5)
        for name, (title, low, high) in NUMBERS.items():
            step = 0.5 if name == "bb_k" else 1
            places[COLUMN[name]].number_input(title, low, high, step=step, key=KEYS[name])
        places[4].checkbox("Restart VWAP each day (UTC)", key=KEYS["vwap_daily"])
        if not st.form_submit_button("Draw chart"):
            return None
    chosen = {name: st.session_state[key] for name, key in KEYS.items()}
    chosen |= {name: int(chosen[name]) for name in NUMBERS if name != "bb_k"}
    chosen |= {"y": tuple(chosen["y"]), "overlays": tuple(chosen["overlays"])}
    chosen["bb_k"] = float(chosen["bb_k"])
    if chosen["kind"] == "Candlesticks" and ohlc:
        chosen["ohlc"] = tuple(ohlc[part] for part in OHLC)
    return ChartSpec(**chosen)


def chart_builder(frame: pl.DataFrame) -> None:
    """The chart form under a query result and, once drawn, its figure."""
    st.subheader("Chart")
    if frame.height == 0 or not numeric_columns(frame):
        st.info(
            "A chart needs at least one row and one numeric column; this result has "
            f"{'no rows' if frame.height == 0 else 'no numeric columns'}. Select numbers, "
            "for example the `ts` and `close` columns of `bars` for one symbol."
        )
        return
    chosen = _form(frame)
    if chosen is not None:
        st.session_state[SPEC_KEY] = chosen
    spec: ChartSpec | None = st.session_state.get(SPEC_KEY)
    if spec is None or (chosen is None and check(frame, spec)):
        return  # nothing drawn yet, or a new result without the chosen columns
    try:
        fig, notes = build_figure(frame, spec)
    except InvalidInput as exc:
        st.info(md_escape(str(exc)))
        return
    st.plotly_chart(fig, width="stretch", key="sql_chart")
    for note in notes:
        st.caption(md_escape(note))
