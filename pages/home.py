"""Home: what this user can do here, the markets on hand and how fresh they are, their quota
alerts, and what is running now. Engine diagnostics are on the admin System page."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import streamlit as st

from core.ingest.service import IngestService, running
from pages._shared.accounts import get_auth
from pages._shared.auth import ASK_FOR_ROLE, require_role
from pages._shared.engine import get_engine
from pages._shared.format import md_escape, pct, plural
from pages._shared.navigation import PAGES, PageSpec, role_allows


def age(then: datetime | None, now: datetime) -> str:
    """How long ago, in the largest unit that fits: "40 s", "5 min", "3 h", "12 days"."""
    if then is None:
        return "—"
    s = max(0.0, (now - then).total_seconds())
    for unit, size in (("year", 365.25 * 86400), ("day", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if s >= size:
            n = int(s // size)
            return plural(n, unit) if unit in {"year", "day"} else f"{n} {unit}"
    return f"{int(s)} s"


def bar_time(ts: datetime | None, timeframe: str | None) -> str:
    if ts is None:
        return "—"
    return f"{ts:%Y-%m-%d}" if timeframe == "1d" else f"{ts:%Y-%m-%d %H:%M} UTC"


def source_of(venue: str) -> str:
    if venue == "bundled":
        return "real history (bundled)"
    if venue == "demo":
        return "SIMULATED demo venue"
    return f"fetched from {venue}"


def markets_frame(cov: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """One row per stored bar series: what it is, its last bar, how old that is, its source."""
    bars = cov.filter(pl.col("kind") == "bars").sort("venue", "symbol", "timeframe")
    sources = bars["source"].to_list() if "source" in bars.columns else [None] * bars.height
    rows = []
    for r, source in zip(bars.iter_rows(named=True), sources, strict=True):
        last = r["last"]
        rows.append(
            {
                "Symbol": r["symbol"],
                "Venue": r["venue"],
                "Timeframe": r["timeframe"],
                "From": bar_time(r["first"], "1d"),
                "Last bar": bar_time(last, r["timeframe"]),
                "Age": age(last, now),
                "Source": source or source_of(r["venue"]),
            }
        )
    columns = ["Symbol", "Venue", "Timeframe", "From", "Last bar", "Age", "Source"]
    return pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String))


def page_list(specs: list[PageSpec]) -> None:
    for spec in specs:
        st.page_link(spec.path, label=spec.title, icon=spec.icon, help=spec.blurb)
        st.caption(spec.blurb)


def activity(service: IngestService) -> bool:
    """Live streams (by market) and running history jobs; False when there are none."""
    shown = False
    by_market: dict[tuple[str, str], list[bool]] = {}
    for s in service.status():
        by_market.setdefault((s.key.venue, s.key.symbol), []).append(s.connected)
    for (venue, symbol), connected in by_market.items():
        label = " (SIMULATED)" if service.is_simulated(venue) else ""
        n, up = len(connected), sum(connected)
        state = "connected" if up == n else f"connected: {up}, the others starting"
        st.markdown(
            f"{md_escape(symbol)} on {md_escape(venue)}{label}: {plural(n, 'stream')} {state}"
        )
        shown = True
    for job in service.jobs():
        if job.state != "running":
            continue
        st.progress(
            min(1.0, max(0.0, job.progress)),
            text=f"History job {job.id}: {md_escape(', '.join(job.symbols))} from "
            f"{md_escape(job.venue)} ({job.timeframe}), {pct(job.progress, 0)}",
        )
        shown = True
    return shown


user = require_role("viewer")
now = datetime.now(UTC)

st.title("HFThot")
st.caption(
    f"Welcome, {md_escape(user.username)}. You are signed in as {user.role}. This portal keeps "
    "market data and runs research on it: regimes, agent models, mean reversion."
)

alerts = get_auth().quota_alerts(user.user_id)
for alert in alerts:
    text = md_escape(str(alert["message"]))
    if alert["level"] >= 0.95:
        st.error(f"Quota: {text}", icon=":material/error:")
    else:
        st.warning(f"Quota: {text}", icon=":material/warning:")
if alerts:
    st.page_link("pages/api_keys.py", label="API keys & quotas", icon=":material/key:")

st.subheader("What you can do")
mine = [p for p in PAGES if p.min_role and p.path != "pages/home.py"]
mine = [p for p in mine if role_allows(user.role, p.min_role)]
sections = list(dict.fromkeys(p.section for p in mine))
for column, section in zip(st.columns(len(sections)), sections, strict=True):
    with column:
        st.markdown(f"**{section}**")
        page_list([p for p in mine if p.section == section])

locked = [p for p in PAGES if p.min_role == "analyst" and not role_allows(user.role, "analyst")]
if locked:
    names = ", ".join(p.title for p in locked)
    st.info(
        f"The analytics pages need the analyst role: {names}. "
        "They study the markets below: regimes, agent-model calibration, mean-reversion "
        f"backtests and SQL over every stored bar. {ASK_FOR_ROLE}",
        icon=":material/lock:",
    )

st.subheader("Markets")
markets = markets_frame(get_engine().coverage(), now)
if markets.height:
    st.dataframe(markets, hide_index=True, width="stretch")
    st.caption(
        "Age is the time since the last stored bar. Real history is bundled with HFThot; "
        "SIMULATED series come from the demo venue on this server, not from a real market."
    )
else:
    st.info("No market data is stored yet.")

st.subheader("Running now")
services = running()
if not (services and activity(services[0])):
    st.caption("No live streams or history jobs are running.")
