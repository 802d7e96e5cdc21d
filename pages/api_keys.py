"""API keys & quotas: my provider keys (last 4 characters only), queries left, usage, billing."""

import datetime as dt

import plotly.express as px
import polars as pl
import streamlit as st

from core.ingest.venues import VENUES, Venue, keyed
from lakehouse import PROVIDER_NAMES, LakehouseError
from pages._shared.account_view import (
    flash,
    md_escape,
    quota_level,
    quota_table,
    quota_text,
    show_flash,
)
from pages._shared.accounts import get_auth, get_client
from pages._shared.auth import require_role
from pages._shared.format import integer, pct, table


def stored_key(record: Venue, key: str, secret: str) -> str:
    """What the ledger stores: the key, or KEY_ID:SECRET for a provider with a secret."""
    key, secret = key.strip(), secret.strip()
    needs_secret = record.key_required and "secret" in record.key_fields
    if needs_secret and not secret:
        raise ValueError(f"{record.title} needs both the key id and the secret")
    if secret and "secret" not in record.key_fields:
        raise ValueError(f"{record.title} has a key only; leave the secret empty")
    if ":" in key or ":" in secret:
        raise ValueError("a key or secret never contains ':'; check what was pasted")
    return f"{key}:{secret}" if secret else key


user = require_role("viewer")
auth, client = get_auth(), get_client()

st.title("API keys & quotas")
show_flash()
stored = auth.get_api_keys(user.user_id)
keys = stored["provider_keys"]

st.subheader("Alerts")
levels = {p: quota_level(q) for p, q in keys.items()}
for provider, q in keys.items():
    text = f"{PROVIDER_NAMES.get(provider, provider)}: {quota_text(q)}."
    if levels[provider] == 0.95:
        st.error(f"95% alert. {text}", icon=":material/error:")
    elif levels[provider] == 0.80:
        st.warning(f"80% alert. {text}", icon=":material/warning:")
for alert in auth.quota_alerts(user.user_id):
    name = PROVIDER_NAMES.get(alert["provider"], alert["provider"])
    st.caption(
        f"{alert['at']:%H:%M:%S} UTC: {name} reached {pct(alert['level'], 0)} of its quota "
        f"({integer(alert['queries_done'])} of {integer(alert['limit'])} queries per "
        f"{alert['window']})."
    )
if not any(levels.values()):
    st.caption("No quota is above 80% in its current window.")

st.subheader("Keys and queries left")
if keys:
    frame, config = quota_table(keys)
    st.dataframe(frame, column_config=config, hide_index=True)
    for provider, q in keys.items():
        used = q["queries_done"] / q["limit"]
        st.progress(
            min(1.0, used),
            text=f"{PROVIDER_NAMES.get(provider, provider)}: {integer(q['queries_remaining'])} "
            f"of {integer(q['limit'])} left this {q['window']} ({pct(used, 1)} used)",
        )
else:
    st.info("No provider keys stored yet. Add one below.")

st.subheader("Usage over the last 30 days")
usage = client.usage_history(user.user_id, days=30)
if usage.height:
    named = usage.with_columns(pl.col("provider").replace(PROVIDER_NAMES))
    fig = px.bar(
        named.to_pandas(),
        x="date",
        y="queries",
        color="provider",
        labels={"date": "Day (UTC)", "queries": "Queries", "provider": "Provider"},
    )
    st.plotly_chart(fig, width="stretch")
else:
    st.info("No queries recorded in the last 30 days.")

st.subheader("Billing summary")
today = dt.datetime.now(dt.UTC).date()
period = st.date_input(
    "Period (UTC days)", value=(today - dt.timedelta(days=29), today), max_value=today
)
if isinstance(period, tuple) and len(period) == 2:
    bill = client.billing_summary(user.user_id, period[0], period[1])
    st.metric("Queries in the period", integer(bill["total"]))
    if bill["totals"]:
        cols = st.columns(len(bill["totals"]))
        for col, (provider, n) in zip(cols, bill["totals"].items(), strict=True):
            col.metric(PROVIDER_NAMES.get(provider, provider), integer(n))
        daily = pl.DataFrame(
            bill["daily"], schema={"date": pl.Date, "provider": pl.String, "queries": pl.Int64}
        ).with_columns(pl.col("provider").replace(PROVIDER_NAMES))
        frame, config = table(daily, ints=["queries"], labels={"date": "Day (UTC)"})
        st.dataframe(frame, column_config=config, hide_index=True)
else:
    st.caption("Pick a start and an end day.")

st.subheader("Add or replace a key")
st.caption(
    "Alpaca keys come in two parts, the key id and the secret: fill in both. Finnhub and "
    "Alpha Vantage have a key only. Keys are encrypted at rest and used only for the jobs you "
    "start; every request they make is counted above."
)
with st.form("save_key", clear_on_submit=True):
    provider = st.selectbox(
        "Provider", [v.name for v in keyed()], format_func=lambda p: VENUES[p].title
    )
    key = st.text_input("API key (Alpaca: the key id)", type="password", max_chars=256)
    secret = st.text_input(
        "Secret (Alpaca; leave empty for a key-only provider)", type="password", max_chars=256
    )
    consent = st.checkbox(
        "Store this key encrypted in HFThot so the portal can query the provider for me",
        value=stored["consent"],
    )
    password = st.text_input(
        "Your password (asked again for key changes)", type="password", key="save_pw"
    )
    save = st.form_submit_button("Save key", type="primary")
if save:
    record = VENUES[provider]
    try:
        value = stored_key(record, key, secret)
        auth.save_api_keys(user.user_id, {provider: value}, consent, password=password)
    except (LakehouseError, ValueError) as exc:
        st.error(f"Key not saved: {md_escape(str(exc))}")
    else:
        flash(f"{record.title} key saved (ends in …{md_escape(value[-4:])}).")
        st.rerun()

if keys:
    st.subheader("Delete a key")
    with st.form("delete_key", clear_on_submit=True):
        gone = st.selectbox(
            "Provider", list(keys), format_func=lambda p: f"{PROVIDER_NAMES.get(p, p)}"
        )
        password = st.text_input("Your password", type="password", key="delete_pw")
        delete = st.form_submit_button("Delete key")
    if delete:
        try:
            auth.check_password(user.user_id, password, action="api_key_delete")
            auth.delete_api_key(user.user_id, gone)
        except LakehouseError as exc:
            st.error(f"Key not deleted: {md_escape(str(exc))}")
        else:
            flash(f"{PROVIDER_NAMES.get(gone, gone)} key deleted.")
            st.rerun()
