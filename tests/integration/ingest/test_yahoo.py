"""The yfinance adapter over its real HTTP/TLS stack (curl_cffi) against recorded payloads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.data.schema import BARS
from core.errors import InvalidInput
from core.ingest.base import SourceError
from core.ingest.yahoo import YahooSource
from tests.integration.ingest.recorded import DATA
from tests.integration.ingest.tls_loopback import TlsLoopback

HOSTS = [
    "query1.finance.yahoo.com",
    "query2.finance.yahoo.com",
    "fc.yahoo.com",
    "finance.yahoo.com",
    "guce.yahoo.com",
]
YF = DATA / "yfinance"


def yahoo(host: str, path: str, query: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
    if host == "fc.yahoo.com":
        cookie = "A3=d=AQABBKx; Expires=Thu, 25 Nov 2027 00:00:00 GMT; Domain=.yahoo.com; Path=/"
        return 404, b"<html>Not Found</html>", {"Set-Cookie": cookie, "Content-Type": "text/html"}
    if path == "/v1/test/getcrumb":
        return 200, b"Xq3hB2pQ9aZ", {"Content-Type": "text/plain"}
    if path == "/v8/finance/chart/AAPL":
        name = "chart_AAPL_tz.json" if "range" in query else "chart_AAPL_1d.json"
        return 200, (YF / name).read_bytes(), {}
    if path.startswith("/v8/finance/chart/"):
        return 404, (YF / "chart_NOSUCH_404.json").read_bytes(), {}
    return 404, b'{"error":"not recorded"}', {}


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TlsLoopback]:
    import yfinance as yf

    yf.set_tz_cache_location(str(tmp_path / "yf-cache"))
    srv = TlsLoopback(HOSTS, tmp_path, yahoo)
    yield srv
    srv.stop()


def test_daily_bars_through_the_real_http_stack(server: TlsLoopback) -> None:
    src = YahooSource(session=server.session())
    bars = src.fetch_bars(
        "AAPL", "1d", datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 13, tzinfo=UTC)
    )
    assert bars.schema == BARS
    assert bars.height == 9
    assert bars["ts"][0] == datetime(2024, 1, 2, tzinfo=UTC)  # exchange-local date
    assert set(bars["venue"]) == {"yahoo"}
    assert set(bars["timeframe"]) == {"1d"}
    assert (bars["high"] >= bars["low"]).all()
    assert (bars["volume"] > 0).all()
    chart = [r for r in server.requests if r[1] == "/v8/finance/chart/AAPL" and "period1" in r[2]]
    assert chart
    assert chart[0][2]["interval"] == "1d"
    assert int(chart[0][2]["period1"]) == int(datetime(2024, 1, 2, tzinfo=UTC).timestamp())


def test_empty_answer_is_an_error(server: TlsLoopback) -> None:
    src = YahooSource(session=server.session())
    with pytest.raises(SourceError, match="no bars for NOSUCH"):
        src.fetch_bars(
            "NOSUCH", "1d", datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 13, tzinfo=UTC)
        )


def test_bad_input_is_refused() -> None:
    src = YahooSource()
    with pytest.raises(InvalidInput, match="no '4h' bars"):
        src.fetch_bars("AAPL", "4h", datetime(2024, 1, 2, tzinfo=UTC))
    with pytest.raises(InvalidInput, match="no trade history"):
        src.fetch_trades("AAPL", datetime(2024, 1, 2, tzinfo=UTC))


def test_calls_run_one_at_a_time(tmp_path: Path) -> None:
    import threading
    import time

    import yfinance as yf

    yf.set_tz_cache_location(str(tmp_path / "yf-cache"))
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def slow(host: str, path: str, query: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        if not path.startswith("/v8/finance/chart/"):
            return yahoo(host, path, query)
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.3)
        with lock:
            state["now"] -= 1
        return yahoo(host, path, query)

    srv = TlsLoopback(HOSTS, tmp_path, slow)
    try:
        start = datetime(2024, 1, 2, tzinfo=UTC)
        results: list[int] = []

        def fetch(day: int) -> None:
            # distinct ranges: yfinance caches repeated requests for past ranges in memory
            src = YahooSource(session=srv.session())
            end = datetime(2024, 1, day, tzinfo=UTC)
            results.append(src.fetch_bars("AAPL", "1d", start, end).height)

        threads = [threading.Thread(target=fetch, args=(20 + i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        srv.stop()
    assert results == [9, 9, 9]
    assert state["max"] == 1
    assert len([r for r in srv.requests if "period1" in r[2]]) == 3
