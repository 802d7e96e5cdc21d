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

from core.serve.client_ip import client_ip
from lakehouse import AuthError, LakehouseError, LoginResult, Throttled, User
from pages._shared import session_cookie
from pages._shared.account_view import md_escape
from pages._shared.accounts import get_auth, session_ttl_seconds, settings
from pages._shared.navigation import PAGES, role_allows, spec_of

SignedIn = User

HOME = "pages/home.py"
TOKEN_KEY = "_hfthot_token"  # noqa: S105 (a session_state key, not a secret)
_COOKIE_CODE_KEY = "_hfthot_cookie_code"
_DEAD_COOKIE_KEY = "_hfthot_dead_cookie"
NEXT_KEY = "_hfthot_next"
"""The page a visitor asked for before signing in (a PageSpec path), to return to after."""
_CURRENT_KEY = "_hfthot_current_page"
ASK_FOR_ROLE = "Ask an administrator of this portal for it: they change roles on the Users page."

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
    """Stop the page with a message that says what happened unless the user's role allows it.

    A visitor is asked to sign in right there and comes back to this page afterwards; a
    signed-in user with a lower role is told which role the page needs and whom to ask.
    `min_role=None` marks a public page (sign in, register): a signed-in user moves on to the
    page they asked for before signing in, or Home.
    """
    user = current_user()
    if user is not None:
        target = return_target(st.session_state.pop(NEXT_KEY, None))
        if min_role is None:
            st.switch_page(target or HOME)
    elif min_role is None:
        return None
    if user is None:
        page = spec_of(st.session_state.get(_CURRENT_KEY))
        if page is not None and page.min_role is not None:
            st.session_state[NEXT_KEY] = page.path
        st.header("Sign in to HFThot")
        title = page.title if page is not None else "This page"
        st.warning(
            f"Sign in to continue: {title} is for signed-in users. Please sign in below, or "
            "create an account if you have none."
        )
        sign_in_form()
        if page is not None:  # run through app.py's navigation, where Register is a page
            st.page_link(
                "pages/register.py", label="Create an account", icon=":material/person_add:"
            )
        st.stop()
    if not role_allows(user.role, min_role):
        st.error(
            f"This page needs the {min_role} role; you are signed in as {user.role}. "
            + ASK_FOR_ROLE
        )
        st.stop()
    return user


def remember_current_page(url_path: str) -> None:
    """app.py names the page it is about to run, so a refusal knows where to come back to."""
    spec = next((p for p in PAGES if url_path in (p.url_path, f"{p.url_path}-start")), None)
    st.session_state[_CURRENT_KEY] = spec.path if spec is not None else None


def return_target(path: object) -> str | None:
    """`path` if it names a signed-in page of this portal, else None: never an open redirect."""
    spec = spec_of(path)
    return spec.path if spec is not None and spec.min_role is not None else None


def sign_in_form() -> None:
    """Username, password and the Sign in button; a success signs in and reruns the page."""
    with st.form("login"):
        username = st.text_input("Username", max_chars=32, autocomplete="username")
        password = st.text_input(
            "Password", type="password", max_chars=128, autocomplete="current-password"
        )
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    fields = {"username": username.strip(), "password": password}
    missing = [name for name, value in fields.items() if not value]
    if missing:  # nothing to check: no attempt is made, so no failure is counted
        st.error(f"Enter your {' and '.join(missing)}.")
        return
    ip, agent = client_info()
    try:
        login = get_auth().login_with_device(
            username, password, ip=ip, user_agent=agent, device=device_cookie()
        )
    except Throttled as exc:
        st.error(f"Sign-in paused: {md_escape(str(exc))}.")
    except AuthError:
        st.error("Invalid username or password.")
    except LakehouseError as exc:
        st.error(f"Could not sign in: {md_escape(str(exc))}")
    else:
        sign_in(login)
        st.rerun()


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
    st.session_state.pop(NEXT_KEY, None)
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
