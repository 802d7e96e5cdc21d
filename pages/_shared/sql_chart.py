"""Charts from a SQL Explorer result: a form (kind, columns, overlays) and the figure.

`chart_builder(frame)` draws the form under a result and, once "Draw chart" is pressed, the
figure; the choice is kept in session state, so the chart stays (and follows a new result with
the same columns) until the user changes it. `build_figure(frame, spec)` is the figure alone.
Indicators come from `core.analytics.indicators` (checked against TA-Lib in the tests).

A saved query keeps its chart as a JSON-safe dict: `chart_spec(frame)` is the drawn chart's
(None when nothing drawn fits `frame`), `apply_spec(data)` restores one: the chart is drawn
and the form's widgets are set from it (through their session-state keys, before they are
drawn on the next run).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl
import streamlit as st
from plotly.subplots import make_subplots

from core.analytics import indicators
from core.errors import InvalidInput
from pages._shared.format import DOWN, PALETTE, UP, header, integer, md_escape

MAX_POINTS = 200_000
"""At most this many rows are plotted (the first ones after sorting by x)."""
KINDS = ("Line", "Area", "Candlesticks", "Bar", "Scatter", "Histogram")
OVERLAYS = ("SMA", "EMA", "Bollinger", "RSI", "MACD", "VWAP")
TREND = frozenset({"Line", "Area", "Candlesticks"})  # the kinds that take overlays
OHLC = ("open", "high", "low", "close")
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


@dataclass(frozen=True, slots=True)
class ChartSpec:
    kind: str
    x: str
    y: tuple[str, ...] = ()
    overlays: tuple[str, ...] = ()
    sma_n: int = 20
    ema_n: int = 20
    bb_n: int = 20
    bb_k: float = 2.0
    rsi_n: int = 14
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    vwap_daily: bool = False
    ohlc: tuple[str, ...] = ()
    """The open, high, low and close columns of a candlestick chart (empty: found by name)."""


DEFAULTS = ChartSpec("Line", "")
"""The default numbers (a saved spec may leave them out)."""


def numeric_columns(frame: pl.DataFrame) -> list[str]:
    return [c for c, t in frame.schema.items() if t.is_numeric()]


def x_choices(frame: pl.DataFrame) -> list[str]:
    """Columns that can be the x axis: time columns first, then numbers, then text."""
    temporal = [c for c, t in frame.schema.items() if t.is_temporal()]
    text = [c for c, t in frame.schema.items() if t in (pl.String, pl.Categorical, pl.Boolean)]
    return temporal + numeric_columns(frame) + text


def named(frame: pl.DataFrame, name: str) -> str | None:
    """The column called `name`, ignoring case (an exact match wins)."""
    if name in frame.columns:
        return name
    return next((c for c in frame.columns if c.lower() == name), None)


def ohlc_columns(frame: pl.DataFrame) -> dict[str, str] | None:
    """{"open": column, ...} when numeric open, high, low and close columns all exist."""
    found = {part: named(frame, part) for part in OHLC}
    numbers = set(numeric_columns(frame))
    if all(c is not None and c in numbers for c in found.values()):
        return {part: str(c) for part, c in found.items()}
    return None


def candle_columns(frame: pl.DataFrame, spec: ChartSpec) -> dict[str, str] | None:
    """The open/high/low/close columns a candlestick `spec` draws (None when missing)."""
    if not spec.ohlc:
        return ohlc_columns(frame)
    numbers = set(numeric_columns(frame))
    if len(spec.ohlc) != len(OHLC) or not set(spec.ohlc) <= numbers:
        return None
    return dict(zip(OHLC, spec.ohlc, strict=True))


def volume_column(frame: pl.DataFrame) -> str | None:
    column = named(frame, "volume")
    return column if column in numeric_columns(frame) else None


def label(column: str) -> str:
    """A column name as a Plotly label (Plotly renders a subset of HTML in names)."""
    return html.escape(header(column))


def values(frame: pl.DataFrame, column: str) -> np.ndarray:
    return frame[column].cast(pl.Float64).to_numpy()


def days(column: pl.Series) -> pl.Series | None:
    """The UTC day of each time stamp (None for columns that are not dates or times)."""
    if isinstance(column.dtype, pl.Datetime):
        if column.dtype.time_zone is not None:
            column = column.dt.convert_time_zone("UTC")
        return column.dt.date()
    return column if column.dtype == pl.Date else None


class _Figure:
    """A price panel and the lower panels (RSI, MACD) the overlays ask for."""

    def __init__(self, spec: ChartSpec) -> None:
        lower = [o for o in ("RSI", "MACD") if o in spec.overlays] if spec.kind in TREND else []
        self.rows: dict[str, int] = {name: i + 2 for i, name in enumerate(lower)}
        heights = [1.0] if not lower else [0.6] + [0.4 / len(lower)] * len(lower)
        self.fig = make_subplots(
            rows=1 + len(lower), cols=1, shared_xaxes=True, row_heights=heights,
            vertical_spacing=0.04,
        )  # fmt: skip
        self.colour = iter(PALETTE[1:] * 4)

    def add(self, trace: Any, panel: str = "main") -> None:
        self.fig.add_trace(trace, row=self.rows.get(panel, 1), col=1)

    def line(self, x: Any, y: np.ndarray, name: str, panel: str = "main", **kw: Any) -> None:
        line = {"color": next(self.colour), "width": 1.3} | kw.pop("line", {})
        self.add(go.Scatter(x=x, y=y, mode="lines", name=name, line=line, **kw), panel)


def _main_traces(chart: _Figure, frame: pl.DataFrame, spec: ChartSpec, x: Any) -> None:
    if spec.kind == "Candlesticks":
        cols = candle_columns(frame, spec)
        assert cols is not None  # checked by the caller
        chart.add(
            go.Candlestick(
                x=x,
                open=values(frame, cols["open"]),
                high=values(frame, cols["high"]),
                low=values(frame, cols["low"]),
                close=values(frame, cols["close"]),
                name="price",
                increasing={"line": {"color": UP}, "fillcolor": UP},
                decreasing={"line": {"color": DOWN}, "fillcolor": DOWN},
            )
        )
        return
    for i, column in enumerate(spec.y):
        colour = PALETTE[i % len(PALETTE)]
        y, name = values(frame, column), label(column)
        if spec.kind == "Histogram":
            chart.add(go.Histogram(x=y, name=name, marker_color=colour, opacity=0.75))
        elif spec.kind == "Bar":
            chart.add(go.Bar(x=x, y=y, name=name, marker_color=colour))
        elif spec.kind == "Scatter":
            marker = {"color": colour, "size": 5}
            chart.add(go.Scatter(x=x, y=y, mode="markers", name=name, marker=marker))
        else:
            fill = "tozeroy" if spec.kind == "Area" else None
            line = {"color": colour, "width": 1.5}
            chart.add(go.Scatter(x=x, y=y, mode="lines", name=name, line=line, fill=fill))


def _overlays(
    chart: _Figure, frame: pl.DataFrame, spec: ChartSpec, x: Any, notes: list[str]
) -> None:
    cols = candle_columns(frame, spec) if spec.kind == "Candlesticks" else None
    source = cols["close"] if cols else spec.y[0]
    price = values(frame, source)
    missing = int((~np.isfinite(price)).sum())
    if missing:
        notes.append(f"No overlays: {source} has {integer(missing)} missing values.")
        return
    for name in spec.overlays:
        try:
            drawn = _overlay(chart, frame, spec, name, x, price, cols)
        except InvalidInput as exc:
            notes.append(f"{name} not drawn: {exc}")
            continue
        if not drawn:
            notes.append(f"{name} needs more rows than the {integer(frame.height)} plotted.")
    if spec.overlays and spec.overlays != ("VWAP",):
        notes.append(f"Indicators are computed on {header(source)}.")


def _overlay(
    chart: _Figure,
    frame: pl.DataFrame,
    spec: ChartSpec,
    name: str,
    x: Any,
    price: np.ndarray,
    cols: dict[str, str] | None,
) -> bool:
    """Draws one overlay; False when the series is too short for any value."""
    if name == "SMA":
        out = indicators.sma(price, spec.sma_n)
        chart.line(x, out, f"SMA {spec.sma_n}")
    elif name == "EMA":
        out = indicators.ema(price, spec.ema_n)
        chart.line(x, out, f"EMA {spec.ema_n}")
    elif name == "Bollinger":
        upper, out, lower = indicators.bollinger(price, spec.bb_n, spec.bb_k)
        tag = f"({spec.bb_n}, {spec.bb_k:g})"
        band = {"color": "#9b9b9b", "width": 1, "dash": "dot"}
        chart.line(x, upper, f"Bollinger upper {tag}", line=band)
        chart.line(x, out, f"Bollinger mid {tag}", line={"color": "#9b9b9b", "width": 1})
        chart.line(
            x, lower, f"Bollinger lower {tag}", line=band, fill="tonexty",
            fillcolor="rgba(155,155,155,0.08)",
        )  # fmt: skip
    elif name == "RSI":
        out = indicators.rsi(price, spec.rsi_n)
        chart.line(x, out, f"RSI {spec.rsi_n}", "RSI")
        for level in (30, 70):
            chart.fig.add_hline(y=level, line_dash="dot", row=chart.rows["RSI"], col=1)
        chart.fig.update_yaxes(title_text="RSI", range=[0, 100], row=chart.rows["RSI"], col=1)
    elif name == "MACD":
        out, signal, hist = indicators.macd(price, spec.macd_fast, spec.macd_slow, spec.macd_signal)
        tag = f"({spec.macd_fast}, {spec.macd_slow}, {spec.macd_signal})"
        colours = np.where(np.nan_to_num(hist) >= 0, UP, DOWN)
        chart.add(go.Bar(x=x, y=hist, name="MACD histogram", marker_color=colours), "MACD")
        chart.line(x, out, f"MACD {tag}", "MACD")
        chart.line(x, signal, "MACD signal", "MACD")
        chart.fig.update_yaxes(title_text="MACD", row=chart.rows["MACD"], col=1)
    else:  # VWAP
        volume = volume_column(frame)
        if volume is None:
            raise InvalidInput("the result has no volume column")
        if cols:  # bars: the typical price of each bar
            price = (values(frame, cols["high"]) + values(frame, cols["low"]) + price) / 3
        session = days(frame[spec.x]) if spec.vwap_daily else None
        out = indicators.vwap(price, values(frame, volume), session=session)
        chart.line(x, out, "VWAP (daily)" if session is not None else "VWAP")
    return not bool(np.isnan(out).all())


def check(frame: pl.DataFrame, spec: ChartSpec) -> str | None:
    """Why `spec` cannot be drawn from `frame` (None when it can)."""
    if spec.kind not in KINDS:
        return f"Unknown chart kind {spec.kind}."
    if spec.kind != "Histogram" and spec.x not in x_choices(frame):
        return "Choose a column for the x axis."
    if spec.kind == "Candlesticks":
        if candle_columns(frame, spec):
            return None
        names = ", ".join(spec.ohlc or OHLC)
        return f"Candlesticks need the numeric columns {names}."
    numbers = set(numeric_columns(frame))
    if not spec.y or not set(spec.y) <= numbers:
        return f"{spec.kind} charts need at least one numeric column on the y axis."
    return None


def build_figure(frame: pl.DataFrame, spec: ChartSpec) -> tuple[go.Figure, list[str]]:
    """The figure for `spec` and notes for the user (row cap, overlays not drawn)."""
    problem = check(frame, spec)
    if problem:
        raise InvalidInput(problem)
    notes: list[str] = []
    if spec.kind != "Histogram":
        kept = frame.filter(pl.col(spec.x).is_not_null())
        if kept.height < frame.height:
            notes.append(f"{integer(frame.height - kept.height)} rows without {spec.x} left out.")
        ordered = frame.schema[spec.x].is_temporal() or frame.schema[spec.x].is_numeric()
        frame = kept.sort(spec.x, maintain_order=True) if ordered else kept  # text: as queried
    if frame.height > MAX_POINTS:
        notes.append(
            f"Showing the first {integer(MAX_POINTS)} of {integer(frame.height)} rows"
            + ("." if spec.kind == "Histogram" else f", sorted by {spec.x}.")
        )
        frame = frame.head(MAX_POINTS)
    x = frame[spec.x].to_numpy() if spec.kind != "Histogram" else None
    chart = _Figure(spec)
    _main_traces(chart, frame, spec, x)
    if spec.kind in TREND and spec.overlays:
        _overlays(chart, frame, spec, x, notes)
    fig = chart.fig
    fig.update_layout(
        height=480 + 170 * (len(chart.rows)),
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis_rangeslider_visible=False,
        barmode="overlay" if spec.kind == "Histogram" else "group",
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
        uirevision="keep",
    )
    x_title = label(spec.y[0]) if spec.kind == "Histogram" and spec.y else label(spec.x)
    fig.update_xaxes(title_text=x_title, row=1 + len(chart.rows), col=1)
    y_title = "Count" if spec.kind == "Histogram" else None
    if spec.kind == "Candlesticks":
        y_title = "Price"
    elif y_title is None and len(spec.y) == 1:
        y_title = label(spec.y[0])
    fig.update_yaxes(title_text=y_title, row=1, col=1)
    return fig, notes


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
