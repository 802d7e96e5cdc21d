"""User text shows as typed: markdown in names, emails and user agents never renders.

Streamlit renders captions, metrics, alerts and widget labels as markdown, so a username like
`__md_z__` would show bold. Pages pass user text through one escaping helper there (and use
dataframes, select options and st.text where nothing is interpreted). The check used here is
CommonMark's own rule: a backslash-escaped ASCII punctuation character is shown literally.
"""

from __future__ import annotations

import re
import string

import pytest
from streamlit.testing.v1 import AppTest

from core.ingest.service import stop_all
from pages._shared.accounts import get_auth
from pages._shared.auth import TOKEN_KEY
from pages._shared.format import md_escape
from tests.app.conftest import APP, AppAs

pytestmark = pytest.mark.app

PASSWORD = "a long passphrase 1"
# Usernames allow letters, digits and . _ - only: emphasis, rules and list-like prefixes.
NAMES = ["__md_z__", "___", "1.__x__", "-_a_-"]
EMAIL = "[x](http://e.org)@e.org"  # a link, and an email autolink, if rendered as markdown
AGENT = "**ua** <b>x</b> :red[y] __z__"
# Streamlit's documented null directive: renders nothing, splits GFM autolink literals.
NULL_DIRECTIVE = r"(?::red\[\])?"


def literal(text: str) -> re.Pattern[str]:
    """Markdown source that renders `text` as typed: every ASCII punctuation escaped."""
    parts = ["\\\\" + re.escape(c) if c in string.punctuation else re.escape(c) for c in text]
    return re.compile(r"(?<!\\)" + NULL_DIRECTIVE.join(parts))


def shows(source: str, text: str) -> bool:
    return literal(text).search(source) is not None


def signed_in(name: str, email: str, role: str = "viewer") -> str:
    auth = get_auth()
    auth.register(name, email, PASSWORD)
    if role != "viewer":
        auth.set_role_as_operator(name, role)
    return auth.login(name, PASSWORD, ip="127.0.0.1", user_agent=AGENT)


def open_page(token: str, page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[TOKEN_KEY] = token
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def test_md_escape_escapes_every_markdown_character() -> None:
    for c in string.punctuation:
        assert md_escape(c).startswith("\\" + c)
        assert shows(md_escape(c), c)
    assert md_escape("plain Text 12 é") == "plain Text 12 é"
    assert md_escape("a\n# b\n1. c") == "a \\# b 1\\. c"  # one line: no heading, no list
    assert shows(md_escape(EMAIL), EMAIL)
    assert shows(md_escape("www.example.org"), "www.example.org")
    # GFM autolinks (www., http://, emails) are split by the null directive.
    for link in ("www.example.org", "http://e.org", "https://e.org", "a@e.org"):
        assert ":red[]" in md_escape(link)


@pytest.mark.parametrize("name", NAMES)
def test_my_account_and_sidebar_show_the_username_literally(name: str) -> None:
    at = open_page(signed_in(name, EMAIL), "pages/account.py")
    metrics = {m.label: m.value for m in at.metric}
    assert shows(metrics["Username"], name), metrics
    assert shows(metrics["Email"], EMAIL), metrics
    assert any(shows(c.value, name) for c in at.caption if c.value.startswith("Ends this"))
    assert any(shows(c.value, name) for c in at.sidebar.caption if "Signed in as" in c.value)
    # The sessions table is a dataframe: shown as stored, no escaping.
    assert AGENT in set(at.dataframe[0].value["browser"])


def test_admin_users_sessions_and_audit_show_user_text_literally() -> None:
    name = NAMES[0]
    signed_in(name, EMAIL)
    at = open_page(signed_in("boss", "boss@example.test", role="admin"), "pages/admin_users.py")
    users = at.dataframe[0].value
    assert name in set(users["username"])
    assert EMAIL in set(users["email"])
    uid = users.loc[users["username"] == name, "id"].iloc[0]
    # Dataframes and select options are plain text: shown raw, never escaped.
    assert f"{name} (viewer)" in at.selectbox[0].options
    live = at.dataframe[1].value
    assert name in set(live["user"])
    assert AGENT in set(live["browser"])
    end = next(s for s in at.selectbox if s.label == "End a session")
    assert any(o.startswith(f"{name} · ") for o in end.options)

    at.selectbox[0].set_value(uid).run()
    at.selectbox(key=f"role_{uid}").set_value("analyst").run()
    next(b for b in at.button if b.label == "Apply role").click().run()
    assert not at.exception, at.exception
    flashed = [s.value for s in at.success]
    assert any(shows(v, name) and v.endswith(" is now analyst.") for v in flashed), flashed
    at.selectbox[0].set_value(uid).run()
    next(b for b in at.button if b.label.startswith("Disable account")).click().run()
    flashed = [s.value for s in at.success]
    assert any(shows(v, name) and v.endswith(" is disabled.") for v in flashed), flashed

    audit = open_page(get_auth().login("boss", PASSWORD, user_agent=AGENT), "pages/admin_audit.py")
    records = audit.dataframe[0].value
    assert AGENT in set(records["user_agent"])
    assert {m.label for m in audit.metric} == {"Matching records"}


@pytest.mark.slow
def test_data_page_shows_a_typed_symbol_literally(
    app_as: AppAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HFT_DEMO_VENUE", "true")
    symbol = "__md_z__/USDT"
    try:
        at = app_as("analyst", "pages/data.py").run()
        at.selectbox(key="sub_venue").set_value("demo")
        at.text_input(key="sub_symbol").set_value(symbol)
        at.selectbox(key="sub_kind").set_value("trades")
        next(b for b in at.button if b.label == "Subscribe").click().run()
        assert not at.exception, at.exception
        done = [s.value for s in at.success]
        assert any(shows(v, f"demo:{symbol}:trades") for v in done), done
        assert f"demo:{symbol}:trades" in set(at.dataframe[-1].value["stream"])
    finally:
        stop_all()
