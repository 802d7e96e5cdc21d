"""Admin / Maintenance: compact, apply audit retention, vacuum and checkpoint every table."""

import polars as pl
import streamlit as st

from lakehouse import LakehouseError
from pages._shared.account_view import md_escape
from pages._shared.accounts import get_client
from pages._shared.auth import require_role

admin = require_role("admin")
client = get_client()

st.title("Maintenance")
st.caption(
    f"Compacts small files, deletes audit records older than {client.audit_retention_days} "
    "days, vacuums old files (at once when an erasure is pending, so erased data leaves the "
    "disk), then checkpoints each table. Schedule `hfthot lakehouse maintain` daily from cron "
    "(see the README); this button runs the same steps now."
)

if st.button("Run maintenance now", type="primary"):
    bar = st.progress(0.0, text="Starting…")

    def show(fraction: float, step: str) -> None:
        bar.progress(min(1.0, max(0.0, fraction)), text=step)

    try:
        report = client.maintain(show, acting_user=admin)
    except LakehouseError as exc:
        st.error(f"Maintenance stopped: {md_escape(str(exc))}")
    else:
        st.success("Maintenance finished.")
        st.dataframe(
            pl.DataFrame(
                [
                    {"table": name, **{k: int(v) for k, v in info.items()}}
                    for name, info in report.items()
                ]
            ),
            hide_index=True,
        )
