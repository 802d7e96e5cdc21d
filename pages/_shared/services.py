"""The app's services, built once per Streamlit process by `core.services.build_services`.

Pages reach their parts through `get_auth`, `get_client` (accounts.py) and `get_engine`
(engine.py); the REST API mounted in app.py calls `get_services` per request. AppTests swap
the accounts factory by patching `pages._shared.accounts.build_auth` before the first call.
"""

from __future__ import annotations

import streamlit as st

from core.services import Services, build_services


def _close(services: Services) -> None:
    services.close()


@st.cache_resource(show_spinner="Opening the accounts and the market store…", on_release=_close)
def get_services() -> Services:
    from pages._shared import accounts  # its module attribute build_auth is the tests' seam

    return build_services(accounts.settings(), auth_factory=accounts.build_auth)
