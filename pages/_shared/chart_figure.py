"""The figure of a SQL Explorer chart: `ChartSpec` (kind, columns, overlays and their numbers)
and `build_figure(frame, spec)`. Indicators come from `core.analytics.indicators` (checked
against TA-Lib in the tests). The form and the saved-query form of a spec live in
`pages/_shared/sql_chart.py`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from core.analytics import indicators
from core.errors import InvalidInput
from pages._shared.format import DOWN, PALETTE, UP, header, integer

MAX_POINTS = 200_000
"""At most this many rows are plotted (the first ones after sorting by x)."""
KINDS = ("Line", "Area", "Candlesticks", "Bar", "Scatter", "Histogram")
OVERLAYS = ("SMA", "EMA", "Bollinger", "RSI", "MACD", "VWAP")
TREND = frozenset({"Line", "Area", "Candlesticks"})  # the kinds that take overlays
OHLC = ("open", "high", "low", "close")


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
