"""HFThot: router only. Page config, the auth gate, then the pages this role may see.

`streamlit run app.py` finds the `st.App` below and serves this file through it: the App adds
the HTTP route that sets the HttpOnly login cookie (pages/_shared/session_cookie.py) and the
REST API under /api/v1/ (core/serve/rest.py) over the same services the pages use. When
Streamlit runs this file as the script, `__name__` is "__main__" and only the router runs.
"""

import streamlit as st

if __name__ == "__main__":
    import sys
    from secrets import token_hex

    st.set_page_config(page_title="HFThot", page_icon="assets/logo.svg", layout="wide")
    # The first visit after a server start imports the engine, opens the accounts, imports the
    # bundled history and starts the ingest service: a few seconds. Say so instead of an empty
    # pane; later runs find everything loaded and show nothing here.
    starting = st.empty() if "pages._shared.live" not in sys.modules else None
    if starting is not None:
        starting.info("Starting HFThot…", icon=":material/hourglass_top:")

    from core.data.trace import set_session as set_trace_session
    from pages._shared.alerts_badge import alerts_badge, get_alerts
    from pages._shared.auth import (
        current_user,
        remember_current_page,
        sync_browser_cookie,
        user_menu,
    )
    from pages._shared.live import get_ingest
    from pages._shared.navigation import build_pages

    user = current_user()
    # Access traces (HFT_ACCESS_TRACE) tell browser sessions apart by a random label.
    set_trace_session(st.session_state.setdefault("hfthot_trace_label", token_hex(4)))
    get_ingest()  # once per process: live streams (and the demo venue) start with the app
    get_alerts()  # once per process: the alert evaluator thread watches what lands
    if starting is not None:
        starting.empty()
    sync_browser_cookie()
    user_menu(user)
    # Every page is registered; the menu lists the role's pages, all of them (no "View more").
    page = st.navigation(build_pages(user.role if user else None), expanded=True)
    alerts_badge(user)  # unread count in the sidebar, a toast for each new firing
    remember_current_page(page.url_path)
    page.run()
else:
    from pathlib import Path

    from streamlit import config, file_util
    from streamlit.runtime.pages_manager import PagesManager

    from core.config import Settings
    from core.serve.rest import api_routes
    from pages._shared.flight import flight_lifespan
    from pages._shared.http_guard import (
        app_middleware,
        content_security_policy,
        inline_script_hashes,
    )
    from pages._shared.services import get_services
    from pages._shared.session_cookie import routes

    # A folder named pages/ next to the main script switches Streamlit to its old automatic
    # multipage mode until the first st.navigation call: a fresh server's first visit to, say,
    # /admin_users would list every file in pages/ and skip this router. Navigation is
    # always ours, so turn that mode off before the first session starts.
    PagesManager.uses_pages_directory = False
    base_url_path = config.get_option("server.baseUrlPath") or ""
    # st.App puts its `middleware` outside Streamlit's own, so these two wrap every HTTP
    # response of the process: the page, static assets, health, component files, our routes
    # (the login cookie and the REST API under <base>/api/v1/), and WebSocket handshake
    # refusals. The CSP allows the one inline script of Streamlit's index.html by its hash,
    # computed from the installed copy so an upgrade keeps working.
    # Note: under `streamlit run`, uvicorn itself rewrites the scheme and client address from
    # X-Forwarded-Proto/-For for peers in FORWARDED_ALLOW_IPS (default: loopback) before any
    # middleware runs; set it to the same CIDRs as HFT_TRUSTED_PROXIES (docs/security.md).
    index_html = Path(file_util.get_static_dir(), "index.html").read_text(encoding="utf-8")
    app = st.App(
        __file__,
        routes=routes(base_url_path) + api_routes(base_url_path, get_services),
        lifespan=flight_lifespan,  # the Flight data service starts and stops with the server
        middleware=app_middleware(
            base_url_path,
            csp=content_security_policy(inline_script_hashes(index_html)),
            trusted_proxies=Settings.from_env().trusted_proxy_networks,
        ),
    )
