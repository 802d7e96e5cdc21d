"""Who is signed in, and the role check every page runs at its top.

The session token lives in two places only: server-side in `st.session_state` (for this browser
tab's WebSocket session) and in the browser as an HttpOnly, SameSite=Strict cookie (see
session_cookie.py) so that a reload keeps the login. Every rerun checks the token against the
sessions table through `verify_persistent_token`; revoked, expired or unknown means signed out.
"""

from __future__ import annotations

import contextlib
from typing import overload

import streamlit as st
from streamlit import config, runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from lakehouse import AuthError, LoginResult, User
from pages._shared import session_cookie
from pages._shared.account_view import md_escape
from pages._shared.accounts import get_auth, session_ttl_seconds, settings
from pages._shared.client_ip import client_ip
from pages._shared.navigation import role_allows

SignedIn = User

HOME = "pages/home.py"
TOKEN_KEY = "_hfthot_token"  # noqa: S105 (a session_state key, not a secret)
_COOKIE_CODE_KEY = "_hfthot_cookie_code"
_DEAD_COOKIE_KEY = "_hfthot_dead_cookie"

_COOKIE_JS = """
export default function (component) {
  const { data, setTriggerValue } = component;
  if (!data || !data.code || !data.url) return;
  fetch(data.url, {
    method: "POST",
    credentials: "same-origin",
    cache: "no-store",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ code: data.code }),
  }).then((r) => setTriggerValue("status", r.status),
          () => setTriggerValue("status", 0));
}
"""
_cookie_component = st.components.v2.component("hfthot_session_cookie", js=_COOKIE_JS)


def _cookie_token() -> str | None:
    token = st.context.cookies.get(session_cookie.COOKIE_NAME)
    if not isinstance(token, str) or not token or token == st.session_state.get(_DEAD_COOKIE_KEY):
        return None
    return token


def current_user() -> User | None:
    """The user behind this session's token, checked against the sessions table now."""
    token = st.session_state.get(TOKEN_KEY) or _cookie_token()
    if not token:
        return None
    try:
        user = get_auth().verify_persistent_token(token)
    except AuthError:
        _forget(token)
        return None
    st.session_state[TOKEN_KEY] = token
    return user


def current_token() -> str | None:
    token = st.session_state.get(TOKEN_KEY)
    return token if isinstance(token, str) else None


@overload
def require_role(min_role: str) -> User: ...
@overload
def require_role(min_role: None) -> None: ...


def require_role(min_role: str | None) -> User | None:
    """Stop the page with a clear message unless the user's role allows it.

    `min_role=None` marks a public page (sign in, register): a signed-in user is sent Home.
    """
    user = current_user()
    if min_role is None:
        if user is not None:
            st.switch_page(HOME)
        return None
    if user is None:
        st.warning("Please sign in to see this page.")
        st.stop()
    if not role_allows(user.role, min_role):
        st.error(f"This page needs the {min_role} role; you are signed in as {user.role}.")
        st.stop()
    return user


def user_menu(user: User | None) -> None:
    """Who is signed in, and the log-out button, at the top of the sidebar."""
    if user is None:
        return
    with st.sidebar:
        st.caption(f"Signed in as {md_escape(user.username)} ({user.role})")
        st.button("Log out", key="hfthot_logout", icon=":material/logout:", on_click=sign_out)


def sign_in(login: LoginResult | str) -> None:
    """Keep a fresh login token for this tab, and ask the browser to keep it in its cookie
    (with the login's new device cookie, when given a LoginResult)."""
    token, device = (login.token, login.device) if isinstance(login, LoginResult) else (login, None)
    st.session_state[TOKEN_KEY] = token
    st.session_state.pop(_DEAD_COOKIE_KEY, None)
    code = session_cookie.HANDOFFS.issue(token, session_ttl_seconds(), device=device)
    st.session_state[_COOKIE_CODE_KEY] = code


def device_cookie() -> str | None:
    """The browser's device cookie (hfthot_device), sent with the WebSocket handshake."""
    value = st.context.cookies.get(session_cookie.DEVICE_COOKIE_NAME)
    return value if isinstance(value, str) and value else None


def sign_out() -> None:
    """End the session on the server, then clear the browser's cookie."""
    token = current_token()
    if token:
        with contextlib.suppress(AuthError):  # already over: fine
            get_auth().logout(token)
    _forget(token)


def _forget(token: str | None) -> None:
    st.session_state.pop(TOKEN_KEY, None)
    if token and token == st.context.cookies.get(session_cookie.COOKIE_NAME):
        st.session_state[_DEAD_COOKIE_KEY] = token
    st.session_state[_COOKIE_CODE_KEY] = session_cookie.HANDOFFS.issue(None)


def sync_browser_cookie() -> None:
    """Render the invisible cookie component while a set/clear is waiting for the browser.

    Called by app.py on every run, so the hand-off survives the page switch after a login.
    """
    code = st.session_state.get(_COOKIE_CODE_KEY)
    if not isinstance(code, str):
        return
    if not session_cookie.HANDOFFS.pending(code):
        del st.session_state[_COOKIE_CODE_KEY]
        return
    url = session_cookie.route_path(config.get_option("server.baseUrlPath") or "")
    _cookie_component(
        key="hfthot_session_cookie",
        data={"code": code, "url": url},
        height=0,
        on_status_change=lambda: None,
    )


def _peer_ip() -> str | None:
    """The direct peer of this session's WebSocket. `st.context.ip_address` hides loopback
    peers as None, so a local reverse proxy could never be recognised through it; the
    session's client context keeps the address the server saw."""
    ctx = get_script_run_ctx()
    if ctx is None or not runtime.exists():
        return None
    client = runtime.get_instance().get_client(ctx.session_id)
    remote = getattr(getattr(client, "client_context", None), "remote_ip", None)
    return remote if isinstance(remote, str) else None


def client_info() -> tuple[str | None, str | None]:
    """The browser's IP address and user agent, when they can be known (throttle, audit).

    The IP comes from X-Forwarded-For only through a proxy listed in HFT_TRUSTED_PROXIES;
    loopback or unknown gives None (see client_ip.py).
    """
    forwarded = ", ".join(st.context.headers.get_all("X-Forwarded-For")) or None
    ip = client_ip(_peer_ip(), forwarded, settings().trusted_proxy_networks)
    agent = st.context.headers.get("User-Agent")
    return ip, agent if isinstance(agent, str) else None
