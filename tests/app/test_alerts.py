"""The Alerts page: create a rule, see a firing written by the evaluator, mark it read; the
sidebar badge and the toast on any page."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from pages._shared.format import md_escape
from tests.app.conftest import AppAs
from tests.app.helpers import texts
from tests.integration.alerts.conftest import SYMBOL, VENUE, bar_frame

pytestmark = pytest.mark.app

PAGE = "pages/alerts.py"
START = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(hours=2)


def write_bars(closes: list[float], offset: int) -> None:
    from pages._shared.services import get_services

    frame = bar_frame(closes, START + dt.timedelta(minutes=offset))
    get_services().engine.store.write_bars(frame)


def widget(items: Any, label: str) -> Any:
    return next(w for w in items if w.label == label)


def create_zscore_rule(at: AppTest, name: str, webhook: str = "") -> AppTest:
    widget(at.selectbox, "Kind").set_value("zscore").run()
    widget(at.text_input, "Name").set_value(name)
    widget(at.selectbox, "Series").set_value((VENUE, SYMBOL, "1m"))
    widget(at.number_input, "Window (bars)").set_value(10)
    widget(at.number_input, "Bound (±z)").set_value(1.5)
    widget(at.number_input, "Cool-down (s)").set_value(0)
    widget(at.text_input, "Webhook URL (optional)").set_value(webhook)
    widget(at.button, "Create rule").click()
    return at.run()


def test_create_rule_see_the_firing_and_mark_it_read(app_as: AppAs) -> None:
    from pages._shared.services import get_services

    write_bars([100.0, 100.2] * 15, 0)
    at = app_as("analyst", PAGE).run()
    assert not at.exception
    assert any("No alert has fired yet" in i.value for i in at.info)
    at = create_zscore_rule(at, "ALRT stretch")
    assert not at.exception
    assert any("Created ALRT stretch" in s.value for s in at.success)
    rules = at.dataframe[0].value
    assert list(rules["name"]) == ["ALRT stretch"]
    assert list(rules["watches"]) == [f"{SYMBOL} · {VENUE} · 1m"]
    assert list(rules["rule"]) == ["zscore: window=10, bound=1.5"]

    evaluator = get_services().alerts.evaluator  # the thread's own pass, run here in step
    assert evaluator.tick() == 0
    write_bars([105.0], 30)
    assert evaluator.tick() == 1
    at.run()
    assert not at.exception
    assert at.tabs[0].label == "Inbox (1)"
    assert "1 unread alert" in texts(at)
    inbox = at.dataframe[0].value
    assert list(inbox["new"]) == ["●"]
    assert "ALRT stretch" in inbox["message"][0]
    assert "z-score of close over 10 bars" in inbox["message"][0]
    status = at.dataframe[1].value
    assert list(status["status"]) == ["ok"]

    widget(at.button, "Mark all read").click().run()
    assert not at.exception
    assert at.tabs[0].label == "Inbox"
    assert list(at.dataframe[0].value["new"]) == [""]
    assert get_services().alerts.unread_count(app_as.last.user) == 0


def test_webhook_secret_is_shown_once_and_bad_input_is_refused(app_as: AppAs) -> None:
    write_bars([100.0, 100.2] * 15, 0)
    at = app_as("analyst", PAGE).run()
    at = create_zscore_rule(at, "hooked", webhook="https://93.184.215.14/hook")
    assert not at.exception
    shown = [c.value for c in at.code]
    assert len(shown) == 1
    assert len(shown[0]) >= 40
    assert any("shown only this once" in w.value for w in at.warning)
    at.run()
    assert [c.value for c in at.code] == []
    assert list(at.dataframe[0].value["webhook"]) == [True]

    at = create_zscore_rule(at, "bad", webhook="ftp://example.com/x")
    assert any("Not created" in e.value and "must start with" in e.value for e in at.error)
    at = create_zscore_rule(at, "local", webhook="http://127.0.0.1:9/x")
    assert any("HFT\\_ALERT\\_WEBHOOK\\_ALLOW\\_PRIVATE" in e.value for e in at.error)


def test_disable_and_delete_a_rule(app_as: AppAs) -> None:
    write_bars([100.0, 100.2] * 15, 0)
    at = create_zscore_rule(app_as("analyst", PAGE).run(), "short-lived")
    widget(at.button, "Disable").click().run()
    assert list(at.dataframe[0].value["status"]) == ["disabled"]
    widget(at.button, "Enable").click().run()
    assert list(at.dataframe[0].value["status"]) != ["disabled"]
    assert widget(at.button, "Delete").disabled
    widget(at.checkbox, "Yes, delete it").check().run()
    widget(at.button, "Delete").click().run()
    assert not at.exception
    assert any("No rules yet" in i.value for i in at.info)


def test_badge_and_toast_on_any_page(app_as: AppAs) -> None:
    from core.alerts import rules as r
    from pages._shared.services import get_services

    at = app_as("analyst").run()
    assert not at.exception
    assert not [p for p in at.get("page_link") if "unread" in str(p.proto.label)]
    user = app_as.last.user
    alerts = get_services().alerts
    assert alerts.running  # app.py started the evaluator
    created = alerts.create_rule(
        user, "lvl", "price_cross", {"level": 1}, venue=VENUE, symbol=SYMBOL
    )
    alerts.fire(created.rule, r.Reading(1, 1.5, "close 1.5 is above 1", None))
    at.run()
    assert not at.exception
    assert [t.value for t in at.toast] == [
        md_escape("lvl (ALRT/USD · synthetic · 1m): close 1.5 is above 1")
    ]
    assert any("Alerts: 1 unread" in str(p.proto.label) for p in at.get("page_link"))
    at.run()
    assert list(at.toast) == []  # a toast once per firing
    alerts.mark_read(user, "all")
    at.run()
    assert not [p for p in at.get("page_link") if "unread" in str(p.proto.label)]


def test_viewer_is_turned_away(app_as: AppAs) -> None:
    at = app_as("viewer", PAGE).run()
    assert any("analyst" in e.value for e in at.error)
    assert not any(b.label == "Create rule" for b in at.button)
