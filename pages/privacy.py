"""Privacy: download my data, data-sharing consent, delete my account (GDPR Art. 7, 15, 17, 20)."""

import streamlit as st

from lakehouse import LakehouseError
from pages._shared.account_view import flash, md_escape, show_flash
from pages._shared.accounts import get_auth, get_client
from pages._shared.auth import require_role, sign_out

REMOVED = (
    "Your account (username, email and password), your sessions, access tokens, API keys and "
    "usage, consents and SQL explorer history are removed."
)
KEPT = (
    "Audit records of what happened stay, under a random id that no longer leads to you and "
    "without your IP address or browser, and a tombstone records that an account was erased "
    "and when."
)

_TO_SIGN_IN = "_hfthot_erased_to_sign_in"


def _to_sign_in() -> None:
    st.session_state[_TO_SIGN_IN] = True


if st.session_state.pop(_TO_SIGN_IN, False):  # after the confirmation screen
    st.switch_page("pages/login.py")
user = require_role("viewer")
auth, client = get_auth(), get_client()

page = st.empty()  # the whole page, replaced by a confirmation once the account is deleted
with page.container():
    st.title("Privacy")
    show_flash()

    st.subheader("Download my data")
    st.caption(
        "A zip with everything HFThot stores about you: your account, sessions, key details "
        "(never the keys themselves), usage, consents, your audit records and your SQL "
        "explorer history.",
        help="Each table comes as JSON and CSV; the SQL history is `sql_history.jsonl` and "
        "`manifest.json` lists every file.",
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
    st.error(
        f"**This deletes your account for good; it cannot be undone.** {REMOVED} "
        f"{KEPT} Download your data first if you want to keep a copy.",
        icon=":material/warning:",
    )
    with st.form("erase"):
        understood = st.checkbox("I understand this cannot be undone")
        confirm = st.text_input(f"Type your username ({md_escape(user.username)}) to confirm")
        erase = st.form_submit_button(
            "Delete my account for good", type="primary", icon=":material/delete_forever:"
        )
    erased = None
    if erase:
        if not understood:
            st.error("Tick “I understand this cannot be undone” first; nothing was deleted.")
        elif confirm != user.username:
            st.error("The username does not match; nothing was deleted.")
        else:
            try:
                erased = client.erase_user(user.user_id, acting_user=user)
            except LakehouseError as exc:
                st.error(f"Account not deleted: {md_escape(str(exc))}")

if erased is not None:
    sign_out()  # the session is already ended; this forgets the token and clears the cookie
    page.empty()
    st.session_state.pop("privacy_export", None)
    with page.container():
        st.title("Your account was deleted")
        st.success(
            f"The account {md_escape(user.username)} was deleted on "
            f"{erased['erased_at']:%Y-%m-%d at %H:%M:%S} UTC, and you are signed out.",
            icon=":material/check_circle:",
        )
        st.markdown(f"**What was removed.** {REMOVED}")
        st.markdown(f"**What remains.** {KEPT}")
        st.caption(
            "Older copies inside the database files are deleted at the next maintenance, "
            "which the administrators run daily."
        )
        st.button("Go to the sign-in page", type="primary", on_click=_to_sign_in)
    st.stop()
