"""Live market widgets: the ingestion singleton, the candlestick figure, stream tables."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go
import polars as pl
import streamlit as st
from plotly.subplots import make_subplots

from core.ingest.ccxt_ws import StreamStatus
from core.ingest.service import IngestService, running
from pages._shared.format import DOWN, UP
from pages._shared.services import get_services

SIMULATED_NOTE = (
    "SIMULATED: the demo venue is a loopback server speaking Binance's stream format, fed by a "
    "seeded price model (GBM with jumps). These are not real market prices."
)


def _release(service: IngestService) -> None:
    service.stop()


@st.cache_resource(show_spinner="Starting market data…", on_release=_release)
def get_ingest() -> IngestService:
    """The process-wide ingestion service (streams, demo venue, jobs); stopped on release."""
    return get_services().engine.ingest


def stream_status_if_running() -> None:
    """Stream status without starting the service (Home stays cheap and side-effect free)."""
    services = running()
    if not services:
        st.caption(
            "No live streams are running. Add a subscription on the Data page, or set "
            "HFT_DEMO_VENUE=true to stream the simulated demo venue (BTC/USDT, ETH/USDT)."
        )
        return
    stream_status_table(services[0])


def candles_figure(bars: pl.DataFrame, title: str) -> go.Figure:
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.03
    )
    ts = bars["ts"].to_list()
    fig.add_trace(
        go.Candlestick(
            x=ts,
            open=bars["open"].to_list(),
            high=bars["high"].to_list(),
            low=bars["low"].to_list(),
            close=bars["close"].to_list(),
            name="price",
            increasing={"line": {"color": UP}, "fillcolor": UP},
            decreasing={"line": {"color": DOWN}, "fillcolor": DOWN},
        ),
        row=1,
        col=1,
    )
    # a volume bar takes its candle's colour: up (close >= open) or down
    up = (bars["close"] >= bars["open"]).to_list()
    fig.add_trace(
        go.Bar(
            x=ts,
            y=bars["volume"].to_list(),
            name="volume",
            marker_color=[UP if u else DOWN for u in up],
        ),
        row=2,
        col=1,
    )
    fig.update_layout(
        title=html.escape(title),  # Plotly renders a subset of HTML in titles
        height=560,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        showlegend=False,
        xaxis_rangeslider_visible=False,
        uirevision="keep",  # keeps zoom and pan across refreshes
        transition={"duration": 0},
    )
    fig.update_yaxes(title_text="price", row=1, col=1)
    fig.update_yaxes(title_text="volume", row=2, col=1)
    return fig


def status_rows(statuses: list[StreamStatus]) -> pl.DataFrame:
    rows: list[dict[str, Any]] = [
        {
            "stream": s.key.name,
            "state": s.state,
            "connected": s.connected,
            "lag (s)": None if s.lag_s is None else round(s.lag_s, 2),
            "msg/s": round(s.rate_per_s, 1),
            "messages": s.messages,
            "reconnects": s.reconnects,
            "watchdog": s.watchdog_trips,
            "malformed": s.malformed,
            "backfilled": s.backfilled,
            "simulated": s.simulated,
            "last error": s.last_error,
        }
        for s in statuses
    ]
    return (
        pl.DataFrame(rows) if rows else pl.DataFrame({"stream": []}, schema={"stream": pl.String})
    )


def stream_status_table(service: IngestService) -> None:
    statuses = service.status()
    if not statuses:
        st.info("No live streams. Add a subscription on the Data page.")
        return
    live = sum(s.connected for s in statuses)
    st.caption(f"{live} of {len(statuses)} streams connected")
    st.dataframe(status_rows(statuses), hide_index=True, width="stretch")


def age_text(when: datetime | None) -> str:
    if when is None:
        return "—"
    return f"{(datetime.now(UTC) - when).total_seconds():.1f} s ago"
