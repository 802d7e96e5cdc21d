"""AppTest of the Data page: coverage, a history job with progress, live subscriptions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import ccxt
import pytest
from streamlit.testing.v1 import AppTest

from core.ingest.ccxt_ws import VenueConfig
from core.ingest.service import running, stop_all, wait_for
from pages._shared.format import md_escape
from tests.app.conftest import AppAs
from tests.app.helpers import rerun_until, texts
from tests.integration.ingest.recorded import loopback_urls

pytestmark = [pytest.mark.app, pytest.mark.slow]
PAGE = "pages/data.py"


def button(at: AppTest, label: str) -> Any:
    (found,) = [b for b in at.button if b.label == label]
    return found


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
    assert headers[:4] == ["Data coverage", "Providers", "Fetch history", "Live subscriptions"]

    # every provider of the registry is listed, keyed ones say they need the user's key
    providers = next(d.value for d in at.dataframe if "provider" in d.value.columns)
    listed = dict(zip(providers["provider"], providers["key"], strict=True))
    assert listed["Alpaca"] == listed["Alpha Vantage"] == "needs your key"
    assert listed["Binance"] == listed["Polymarket"] == "public"
    assert "Demo venue" in listed  # running here, so listed; SIMULATED in the venue picker
    used = dict(zip(providers["provider"], providers["used_now"], strict=True))
    assert re.fullmatch(r"[\d,]+ of 6,000 \(resets in .+\)", used["Binance"]), used
    assert used["Alpaca"] == "—"  # counted per user key, on the API keys page

    # a history job against the demo venue, followed to the end through the progress fragment
    at.selectbox(key="job_venue").set_value("demo")
    at.text_input(key="job_symbols").set_value("ETH/USDT")
    at.button(key="job_start").click()
    rerun_until(at, lambda: "done" in texts(at) or "failed" in texts(at))
    assert "rows written" in texts(at), texts(at)
    assert at.get("progress")

    # add then remove a live subscription
    at.selectbox(key="sub_venue").set_value("demo")
    at.text_input(key="sub_symbol").set_value("SOL/USDT")
    at.selectbox(key="sub_kind").set_value("trades")
    button(at, "Subscribe").click().run()
    assert f"Subscribed to {md_escape('demo:SOL/USDT:trades')}" in texts(at)
    frame = at.dataframe[-1].value
    assert "demo:SOL/USDT:trades" in set(frame["stream"])
    at.selectbox(key="unsub_stream").set_value("demo:SOL/USDT:trades")
    button(at, "Unsubscribe").click().run()
    assert f"Unsubscribed from {md_escape('demo:SOL/USDT:trades')}" in texts(at)


def test_data_page_refuses_bad_symbol(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE).run()
    at.selectbox(key="job_venue").set_value("demo")
    at.text_input(key="job_symbols").set_value(" , ")
    at.button(key="job_start").click().run()
    assert "at least one symbol" in texts(at)


def test_data_page_needs_analyst(app_as: AppAs) -> None:
    at = app_as("viewer", PAGE).run()
    assert any("analyst" in e.value for e in at.error)


def test_data_page_defaults_work_offline(app_as: AppAs) -> None:
    """The form's defaults name the simulated demo venue; a job started without touching
    them completes with no network, and its "N rows written" is what the store holds."""
    at = app_as("analyst", PAGE).run()
    assert not at.exception, at.exception
    venue = at.selectbox(key="job_venue")
    assert venue.value == "demo"
    assert "Demo venue (SIMULATED, works offline)" in venue.options
    assert "Binance (public, needs network)" in venue.options
    at.button(key="job_start").click()
    rerun_until(at, lambda: "done" in texts(at) or "failed" in texts(at))
    done = [s.value for s in at.success if "done" in s.value]
    assert done, texts(at)
    found = re.search(r"done: ([\d,]+) rows? written", done[0])
    assert found, done[0]
    shown = int(found.group(1).replace(",", ""))
    (service,) = running()
    (job,) = service.jobs()
    assert shown == job.rows > 0
    stored = service.store.get_bars(  # type: ignore[attr-defined]
        "BTC/USDT", job.since, job.started, "1m", "demo"
    )
    assert stored.height == shown
    progress = at.get("progress")[-1].proto.text
    assert "rows written" in progress or "already stored" in progress, progress


def test_data_page_shows_an_unreachable_venue_in_words(app_as: AppAs) -> None:
    """Binance with no network: a plain sentence, the technical detail folded away."""
    at = app_as("analyst", PAGE).run()
    # the real Binance client, pointed at a host name that never resolves (as offline)
    (service,) = running()
    urls = loopback_urls(ccxt.binance(), "https://api.binance.invalid")
    service.manager.add_venue(VenueConfig("binance", "binance", urls))
    at.selectbox(key="job_venue").set_value("binance")
    at.button(key="job_start").click()
    rerun_until(at, lambda: "failed" in texts(at) or "done" in texts(at), timeout=30)
    errors = [e.value for e in at.error]
    assert any(
        md_escape("Binance is not reachable from this server (no network?)") in e for e in errors
    ), errors
    assert not any("NetworkError" in e for e in errors), errors
    assert [x.label for x in at.expander] == ["Details"]
    assert "api.binance.invalid" in at.expander[0].code[0].value


def test_a_keyed_provider_job_with_the_users_key(
    app_as: AppAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alpha Vantage with the analyst's own key: the estimate before the job, the job's
    request count after, and the key's counter moved by exactly what the server saw."""
    from datetime import date

    from pages._shared.accounts import get_auth
    from tests.integration.ingest.recorded import recorded, serving

    replies = [
        recorded("alpha_vantage/intraday_IBM_5min_2026-06.json"),
        recorded("alpha_vantage/intraday_IBM_5min_2026-07.json"),
    ]
    with serving({"/query": replies}) as srv:
        monkeypatch.setenv("HFT_ALPHA_VANTAGE_URL", srv.base)
        at = app_as("analyst", PAGE).run()
        acc = app_as.last
        at.selectbox(key="job_venue").set_value("alpha_vantage").run()
        assert "Alpha Vantage (needs your API key)" in at.selectbox(key="job_venue").options
        at.selectbox(key="job_tf").set_value("5m")
        at.date_input(key="job_since").set_value(date(2026, 6, 29))
        at.text_input(key="job_symbols").set_value("IBM").run()
        assert "save your key on the API keys page first" in texts(at)
        at.button(key="job_start").click().run()
        refusal = "Alpha Vantage needs your API key: save one on the API keys page"
        assert md_escape(refusal) in texts(at)

        uid = acc.user.user_id
        key = "AVKEY0123456789"
        get_auth().save_api_keys(uid, {"alpha_vantage": key}, True, password=acc.password)
        at.run()
        months = (date.today().year - 2026) * 12 + date.today().month - 6 + 1
        estimate = f"About {months} requests to Alpha Vantage; your key has 25 of 25 left"
        assert md_escape(estimate) in texts(at)
        at.button(key="job_start").click()
        rerun_until(at, lambda: "done" in texts(at) or "failed" in texts(at), timeout=30)
        sent = len(srv.requests)
        assert sent == months  # the last recorded month is repeated for later months
        assert f"{sent} requests sent to the provider" in texts(at), texts(at)
        assert {r.query["apikey"] for r in srv.requests} == {key}
        used = f"Your Alpha Vantage key: {sent} of 25 requests used this day"
        assert used in texts(at)
    done = get_auth().get_api_keys(uid)["provider_keys"]["alpha_vantage"]["queries_done"]
    assert done == sent


