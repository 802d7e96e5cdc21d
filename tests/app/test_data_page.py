"""AppTest of the Data page: coverage, a history job with progress, live subscriptions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.ingest.service import stop_all
from pages._shared.format import md_escape
from tests.app.conftest import AppAs
from tests.app.helpers import rerun_until, texts

pytestmark = [pytest.mark.app, pytest.mark.slow]
PAGE = "pages/data.py"


@pytest.fixture(autouse=True)
def stop_services(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HFT_DEMO_VENUE", "true")
    yield
    stop_all()


def test_data_page_jobs_and_subscriptions(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Data"
    headers = [s.value for s in at.subheader]
    assert headers[:3] == ["Data coverage", "Fetch history", "Live subscriptions"]

    # a history job against the demo venue, followed to the end through the progress fragment
    at.selectbox(key="job_venue").set_value("demo")
    at.text_input(key="job_symbols").set_value("ETH/USDT")
    at.button[0].click()
    rerun_until(at, lambda: "done" in texts(at) or "failed" in texts(at))
    assert "rows written" in texts(at), texts(at)
    assert at.get("progress")

    # add then remove a live subscription
    at.selectbox(key="sub_venue").set_value("demo")
    at.text_input(key="sub_symbol").set_value("SOL/USDT")
    at.selectbox(key="sub_kind").set_value("trades")
    at.button[1].click().run()
    assert f"Subscribed to {md_escape('demo:SOL/USDT:trades')}" in texts(at)
    frame = at.dataframe[-1].value
    assert "demo:SOL/USDT:trades" in set(frame["stream"])
    at.selectbox(key="unsub_stream").set_value("demo:SOL/USDT:trades")
    at.button[2].click().run()
    assert f"Unsubscribed from {md_escape('demo:SOL/USDT:trades')}" in texts(at)


def test_data_page_refuses_bad_symbol(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE).run()
    at.selectbox(key="job_venue").set_value("demo")
    at.text_input(key="job_symbols").set_value(" , ")
    at.button[0].click().run()
    assert "at least one symbol" in texts(at)


def test_data_page_needs_analyst(app_as: AppAs) -> None:
    at = app_as("viewer", PAGE).run()
    assert any("analyst" in e.value for e in at.error)
