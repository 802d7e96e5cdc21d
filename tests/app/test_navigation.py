"""AppTests of the portal's shell: refusals that say what happened, the return to a bookmarked
page after signing in, a Home written for the user, the admin System page, and the sign-in
form's messages for empty fields."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.ingest.service import stop_all
from pages._shared.accounts import get_auth
from pages._shared.auth import NEXT_KEY
from tests.app.conftest import AppAs
from tests.app.helpers import rerun_until, texts

pytestmark = pytest.mark.app


def sign_in_form(at: AppTest, username: str, password: str) -> AppTest:
    inputs = {t.label: t for t in at.text_input}
    inputs["Username"].input(username)
    inputs["Password"].input(password)
    next(b for b in at.button if b.label == "Sign in").click()
    return at.run()


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def links(at: AppTest) -> list[str]:
    """The labels of the page links on screen."""
    return [e.proto.label for e in at.get("page_link")]


# --- refusals -----------------------------------------------------------------------------


def test_visitor_on_a_gated_page_signs_in_there_and_lands_on_it(app_as: AppAs) -> None:
    analyst = app_as.account("analyst")
    at = app_as(None).run()
    at.switch_page("pages/regimes.py").run()  # the page exists for a visitor, and refuses
    assert not at.exception
    assert [h.value for h in at.header] == ["Sign in to HFThot"]
    assert not at.title
    assert any(w.value.startswith("Sign in to continue") for w in at.warning)
    assert "Regimes" in " ".join(w.value for w in at.warning)
    assert not at.error
    assert not at.selectbox  # none of the page's own inputs
    at = sign_in_form(at, analyst.username, analyst.password)
    assert not at.exception
    assert titles(at) == ["Regimes"]


def test_bookmark_is_kept_when_signing_in_from_the_menu(app_as: AppAs) -> None:
    analyst = app_as.account("analyst")
    at = app_as(None).run()
    at.switch_page("pages/mean_reversion.py").run()
    at.switch_page("pages/login.py").run()
    at = sign_in_form(at, analyst.username, analyst.password)
    assert not at.exception
    assert titles(at) == ["Mean reversion"]


@pytest.mark.parametrize(
    "target", ["https://evil.example/phish", "//evil.example", "../app.py", "pages/nope.py", 7]
)
def test_the_return_target_is_only_ever_a_portal_page(app_as: AppAs, target: object) -> None:
    viewer = app_as.account("viewer")
    at = app_as(None).run()
    at.session_state[NEXT_KEY] = target
    at = sign_in_form(at, viewer.username, viewer.password)
    assert not at.exception
    assert titles(at) == ["HFThot"]  # Home


@pytest.mark.parametrize(
    ("role", "page", "needed"),
    [
        ("viewer", "pages/regimes.py", "analyst"),
        ("viewer", "pages/sql_explorer.py", "analyst"),
        ("analyst", "pages/admin_users.py", "admin"),
        ("analyst", "pages/admin_system.py", "admin"),
    ],
)
def test_signed_in_user_is_told_the_role_and_whom_to_ask(
    app_as: AppAs, role: str, page: str, needed: str
) -> None:
    at = app_as(role).run()
    at.switch_page(page).run()  # hidden from the menu, still a known page
    assert not at.exception
    [error] = [e.value for e in at.error]
    assert error.startswith(f"This page needs the {needed} role")
    assert f"signed in as {role}" in error
    assert "administrator" in error
    assert not at.title
    assert not at.dataframe


# --- Home -----------------------------------------------------------------------------------


def test_viewer_home_says_what_they_can_do_and_how_to_get_more(
    data_dir: Path, app_as: AppAs
) -> None:
    at = app_as("viewer").run(timeout=120)
    assert not at.exception
    assert titles(at) == ["HFThot"]
    shown = texts(at)
    assert "Live Market" in links(at)
    assert "Regimes" not in links(at)
    assert "analyst role" in shown
    assert "Regimes" in shown  # named, so the viewer learns it exists
    assert "administrator" in shown
    for operator_fact in (".so", str(data_dir), "Free disk", "Engine version", "µs", "PyPI"):
        assert operator_fact not in shown
    assert not at.metric or all("hit" not in m.label.lower() for m in at.metric)


def test_analyst_home_links_the_analytics_pages(app_as: AppAs) -> None:
    at = app_as("analyst").run(timeout=120)
    assert not at.exception
    assert {"Live Market", "Regimes", "SQL Explorer", "Mean reversion"} <= set(links(at))
    assert "System" not in links(at)
    assert "needs the analyst role" not in texts(at)


def test_admin_home_links_the_system_page(app_as: AppAs) -> None:
    at = app_as("admin").run(timeout=120)
    assert not at.exception
    assert {"System", "Users", "Regimes"} <= set(links(at))


def test_home_lists_the_markets_with_freshness_and_source(app_as: AppAs) -> None:
    at = app_as("viewer").run(timeout=120)
    assert not at.exception
    markets = next(d.value for d in at.dataframe if "Symbol" in d.value.columns)
    assert {"Symbol", "Venue", "Timeframe", "Last bar", "Age", "Source"} <= set(markets.columns)
    assert {"SP500", "NASDAQ", "GOOG", "EURUSD"} <= set(markets["Symbol"])
    bundled = markets[markets["Venue"] == "bundled"]
    assert all(source and "SIMULATED" not in source for source in bundled["Source"])
    assert all(age and age != "None" for age in markets["Age"])


def test_home_shows_the_users_quota_alerts(app_as: AppAs) -> None:
    at = app_as("viewer")
    acc = app_as.last
    auth = get_auth()
    auth.save_api_keys(
        acc.user.user_id, {"alpha_vantage": "av-key-000011112222"}, True, password=acc.password
    )
    auth.update_query_count(acc.user.user_id, "alpha_vantage", 20)  # 20 of 25: 80 %
    at.run(timeout=120)
    assert not at.exception
    assert any("Alpha Vantage" in w.value and "20 of 25" in w.value for w in at.warning)
    assert "API keys & quotas" in links(at)


def test_home_says_when_nothing_is_running(app_as: AppAs) -> None:
    at = app_as("viewer").run(timeout=120)
    assert not at.exception
    assert "No live streams or history jobs are running" in texts(at)


@pytest.fixture
def demo_venue(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HFT_DEMO_VENUE", "true")
    yield
    stop_all()


@pytest.mark.slow
def test_home_shows_running_streams(demo_venue: None, app_as: AppAs) -> None:
    at = app_as("viewer")

    def lines() -> list[str]:
        return [m.value.replace("\\", "") for m in at.markdown]

    rerun_until(at, lambda: any("4 streams connected" in line for line in lines()), timeout=60)
    running = [line for line in lines() if " on demo (SIMULATED): " in line]
    assert {line.split(" on ")[0] for line in running} == {"BTC/USDT", "ETH/USDT"}


# --- System (admin) ---------------------------------------------------------------------------


def test_system_page_shows_the_engine_diagnostics_to_admins(data_dir: Path, app_as: AppAs) -> None:
    at = app_as("admin").run()
    at.switch_page("pages/admin_system.py").run(timeout=120)
    assert not at.exception
    assert titles(at) == ["System"]
    labels = {m.label: m.value for m in at.metric}
    assert labels["Native module"] == "loaded"
    assert labels["Engine version"]
    assert labels["Free disk"].split()[-1] in {"GiB", "TiB", "MiB"}
    for label in ("Hot hit rate", "Hot hit p50", "Warm read p50", "Warm bytes"):
        assert label in labels
    assert any("core._native" in s.value for s in at.success)
    assert any(str(data_dir) in t.value for t in at.text)
    tables = [t.value for t in at.dataframe]
    tiers = next(t for t in tables if "tier" in t.columns)
    assert set(tiers["tier"]) == {"hot", "warm", "rollup", "analytics"}
    coverage = next(t for t in tables if "files" in t.columns)
    assert {"SP500", "NASDAQ", "GOOG", "EURUSD"} <= set(coverage["symbol"])
    assert (coverage["rows"] > 1000).all()
    assert "Market streams" in [s.value for s in at.subheader]


@pytest.mark.parametrize("role", [None, "viewer", "analyst"])
def test_system_page_is_for_admins_only(app_as: AppAs, role: str | None) -> None:
    at = app_as(role, "pages/admin_system.py").run()
    assert not at.exception
    assert "System" not in titles(at)
    assert not at.metric
    assert not at.text


# --- sign-in messages -------------------------------------------------------------------------


def login_failures() -> int:
    audit = get_auth().store.audit_table.read()
    return audit.filter((audit["action"] == "login") & (audit["outcome"] == "failure")).height


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("someone", "", "Enter your password."),
        ("", "a long passphrase 1", "Enter your username."),
        ("   ", "", "Enter your username and password."),
    ],
)
def test_empty_fields_say_what_to_enter_and_count_no_failure(
    app_as: AppAs, username: str, password: str, message: str
) -> None:
    get_auth().register("someone", "someone@example.test", "a long passphrase 1")
    at = sign_in_form(app_as(None).run(), username, password)
    assert not at.exception
    assert [e.value for e in at.error] == [message]
    assert login_failures() == 0


def test_a_wrong_password_still_says_invalid(app_as: AppAs) -> None:
    get_auth().register("someone", "someone@example.test", "a long passphrase 1")
    at = sign_in_form(app_as(None).run(), "someone", "not the passphrase")
    assert [e.value for e in at.error] == ["Invalid username or password."]
    assert login_failures() == 1
