"""AppTests of the Access tokens section of My account: create a token (password again), see
it once, see it listed, revoke it; and the refusals a user can run into."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from lakehouse import InvalidToken
from pages._shared.accounts import get_auth
from tests.app.conftest import AppAs
from tests.app.helpers import texts
from tests.app.test_account_polish import assert_no_none, column, shown, table_after

pytestmark = pytest.mark.app

PAGE = "pages/account.py"


def fill_token_form(at: AppTest, name: str, scopes: list[str], days: int, password: str) -> None:
    next(t for t in at.text_input if t.label == "Token name").input(name)
    next(m for m in at.multiselect if m.label == "Scopes").set_value(scopes)
    next(n for n in at.number_input if n.label == "Expires in (days)").set_value(days)
    next(t for t in at.text_input if t.label.startswith("Your password")).input(password)
    next(b for b in at.button if b.label == "Create token").click().run()


def test_create_see_once_list_and_revoke(app_as: AppAs) -> None:
    at = app_as("viewer", PAGE).run()
    acc = app_as.last
    assert not at.exception
    assert "You have no access tokens yet." in texts(at)
    assert "Authorization: Bearer <token>" in texts(at)

    fill_token_form(at, "research notebook", ["market:read", "account:read"], 7, acc.password)
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    [code] = at.code
    token = code.value
    assert token.startswith("hft_pat_")
    assert any("will not be shown again" in w.value for w in at.warning)
    who = get_auth().authenticate_access_token(token, "account:read")
    assert who.user.user_id == acc.user.user_id

    tokens = table_after(at, "Access tokens")
    assert shown(tokens) == [
        "Name",
        "Scopes",
        "Created (UTC)",
        "Last used (UTC)",
        "Expires (UTC)",
        "Status",
    ]
    assert column(tokens, "Name") == ["research notebook"]
    assert column(tokens, "Scopes") == ["market:read, account:read"]
    assert column(tokens, "Status") == ["active"]
    assert_no_none(at)

    at.run()  # any later run: the token is gone from the screen for good
    assert not at.code
    assert token not in texts(at)

    picker = next(s for s in at.selectbox if s.label == "Revoke a token")
    picker.set_value(who.token_id).run()
    next(b for b in at.button if b.label == "Revoke token").click().run()
    assert not at.exception
    assert any("revoked" in s.value for s in at.success)
    assert column(table_after(at, "Access tokens"), "Status") == ["revoked"]
    assert next(s for s in at.selectbox if s.label == "Revoke a token").disabled
    with pytest.raises(InvalidToken, match="revoked"):
        get_auth().authenticate_access_token(token, "market:read")


def test_a_wrong_password_creates_nothing(app_as: AppAs) -> None:
    at = app_as("viewer", PAGE).run()
    acc = app_as.last
    fill_token_form(at, "ci", ["market:read"], 30, "wrong password 123")
    assert any("password is not correct" in e.value for e in at.error)
    assert not at.code
    assert get_auth().list_access_tokens(acc.user.user_id) == []


def test_a_scope_above_the_role_is_explained(app_as: AppAs) -> None:
    at = app_as("viewer", PAGE).run()
    acc = app_as.last
    fill_token_form(at, "sql", ["sql:run"], 30, acc.password)
    assert at.code
    assert any("does not allow sql:run" in i.value for i in at.info)
    [listed] = get_auth().list_access_tokens(acc.user.user_id)
    assert listed.scopes == ("sql:run",)
