"""AppTests of the account and admin screens as a product: word headers, formatted numbers,
names instead of ids, live sessions only, reports in words, and an erasure that ends on a
confirmation screen."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Dataframe

from lakehouse import Plan
from lakehouse.tables import ALL_SPECS
from pages._shared import accounts
from pages._shared.accounts import get_auth, get_client
from pages._shared.auth import TOKEN_KEY
from pages._shared.format import MISSING
from tests.app.conftest import AppAs, fast_auth
from tests.app.helpers import texts

pytestmark = pytest.mark.app

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)


def columns(table: Dataframe) -> dict[str, dict[str, Any]]:
    """The column settings the page sent with a table (label, format, hidden)."""
    return {k: v for k, v in json.loads(table.proto.columns).items() if k != "_index"}


def shown(table: Dataframe) -> list[str]:
    """The headers a reader sees, in order (hidden columns left out)."""
    cfg = columns(table)
    return [
        cfg.get(name, {}).get("label", name)
        for name in table.value.columns
        if not cfg.get(name, {}).get("hidden")
    ]


def fmt_of(table: Dataframe, label: str) -> str | None:
    for c in columns(table).values():
        if c.get("label") == label:
            return c.get("type_config", {}).get("format")
    raise AssertionError(f"no column labelled {label!r} in {shown(table)}")


def column(table: Dataframe, label: str) -> list[Any]:
    cfg = columns(table)
    name = next(n for n in table.value.columns if cfg.get(n, {}).get("label") == label)
    return table.value[name].tolist()


def assert_no_none(at: AppTest) -> None:
    """No table on the page holds a missing value that would read "None" (or NaN, NaT)."""
    for table in at.dataframe:
        frame = table.value
        for name in frame.columns:
            for v in frame[name].tolist():
                assert v is not None, (name, frame)
                assert not (isinstance(v, float) and math.isnan(v)), (name, frame)
                assert v is not pd.NaT, (name, frame)
                assert str(v) != "None", (name, frame)


def table_after(at: AppTest, subheader: str) -> Dataframe:
    """The first table rendered after a subheader (the page's order of elements)."""
    seen = False
    for el in at.main:
        for node in _walk(el):
            if getattr(node, "type", None) == "subheader" and node.value == subheader:
                seen = True
            elif seen and isinstance(node, Dataframe):
                return node
    raise AssertionError(f"no table after {subheader!r}")


def _walk(node: Any) -> Any:
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _walk(child)


# --- audit log -----------------------------------------------------------------------------


def test_audit_table_shows_time_user_action_outcome_ip_with_ids_folded_away(
    app_as: AppAs,
) -> None:
    viewer = app_as.account("viewer")
    get_auth().login(viewer.username, viewer.password, ip="203.0.113.7", user_agent=CHROME)
    at = app_as("admin", "pages/admin_audit.py").run()
    assert not at.exception
    audit = at.dataframe[0]
    assert shown(audit) == ["Time (UTC)", "User", "Action", "Outcome", "IP"]
    assert fmt_of(audit, "Time (UTC)") == "YYYY-MM-DD HH:mm:ss"
    users = set(column(audit, "User"))
    assert {viewer.username, app_as.last.username} <= users
    assert viewer.user.user_id not in users  # ids are folded away...
    assert "203.0.113.7" in column(audit, "IP")
    assert_no_none(at)
    # ...into the details of one record, with the raw user agent.
    at.toggle(key="audit_details").set_value(True).run()
    audit = at.dataframe[0]
    assert {"Event ID", "User ID", "Browser (raw)", "Details"} <= set(shown(audit))
    assert viewer.user.user_id in column(audit, "User ID")
    assert CHROME in column(audit, "Browser (raw)")
    assert_no_none(at)


def test_audit_record_of_an_erased_user_shows_a_short_pseudonym(app_as: AppAs) -> None:
    viewer = app_as.account("viewer")
    uid = viewer.user.user_id
    get_client().erase_user(uid, acting_user=viewer.user)
    at = app_as("admin", "pages/admin_audit.py").run()
    assert not at.exception
    audit = at.dataframe[0]
    users = column(audit, "User")
    assert f"erased · {uid[:4]}…" in users
    assert viewer.username not in users
    assert uid not in users
    # a failed sign-in with a name that has no account shows as such
    with pytest.raises(Exception, match="invalid username or password"):
        get_auth().login("no-such-person", "wrong password 123")
    at.run()
    assert any(u.startswith("unknown name · ") for u in column(at.dataframe[0], "User"))


def test_audit_user_filter_takes_a_username_or_an_id(app_as: AppAs) -> None:
    viewer = app_as.account("viewer")
    with pytest.raises(Exception, match="invalid username or password"):
        get_auth().login(viewer.username, "wrong password 123")
    with pytest.raises(Exception, match="invalid username or password"):
        get_auth().login("Mallory", "wrong password 123")
    at = app_as("admin", "pages/admin_audit.py").run()
    user_box = next(t for t in at.text_input if t.label == "User")

    user_box.input(viewer.username.upper()).run()  # usernames are case-insensitive
    assert set(column(at.dataframe[0], "User")) == {viewer.username}
    assert {"register", "login"} <= set(column(at.dataframe[0], "Action"))

    user_box.input(viewer.user.user_id).run()
    assert set(column(at.dataframe[0], "User")) == {viewer.username}

    user_box.input("mallory").run()  # no account: the attempts made with that name
    records = at.dataframe[0]
    assert column(records, "Action") == ["login"]
    assert column(records, "Outcome") == ["failure"]
    assert any("no account named" in c.value.lower() for c in at.caption)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Matching records"] == "1"


# --- live sessions -------------------------------------------------------------------------


def test_live_sessions_list_only_live_ones_with_a_browser_summary(app_as: AppAs) -> None:
    viewer = app_as.account("viewer")
    auth = get_auth()
    kept = auth.login(viewer.username, viewer.password, ip="198.51.100.4", user_agent=CHROME)
    ended = auth.login(viewer.username, viewer.password, user_agent="curl/8.5.0")
    auth.logout(ended)
    auth.logout(viewer.token)
    at = app_as("admin", "pages/admin_users.py").run()
    assert not at.exception
    live = table_after(at, "Live sessions")
    assert shown(live) == ["User", "Signed in (UTC)", "Last seen (UTC)", "IP", "Browser"]
    owners = column(live, "User")
    assert sorted(owners) == sorted([viewer.username, app_as.last.username])
    browsers = column(live, "Browser")
    assert "Chrome 156 on Linux" in browsers
    assert not any("curl" in b for b in browsers)  # the ended session is not listed
    assert "198.51.100.4" in column(live, "IP")
    assert_no_none(at)
    assert auth.verify_persistent_token(kept).username == viewer.username


def test_my_sessions_table_has_word_headers_and_no_none(app_as: AppAs) -> None:
    at = app_as("viewer", "pages/account.py")
    acc = app_as.last
    get_auth().login(acc.username, acc.password, user_agent=CHROME)  # no IP known
    at.run()
    assert not at.exception
    table = at.dataframe[0]
    assert shown(table) == [
        "This browser",
        "Signed in (UTC)",
        "Last seen (UTC)",
        "Expires (UTC)",
        "IP",
        "Browser",
    ]
    assert MISSING in column(table, "IP")
    assert "Chrome 156 on Linux" in column(table, "Browser")
    assert_no_none(at)


# --- maintenance ---------------------------------------------------------------------------


def test_maintenance_reports_in_words_with_counts(
    app_as: AppAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [time.time() - 100 * 86400]  # an account used 100 days ago...
    monkeypatch.setattr(accounts, "build_auth", lambda s: fast_auth(s, clock=lambda: now[0]))
    old = app_as.account("viewer")
    get_auth().logout(old.token)  # ...whose session ended then
    cutoff = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=90)
    now[0] = time.time()
    at = app_as("admin", "pages/admin_maintenance.py").run()
    assert not at.exception
    admin = app_as.last.user
    expired = get_client().query_audit(acting_user=admin, end=cutoff - dt.timedelta(days=1))
    assert expired.height >= 3  # register, login, logout
    n = expired.height

    assert "cron" not in texts(at)  # product copy: what to schedule, the command in a code block
    assert any("hfthot lakehouse maintain" in c.value for c in at.code)

    next(b for b in at.button if b.label == "Run maintenance now").click().run(timeout=180)
    assert not at.exception
    done = [s.value for s in at.success]
    assert len(done) == 1, done
    pattern = (
        r"^Maintenance finished\. Compacted [\d,]+ files?, removed (?P<audit>[\d,]+) expired audit "
        r"records?, pruned (?P<sessions>[\d,]+) ended sessions?, vacuumed [\d,]+ files? across "
        r"(?P<tables>\d+) tables\.$"
    )
    match = re.match(pattern, done[0])
    assert match, done[0]
    assert int(match["audit"].replace(",", "")) == n
    assert match["sessions"] == "1"
    assert "pruned 1 ended session," in done[0]  # never "1 sessions"
    assert int(match["tables"]) == len(ALL_SPECS)

    report = at.dataframe[0]
    assert shown(report)[0] == "Table"
    assert "Files compacted" in shown(report)
    assert "Expired audit records removed" in shown(report)
    assert set(column(report, "Table")) >= {"users", "sessions", "audit_log"}
    assert fmt_of(report, "Files vacuumed") == "%,d"
    assert_no_none(at)


# --- table history -------------------------------------------------------------------------


def test_table_history_has_word_headers_and_readable_times(app_as: AppAs) -> None:
    at = app_as("admin", "pages/admin_tables.py").run()
    assert not at.exception
    commits = at.dataframe[0]
    assert shown(commits)[:3] == ["Version", "Time (UTC)", "Operation"]
    assert fmt_of(commits, "Time (UTC)") == "YYYY-MM-DD HH:mm:ss"
    rows = at.dataframe[1]
    assert all(not re.fullmatch(r"[a-z]+(_[a-z]+)+", h) for h in shown(rows)), shown(rows)
    assert_no_none(at)


# --- API keys ------------------------------------------------------------------------------


def test_api_keys_show_counts_with_separators_and_percent_used(
    app_as: AppAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        accounts,
        "build_auth",
        lambda s: fast_auth(s, plans={"binance": Plan(1300, 86400)}),
    )
    at = app_as("viewer", "pages/api_keys.py")
    acc = app_as.last
    uid = acc.user.user_id
    get_auth().save_api_keys(uid, {"binance": "bn-key-000011112222"}, True, password=acc.password)
    get_auth().update_query_count(uid, "binance", 1248)  # 96.0 % of 1,300 in this UTC day
    at.run()
    assert not at.exception
    alerts = [e.value for e in at.error]
    assert any(
        a.startswith("95% alert. Binance: 1,248 of 1,300 queries per day used (96.0%), 52 left")
        for a in alerts
    ), alerts
    table = at.dataframe[0]
    assert shown(table) == [
        "Provider",
        "Key",
        "Queries done",
        "Remaining",
        "Limit",
        "Per",
        "Used",
        "Resets (UTC)",
    ]
    assert fmt_of(table, "Queries done") == "%,d"
    assert fmt_of(table, "Limit") == "%,d"
    assert fmt_of(table, "Used") == "%,.1f%%"
    assert column(table, "Used") == [pytest.approx(96.0)]
    progress = [p.proto.text for p in at.get("progress")]
    assert progress == ["Binance: 52 of 1,300 left this day (96.0% used)"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Queries in the period"] == "1,248"
    assert metrics["Binance"] == "1,248"
    daily = table_after(at, "Billing summary")
    assert shown(daily) == ["Day (UTC)", "Provider", "Queries"]
    assert column(daily, "Provider") == ["Binance"]
    assert_no_none(at)


# --- erasure -------------------------------------------------------------------------------


def test_erasure_is_destructive_and_ends_on_a_confirmation_screen(app_as: AppAs) -> None:
    at = app_as("viewer", "pages/privacy.py").run()
    acc = app_as.last
    button = next(b for b in at.button if b.label == "Delete my account for good")
    assert button.proto.type == "primary"
    assert button.proto.icon == ":material/delete_forever:"
    assert any("cannot be undone" in e.value for e in at.error)  # the red warning step

    # Without ticking "I understand…" nothing happens.
    next(t for t in at.text_input if t.label.startswith("Type your username")).input(acc.username)
    button.click().run()
    assert any("nothing was deleted" in e.value for e in at.error)
    assert get_auth().find_user(acc.username) is not None

    next(c for c in at.checkbox if c.label == "I understand this cannot be undone").check()
    next(t for t in at.text_input if t.label.startswith("Type your username")).input(acc.username)
    next(b for b in at.button if b.label == "Delete my account for good").click().run()
    assert not at.exception
    assert get_auth().find_user(acc.username) is None
    assert TOKEN_KEY not in at.session_state
    assert [t.value for t in at.title] == ["Your account was deleted"]
    screen = texts(at)
    assert "sessions, access tokens, API keys and usage" in screen  # what was removed
    assert "random id" in screen  # what remains...
    assert "tombstone" in screen
    assert "Download my data" not in screen  # the privacy page itself is gone
    assert not at.dataframe
    assert any(b.label == "Go to the sign-in page" for b in at.button)


# --- the helpers behind those screens ------------------------------------------------------

FIREFOX_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0"
EDGE_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)


@pytest.mark.parametrize(
    ("agent", "summary"),
    [
        (CHROME, "Chrome 156 on Linux"),
        (FIREFOX_MAC, "Firefox 128 on macOS"),
        (EDGE_WIN, "Edge 131 on Windows"),
        (SAFARI_IPHONE, "Safari 17 on iOS"),
        (CHROME_ANDROID, "Chrome 126 on Android"),
        ("curl/8.5.0", "curl 8.5"),
        ("python-requests/2.32.3", "python-requests 2.32"),
        (None, MISSING),
        ("", MISSING),
    ],
)
def test_browsers_are_summarised_in_a_few_words(agent: str | None, summary: str) -> None:
    from pages._shared.account_view import browser_summary

    assert browser_summary(agent) == summary


def test_audit_users_are_named_or_shortened() -> None:
    from pages._shared.account_view import audit_user_label

    names = {"a" * 32: "alice"}
    erased = ["3f2a" + "0" * 28]
    assert audit_user_label("a" * 32, names, erased) == "alice"
    assert audit_user_label(erased[0], names, erased) == "erased · 3f2a…"
    assert audit_user_label("anon-9c1e" + "0" * 20, names, erased) == "unknown name · 9c1e…"
    assert audit_user_label("cli", names, erased) == "server shell"
    assert audit_user_label(None, names, erased) == MISSING


def test_maintenance_summary_counts_in_words() -> None:
    from pages._shared.account_view import maintenance_summary

    report = {
        "users": {"files_compacted": 12, "files_vacuumed": 40},
        "audit_log": {"expired_rows": 340, "files_compacted": 0, "files_vacuumed": 8},
        "sessions": {"ended_sessions_pruned": 5, "files_compacted": 0, "files_vacuumed": 0},
        "user_files": {"sql_history_files_erased": 1},
    }
    assert maintenance_summary(report) == (
        "Compacted 12 files, removed 340 expired audit records, pruned 5 ended sessions, "
        "vacuumed 48 files across 3 tables. Deleted 1 leftover file of erased accounts."
    )
    one = {"sessions": {"ended_sessions_pruned": 1, "files_compacted": 1, "files_vacuumed": 1}}
    assert maintenance_summary(one) == (
        "Compacted 1 file, removed 0 expired audit records, pruned 1 ended session, "
        "vacuumed 1 file across 1 table."
    )


def test_erasure_through_the_router_confirms_then_signs_in_afresh(app_as: AppAs) -> None:
    at = app_as("viewer").run()
    acc = app_as.last
    at.switch_page("pages/privacy.py").run()
    next(c for c in at.checkbox if c.label == "I understand this cannot be undone").check()
    next(t for t in at.text_input if t.label.startswith("Type your username")).input(acc.username)
    next(b for b in at.button if b.label == "Delete my account for good").click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Your account was deleted"]
    next(b for b in at.button if b.label == "Go to the sign-in page").click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Sign in to HFThot"]
