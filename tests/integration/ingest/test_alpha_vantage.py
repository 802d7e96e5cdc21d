"""Alpha Vantage against a loopback server replaying its wire format (tests/data/alpha_vantage).

Each test checks what went out (the key in `apikey`, the function and month asked) and that
the user's quota counter moved by exactly the number of requests the server saw.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.ingest.alpha_vantage import AlphaVantageSource
from core.ingest.base import SourceError, SourceUnavailable
from core.ingest.meter import QuotaPause
from core.ingest.venues import venue
from lakehouse import LakehouseAuthBackend, QuotaExceeded, User
from tests.integration.ingest.keyed import meter_of, used
from tests.integration.ingest.recorded import RecordedServer, Reply, raw, recorded, serving
from tests.lakehouse_support import PASSWORD, make_backend

KEY = "AVKEY0123456789XYZ"
AV = venue("alpha_vantage")


@pytest.fixture
def backend(tmp_path: Path) -> LakehouseAuthBackend:
    return make_backend(tmp_path / "lakehouse")


@pytest.fixture
def user(backend: LakehouseAuthBackend) -> User:
    u = backend.register("quant", "quant@example.org", PASSWORD)
    backend.save_api_keys(u.user_id, {"alpha_vantage": KEY}, True, password=PASSWORD)
    return u


def source(srv: RecordedServer, backend: LakehouseAuthBackend, user: User) -> AlphaVantageSource:
    return AlphaVantageSource(
        lambda: KEY, meter_of(backend, user, "alpha_vantage"), base_url=srv.base
    )


def av(name: str) -> Reply:
    return recorded(f"alpha_vantage/{name}")


def test_daily_bars_with_the_users_key(backend: LakehouseAuthBackend, user: User) -> None:
    since = datetime.now(UTC) - timedelta(days=30)
    with serving({"/query": [av("daily_IBM.json")]}) as srv:
        bars = source(srv, backend, user).fetch_bars("IBM", "1d", since - timedelta(days=2000))
        (req,) = srv.hits("/query")
    assert req.query == {
        "function": "TIME_SERIES_DAILY",
        "symbol": "IBM",
        "outputsize": "full",  # older than the 100 days `compact` covers
        "apikey": KEY,
    }
    assert bars["ts"].to_list()[0] == datetime(2026, 12, 1, tzinfo=UTC)  # exchange date, 00:00 UTC
    assert bars["close"].to_list() == [228.33, 229.71, 231.05, 232.87]
    assert bars["volume"][0] == 4021557.0
    assert set(bars["venue"]) == {"alpha_vantage"}
    assert used(backend, user, "alpha_vantage") == 1


def test_intraday_pages_month_by_month_in_utc(backend: LakehouseAuthBackend, user: User) -> None:
    steps: list[tuple[float, str]] = []
    replies = [av("intraday_IBM_5min_2026-06.json"), av("intraday_IBM_5min_2026-07.json")]
    with serving({"/query": replies}) as srv:
        src = source(srv, backend, user)
        bars = src.fetch_bars(
            "IBM",
            "5m",
            datetime(2026, 6, 29, tzinfo=UTC),
            datetime(2026, 7, 3, tzinfo=UTC),
            progress=lambda f, m: steps.append((f, m)),
        )
        months = [r.query["month"] for r in srv.hits("/query")]
        seen = len(srv.requests)
    assert months == ["2026-06", "2026-07"]
    assert {r for r in ("5min",)} == {srv.requests[0].query["interval"]}
    assert bars.height == 16
    # 09:30 New York in summer (EDT, UTC-4) is 13:30 UTC
    assert bars["ts"][0] == datetime(2026, 6, 29, 13, 30, tzinfo=UTC)
    assert bars["ts"].is_sorted()
    assert steps[-1][0] == 1.0
    assert "2026-07" in steps[-1][1]
    assert src.requests == seen == used(backend, user, "alpha_vantage") == 2


def test_at_the_limit_nothing_is_sent(backend: LakehouseAuthBackend, user: User) -> None:
    backend.update_query_count(user.user_id, "alpha_vantage", 25)
    with serving({"/query": [av("daily_IBM.json")]}) as srv:
        with pytest.raises(QuotaPause, match=r"quota of 25 per day is used up; resumes in") as err:
            source(srv, backend, user).fetch_bars("IBM", "1d", datetime.now(UTC))
        assert srv.requests == []
    assert 0 < err.value.retry_after_s <= 86400


@pytest.mark.parametrize("name", ["information_daily_limit.json", "note_call_frequency.json"])
def test_throttle_answers_in_a_200_pause_and_spend_the_window(
    backend: LakehouseAuthBackend, user: User, name: str
) -> None:
    with serving({"/query": [av(name)]}) as srv:
        src = source(srv, backend, user)
        with pytest.raises(QuotaPause, match="Alpha Vantage refused") as err:
            src.fetch_bars("IBM", "1d", datetime.now(UTC))
        assert len(srv.requests) == 1
        # the day is spent: the next request is not sent at all
        with pytest.raises(QuotaPause):
            src.fetch_bars("IBM", "1d", datetime.now(UTC))
        assert len(srv.requests) == 1
    assert used(backend, user, "alpha_vantage") == 25
    assert err.value.retry_after_s > 0
    with pytest.raises(QuotaExceeded):
        backend.update_query_count(user.user_id, "alpha_vantage", 1)


def test_http_429_uses_retry_after(backend: LakehouseAuthBackend, user: User) -> None:
    reply = Reply(b"{}", 429, {"Retry-After": "37"})
    with serving({"/query": [reply]}) as srv, pytest.raises(QuotaPause) as err:
        source(srv, backend, user).fetch_bars("IBM", "1d", datetime.now(UTC))
    assert err.value.retry_after_s == 37


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("information_premium.json", "plan does not include TIME_SERIES_DAILY"),
        ("error_invalid_call.json", "no data for NOSUCH"),
        ("error_apikey.json", "refused the API key; check it on the API keys page"),
    ],
)
def test_refusals_are_clear_source_errors(
    backend: LakehouseAuthBackend, user: User, name: str, message: str
) -> None:
    with serving({"/query": [av(name)]}) as srv, pytest.raises(SourceError, match=message):
        source(srv, backend, user).fetch_bars("NOSUCH", "1d", datetime.now(UTC))
    assert used(backend, user, "alpha_vantage") == 1  # the refused request was still a request


def test_malformed_payloads_are_source_errors(backend: LakehouseAuthBackend, user: User) -> None:
    broken = '{"Meta Data": {}, "Time Series (Daily)": {"2026-12-01": {"1. open": "x"}}}'
    for body, message in [
        ("<html>maintenance</html>", "not JSON"),
        ('{"Meta Data": {}}', "sent no 'Time Series \\(Daily\\)'"),
        (broken, "malformed bar"),
    ]:
        reply = raw(body, content_type="application/json")
        with serving({"/query": [reply]}) as srv, pytest.raises(SourceError, match=message):
            source(srv, backend, user).fetch_bars("IBM", "1d", datetime.now(UTC))


def test_the_key_never_appears_in_errors(backend: LakehouseAuthBackend, user: User) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = AlphaVantageSource(
        lambda: KEY, meter_of(backend, user, "alpha_vantage"), base_url=f"http://127.0.0.1:{port}"
    )
    with pytest.raises(SourceUnavailable) as err:
        src.fetch_bars("IBM", "1d", datetime.now(UTC))
    assert "apikey" in err.value.detail  # the URL is kept for diagnosis...
    assert KEY not in str(err.value) + err.value.detail  # ...with the key scrubbed
    with serving({"/query": [av("error_apikey.json")]}) as srv:
        src = source(srv, backend, user)
        with pytest.raises(SourceError) as refused:
            src.fetch_bars("IBM", "1d", datetime.now(UTC))
    assert KEY not in str(refused.value) + refused.value.detail


def test_unsupported_timeframe(backend: LakehouseAuthBackend, user: User) -> None:
    src = AlphaVantageSource(
        lambda: KEY, meter_of(backend, user, "alpha_vantage"), base_url="http://127.0.0.1:9"
    )
    with pytest.raises(ValueError, match="no 4h bars"):
        src.fetch_bars("IBM", "4h", datetime.now(UTC))
