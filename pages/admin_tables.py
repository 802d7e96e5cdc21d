"""Admin / Table history: each lakehouse table's commits, any version's rows, and restore."""

import json

import polars as pl
import streamlit as st

from lakehouse import LakehouseError
from lakehouse.tables import ALL_SPECS
from pages._shared.account_view import flash, md_escape, show_flash
from pages._shared.accounts import get_client
from pages._shared.auth import require_role

admin = require_role("admin")
client = get_client()

st.title("Table history")
show_flash()
st.caption(
    "Delta Lake time travel. Secret columns (password hashes, key ciphertext) and erased "
    "accounts are never shown; versions removed by vacuum can no longer be read."
)

table = st.selectbox("Table", [s.name for s in ALL_SPECS])
try:
    history = client.history(table, acting_user=admin)
except LakehouseError as exc:
    st.error(f"Cannot read the history of {table}: {md_escape(str(exc))}")
    st.stop()
commits = pl.DataFrame(
    {
        "version": [int(h["version"]) for h in history],
        "time (UTC)": [h["timestamp"] for h in history],
        "operation": [str(h["operation"]) for h in history],
        "parameters": [json.dumps(h["parameters"], default=str) for h in history],
    },
    schema={
        "version": pl.Int64,
        "time (UTC)": pl.Datetime("us", "UTC"),
        "operation": pl.String,
        "parameters": pl.String,
    },
)
st.dataframe(commits, hide_index=True)

versions = commits["version"].to_list()
version = st.selectbox("Show the table as of version", versions, index=0 if versions else None)
if version is None:
    st.stop()
try:
    rows = client.read_version(table, int(version), acting_user=admin)
except LakehouseError as exc:
    st.error(f"Version {version} cannot be read: {md_escape(str(exc))}")
else:
    st.caption(f"{table} at version {version}: {rows.height} rows.")
    st.dataframe(rows, hide_index=True)

st.subheader("Restore")
latest = max(versions)
if int(version) == latest:
    st.caption("Pick an older version above to restore it.")
else:
    with st.form("restore"):
        sure = st.checkbox(
            f"Make version {version} of {table} the current one again (a new commit, audited)"
        )
        restore = st.form_submit_button("Restore", type="primary")
    if restore:
        if not sure:
            st.error("Tick the box to confirm; nothing was restored.")
        else:
            try:
                client.restore(table, int(version), acting_user=admin)
            except LakehouseError as exc:
                st.error(f"Not restored: {md_escape(str(exc))}")
            else:
                flash(f"{table} restored to version {version}.")
                st.rerun()
