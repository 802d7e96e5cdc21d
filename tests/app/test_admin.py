"""AppTests of the Admin pages: denied below admin, users, audit filters, time travel, upkeep."""

from __future__ import annotations

import pytest

from lakehouse import AuthError
from pages._shared.accounts import get_auth
from tests.app.conftest import AppAs

pytestmark = pytest.mark.app

ADMIN_PAGES = [
    "pages/admin_users.py",
    "pages/admin_audit.py",
    "pages/admin_tables.py",
    "pages/admin_maintenance.py",
    "pages/admin_system.py",
]


@pytest.mark.parametrize("role", ["viewer", "analyst"])
@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_admin_pages_refuse_lower_roles_even_by_url(app_as: AppAs, role: str, page: str) -> None:
    at = app_as(role, page).run()
    assert not at.exception
    [error] = [e.value for e in at.error]
    assert error.startswith(f"This page needs the admin role; you are signed in as {role}.")
    assert "Ask an administrator" in error
    assert not at.title
    assert not at.dataframe
    assert not at.metric


def test_navigation_is_built_for_the_role(app_as: AppAs) -> None:
    # Every page is registered (so its URL resolves); one above the role is hidden from the
    # menu and refuses at its top.
    at = app_as("viewer").run()
    at.switch_page("pages/admin_users.py").run()
    assert next(e.value for e in at.error).startswith("This page needs the admin role")
    assert not at.title
    assert not at.dataframe
    admin = app_as("admin").run()
    admin.switch_page("pages/admin_users.py").run()
    assert [t.value for t in admin.title] == ["Users"]


def test_users_page_changes_roles_and_disables(app_as: AppAs) -> None:
    target = app_as.account("viewer")
    at = app_as("admin", "pages/admin_users.py").run()
    assert not at.exception
    users = at.dataframe[0].value
    assert set(users["username"]) == {target.username, app_as.last.username}

    at.selectbox[0].set_value(target.user.user_id).run()
    at.selectbox(key=f"role_{target.user.user_id}").set_value("analyst").run()
    next(b for b in at.button if b.label == "Apply role").click().run()
    assert any("is now analyst" in s.value for s in at.success)
    assert get_auth().get_user(target.user.user_id).role == "analyst"

    at.selectbox[0].set_value(target.user.user_id).run()
    next(b for b in at.button if b.label.startswith("Disable account")).click().run()
    assert get_auth().get_user(target.user.user_id).disabled
    with pytest.raises(AuthError):
        get_auth().verify_persistent_token(target.token)


def test_admin_ends_another_users_session(app_as: AppAs) -> None:
    target = app_as.account("viewer")
    at = app_as("admin", "pages/admin_users.py").run()
    sessions = at.dataframe[1].value
    assert set(sessions["user"]) == {target.username, app_as.last.username}
    ends = next(s for s in at.selectbox if s.label == "End a session")
    ends.set_value(target.user.session_id).run()
    next(b for b in at.button if b.label == "End session").click().run()
    assert any("Session ended" in s.value for s in at.success)
    with pytest.raises(AuthError):
        get_auth().verify_persistent_token(target.token)


def test_audit_log_filters(app_as: AppAs) -> None:
    viewer = app_as.account("viewer")
    with pytest.raises(AuthError):
        get_auth().login(viewer.username, "wrong password 123")
    at = app_as("admin", "pages/admin_audit.py").run()
    assert not at.exception
    everything = at.dataframe[0].value
    assert {"login", "register", "set role"} <= set(everything["action"])

    next(s for s in at.selectbox if s.label == "Action").set_value("login").run()
    logins = at.dataframe[0].value
    assert set(logins["action"]) == {"login"}
    assert set(logins["outcome"]) == {"success", "failure"}

    next(s for s in at.selectbox if s.label == "Outcome").set_value("failure").run()
    failures = at.dataframe[0].value
    assert len(failures) == 1
    assert failures.iloc[0]["user_id"] == viewer.user.user_id
    assert {m.label: m.value for m in at.metric}["Matching records"] == "1"

    next(t for t in at.text_input if t.label == "User").input("0" * 32).run()
    assert len(at.dataframe[0].value) == 0


def test_table_history_time_travel_and_restore(app_as: AppAs) -> None:
    target = app_as.account("viewer")
    at = app_as("admin", "pages/admin_tables.py").run()
    assert not at.exception
    commits = at.dataframe[0].value
    assert len(commits) >= 3  # create, the two registrations, role changes
    latest = int(commits["version"].max())
    before_role = latest  # the admin's own role change is the newest users commit
    get_auth().set_role(app_as.last.user, target.user.user_id, "analyst")
    at.run()
    assert int(at.dataframe[0].value["version"].max()) == latest + 1

    version_box = next(s for s in at.selectbox if s.label == "Show the table as of version")
    version_box.set_value(before_role).run()
    old_rows = at.dataframe[1].value
    assert "password_hash" not in old_rows.columns
    row = old_rows[old_rows["user_id"] == target.user.user_id].iloc[0]
    assert row["role"] == "viewer"

    at.checkbox[0].check()
    next(b for b in at.button if b.label == "Restore").click().run()
    assert not at.error, [e.value for e in at.error]
    assert any(f"restored to version {before_role}" in s.value for s in at.success)
    assert get_auth().get_user(target.user.user_id).role == "viewer"


def test_restore_needs_the_confirmation_box(app_as: AppAs) -> None:
    app_as.account("viewer")
    at = app_as("admin", "pages/admin_tables.py").run()
    version_box = next(s for s in at.selectbox if s.label == "Show the table as of version")
    version_box.set_value(int(at.dataframe[0].value["version"].min())).run()
    next(b for b in at.button if b.label == "Restore").click().run()
    assert any("nothing was restored" in e.value for e in at.error)
    assert len(get_auth().list_users(app_as.last.user)) == 2


def test_maintenance_runs_with_progress_and_a_report(app_as: AppAs) -> None:
    at = app_as("admin", "pages/admin_maintenance.py").run()
    assert not at.exception
    next(b for b in at.button if b.label == "Run maintenance now").click().run(timeout=180)
    assert not at.exception
    assert any("Maintenance finished" in s.value for s in at.success)
    report = at.dataframe[0].value
    assert {"users", "sessions", "audit_log", "api_keys"} <= set(report["table"])
    assert "files_vacuumed" in report.columns
    assert at.get("progress")
