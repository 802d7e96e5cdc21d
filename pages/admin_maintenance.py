"""Admin / Maintenance: compact, apply audit retention, vacuum and checkpoint every table."""

import streamlit as st

from lakehouse import LakehouseError
from pages._shared.account_view import maintenance_summary, maintenance_table, md_escape
from pages._shared.accounts import get_client
from pages._shared.auth import require_role
from pages._shared.format import plural

admin = require_role("admin")
client = get_client()

st.title("Maintenance")
st.markdown(
    f"""
Maintenance keeps the account tables small and honest:

- merges small data files into larger ones,
- removes audit records older than {plural(client.audit_retention_days, "day")},
- removes sessions a day after they ended,
- deletes old data files, at once when an account was erased, so its data leaves the disk.
"""
)
st.markdown(
    "**Schedule it once a day** on the server, at a quiet hour, and after every account "
    "erasure. The task to schedule runs this command in the HFThot folder:",
    help="For example with a crontab line such as `15 3 * * * cd /srv/hfthot && "
    ".venv/bin/hfthot lakehouse maintain` (every day at 03:15), or a systemd timer.",
)
st.code(".venv/bin/hfthot lakehouse maintain", language="bash")
st.caption("The button below runs the same steps now.")

if st.button("Run maintenance now", type="primary"):
    bar = st.progress(0.0, text="Starting…")

    def show(fraction: float, step: str) -> None:
        bar.progress(min(1.0, max(0.0, fraction)), text=step)

    try:
        report = client.maintain(show, acting_user=admin)
    except LakehouseError as exc:
        st.error(f"Maintenance stopped: {md_escape(str(exc))}")
    else:
        st.success(f"Maintenance finished. {maintenance_summary(report)}")
        frame, config = maintenance_table(report)
        st.dataframe(frame, column_config=config, hide_index=True)
