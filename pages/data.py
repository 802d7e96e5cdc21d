"""Data: what is stored, history jobs with progress, and the live subscriptions."""

from datetime import UTC, datetime, timedelta

import polars as pl
import streamlit as st

from core.ingest.service import Job
from core.ingest.venues import VENUES, history_venues
from pages._shared import market_view
from pages._shared.auth import require_role
from pages._shared.engine import get_engine
from pages._shared.format import integer, md_escape, plural, show_table
from pages._shared.jobs import poll_while_running
from pages._shared.live import get_ingest, stream_status_table

require_role("analyst")
service = get_ingest()
JOB_KEY = "data_page_job"

st.title("Data")

market_view.data_coverage(get_engine())


def providers_table() -> None:
    """Every venue and provider the portal knows, from the registry, with what it takes."""
    running = set(service.venues())
    rows = [
        {
            "provider": v.title,
            "kind": v.kind,
            "history": "yes" if v.history else "not yet",
            "live": ", ".join(v.live) if v.live and (v.name in running) else "—",
            "key": "needs your key" if v.key_required else "public",
            "quota": v.quota.describe() if v.quota else "no published limit",
            "symbols": f"{v.symbol_format}, e.g. {v.example_symbol}",
        }
        for v in VENUES.values()
        if not v.simulated or v.name in running
    ]
    show_table(pl.DataFrame(rows), labels={"live": "Live streams"})


st.subheader("Providers")
st.caption(
    "Every venue and data provider the portal knows. Keyed providers use the key you save on "
    "the API keys page; public venues share this server's address and its published limits."
)
providers_table()

st.subheader("Fetch history")
st.caption(
    "Pages through the venue's REST API (or Yahoo Finance) into the store. "
    "The demo venue is SIMULATED and answers on this server, so it works offline; "
    "real venues need network access."
)


def venue_label(name: str) -> str:
    return VENUES[name].describe() if name in VENUES else name


with st.form("backfill"):
    venue_col, tf_col, since_col = st.columns(3)
    # simulated venues first: the defaults must work on a server with no network
    running = set(service.venues())
    job_venues = [v.name for v in history_venues() if not v.simulated or v.name in running]
    venue = venue_col.selectbox("Venue", job_venues, format_func=venue_label, key="job_venue")
    timeframe = tf_col.selectbox("Timeframe", ["1m", "5m", "15m", "1h", "1d"], key="job_tf")
    since = since_col.date_input(
        "Since", datetime.now(UTC).date() - timedelta(days=1), key="job_since"
    )
    symbols_text = st.text_input("Symbols (comma separated)", "BTC/USDT", key="job_symbols")
    start = st.form_submit_button("Start job")
if start:
    symbols = [s.strip() for s in symbols_text.split(",") if s.strip()]
    since_dt = datetime(since.year, since.month, since.day, tzinfo=UTC)
    try:
        job = service.start_job(venue, symbols, timeframe, since_dt)
    except ValueError as exc:
        st.error(md_escape(str(exc)))
    else:
        st.session_state[JOB_KEY] = job.id


def show_job(job: Job) -> None:
    status = md_escape(job.message or job.state)
    st.progress(job.progress, text=f"Job {job.id} ({md_escape(job.venue)}): {status}")
    if job.state == "done":
        already = job.rows - job.new_rows
        note = f" ({integer(already)} already stored)" if already else ""
        st.success(f"Job {job.id} done: {plural(job.rows, 'row')} written{note}.")
    elif job.state == "failed":
        st.error(f"Job {job.id} failed: {md_escape(job.error)}")
        if job.detail:
            with st.expander("Details"):
                st.code(job.detail, language=None, wrap_lines=True)


job_id = st.session_state.get(JOB_KEY)
if job_id is not None and service.job(job_id).state == "running":
    poll_while_running(
        lambda: service.job(job_id).state != "running", lambda: show_job(service.job(job_id)), 1.0
    )
elif job_id is not None:
    show_job(service.job(job_id))

st.subheader("Live subscriptions")
with st.form("subscribe"):
    v_col, s_col, k_col, t_col = st.columns(4)
    sub_venues = sorted(service.venues(), key=lambda v: not service.is_simulated(v))
    sub_venue = v_col.selectbox("Venue", sub_venues, format_func=venue_label, key="sub_venue")
    sub_symbol = s_col.text_input("Symbol", "SOL/USDT", key="sub_symbol")
    sub_kind = k_col.selectbox("Stream", ["ohlcv", "trades", "quotes"], key="sub_kind")
    sub_tf = t_col.selectbox("Timeframe", ["1m", "5m", "15m", "1h"], key="sub_tf")
    add = st.form_submit_button("Subscribe")
if add:
    try:
        key = service.subscribe(sub_venue, sub_symbol.strip(), sub_kind, sub_tf)
    except ValueError as exc:
        st.error(md_escape(str(exc)))
    else:
        st.success(f"Subscribed to {md_escape(key.name)}.")

keys = service.subscriptions()
if keys:
    names = {k.name: k for k in keys}
    with st.form("unsubscribe"):
        drop = st.selectbox("Stream", list(names), key="unsub_stream")
        remove = st.form_submit_button("Unsubscribe")
    if remove:
        service.unsubscribe(names[drop])
        st.success(f"Unsubscribed from {md_escape(drop)}.")

stream_status_table(service)
