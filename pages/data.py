"""Data: what is stored, history jobs with progress, and the live subscriptions."""

from datetime import UTC, datetime, timedelta

import polars as pl
import streamlit as st

from core.ingest.ccxt_ws import KINDS as STREAM_KINDS
from core.ingest.jobs import estimate_requests
from core.ingest.meter import public_meter
from core.ingest.service import Job
from core.ingest.venues import VENUES, Venue, history_venues
from pages._shared import market_view
from pages._shared.accounts import get_auth
from pages._shared.auth import require_role
from pages._shared.engine import get_engine
from pages._shared.format import integer, md_escape, plural, show_table, wait
from pages._shared.jobs import poll_while_running
from pages._shared.live import get_ingest, stream_status_table

user = require_role("analyst")
service = get_ingest()
JOB_KEY = "data_page_job"

st.title("Data")

market_view.data_coverage(get_engine())


def ip_use(v: Venue) -> str:
    """This server's requests in the venue's current window (public venues only)."""
    if v.quota is None or v.quota.per != "ip":
        return "—"
    used, left_s = public_meter(v).used()
    return f"{used:,} of {v.quota.limit:,} (resets in {wait(left_s)})"


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
            "used_now": ip_use(v),
            "symbols": f"{v.symbol_format}, e.g. {v.example_symbol}",
        }
        for v in VENUES.values()
        if not v.simulated or v.name in running
    ]
    show_table(
        pl.DataFrame(rows),
        labels={"live": "Live streams", "used_now": "Used now (this server)"},
        help={"used_now": "Requests this server sent in the venue's current window."},
    )


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


def estimate_line(record: Venue, symbols: list[str], timeframe: str, since: datetime) -> str:
    """How many requests the job will send, and whether the quota's window covers them."""
    need = estimate_requests(record, len(symbols), timeframe, since)
    if need is None:
        return ""
    text = f"About {plural(need, 'request')} to {record.title}"
    if record.quota is None:
        return text + "."
    if record.quota.per == "ip":
        return text + f"; the venue allows {record.quota.describe()}."
    quota = get_auth().get_api_keys(user.user_id)["provider_keys"].get(record.name)
    if quota is None:
        return text + "; save your key on the API keys page first."
    left = int(quota["queries_remaining"])
    if need <= left:
        limit, window = integer(quota["limit"]), quota["window"]
        return text + f"; your key has {integer(left)} of {limit} left this {window}."
    return (
        text + f"; your key has only {integer(left)} left this {quota['window']}: the job will "
        "pause when they run out and carry on when the window resets."
    )


venue_col, tf_col, since_col = st.columns(3)
# simulated venues first: the defaults must work on a server with no network
running = set(service.venues())
job_venues = [v.name for v in history_venues() if not v.simulated or v.name in running]
venue = venue_col.selectbox("Venue", job_venues, format_func=venue_label, key="job_venue")
record = VENUES[venue]
timeframe = tf_col.selectbox("Timeframe", list(record.timeframes), key="job_tf")
since = since_col.date_input("Since", datetime.now(UTC).date() - timedelta(days=1), key="job_since")
symbols_text = st.text_input(
    f"Symbols (comma separated; {record.symbol_format}, e.g. {record.example_symbol})",
    "BTC/USDT",
    key="job_symbols",
)
symbols = [s.strip() for s in symbols_text.split(",") if s.strip()]
since_dt = datetime(since.year, since.month, since.day, tzinfo=UTC)
estimate = estimate_line(record, symbols, timeframe, since_dt) if symbols else ""
if estimate:
    st.caption(md_escape(estimate))
if st.button("Start job", key="job_start"):
    try:
        job = service.start_job(venue, symbols, timeframe, since_dt, user_id=user.user_id)
    except ValueError as exc:
        st.error(md_escape(str(exc)))
    else:
        st.session_state[JOB_KEY] = job.id


def key_use(job: Job) -> None:
    """The owner's key after this job's requests, with the 80% / 95% alert when reached."""
    record = VENUES.get(job.venue)
    if job.owner is None or record is None or record.quota is None or record.quota.per != "key":
        return
    q = get_auth().quota_status(job.owner, record.name)  # in memory: this redraws every second
    used = int(q["queries_done"]) / int(q["limit"])
    line = (
        f"Your {record.title} key: {integer(q['queries_done'])} of {integer(q['limit'])} "
        f"requests used this {q['window']} (resets {q['resets_at']:%H:%M} UTC)."
    )
    if used >= 0.95:
        st.error(f"95% alert. {line}", icon=":material/error:")
    elif used >= 0.80:
        st.warning(f"80% alert. {line}", icon=":material/warning:")
    else:
        st.caption(line)


def show_job(job: Job) -> None:
    status = md_escape(job.message or job.state)
    st.progress(job.progress, text=f"Job {job.id} ({md_escape(job.venue)}): {status}")
    key_use(job)
    sent = f"{plural(job.requests, 'request')} sent to the provider" if job.requests else ""
    if job.state == "paused" and job.resumes_at is not None:
        left = wait((job.resumes_at - datetime.now(UTC)).total_seconds())
        st.info(
            f"Job {job.id} is paused: the quota is used up. It carries on by itself at "
            f"{job.resumes_at:%H:%M:%S} UTC (in {left}).",
            icon=":material/pause_circle:",
        )
    if job.state == "done":
        already = job.rows - job.new_rows
        note = f" ({integer(already)} already stored)" if already else ""
        tail = f"; {sent}" if sent else ""
        st.success(f"Job {job.id} done: {plural(job.rows, 'row')} written{note}{tail}.")
    elif job.state == "failed":
        st.error(f"Job {job.id} failed: {md_escape(job.error)}")
        if job.detail:
            with st.expander("Details"):
                st.code(job.detail, language=None, wrap_lines=True)
    elif sent:
        st.caption(sent)


def job_active(job: Job) -> bool:
    return job.state in ("running", "paused")


job_id: int | None = st.session_state.get(JOB_KEY)
if job_id is not None and job_active(service.job(job_id)):
    if st.button("Cancel job", key="job_cancel"):
        service.cancel_job(job_id, user.user_id)
    running_id = job_id
    poll_while_running(
        lambda: not job_active(service.job(running_id)),
        lambda: show_job(service.job(running_id)),
        1.0,
    )
elif job_id is not None:
    show_job(service.job(job_id))

st.subheader("Live subscriptions")
st.caption(
    "Keyed providers stream with the key you saved on the API keys page: Alpaca sends trades, "
    "quotes and 1-minute bars (stocks such as AAPL, crypto such as BTC/USD), Finnhub sends "
    "trades (AAPL, BINANCE:BTCUSDT). A book stream keeps the venue's L2 order book "
    "current. Live Market shows every stream."
)
with st.form("subscribe"):
    v_col, s_col, k_col, t_col = st.columns(4)
    sub_venues = sorted(
        (v for v in service.venues() if v in VENUES and VENUES[v].live),
        key=lambda v: not service.is_simulated(v),
    )
    sub_venue = v_col.selectbox("Venue", sub_venues, format_func=venue_label, key="sub_venue")
    sub_symbol = s_col.text_input("Symbol", "SOL/USDT", key="sub_symbol")
    sub_kind = k_col.selectbox("Stream", STREAM_KINDS, key="sub_kind")
    sub_tf = t_col.selectbox("Timeframe", ["1m", "5m", "15m", "1h"], key="sub_tf")
    add = st.form_submit_button("Subscribe")
if add:
    try:
        key = service.subscribe(
            sub_venue, sub_symbol.strip(), sub_kind, sub_tf, user_id=user.user_id
        )
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
