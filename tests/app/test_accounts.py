"""AppTests of the accounts pages: the gate, sign in/up, my account, keys, privacy."""

from __future__ import annotations

import base64
import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lakehouse import AuthError, InvalidCredentials
from pages._shared import accounts
from pages._shared.accounts import get_auth, get_client
from pages._shared.auth import TOKEN_KEY
from pages._shared.format import md_escape
from pages._shared.navigation import visible_specs
from tests.app.conftest import AppAs, fast_auth
from tests.app.helpers import texts

pytestmark = pytest.mark.app

PASSWORD = "a long passphrase 1"


def plotly_values(v: object) -> list[float]:
    """Plotly 7 ships numeric arrays as {"dtype", "bdata"} (base64) in the figure spec."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    assert isinstance(v, list)
    return v


def sign_in_form(at: AppTest, username: str, password: str) -> AppTest:
    inputs = {t.label: t for t in at.text_input}
    inputs["Username"].input(username)
    inputs["Password"].input(password)
    next(b for b in at.button if b.label == "Sign in").click()
    return at.run()


def test_anonymous_sees_only_sign_in_and_register(app_as: AppAs) -> None:
    assert {p.path for p in visible_specs(None)} == {"pages/login.py", "pages/register.py"}
    at = app_as(None).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Sign in to HFThot"]
    assert TOKEN_KEY not in at.session_state
    # Every page is registered (hidden), so a bookmarked URL resolves; the page refuses.
    at.switch_page("pages/account.py").run()
    assert any(w.value.startswith("Sign in to continue") for w in at.warning)
    assert not at.title


@pytest.mark.parametrize(
    "page", ["pages/account.py", "pages/api_keys.py", "pages/privacy.py", "pages/admin_users.py"]
)
def test_protected_page_refuses_anonymous_visitor(app_as: AppAs, page: str) -> None:
    at = app_as(None, page).run()
    assert not at.exception
    assert any("sign in" in w.value for w in at.warning)
    assert not at.title


def test_sign_in_keeps_a_verified_session(app_as: AppAs) -> None:
    at = app_as(None).run()
    get_auth().register("carol", "carol@example.test", PASSWORD)
    at = sign_in_form(at, "carol", PASSWORD)
    assert not at.exception
    assert [t.value for t in at.title] == ["HFThot"]  # moved on to Home
    user = get_auth().verify_persistent_token(at.session_state[TOKEN_KEY])
    assert user.username == "carol"
    assert any("carol" in c.value for c in at.sidebar.caption)


def test_sign_in_with_a_wrong_password_is_refused(app_as: AppAs) -> None:
    get_auth().register("dave", "dave@example.test", PASSWORD)
    at = sign_in_form(app_as(None).run(), "dave", PASSWORD + "x")
    assert [e.value for e in at.error] == ["Invalid username or password."]
    at2 = sign_in_form(app_as(None).run(), "nobody-here", PASSWORD)
    assert [e.value for e in at2.error] == ["Invalid username or password."]
    assert TOKEN_KEY not in at.session_state
    assert [t.value for t in at.title] == ["Sign in to HFThot"]


def register_form(at: AppTest, username: str, email: str, pw: str, again: str) -> AppTest:
    inputs = {t.label: t for t in at.text_input}
    inputs["Username"].input(username)
    inputs["Email"].input(email)
    inputs["Password"].input(pw)
    inputs["Repeat password"].input(again)
    next(b for b in at.button if b.label == "Create account").click()
    return at.run()


def test_register_creates_a_viewer_and_signs_in(app_as: AppAs) -> None:
    at = app_as(None).run()
    at.switch_page("pages/register.py").run()
    at = register_form(at, "erin", "erin@example.test", PASSWORD, PASSWORD)
    assert not at.exception
    assert not at.error
    user = get_auth().verify_persistent_token(at.session_state[TOKEN_KEY])
    assert (user.username, user.role) == ("erin", "viewer")


@pytest.mark.parametrize(
    ("username", "email", "pw", "again", "message"),
    [
        ("frank", "frank@example.test", PASSWORD, PASSWORD + "!", "passwords differ"),
        ("frank", "not-an-email", PASSWORD, PASSWORD, "not a valid address"),
        ("frank", "frank@example.test", "short", "short", "at least 8"),
        ("x", "frank@example.test", PASSWORD, PASSWORD, "username must have"),
        ("a<b>", "frank@example.test", PASSWORD, PASSWORD, "not allowed"),
    ],
)
def test_register_bad_input_says_why_and_creates_nothing(
    app_as: AppAs, username: str, email: str, pw: str, again: str, message: str
) -> None:
    at = app_as(None, "pages/register.py").run()
    at = register_form(at, username, email, pw, again)
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert TOKEN_KEY not in at.session_state
    assert get_auth().find_user("frank") is None


def test_taken_username_differing_in_case_is_refused(app_as: AppAs) -> None:
    get_auth().register("Grace", "grace@example.test", PASSWORD)
    at = register_form(
        app_as(None, "pages/register.py").run(), "grace", "g2@example.test", PASSWORD, PASSWORD
    )
    assert any("taken" in e.value for e in at.error)


def test_log_out_revokes_the_session(app_as: AppAs) -> None:
    at = app_as("viewer").run()
    token = at.session_state[TOKEN_KEY]
    at.sidebar.button(key="hfthot_logout").click().run()
    assert not at.exception
    assert TOKEN_KEY not in at.session_state
    assert [t.value for t in at.title] == ["Sign in to HFThot"]
    with pytest.raises(AuthError):
        get_auth().verify_persistent_token(token)


def test_revoked_token_is_signed_out_on_the_next_run(app_as: AppAs) -> None:
    at = app_as("analyst").run()
    assert [t.value for t in at.title] == ["HFThot"]
    get_auth().logout(at.session_state[TOKEN_KEY])  # e.g. ended from another browser
    at.run()
    assert [t.value for t in at.title] == ["Sign in to HFThot"]


def test_my_account_lists_sessions_and_logs_out_elsewhere(app_as: AppAs) -> None:
    at = app_as("viewer", "pages/account.py")
    acc_token = at.session_state[TOKEN_KEY]
    acc = app_as.last
    other = get_auth().login(acc.username, acc.password, user_agent="other browser")
    at.run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    # Metric values render markdown, so user text arrives escaped (shown as typed).
    assert metrics == {
        "Username": md_escape(acc.username),
        "Email": md_escape(acc.email),
        "Role": "viewer",
    }
    sessions = at.dataframe[0].value
    assert len(sessions) == 2
    assert sorted(sessions["this_browser"].tolist()) == [False, True]
    next(b for b in at.button if b.label == "Log out everywhere else").click().run()
    assert any("Ended 1 other session" in s.value for s in at.success)
    assert len(at.dataframe[0].value) == 1
    with pytest.raises(AuthError):
        get_auth().verify_persistent_token(other)
    assert get_auth().verify_persistent_token(acc_token).user_id == acc.user.user_id


def test_change_password_keeps_this_session_only(app_as: AppAs) -> None:
    at = app_as("viewer", "pages/account.py")
    acc = app_as.last
    other = get_auth().login(acc.username, acc.password)
    at.run()
    new = "another long passphrase 2"
    inputs = {t.label: t for t in at.text_input}
    inputs["Current password"].input(acc.password)
    inputs["New password"].input(new)
    inputs["Repeat new password"].input(new)
    next(b for b in at.button if b.label == "Change password").click().run()
    assert not at.error, [e.value for e in at.error]
    assert any("Password changed" in s.value for s in at.success)
    get_auth().verify_persistent_token(acc.token)
    with pytest.raises(AuthError):
        get_auth().verify_persistent_token(other)
    get_auth().login(acc.username, new)


def test_change_password_with_a_wrong_current_password_changes_nothing(app_as: AppAs) -> None:
    at = app_as("viewer", "pages/account.py").run()
    acc = app_as.last
    inputs = {t.label: t for t in at.text_input}
    inputs["Current password"].input("wrong password 123")
    inputs["New password"].input("another long passphrase 2")
    inputs["Repeat new password"].input("another long passphrase 2")
    next(b for b in at.button if b.label == "Change password").click().run()
    assert any("not correct" in e.value for e in at.error)
    get_auth().login(acc.username, acc.password)


def save_key(
    at: AppTest, provider: str, key: str, password: str, consent: bool = True, secret: str = ""
) -> None:
    next(s for s in at.selectbox if s.label == "Provider").set_value(provider)
    next(t for t in at.text_input if t.label.startswith("API key")).input(key)
    if secret:
        next(t for t in at.text_input if t.label.startswith("Secret")).input(secret)
    at.checkbox[0].set_value(consent)
    at.text_input(key="save_pw").input(password)
    next(b for b in at.button if b.label == "Save key").click()
    at.run()


def test_an_alpaca_key_is_saved_as_its_two_parts(app_as: AppAs) -> None:
    at = app_as("analyst", "pages/api_keys.py").run()
    acc = app_as.last
    save_key(at, "alpaca", "PKTESTKEYID0001", acc.password)
    assert any("needs both the key id and the secret" in e.value for e in at.error)
    save_key(at, "finnhub", "fh-key-0123456789", acc.password, secret="oops-secret")
    assert any("has a key only" in e.value for e in at.error)
    assert get_auth().get_api_keys(acc.user.user_id)["provider_keys"] == {}

    save_key(at, "alpaca", "PKTESTKEYID0001", acc.password, secret="s3cretS3cretS3cret")
    assert not at.error, [e.value for e in at.error]
    uid = acc.user.user_id
    assert get_auth().provider_key(uid, "alpaca") == "PKTESTKEYID0001:s3cretS3cretS3cret"
    row = at.dataframe[0].value.iloc[0].to_dict()
    assert (row["provider"], row["key"], row["limit"], row["per"]) == (
        "Alpaca",
        "…cret",
        200,
        "minute",
    )
    assert row["resets"] is not None


def test_api_keys_need_the_password_and_show_only_the_last_four(app_as: AppAs) -> None:
    at = app_as("viewer", "pages/api_keys.py").run()
    acc = app_as.last
    assert not at.exception
    assert any("No provider keys stored yet" in i.value for i in at.info)

    secret = "fh-SECRET-KEY-0123456789-WXYZ"
    save_key(at, "finnhub", secret, "wrong password 123")
    assert any("not correct" in e.value for e in at.error)
    assert get_auth().get_api_keys(acc.user.user_id)["provider_keys"] == {}

    save_key(at, "finnhub", secret, acc.password)
    assert not at.error, [e.value for e in at.error]
    table = at.dataframe[0].value
    row = table.iloc[0].to_dict()
    assert row["provider"] == "Finnhub"
    assert row["key"] == "…WXYZ"
    assert (row["queries_done"], row["remaining"], row["limit"], row["per"]) == (
        0,
        60,
        60,
        "minute",
    )
    shown = texts(at) + table.to_csv()
    assert secret not in shown
    assert "0123456789" not in shown


def test_quota_alerts_usage_chart_and_billing(app_as: AppAs) -> None:
    at = app_as("analyst", "pages/api_keys.py")
    acc = app_as.last
    auth = get_auth()
    uid = acc.user.user_id
    auth.save_api_keys(uid, {"alpha_vantage": "av-key-000011112222"}, True, password=acc.password)
    # Alpha Vantage: 25 per UTC day, so the window cannot roll over mid-test (unlike /min).
    for _ in range(19):
        auth.update_query_count(uid, "alpha_vantage")
    at.run()
    assert not at.exception
    assert not at.warning  # 19 of 25 is below 80 %
    auth.update_query_count(uid, "alpha_vantage")  # 20 of 25: 80 %
    at.run()
    assert any(w.value.startswith("80% alert. Alpha Vantage: 20 of 25") for w in at.warning), [
        w.value for w in at.warning
    ]
    auth.update_query_count(uid, "alpha_vantage", 4)  # 24 of 25: 96 %
    at.run()
    assert any(e.value.startswith("95% alert. Alpha Vantage: 24 of 25") for e in at.error)
    # the backend's alert event
    assert any("Alpha Vantage reached 95% of its quota (24 of 25" in c.value for c in at.caption)
    row = at.dataframe[0].value.iloc[0]
    assert (row["queries_done"], row["remaining"]) == (24, 1)

    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [t["name"] for t in spec["data"]] == ["Alpha Vantage"]
    assert sum(sum(plotly_values(t["y"])) for t in spec["data"]) == 24
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Queries in the period"] == "24"
    assert metrics["Alpha Vantage"] == "24"


def test_delete_key_asks_for_the_password(app_as: AppAs) -> None:
    at = app_as("viewer", "pages/api_keys.py")
    acc = app_as.last
    get_auth().save_api_keys(
        acc.user.user_id, {"kraken": "kr-key-000011112222"}, True, password=acc.password
    )
    at.run()
    at.text_input(key="delete_pw").input("wrong password 123")
    next(b for b in at.button if b.label == "Delete key").click().run()
    assert any("not correct" in e.value for e in at.error)
    assert "kraken" in get_auth().get_api_keys(acc.user.user_id)["provider_keys"]
    at.text_input(key="delete_pw").input(acc.password)
    next(b for b in at.button if b.label == "Delete key").click().run()
    assert any("Kraken key deleted" in s.value for s in at.success)
    assert get_auth().get_api_keys(acc.user.user_id)["provider_keys"] == {}


def test_privacy_export_holds_my_data(app_as: AppAs) -> None:
    at = app_as("viewer", "pages/privacy.py").run()
    acc = app_as.last
    next(b for b in at.button if b.label == "Prepare my data export").click().run()
    assert not at.exception
    assert at.get("download_button")
    data = at.session_state["privacy_export"]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        users = json.loads(zf.read("users.json"))
    assert {"manifest.json", "users.json", "users.csv", "sessions.json"} <= names
    assert users[0]["email"] == acc.email
    assert "password_hash" not in users[0]


def test_privacy_consent_is_recorded_with_a_time(app_as: AppAs) -> None:
    at = app_as("viewer", "pages/privacy.py").run()
    uid = app_as.last.user.user_id
    assert get_auth().get_consents(uid)["data_sharing"]["granted"] is False
    at.toggle[0].set_value(True).run()
    consent = get_auth().get_consents(uid)["data_sharing"]
    assert consent["granted"] is True
    assert consent["at"] is not None
    assert any("Consent recorded" in s.value for s in at.success)
    assert any("You currently give consent since" in c.value for c in at.caption)
    at.toggle[0].set_value(False).run()
    assert get_auth().get_consents(uid)["data_sharing"]["granted"] is False


def test_delete_my_account_needs_confirmation(app_as: AppAs, data_dir: Path) -> None:
    at = app_as("viewer", "pages/privacy.py").run()
    acc = app_as.last
    next(t for t in at.text_input if t.label.startswith("Type your username")).input("nope")
    next(b for b in at.button if b.label == "Delete my account for good").click().run()
    assert any("nothing was deleted" in e.value for e in at.error)
    assert get_auth().find_user(acc.username) is not None

    next(c for c in at.checkbox if c.label == "I understand this cannot be undone").check()
    next(t for t in at.text_input if t.label.startswith("Type your username")).input(acc.username)
    next(b for b in at.button if b.label == "Delete my account for good").click().run()
    assert not at.exception
    assert get_auth().find_user(acc.username) is None
    assert TOKEN_KEY not in at.session_state
    with pytest.raises(AuthError):
        get_auth().verify_persistent_token(acc.token)
    admin = app_as.account("admin").user
    stones = get_client().tombstones(acting_user=admin)
    assert stones["user_id"].to_list() == [acc.user.user_id]


def test_repeated_failures_pause_sign_in_with_a_clear_message(
    app_as: AppAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [time.time()]
    monkeypatch.setattr(accounts, "build_auth", lambda s: fast_auth(s, clock=lambda: now[0]))
    get_auth().register("heidi", "heidi@example.test", PASSWORD)
    for _ in range(12):  # no IP here: only the account counter (10 free failures) pauses
        with pytest.raises(InvalidCredentials):
            get_auth().login("heidi", "wrong password 123")
        now[0] += 600  # wait out each delay, so every failure counts
    now[0] -= 600  # ...but not the last one: the next attempt must wait
    at = sign_in_form(app_as(None).run(), "heidi", PASSWORD)
    assert any(e.value.startswith("Sign-in paused: too many failed attempts") for e in at.error)
    assert TOKEN_KEY not in at.session_state