def test_a_job_at_the_limit_pauses_with_words_and_can_be_cancelled(
    app_as: AppAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import date

    from pages._shared.accounts import get_auth
    from tests.integration.ingest.recorded import recorded, serving

    with serving({"/query": [recorded("alpha_vantage/intraday_IBM_5min_2026-06.json")]}) as srv:
        monkeypatch.setenv("HFT_ALPHA_VANTAGE_URL", srv.base)
        at = app_as("analyst", PAGE).run()
        acc = app_as.last
        uid = acc.user.user_id
        get_auth().save_api_keys(
            uid, {"alpha_vantage": "AVKEY0123456789"}, True, password=acc.password
        )
        get_auth().update_query_count(uid, "alpha_vantage", 24)  # one request left today
        at.selectbox(key="job_venue").set_value("alpha_vantage").run()
        at.selectbox(key="job_tf").set_value("5m")
        at.date_input(key="job_since").set_value(date(2026, 6, 29))
        at.text_input(key="job_symbols").set_value("IBM").run()
        assert "your key has only 1 left this day" in texts(at)
        at.button(key="job_start").click()
        rerun_until(at, lambda: "is paused" in texts(at), timeout=30)
        assert "It carries on by itself at" in texts(at)
        assert "95% alert" in texts(at)
        assert len(srv.requests) == 1  # the second month was never asked
        at.button(key="job_cancel").click()
        rerun_until(at, lambda: "failed" in texts(at), timeout=30)
        assert "cancelled by the user while paused" in texts(at)
        assert len(srv.requests) == 1


def test_live_subscriptions_offer_keyed_providers_and_need_the_users_key(
    app_as: AppAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alpaca and Finnhub are offered for live streams; without a saved key the page says where
    to save one; with it, a Finnhub trades stream starts with the key in its token."""
    from pages._shared.accounts import get_auth
    from tests.integration.ingest.test_provider_streams import (
        FINNHUB_KEY,
        ProviderServer,
        finnhub_sessions,
    )

    with ProviderServer("finnhub", finnhub_sessions()) as srv:
        monkeypatch.setenv("HFT_FINNHUB_WS_URL", srv.url)
        at = app_as("analyst", PAGE).run()
        acc = app_as.last
        options = at.selectbox(key="sub_venue").options
        assert options[0] == "Demo venue (SIMULATED, works offline)"
        assert {"Alpaca (needs your API key)", "Finnhub (needs your API key)"} <= set(options)
        assert "Alpha Vantage (needs your API key)" not in options  # no live stream
        providers = next(d.value for d in at.dataframe if "provider" in d.value.columns)
        live = dict(zip(providers["provider"], providers["live"], strict=True))
        assert live["Finnhub"] == "trades"
        assert live["Alpaca"] == "ohlcv, trades, quotes"

        at.selectbox(key="sub_venue").set_value("finnhub")
        at.text_input(key="sub_symbol").set_value("AAPL")
        at.selectbox(key="sub_kind").set_value("trades")
        button(at, "Subscribe").click().run()
        refusal = "Finnhub needs your API key: save one on the API keys page"
        assert md_escape(refusal) in texts(at)

        get_auth().save_api_keys(
            acc.user.user_id, {"finnhub": FINNHUB_KEY}, True, password=acc.password
        )
        button(at, "Subscribe").click().run()
        assert f"Subscribed to {md_escape('finnhub:AAPL:trades')}" in texts(at)
        (service,) = running()
        key = next(k for k in service.subscriptions() if k.venue == "finnhub")
        assert wait_for(lambda: service.stream_status("finnhub", "AAPL")[0].messages > 0, 10)
        assert srv.paths == [f"/?token={FINNHUB_KEY}"]
        assert key.name == "finnhub:AAPL:trades"
        at.run()
        frame = at.dataframe[-1].value
        assert "finnhub:AAPL:trades" in set(frame["stream"])


def test_a_demo_book_stream_and_a_kind_the_venue_does_not_stream(app_as: AppAs) -> None:
    """A book stream of the demo venue from the form keeps a live book; a kind the chosen
    venue does not stream is refused with what it does stream."""
    at = app_as("analyst", PAGE).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="sub_kind").options == ["ohlcv", "trades", "quotes", "book"]
    at.selectbox(key="sub_venue").set_value("demo")
    at.text_input(key="sub_symbol").set_value("SOL/USDT")
    at.selectbox(key="sub_kind").set_value("book")
    button(at, "Subscribe").click().run()
    assert f"Subscribed to {md_escape('demo:SOL/USDT:book')}" in texts(at)
    (service,) = running()

    def updated() -> bool:
        book = service.live_book("demo", "SOL/USDT")
        return book is not None and book.updates > 0

    assert wait_for(updated, 30)
    view = service.live_book("demo", "SOL/USDT").view(5)  # type: ignore[union-attr]
    assert view is not None
    assert view.bids[0][0] < view.asks[0][0]
    at.run()
    assert "demo:SOL/USDT:book" in set(at.dataframe[-1].value["stream"])

    assert "OKX (public, needs network)" in at.selectbox(key="sub_venue").options
    at.selectbox(key="sub_venue").set_value("okx")
    at.selectbox(key="sub_kind").set_value("trades")
    button(at, "Subscribe").click().run()
    assert md_escape("OKX streams book only; not 'trades'") in texts(at)
    assert not any(k.venue == "okx" for k in service.subscriptions())
