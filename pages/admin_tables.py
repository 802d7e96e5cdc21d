"""Admin / Table history: each lakehouse table's commits, any version's rows, and restore."""

from typing import Any

import polars as pl
import streamlit as st

from lakehouse import LakehouseError
from lakehouse.tables import ALL_SPECS
from pages._shared import format as fmt
from pages._shared.account_view import flash, md_escape, show_flash
from pages._shared.accounts import get_client
from pages._shared.auth import require_role
from pages._shared.format import plural


def _rows(commit: dict[str, Any], *names: str) -> int | None:
    """A row count from a commit's metrics (the sum of those recorded), or None."""
    metrics = commit.get("metrics") or {}
    counts = [int(metrics[n]) for n in names if isinstance(metrics.get(n), int)]
    return sum(counts) if counts else None


admin = require_role("admin")
client = get_client()

st.title("Table history")
show_flash()
st.caption(
    "Every change to an account table, newest first. Pick a version to see the table as it "
    "was then, or make it current again.",
    help="Delta Lake time travel. Secret columns (password hashes, key ciphertext) and erased "
    "accounts are never shown; versions removed by maintenance can no longer be read.",
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
        "time": [h["timestamp"] for h in history],
        "operation": [str(h["operation"]).lower() for h in history],
        "parameters": [
            ", ".join(f"{k}: {v}" for k, v in h["parameters"].items()) or None for h in history
        ],
        "rows_written": [
            _rows(h, "num_added_rows", "num_target_rows_inserted", "num_target_rows_updated")
            for h in history
        ],
        "rows_removed": [_rows(h, "num_deleted_rows", "num_target_rows_deleted") for h in history],
    },
    schema={
        "version": pl.Int64,
        "time": pl.Datetime("us", "UTC"),
        "operation": pl.String,
        "parameters": pl.String,
        "rows_written": pl.Int64,
        "rows_removed": pl.Int64,
    },
)
frame, config = fmt.table(
    commits,
    ints=["version", "rows_written", "rows_removed"],
    times=["time"],
    labels={"parameters": "Details"},
    help={"parameters": "What the commit did: write mode, the rows it matched, or a version."},
)
st.caption(f"{plural(len(history), 'commit')}, newest first.")
st.dataframe(frame, column_config=config, hide_index=True)

versions = commits["version"].to_list()
version = st.selectbox("Show the table as of version", versions, index=0 if versions else None)
if version is None:
    st.stop()
try:
    rows = client.read_version(table, int(version), acting_user=admin)
except LakehouseError as exc:
    st.error(f"Version {version} cannot be read: {md_escape(str(exc))}")
else:
    st.caption(f"{table} at version {version}: {plural(rows.height, 'row')}.")
    times = [c for c, t in rows.schema.items() if isinstance(t, pl.Datetime)]
    frame, config = fmt.table(rows, times=times)
    st.dataframe(frame, column_config=config, hide_index=True)

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
