"""Alpaca against a loopback server replaying its wire format (tests/data/alpaca).

Each test checks what went out (the key id and secret in the APCA headers, the symbols,
timeframe, range and page tokens asked) and that the user's quota counter moved by exactly
the number of requests the server saw.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.data.schema import BARS, TRADES
from core.ingest.alpaca import QUOTES, AlpacaSource, key_pair
from core.ingest.base import SourceError, SourceUnavailable
from core.ingest.jobs import estimate_requests
from core.ingest.meter import QuotaPause
from core.ingest.venues import venue
from lakehouse import LakehouseAuthBackend, User
from tests.integration.ingest.keyed import meter_of, used
from tests.integration.ingest.recorded import DATA, RecordedServer, Reply, raw, recorded, serving
from tests.lakehouse_support import PASSWORD, FakeClock, make_backend

KEY_ID, SECRET = "PKTEST7A1B2C3D4E5F6G", "sEcReT0123456789abcdefghijklmnopQRSTUVWX"
ALPACA = venue("alpaca")
STOCK_BARS, CRYPTO_BARS = "/v2/stocks/bars", "/v1beta3/crypto/us/bars"
NOV1, NOV14 = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 14, tzinfo=UTC)


@pytest.fixture
def backend(tmp_path: Path, clock: FakeClock) -> LakehouseAuthBackend:
    return make_backend(tmp_path / "lakehouse", clock=clock)


@pytest.fixture
def user(backend: LakehouseAuthBackend) -> User:
    u = backend.register("quant", "quant@example.org", PASSWORD)
    backend.save_api_keys(u.user_id, {"alpaca": f"{KEY_ID}:{SECRET}"}, True, password=PASSWORD)
    return u


def source(srv: RecordedServer, backend: LakehouseAuthBackend, user: User) -> AlpacaSource:
    # the stored key is decrypted for each request, as the service does
    def key() -> tuple[str, str]:
        return key_pair(backend.reveal_api_key(user.user_id, "alpaca", password=PASSWORD))

    return AlpacaSource(key, meter_of(backend, user, "alpaca"), base_url=srv.base)


def ap(name: str, status: int = 200, **headers: str) -> Reply:
    return recorded(f"alpaca/{name}", status, **headers)


def token(name: str) -> str:
    return json.loads((DATA / "alpaca" / name).read_text())["next_page_token"]


def bar_pages() -> list[Reply]:
    return [ap(f"stock_bars_AAPL_1Day_page{n}.json") for n in (1, 2, 3)]


def test_stock_bars_follow_every_page(backend: LakehouseAuthBackend, user: User) -> None:
    steps: list[tuple[float, str]] = []
    with serving({STOCK_BARS: bar_pages()}) as srv:
        src = source(srv, backend, user)
        bars = src.fetch_bars("AAPL", "1d", NOV1, NOV14, progress=lambda f, m: steps.append((f, m)))
        first, second, third = srv.hits(STOCK_BARS)
        seen = len(srv.requests)
    assert first.query == {
        "symbols": "AAPL",
        "timeframe": "1Day",
        "start": "2026-11-01T00:00:00Z",
        "end": "2026-11-14T00:00:00Z",
        "limit": "10000",
    }
    assert second.query["page_token"] == token("stock_bars_AAPL_1Day_page1.json")
    assert third.query["page_token"] == token("stock_bars_AAPL_1Day_page2.json")
    for req in (first, second, third):
        assert req.headers["apca-api-key-id"] == KEY_ID
        assert req.headers["apca-api-secret-key"] == SECRET
        assert KEY_ID not in json.dumps(req.query)
        assert SECRET not in json.dumps(req.query)
    assert bars.schema == BARS
    assert bars.height == 10
    # a daily bar opens at midnight New York (05:00Z in November); stored at 00:00 UTC
    assert bars["ts"][0] == datetime(2026, 11, 2, tzinfo=UTC)
    assert bars["ts"][-1] == datetime(2026, 11, 13, tzinfo=UTC)
    assert bars["close"].to_list()[:5] == [268.41, 270.14, 269.02, 271.88, 273.5]
    assert bars["volume"][0] == 41_000_000.0
    assert set(bars["venue"]) == {"alpaca"}
    assert set(bars["timeframe"]) == {"1d"}
    assert [f for f, _ in steps][-1] == 1.0
    assert "page 3 (10 bars so far)" in steps[-1][1]
    assert steps[0][0] < 1.0
    assert src.requests == seen == used(backend, user, "alpaca") == 3


def test_crypto_bars_in_utc(backend: LakehouseAuthBackend, user: User) -> None:
    since = datetime(2026, 11, 20, tzinfo=UTC)
    with serving({CRYPTO_BARS: [ap("crypto_bars_BTCUSD_1Hour.json")]}) as srv:
        bars = source(srv, backend, user).fetch_bars(
            "btc/usd", "1h", since, since + timedelta(hours=3)
        )
        (req,) = srv.hits(CRYPTO_BARS)
    assert req.query["symbols"] == "BTC/USD"  # asked as "btc/usd": Alpaca spells it in capitals
    assert req.query["timeframe"] == "1Hour"
    assert req.headers["apca-api-key-id"] == KEY_ID
    assert bars["ts"].to_list() == [since + timedelta(hours=h) for h in range(3)]
    assert bars["close"].to_list() == [91234.5, 91410.25, 91102.0]
    assert bars["volume"][1] == 2.876543
    assert used(backend, user, "alpaca") == 1


def test_trades_of_stocks_and_crypto(backend: LakehouseAuthBackend, user: User) -> None:
    since = datetime(2026, 11, 16, 14, 30, tzinfo=UTC)
    routes = {
        "/v2/stocks/trades": [
            ap("stock_trades_AAPL_page1.json"),
            ap("stock_trades_AAPL_page2.json"),
        ],
        "/v1beta3/crypto/us/trades": [ap("crypto_trades_BTCUSD.json")],
    }
    with serving(routes) as srv:
        src = source(srv, backend, user)
        stock = src.fetch_trades("AAPL", since, since + timedelta(minutes=1))
        crypto = src.fetch_trades("BTC/USD", since, since + timedelta(days=4))
        pages = srv.hits("/v2/stocks/trades")
        seen = len(srv.requests)
    assert pages[1].query["page_token"] == token("stock_trades_AAPL_page1.json")
    assert stock.schema == TRADES
    # trade ids repeat across exchanges (7161 on Q and on P): both trades are kept
    assert stock["trade_id"].to_list() == [
        "V-52983525029461",
        "Q-7161",
        "P-7161",
        "V-52983525029462",
        "N-40112",
    ]
    assert stock["ts"][0] == datetime(2026, 11, 16, 14, 30, 0, 123, tzinfo=UTC)  # ns -> us
    assert stock["amount"].to_list() == [100.0, 25.0, 200.0, 50.0, 300.0]
    assert stock["side"].null_count() == 5  # stock trades carry no aggressor side
    assert crypto["side"].to_list() == ["buy", "sell"]
    assert crypto["trade_id"].to_list() == ["4093385221", "4093385222"]
    assert crypto["price"][0] == 91210.5
    assert src.requests == seen == used(backend, user, "alpaca") == 3


def test_quotes(backend: LakehouseAuthBackend, user: User) -> None:
    since = datetime(2026, 11, 16, 14, 30, tzinfo=UTC)
    with serving({"/v2/stocks/quotes": [ap("stock_quotes_AAPL.json")]}) as srv:
        quotes = source(srv, backend, user).fetch_quotes(
            "AAPL", since, since + timedelta(seconds=1)
        )
    assert quotes.schema == QUOTES
    assert quotes["bid"].to_list() == [275.11, 275.12]
    assert quotes["ask_size"].to_list() == [2.0, 1.0]
    assert used(backend, user, "alpaca") == 1


def test_open_ended_stock_history_stops_15_minutes_ago(
    backend: LakehouseAuthBackend, user: User
) -> None:
    with serving(
        {STOCK_BARS: [ap("empty_bars.json")], CRYPTO_BARS: [ap("empty_bars.json")]}
    ) as srv:
        src = source(srv, backend, user)
        before = datetime.now(UTC)
        stock = src.fetch_bars("AAPL", "1m", before - timedelta(days=1))
        src.fetch_bars("BTC/USD", "1m", before - timedelta(days=1))
        after = datetime.now(UTC)
        (s,), (c,) = srv.hits(STOCK_BARS), srv.hits(CRYPTO_BARS)
    stock_end = datetime.fromisoformat(s.query["end"])
    crypto_end = datetime.fromisoformat(c.query["end"])
    # the free plan may not query the last 15 minutes of SIP data; crypto has no such rule
    assert before - timedelta(minutes=15) <= stock_end <= after - timedelta(minutes=15)
    assert before <= crypto_end <= after
    assert stock.height == 0
    assert stock.schema == BARS


def test_at_the_limit_nothing_is_sent(backend: LakehouseAuthBackend, user: User) -> None:
    backend.update_query_count(user.user_id, "alpaca", 200)
    with serving({STOCK_BARS: bar_pages()}) as srv:
        with pytest.raises(QuotaPause, match="quota of 200 per minute is used up; resumes in"):
            source(srv, backend, user).fetch_bars("AAPL", "1d", NOV1, NOV14)
        assert srv.requests == []
    assert used(backend, user, "alpaca") == 200


def test_http_429_spends_the_window_and_waits_as_told(
    backend: LakehouseAuthBackend, user: User, clock: FakeClock
) -> None:
    limited = ap("error_429_rate_limit.json", 429, **{"Retry-After": "7"})
    with serving({STOCK_BARS: [limited]}) as srv:
        src = source(srv, backend, user)
        with pytest.raises(QuotaPause, match="Alpaca refused: limit reached") as err:
            src.fetch_bars("AAPL", "1d", NOV1, NOV14)
        assert err.value.retry_after_s == 7
        assert used(backend, user, "alpaca") == 200  # the user's counter is at the limit
        with pytest.raises(QuotaPause):  # so the next request is not sent at all
            src.fetch_bars("AAPL", "1d", NOV1, NOV14)
        assert len(srv.requests) == 1
    reset = str(int(time.time()) + 42)  # no Retry-After: Alpaca's X-RateLimit-Reset (Unix time)
    with serving(
        {STOCK_BARS: [ap("error_429_rate_limit.json", 429, **{"X-RateLimit-Reset": reset})]}
    ) as srv:
        clock.advance(60)  # a new window
        with pytest.raises(QuotaPause) as err:
            source(srv, backend, user).fetch_bars("AAPL", "1d", NOV1, NOV14)
    assert 0 < err.value.retry_after_s <= 42


def test_a_job_resumed_after_a_pause_does_not_ask_pages_again(
    backend: LakehouseAuthBackend, user: User, clock: FakeClock
) -> None:
    page1, page2, page3 = bar_pages()
    limited = ap("error_429_rate_limit.json", 429, **{"Retry-After": "30"})
    with serving({STOCK_BARS: [page1, limited, page2, page3]}) as srv:
        src = source(srv, backend, user)
        with pytest.raises(QuotaPause):
            src.fetch_bars("AAPL", "1d", NOV1, NOV14)
        clock.advance(60)  # the window has reset
        bars = src.fetch_bars("AAPL", "1d", NOV1, NOV14)
        tokens = [r.query.get("page_token") for r in srv.hits(STOCK_BARS)]
    t1, t2 = token("stock_bars_AAPL_1Day_page1.json"), token("stock_bars_AAPL_1Day_page2.json")
    assert tokens == [None, t1, t1, t2]  # page 1 was not asked again
    assert bars.height == 10
    assert src.requests == 4
    assert used(backend, user, "alpaca") == 2  # this window: the two pages after the resume


@pytest.mark.parametrize(
    ("name", "status", "message"),
    [
        ("error_401_not_authorized.json", 401, "refused the API key .*API keys page"),
        ("error_403_forbidden.json", 403, "refused the API key"),
        ("error_403_sip.json", 403, "plan does not include this data .*recent SIP data"),
        ("error_422_invalid_symbol.json", 422, "rejected the request for AAPL: invalid symbol"),
    ],
)
def test_refusals_are_clear_source_errors(
    backend: LakehouseAuthBackend, user: User, name: str, status: int, message: str
) -> None:
    with (
        serving({STOCK_BARS: [ap(name, status)]}) as srv,
        pytest.raises(SourceError, match=message),
    ):
        source(srv, backend, user).fetch_bars("AAPL", "1d", NOV1, NOV14)
    assert used(backend, user, "alpaca") == 1  # the refused request was still a request


def test_server_errors_are_retryable(backend: LakehouseAuthBackend, user: User) -> None:
    reply = raw("<html>502 Bad Gateway</html>", 502)
    with serving({STOCK_BARS: [reply]}) as srv, pytest.raises(SourceUnavailable, match="HTTP 502"):
        source(srv, backend, user).fetch_bars("AAPL", "1d", NOV1, NOV14)


def test_malformed_pages_are_source_errors(backend: LakehouseAuthBackend, user: User) -> None:
    bar = {"t": "2026-11-02T05:00:00Z", "o": 1, "h": 2, "l": 0.5, "c": 1.5, "v": 10}
    cases = [
        ("<html>maintenance</html>", "not a JSON object"),
        ("[1, 2]", "not a JSON object"),
        ('{"bars": {"AAPL": {"t": 1}}, "next_page_token": null}', "malformed bars page"),
        ('{"bars": {"AAPL": []}, "next_page_token": 7}', "malformed bars page"),
        (json.dumps({"bars": {"AAPL": [{**bar, "c": None}]}}), "malformed bar for AAPL"),
        (json.dumps({"bars": {"AAPL": [{**bar, "t": "2026-11-02T05:00:00"}]}}), "malformed bar"),
        (json.dumps({"bars": {"AAPL": [{**bar, "o": "x"}]}}), "malformed bar"),
    ]
    for body, message in cases:
        reply = raw(body, content_type="application/json")
        with serving({STOCK_BARS: [reply]}) as srv, pytest.raises(SourceError, match=message):
            source(srv, backend, user).fetch_bars("AAPL", "1d", NOV1, NOV14)
    page1 = ap("stock_bars_AAPL_1Day_page1.json")
    with serving({STOCK_BARS: [page1, page1]}) as srv:  # a server that repeats itself
        with pytest.raises(SourceError, match="same page token twice"):
            source(srv, backend, user).fetch_bars("AAPL", "1d", NOV1, NOV14)
        assert len(srv.requests) == 2
    assert used(backend, user, "alpaca") == len(cases) + 2


def test_the_key_never_appears_in_errors(backend: LakehouseAuthBackend, user: User) -> None:
    src = AlpacaSource(
        lambda: (KEY_ID, SECRET), meter_of(backend, user, "alpaca"), base_url="http://127.0.0.1:9"
    )
    with pytest.raises(SourceUnavailable, match="not reachable") as down:
        src.fetch_bars("AAPL", "1d", NOV1, NOV14)
    assert "127.0.0.1" in down.value.detail  # the cause is kept for diagnosis
    echo = raw(json.dumps({"message": f"key {KEY_ID} / {SECRET} is not authorized"}), 401)
    with serving({STOCK_BARS: [echo]}) as srv, pytest.raises(SourceError) as refused:
        source(srv, backend, user).fetch_bars("AAPL", "1d", NOV1, NOV14)
    for err in (down.value, refused.value):
        text = str(err) + err.detail
        assert KEY_ID not in text
        assert SECRET not in text
    assert "***" in refused.value.detail


def test_bad_input_sends_nothing(backend: LakehouseAuthBackend, user: User) -> None:
    src = AlpacaSource(
        lambda: (KEY_ID, SECRET), meter_of(backend, user, "alpaca"), base_url="http://127.0.0.1:9"
    )
    with pytest.raises(ValueError, match="no 2h bars"):
        src.fetch_bars("AAPL", "2h", NOV1)
    with pytest.raises(ValueError, match="timezone-aware"):
        src.fetch_bars("AAPL", "1d", datetime(2026, 11, 1))
    with pytest.raises(ValueError, match="until must be after since"):
        src.fetch_trades("AAPL", NOV14, NOV1)
    with pytest.raises(ValueError, match="not an Alpaca symbol"):
        src.fetch_bars("AAPL,MSFT", "1d", NOV1, NOV14)
    assert src.requests == 0
    assert used(backend, user, "alpaca") == 0


def test_key_pair() -> None:
    assert key_pair(f" {KEY_ID}:{SECRET} ") == (KEY_ID, SECRET)
    for stored in (KEY_ID, f"{KEY_ID}:", f":{SECRET}", f"{KEY_ID}:{SECRET}:x"):
        with pytest.raises(ValueError, match="KEY_ID:SECRET") as err:
            key_pair(stored)
        assert KEY_ID not in str(err.value)
        assert SECRET not in str(err.value)


def test_estimate_counts_pages() -> None:
    days20 = NOV1 + timedelta(days=20)  # 28,800 one-minute bars: 3 pages of 10,000
    assert estimate_requests(ALPACA, 2, "1m", NOV1, days20) == 2 * 3
    assert estimate_requests(ALPACA, 1, "1d", NOV1, NOV14) == 1
    year = NOV1 - timedelta(days=365)  # 105,120 five-minute bars: 11 pages
    assert estimate_requests(ALPACA, 1, "5m", year, NOV1) == 11


def test_recorder_follows_pages_and_never_writes_the_key(tmp_path: Path) -> None:
    """scripts/record_payloads.py against a loopback Alpaca: the token chain is followed,
    a chain longer than recorded is cut, and neither the key id nor the secret is written."""
    more = {"trades": {"BTC/USD": []}, "next_page_token": "bW9yZQ=="}
    echo = {"message": f"not authorized: {KEY_ID}", "next_page_token": None}
    bars = [
        *bar_pages(),
        ap("empty_bars.json"),
        raw(json.dumps(echo), 401),
        ap("error_422_invalid_symbol.json", 422),
    ]
    routes = {
        STOCK_BARS: bars,
        CRYPTO_BARS: [ap("crypto_bars_BTCUSD_1Hour.json")],
        "/v2/stocks/trades": [
            ap("stock_trades_AAPL_page1.json"),
            ap("stock_trades_AAPL_page2.json"),
        ],
        "/v1beta3/crypto/us/trades": [raw(json.dumps(more), content_type="application/json")],
        "/v2/stocks/quotes": [ap("stock_quotes_AAPL.json")],
    }
    script = Path(__file__).resolve().parents[3] / "scripts" / "record_payloads.py"
    with serving(routes) as srv:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("HFT_RECORD_")},
            "HFT_RECORD_ALPACA_KEY_ID": KEY_ID,
            "HFT_RECORD_ALPACA_SECRET": SECRET,
            "HFT_ALPACA_DATA_URL": srv.base,
        }
        run = subprocess.run(
            [sys.executable, str(script), "alpaca", "--out", str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        tokens = [r.query.get("page_token") for r in srv.hits(STOCK_BARS)][:3]
        ids = [r.headers["apca-api-key-id"] for r in srv.hits(STOCK_BARS)]
    assert run.returncode == 0, run.stderr
    t1, t2 = token("stock_bars_AAPL_1Day_page1.json"), token("stock_bars_AAPL_1Day_page2.json")
    assert tokens == [None, t1, t2]
    assert ids[:4] == [KEY_ID] * 4
    assert ids[4] != KEY_ID  # the 401 answer is recorded with a wrong key
    folder = tmp_path / "alpaca"
    assert len(list(folder.iterdir())) == 11
    assert "alpaca: wrote 11 file(s)" in run.stdout
    assert "crypto_trades_BTCUSD.json: the chain was cut after 1 page(s)" in run.stdout
    assert json.loads((folder / "crypto_trades_BTCUSD.json").read_text())["next_page_token"] is None
    for p in folder.iterdir():
        data = p.read_bytes()
        assert KEY_ID.encode() not in data
        assert SECRET.encode() not in data
    assert b"not authorized: ***" in (folder / "error_401_not_authorized.json").read_bytes()
    page1 = (folder / "stock_bars_AAPL_1Day_page1.json").read_bytes()
    assert page1 == (DATA / "alpaca" / "stock_bars_AAPL_1Day_page1.json").read_bytes()
