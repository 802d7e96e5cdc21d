"""Finnhub against a loopback server replaying its wire format (tests/data/finnhub), and the
recording helper (scripts/record_payloads.py) against the same kind of server.

Each test checks what went out (the key in the X-Finnhub-Token header, never in the URL; the
symbol, resolution and window asked) and that the user's quota counter moved by exactly the
number of requests the server saw.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.data.schema import BARS
from core.ingest.base import SourceError, SourceUnavailable
from core.ingest.finnhub import FinnhubSource
from core.ingest.jobs import estimate_requests
from core.ingest.meter import QuotaPause
from core.ingest.venues import venue
from lakehouse import LakehouseAuthBackend, User
from tests.integration.ingest.keyed import meter_of, used
from tests.integration.ingest.recorded import RecordedServer, Reply, raw, recorded, serving
from tests.lakehouse_support import PASSWORD, FakeClock, make_backend

KEY = "fhk0a1b2c3d4e5f6g7h8i9j0"
FINNHUB = venue("finnhub")
CANDLE = "/stock/candle"
NOV1, NOV7 = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 7, tzinfo=UTC)
AUG1, OCT15 = datetime(2026, 8, 1, tzinfo=UTC), datetime(2026, 10, 15, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def backend(tmp_path: Path, clock: FakeClock) -> LakehouseAuthBackend:
    return make_backend(tmp_path / "lakehouse", clock=clock)


@pytest.fixture
def user(backend: LakehouseAuthBackend) -> User:
    u = backend.register("quant", "quant@example.org", PASSWORD)
    backend.save_api_keys(u.user_id, {"finnhub": KEY}, True, password=PASSWORD)
    return u


def source(srv: RecordedServer, backend: LakehouseAuthBackend, user: User) -> FinnhubSource:
    def key() -> str:  # decrypted for each request, as the service does
        return backend.reveal_api_key(user.user_id, "finnhub", password=PASSWORD)

    return FinnhubSource(key, meter_of(backend, user, "finnhub"), base_url=srv.base)


def fh(name: str, status: int = 200, **headers: str) -> Reply:
    return recorded(f"finnhub/{name}", status, **headers)


def windows() -> list[Reply]:
    return [fh(f"candle_AAPL_5_window{n}.json") for n in (1, 2, 3)]


def test_daily_candles_with_the_key_in_the_header(
    backend: LakehouseAuthBackend, user: User
) -> None:
    with serving({CANDLE: [fh("candle_AAPL_D.json")]}) as srv:
        bars = source(srv, backend, user).fetch_bars("AAPL", "1d", NOV1, NOV7)
        (req,) = srv.hits(CANDLE)
    assert req.query == {
        "symbol": "AAPL",
        "resolution": "D",
        "from": str(int(NOV1.timestamp())),
        "to": str(int(NOV7.timestamp()) - 1),
    }
    assert req.headers["x-finnhub-token"] == KEY
    assert "token" not in req.query
    assert bars.schema == BARS
    assert bars["ts"].to_list() == [datetime(2026, 11, d, tzinfo=UTC) for d in (2, 3, 4, 5, 6)]
    assert bars["close"].to_list() == [268.41, 270.14, 269.02, 271.88, 273.5]
    assert bars["volume"][0] == 41_000_000.0
    assert set(bars["venue"]) == {"finnhub"}
    assert used(backend, user, "finnhub") == 1


def test_intraday_is_asked_in_30_day_windows(backend: LakehouseAuthBackend, user: User) -> None:
    steps: list[tuple[float, str]] = []
    with serving({CANDLE: windows()}) as srv:
        src = source(srv, backend, user)
        bars = src.fetch_bars("AAPL", "5m", AUG1, OCT15, progress=lambda f, m: steps.append((f, m)))
        asked = [(r.query["from"], r.query["to"], r.query["resolution"]) for r in srv.hits(CANDLE)]
        seen = len(srv.requests)
    edges = [AUG1, AUG1 + timedelta(days=30), AUG1 + timedelta(days=60), OCT15]
    assert asked == [
        (str(int(lo.timestamp())), str(int(hi.timestamp()) - 1), "5")
        for lo, hi in itertools.pairwise(edges)
    ]
    assert bars.height == 6
    assert bars["ts"][0] == datetime(2026, 8, 3, 13, 30, tzinfo=UTC)
    assert bars["ts"].is_sorted()
    assert [round(f, 3) for f, _ in steps] == [0.333, 0.667, 1.0]
    assert "6 bars so far" in steps[-1][1]
    assert estimate_requests(FINNHUB, 1, "5m", AUG1, OCT15) == 3
    assert src.requests == seen == used(backend, user, "finnhub") == 3


def test_crypto_candles(backend: LakehouseAuthBackend, user: User) -> None:
    since = datetime(2026, 11, 20, tzinfo=UTC)
    with serving({"/crypto/candle": [fh("crypto_candle_BINANCE_BTCUSDT_60.json")]}) as srv:
        bars = source(srv, backend, user).fetch_bars(
            "BINANCE:BTCUSDT", "1h", since, since + timedelta(hours=2)
        )
        (req,) = srv.hits("/crypto/candle")
    assert req.query["symbol"] == "BINANCE:BTCUSDT"
    assert req.query["resolution"] == "60"
    assert bars["ts"].to_list() == [since, since + timedelta(hours=1)]
    assert bars["volume"].to_list() == [153.20871, 98.004512]


def test_no_data(backend: LakehouseAuthBackend, user: User) -> None:
    gap = [fh("candle_AAPL_5_window1.json"), fh("no_data.json"), fh("candle_AAPL_5_window3.json")]
    with serving({CANDLE: gap}) as srv:
        bars = source(srv, backend, user).fetch_bars("AAPL", "5m", AUG1, OCT15)
    assert bars.height == 4  # a window with no_data (a holiday, before a listing) is skipped
    with serving({CANDLE: [fh("no_data.json")]}) as srv:
        with pytest.raises(SourceError, match="no bars for ZZZZ 5m from 2026-08-01 to 2026-10-15"):
            source(srv, backend, user).fetch_bars("ZZZZ", "5m", AUG1, OCT15)
        assert len(srv.requests) == 3
    assert used(backend, user, "finnhub") == 6


def test_at_the_limit_nothing_is_sent(backend: LakehouseAuthBackend, user: User) -> None:
    backend.update_query_count(user.user_id, "finnhub", 60)
    with serving({CANDLE: windows(), "/quote": [fh("quote_AAPL.json")]}) as srv:
        src = source(srv, backend, user)
        with pytest.raises(QuotaPause, match="quota of 60 per minute is used up; resumes in"):
            src.fetch_bars("AAPL", "5m", AUG1, OCT15)
        with pytest.raises(QuotaPause):
            src.quote("AAPL")
        assert srv.requests == []


def test_http_429_spends_the_window_and_waits_as_told(
    backend: LakehouseAuthBackend, user: User, clock: FakeClock
) -> None:
    limited = fh("error_429_limit.json", 429, **{"Retry-After": "11"})
    with serving({CANDLE: [limited]}) as srv:
        src = source(srv, backend, user)
        with pytest.raises(QuotaPause, match="Finnhub refused: limit reached") as err:
            src.fetch_bars("AAPL", "1d", NOV1, NOV7)
        assert err.value.retry_after_s == 11
        assert used(backend, user, "finnhub") == 60
        with pytest.raises(QuotaPause):
            src.fetch_bars("AAPL", "1d", NOV1, NOV7)
        assert len(srv.requests) == 1
    clock.advance(60)  # a new window; this 429 names its reset time instead (Unix seconds)
    reset = fh("error_429_limit.json", 429, **{"X-Ratelimit-Reset": str(int(time.time()) + 20)})
    with serving({CANDLE: [reset]}) as srv, pytest.raises(QuotaPause) as err:
        source(srv, backend, user).fetch_bars("AAPL", "1d", NOV1, NOV7)
    assert 0 < err.value.retry_after_s <= 20


def test_a_job_resumed_after_a_pause_does_not_ask_windows_again(
    backend: LakehouseAuthBackend, user: User, clock: FakeClock
) -> None:
    w1, w2, w3 = windows()
    with serving({CANDLE: [w1, fh("error_429_limit.json", 429), w2, w3]}) as srv:
        src = source(srv, backend, user)
        with pytest.raises(QuotaPause):
            src.fetch_bars("AAPL", "5m", AUG1, OCT15)
        clock.advance(60)
        bars = src.fetch_bars("AAPL", "5m", AUG1, OCT15)
        starts = [r.query["from"] for r in srv.hits(CANDLE)]
    second = str(int((AUG1 + timedelta(days=30)).timestamp()))
    assert starts[1:3] == [second, second]  # the refused window again, not the first one
    assert len(starts) == 4
    assert bars.height == 6
    assert used(backend, user, "finnhub") == 2


@pytest.mark.parametrize(
    ("name", "status", "message"),
    [
        ("error_403_no_access.json", 403, "your Finnhub plan does not include candles \\(You"),
        ("error_401_invalid_key.json", 401, "refused the API key; check it on the API keys page"),
    ],
)
def test_refusals_are_clear_source_errors(
    backend: LakehouseAuthBackend, user: User, name: str, status: int, message: str
) -> None:
    with serving({CANDLE: [fh(name, status)]}) as srv, pytest.raises(SourceError, match=message):
        source(srv, backend, user).fetch_bars("AAPL", "1d", NOV1, NOV7)
    assert used(backend, user, "finnhub") == 1


def test_quote(backend: LakehouseAuthBackend, user: User) -> None:
    replies = [fh("quote_AAPL.json"), fh("quote_unknown.json"), fh("error_403_no_access.json", 403)]
    with serving({"/quote": replies}) as srv:
        src = source(srv, backend, user)
        quote = src.quote("AAPL")
        with pytest.raises(SourceError, match="no quote for ZZZZ"):
            src.quote("ZZZZ")
        with pytest.raises(SourceError, match="plan does not include quotes"):
            src.quote("AAPL")
        first = srv.hits("/quote")[0]
    assert first.query == {"symbol": "AAPL"}
    assert first.headers["x-finnhub-token"] == KEY
    assert quote == {
        "symbol": "AAPL",
        "last": 277.81,
        "change": 2.34,
        "change_pct": 0.8495,
        "high": 278.9,
        "low": 274.66,
        "open": 275.2,
        "prev_close": 275.47,
        "ts": datetime(2026, 11, 13, 21, 0, tzinfo=UTC),
    }
    assert used(backend, user, "finnhub") == 3


def test_malformed_answers_are_source_errors(backend: LakehouseAuthBackend, user: User) -> None:
    ok = json.loads(recorded("finnhub/candle_AAPL_D.json").body)
    cases = [
        ("<html>maintenance</html>", "not JSON"),
        ("[1, 2]", "unexpected candle answer"),
        ('{"error": "Wrong resolution"}', "refused the request: Wrong resolution"),
        ('{"s": "error"}', "with status 'error'"),
        (json.dumps({**ok, "c": ok["c"][:-1]}), "malformed candles for AAPL"),
        (json.dumps({**ok, "o": ["x"] * 5}), "malformed candles"),
        (json.dumps({k: v for k, v in ok.items() if k != "v"}), "malformed candles"),
    ]
    for body, message in cases:
        reply = raw(body, content_type="application/json")
        with serving({CANDLE: [reply]}) as srv, pytest.raises(SourceError, match=message):
            source(srv, backend, user).fetch_bars("AAPL", "1d", NOV1, NOV7)
    broken = raw('{"c": 1, "t": "soon"}', content_type="application/json")
    with serving({"/quote": [broken]}) as srv, pytest.raises(SourceError, match="malformed quote"):
        source(srv, backend, user).quote("AAPL")
    assert used(backend, user, "finnhub") == len(cases) + 1


def test_server_errors_are_retryable(backend: LakehouseAuthBackend, user: User) -> None:
    reply = raw("bad gateway", 502)
    with serving({CANDLE: [reply]}) as srv, pytest.raises(SourceUnavailable, match="HTTP 502"):
        source(srv, backend, user).fetch_bars("AAPL", "1d", NOV1, NOV7)


def test_the_key_never_appears_in_errors(backend: LakehouseAuthBackend, user: User) -> None:
    src = FinnhubSource(
        lambda: KEY, meter_of(backend, user, "finnhub"), base_url="http://127.0.0.1:9"
    )
    with pytest.raises(SourceUnavailable, match="not reachable") as down:
        src.fetch_bars("AAPL", "1d", NOV1, NOV7)
    assert "127.0.0.1" in down.value.detail
    echo = raw(json.dumps({"error": f"Invalid API key {KEY}."}), 401)
    with serving({CANDLE: [echo]}) as srv, pytest.raises(SourceError) as refused:
        source(srv, backend, user).fetch_bars("AAPL", "1d", NOV1, NOV7)
    for err in (down.value, refused.value):
        assert KEY not in str(err) + err.detail
    assert "***" in refused.value.detail


def test_bad_input_sends_nothing(backend: LakehouseAuthBackend, user: User) -> None:
    src = FinnhubSource(
        lambda: KEY, meter_of(backend, user, "finnhub"), base_url="http://127.0.0.1:9"
    )
    with pytest.raises(ValueError, match="no 4h candles"):
        src.fetch_bars("AAPL", "4h", NOV1)
    with pytest.raises(ValueError, match="timezone-aware"):
        src.fetch_bars("AAPL", "1d", datetime(2026, 11, 1))
    with pytest.raises(ValueError, match="until must be after since"):
        src.fetch_bars("AAPL", "1d", NOV7, NOV1)
    with pytest.raises(ValueError, match="not a Finnhub symbol"):
        src.quote("AAPL MSFT")
    with pytest.raises(ValueError, match="fetch bars instead"):
        src.fetch_trades("AAPL", NOV1)
    assert src.requests == 0
    assert used(backend, user, "finnhub") == 0


# --- the recording helper ---------------------------------------------------------------------
def run_recorder(
    tmp_path: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HFT_RECORD_")}
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "record_payloads.py"),
            *args,
            "--out",
            str(tmp_path),
        ],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_recorder_without_keys_or_network_exits_2(tmp_path: Path) -> None:
    none = run_recorder(tmp_path, {})
    assert none.returncode == 2
    assert "HFT_RECORD_FINNHUB_KEY" in none.stderr
    down = run_recorder(
        tmp_path,
        {"HFT_RECORD_FINNHUB_KEY": KEY, "HFT_FINNHUB_URL": "http://127.0.0.1:9"},
        "finnhub",
    )
    assert down.returncode == 2
    assert "cannot reach" in down.stderr
    assert KEY not in down.stdout + down.stderr
    assert list(tmp_path.iterdir()) == []


def test_recorder_writes_the_answers_without_the_key(tmp_path: Path) -> None:
    echo = raw(
        json.dumps({"s": "no_data", "note": f"token={KEY}"}), content_type="application/json"
    )
    candles = [fh("candle_AAPL_D.json"), *windows(), echo]
    quotes = [
        fh("quote_AAPL.json"),
        fh("quote_unknown.json"),
        fh("error_401_invalid_key.json", 401),
    ]
    routes = {CANDLE: candles, "/crypto/candle": [fh("no_data.json")], "/quote": quotes}
    with serving(routes) as srv:
        env = {"HFT_RECORD_FINNHUB_KEY": KEY, "HFT_FINNHUB_URL": srv.base}
        run = run_recorder(tmp_path, env, "finnhub")
        sent = [r.headers.get("x-finnhub-token") for r in srv.requests]
    assert run.returncode == 0, run.stderr
    assert sent[:-1] == [KEY] * (len(sent) - 1)
    assert sent[-1] != KEY  # the auth failure is recorded with a wrong key
    written = sorted(p.name for p in (tmp_path / "finnhub").iterdir())
    assert "candle_AAPL_5_window3.json" in written
    assert "error_401_invalid_key.json" in written
    assert len(written) == 9
    assert "finnhub: wrote 9 file(s)" in run.stdout
    for p in (tmp_path / "finnhub").iterdir():
        assert KEY.encode() not in p.read_bytes()
    assert b"token=***" in (tmp_path / "finnhub" / "no_data.json").read_bytes()
    assert (tmp_path / "finnhub" / "quote_AAPL.json").read_bytes() == fh("quote_AAPL.json").body
