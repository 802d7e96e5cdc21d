"""Privacy: download my data, data-sharing consent, delete my account (GDPR Art. 7, 15, 17, 20)."""

import streamlit as st

from lakehouse import LakehouseError
from pages._shared.account_view import flash, md_escape, show_flash
from pages._shared.accounts import get_auth, get_client
from pages._shared.auth import require_role, sign_out

user = require_role("viewer")
auth, client = get_auth(), get_client()

st.title("Privacy")
show_flash()

st.subheader("Download my data")
st.caption(
    "A zip with everything HFThot stores about you: account, sessions, key metadata (never "
    "the keys), usage, consents and your audit records as JSON and CSV, and your SQL "
    "explorer history (`sql_history.jsonl`). `manifest.json` lists every file."
)
if st.button("Prepare my data export"):
    st.session_state["privacy_export"] = client.export_user_data(user.user_id, acting_user=user)
export = st.session_state.get("privacy_export")
if isinstance(export, bytes):
    st.download_button(
        "Download my data (zip)",
        data=export,
        file_name=f"hfthot-export-{user.user_id[:8]}.zip",
        mime="application/zip",
        type="primary",
        on_click="ignore",
    )

st.subheader("Data-sharing consent")
consent = auth.get_consents(user.user_id)["data_sharing"]
since = f" since {consent['at']:%Y-%m-%d %H:%M:%S} UTC" if consent["at"] else ""
st.caption(f"You currently {'give' if consent['granted'] else 'do not give'} consent{since}.")
wanted = st.toggle(
    "Share my usage data with my team's administrators", value=bool(consent["granted"])
)
if wanted != consent["granted"]:
    auth.set_consent(user.user_id, "data_sharing", wanted)
    flash("Consent recorded." if wanted else "Consent withdrawn.")
    st.rerun()

st.subheader("Delete my account")
st.caption(
    "Erases your account, sessions, keys, usage, consents and SQL explorer history. Audit "
    "records keep only a random id, and a tombstone records that the erasure happened. This "
    "cannot be undone."
)
with st.form("erase"):
    confirm = st.text_input(f"Type your username ({md_escape(user.username)}) to confirm")
    erase = st.form_submit_button("Delete my account for good", type="primary")
if erase:
    if confirm != user.username:
        st.error("The username does not match; nothing was deleted.")
    else:
        try:
            client.erase_user(user.user_id, acting_user=user)
        except LakehouseError as exc:
            st.error(f"Account not deleted: {md_escape(str(exc))}")
        else:
            sign_out()
            st.rerun()
