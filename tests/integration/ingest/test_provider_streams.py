"""Alpaca and Finnhub live streams with a user's stored key, against loopback WebSocket servers
that speak each provider's protocol and replay recorded frames (tests/data/alpaca_ws,
tests/data/finnhub_ws): the key in the auth message or the token parameter, the subscribe
messages, trades, quotes and bars into the store, refused keys, malformed frames, reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from core.config import Settings
from core.data.store import MarketStore
from core.errors import InvalidInput
from core.ingest.ccxt_ws import StreamKey, StreamStatus
from core.ingest.service import IngestService, wait_for
from lakehouse import LakehouseAuthBackend, User
from tests.integration.ingest.recorded import DATA, frames
from tests.lakehouse_support import PASSWORD, make_backend

JULY_1, JULY_2 = datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 7, 2, tzinfo=UTC)
KEY_ID, SECRET = "PKTEST0123456789ABCD", "SeCrEt0123456789abcdefghijklmnopqrstuvw"
FINNHUB_KEY = "d1fhtestkey0123456789ab"


def text(name: str) -> str:
    return (DATA / name).read_text().strip()


class ProviderServer:
    """A loopback WebSocket server speaking Alpaca's or Finnhub's stream protocol. Connection i
    replays `sessions[i]` (the last one repeats) after its first subscribe message, unless
    `hold` is set: then the frames wait for `play()`."""

    def __init__(self, provider: str, sessions: list[list[str]], *, hold: bool = False) -> None:
        self.provider = provider
        self.sessions = sessions
        self.hold = hold
        self.auth_reply = "alpaca_ws/authenticated.json"
        self.subscribe_error = ""
        """A recorded error sent instead of the subscription message, when set."""
        self.received: list[tuple[int, dict[str, Any]]] = []
        self.paths: list[str] = []
        self.connections = 0
        self._open: dict[int, ServerConnection] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def __enter__(self) -> ProviderServer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        assert self._stopping is not None
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)

    def messages(self, connection: int | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [m for n, m in self.received if connection in (None, n)]

    def play(self) -> None:
        """Send the held session frames to every open connection."""
        self._call(self._play_all())

    def drop(self) -> None:
        """Cut every open connection without a closing handshake (a network drop)."""
        self._call(self._drop())

    def _call(self, coro: Any) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _play_all(self) -> None:
        for number, conn in list(self._open.items()):
            await self._play(number, conn)

    async def _play(self, number: int, conn: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            for frame in self.sessions[min(number, len(self.sessions) - 1)]:
                await conn.send(frame)

    async def _drop(self) -> None:
        for conn in list(self._open.values()):
            conn.transport.abort()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        quiet = logging.getLogger("tests.provider_ws")
        quiet.setLevel(logging.CRITICAL)
        async with serve(
            self._handle, "127.0.0.1", 0, process_request=self._upgrade, logger=quiet
        ) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stopping.wait()
            await self._drop()

    def _upgrade(self, conn: ServerConnection, request: Request) -> Response | None:
        """Finnhub takes the key as `token` and refuses any other with HTTP 401."""
        self.paths.append(request.path)
        token = parse_qs(urlsplit(request.path).query).get("token", [""])[0]
        if self.provider == "finnhub" and token != FINNHUB_KEY:
            return conn.respond(HTTPStatus.UNAUTHORIZED, "Invalid API key\n")
        return None

    async def _handle(self, conn: ServerConnection) -> None:
        with self._lock:
            number = self.connections
            self.connections += 1
        self._open[number] = conn
        subscribed = 0
        try:
            if self.provider == "alpaca":
                await conn.send(text("alpaca_ws/connected.json"))
            async for raw in conn:
                msg = json.loads(raw)
                with self._lock:
                    self.received.append((number, msg))
                if msg.get("action") == "auth":
                    good = (msg.get("key"), msg.get("secret")) == (KEY_ID, SECRET)
                    await conn.send(
                        text(self.auth_reply if good else "alpaca_ws/error_402_auth_failed.json")
                    )
                    if not good:
                        return
                elif msg.get("action") == "unsubscribe":
                    await conn.send(self._subscription(number))
                elif msg.get("action") == "subscribe" or msg.get("type") == "subscribe":
                    if self.subscribe_error:
                        await conn.send(text(self.subscribe_error))
                        continue
                    if self.provider == "alpaca":
                        await conn.send(self._subscription(number))
                    subscribed += 1
                    if subscribed == 1 and not (self.hold and number == 0):
                        await self._play(number, conn)
        except ConnectionClosed:
            pass
        finally:
            self._open.pop(number, None)

    def _subscription(self, number: int) -> str:
        """Alpaca's answer to (un)subscribe: everything the connection now receives."""
        lists: dict[str, list[str]] = {"trades": [], "quotes": [], "bars": []}
        for msg in self.messages(number):
            for channel, names in lists.items():
                for s in msg.get(channel, []):
                    if msg["action"] == "subscribe" and s not in names:
                        names.append(s)
                    elif msg["action"] == "unsubscribe" and s in names:
                        names.remove(s)
        trades = lists["trades"]
        return json.dumps(
            [
                {
                    "T": "subscription",
                    **lists,
                    "updatedBars": [],
                    "dailyBars": [],
                    "statuses": [],
                    "lulds": [],
                    "corrections": trades,
                    "cancelErrors": trades,
                }
            ]
        )


@dataclass
class Setup:
    service: IngestService
    backend: LakehouseAuthBackend
    user: User


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Any]:
    """make(**urls) -> a started service whose user has stored Alpaca and Finnhub keys."""
    made: list[IngestService] = []

    def build(**urls: str) -> Setup:
        backend = make_backend(tmp_path / "lakehouse")
        user = backend.register("quant", "quant@example.org", PASSWORD)
        keys = {"alpaca": f"{KEY_ID}:{SECRET}", "finnhub": FINNHUB_KEY}
        backend.save_api_keys(user.user_id, keys, True, password=PASSWORD)
        settings = Settings(data_dir=tmp_path, **urls)  # type: ignore[arg-type]
        store = MarketStore(tmp_path / "market")
        service = IngestService(store, keys=backend, settings=settings, flush_s=0.2)
        service.providers.backoff_initial_s = 0.1
        made.append(service.start())
        return Setup(service, backend, user)

    yield build
    for service in made:
        service.stop()


def status(service: IngestService, key: StreamKey) -> StreamStatus:
    return next(s for s in service.status() if s.key == key)


def stored_trades(service: IngestService, venue: str, symbol: str) -> list[float]:
    service.flush()
    frame = service.store.get_trades(symbol, JULY_1, JULY_2, venue)  # type: ignore[union-attr]
    return frame.sort("ts")["price"].to_list()


def stored_bars(service: IngestService, venue: str, symbol: str) -> list[float]:
    service.flush()
    frame = service.store.get_bars(symbol, JULY_1, JULY_2, "1m", venue)  # type: ignore[union-attr]
    return frame.sort("ts")["close"].to_list()


def alpaca_sessions() -> list[list[str]]:
    return [frames("alpaca_ws/stock_session1.txt"), frames("alpaca_ws/stock_session2.txt")]


def finnhub_sessions() -> list[list[str]]:
    return [frames("finnhub_ws/session1.txt"), frames("finnhub_ws/session2.txt")]


def test_alpaca_auth_subscribe_and_data_into_the_store(make: Any) -> None:
    with ProviderServer("alpaca", alpaca_sessions(), hold=True) as srv:
        s = make(alpaca_stream_url=srv.url)
        uid = s.user.user_id
        trades = s.service.subscribe("alpaca", "aapl", "trades", user_id=uid)
        quotes = s.service.subscribe("alpaca", "AAPL", "quotes", user_id=uid)
        bars = s.service.subscribe("alpaca", "AAPL", "ohlcv", "1m", user_id=uid)
        assert trades == StreamKey("alpaca", "AAPL", "trades")
        assert bars == StreamKey("alpaca", "AAPL", "ohlcv", "1m")
        keys = (trades, quotes, bars)
        assert wait_for(lambda: all(status(s.service, k).state == "live" for k in keys), 10)
        srv.play()
        assert wait_for(lambda: status(s.service, bars).messages == 2, 10)
        assert wait_for(lambda: status(s.service, trades).messages == 5, 10)

        # one connection for the three streams, to the stock feed, with the key in the auth message
        assert srv.connections == 1
        assert srv.paths == ["/v2/iex"]
        sent = srv.messages(0)
        assert sent[0] == {"action": "auth", "key": KEY_ID, "secret": SECRET}
        subscribed: dict[str, list[str]] = {"trades": [], "quotes": [], "bars": []}
        for msg in sent[1:]:
            assert msg["action"] == "subscribe"
            assert set(msg) == {"action", "trades", "quotes", "bars"}
            for channel, names in subscribed.items():
                names.extend(msg[channel])
        assert subscribed == {"trades": ["AAPL"], "quotes": ["AAPL"], "bars": ["AAPL"]}

        st = status(s.service, trades)
        assert st.connected
        assert st.last_error == ""
        assert st.malformed == 2  # the cut-off frame and the price sent as a string
        assert st.invalid == 1  # the negative size
        assert st.last_trade is not None
        assert st.last_trade["price"] == 211.66
        assert st.lag_s is not None
        assert st.lag_s > 0
        assert status(s.service, bars).malformed == 1  # the cut-off frame: the connection's
        quote = s.service.spread("alpaca", "AAPL")
        assert quote is not None
        assert (quote["bid"], quote["ask"]) == (211.5, 211.56)
        assert quote["spread"] == pytest.approx(0.06)
        assert s.service.last_trade("alpaca", "AAPL")["price"] == 211.66  # type: ignore[index]

        # into the store under venue alpaca: ids keep the exchange, bars are final
        assert wait_for(lambda: len(stored_trades(s.service, "alpaca", "AAPL")) == 3, 10)
        assert stored_trades(s.service, "alpaca", "AAPL") == [211.52, 211.55, 211.66]
        assert stored_bars(s.service, "alpaca", "AAPL") == [211.52, 211.66]
        ids = s.service.store.get_trades("AAPL", JULY_1, JULY_2, "alpaca")["trade_id"]  # type: ignore[union-attr]
        assert sorted(ids.to_list())[0] == "V-52983525029461"

        # Live Market's view: the provider's bars; 5m resampled from them
        live = s.service.live_bars("alpaca", "AAPL")
        assert live["close"].to_list() == [211.52, 211.66]
        five = s.service.live_bars("alpaca", "AAPL", "5m")  # 14:29 and 14:30: two buckets
        assert [t.minute for t in five["ts"]] == [25, 30]
        assert five["timeframe"].to_list() == ["5m", "5m"]
        assert "alpaca" in s.service.venues()
        assert s.service.live_symbols_of("alpaca") == ["AAPL"]
        assert not s.service.is_simulated("alpaca")


def test_alpaca_reconnects_after_a_drop_and_subscribes_again(make: Any) -> None:
    with ProviderServer("alpaca", alpaca_sessions(), hold=True) as srv:
        s = make(alpaca_stream_url=srv.url)
        uid = s.user.user_id
        trades = s.service.subscribe("alpaca", "AAPL", "trades", user_id=uid)
        bars = s.service.subscribe("alpaca", "AAPL", "ohlcv", user_id=uid)
        assert wait_for(lambda: status(s.service, bars).state == "live", 10)
        srv.play()
        assert wait_for(lambda: len(stored_trades(s.service, "alpaca", "AAPL")) == 3, 10)
        srv.drop()
        assert wait_for(lambda: status(s.service, trades).reconnects >= 1, 10)
        # the second connection authenticates again and asks for both streams in one message
        assert wait_for(lambda: 211.8 in stored_trades(s.service, "alpaca", "AAPL"), 10)
        assert wait_for(lambda: len(stored_bars(s.service, "alpaca", "AAPL")) == 3, 10)
        again = srv.messages(1)
        assert again[0] == {"action": "auth", "key": KEY_ID, "secret": SECRET}
        assert again[1] == {
            "action": "subscribe",
            "trades": ["AAPL"],
            "quotes": [],
            "bars": ["AAPL"],
        }
        st = status(s.service, trades)
        assert st.connected
        assert st.state == "live"
        assert st.last_error  # why it reconnected, in words
        assert s.service.live_bars("alpaca", "AAPL")["close"].to_list() == [211.52, 211.66, 211.8]


def test_alpaca_refused_key_stops_until_subscribed_again(make: Any) -> None:
    with ProviderServer("alpaca", alpaca_sessions()) as srv:
        s = make(alpaca_stream_url=srv.url)
        uid = s.user.user_id
        wrong = f"{KEY_ID}:WRONGsecret0123456789"
        s.backend.save_api_keys(uid, {"alpaca": wrong}, True, password=PASSWORD)
        key = s.service.subscribe("alpaca", "AAPL", "trades", user_id=uid)
        assert wait_for(lambda: status(s.service, key).state == "auth failed", 10)
        st = status(s.service, key)
        assert st.last_error == "auth failed: check your key on the API keys page"
        assert not st.connected
        assert srv.messages(0)[0] == {
            "action": "auth",
            "key": KEY_ID,
            "secret": "WRONGsecret0123456789",
        }
        assert not wait_for(lambda: srv.connections > 1, 1.0)  # no retry with a refused key
        assert "WRONGsecret" not in repr(s.service.status())
        # the user fixes the key and subscribes again: the stream starts over
        s.backend.save_api_keys(uid, {"alpaca": f"{KEY_ID}:{SECRET}"}, True, password=PASSWORD)
        assert s.service.subscribe("alpaca", "AAPL", "trades", user_id=uid) == key
        assert wait_for(lambda: status(s.service, key).state == "live", 10)
        assert wait_for(lambda: stored_trades(s.service, "alpaca", "AAPL") != [], 10)


def test_alpaca_connection_limit_is_retried_and_said_in_words(make: Any) -> None:
    with ProviderServer("alpaca", alpaca_sessions()) as srv:
        srv.auth_reply = "alpaca_ws/error_406_connection_limit.json"
        s = make(alpaca_stream_url=srv.url)
        key = s.service.subscribe("alpaca", "AAPL", "trades", user_id=s.user.user_id)
        assert wait_for(lambda: status(s.service, key).reconnects >= 2, 10)
        st = status(s.service, key)
        assert "one connection per key" in st.last_error
        assert st.state in ("reconnecting", "connecting")


def test_alpaca_symbol_limit_refuses_the_stream(make: Any) -> None:
    with ProviderServer("alpaca", alpaca_sessions()) as srv:
        srv.subscribe_error = "alpaca_ws/error_405_symbol_limit.json"
        s = make(alpaca_stream_url=srv.url)
        key = s.service.subscribe("alpaca", "AAPL", "quotes", user_id=s.user.user_id)
        assert wait_for(lambda: status(s.service, key).state == "refused", 10)
        assert "405: symbol limit exceeded" in status(s.service, key).last_error


def test_alpaca_crypto_stream_and_unsubscribe(make: Any) -> None:
    sessions = [frames("alpaca_ws/crypto_session1.txt")]
    with ProviderServer("alpaca", sessions) as srv:
        s = make(alpaca_stream_url=srv.url)
        key = s.service.subscribe("alpaca", "BTC/USD", "trades", user_id=s.user.user_id)
        assert wait_for(lambda: status(s.service, key).messages == 2, 10)
        assert srv.paths == ["/v1beta3/crypto/us"]
        s.service.flush()
        got = s.service.store.get_trades("BTC/USD", JULY_1, JULY_2, "alpaca")  # type: ignore[union-attr]
        assert got.sort("ts")["side"].to_list() == ["buy", "sell"]
        assert got.sort("ts")["trade_id"].to_list() == ["7210443", "7210444"]
        # a second stream shares the connection; unsubscribing it is one message
        bars = s.service.subscribe("alpaca", "BTC/USD", "ohlcv", user_id=s.user.user_id)
        assert wait_for(lambda: status(s.service, bars).state == "live", 10)
        assert s.service.unsubscribe(bars)
        assert wait_for(lambda: srv.messages(0)[-1]["action"] == "unsubscribe", 10)
        assert srv.messages(0)[-1] == {
            "action": "unsubscribe",
            "trades": [],
            "quotes": [],
            "bars": ["BTC/USD"],
        }
        assert srv.connections == 1
        # the last stream gone, the connection closes
        assert s.service.unsubscribe(key)
        assert s.service.subscriptions() == []
        assert wait_for(lambda: not srv._open, 10)


def test_finnhub_token_subscribe_trades_and_candles(
    make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with ProviderServer("finnhub", finnhub_sessions(), hold=True) as srv:
        s = make(finnhub_ws_url=srv.url)
        uid = s.user.user_id
        aapl = s.service.subscribe("finnhub", "AAPL", "trades", user_id=uid)
        btc = s.service.subscribe("finnhub", "BINANCE:BTCUSDT", "trades", user_id=uid)
        assert wait_for(lambda: len(srv.messages(0)) == 2, 10)
        srv.play()
        assert wait_for(lambda: status(s.service, aapl).messages == 7, 10)
        assert srv.connections == 1
        assert srv.paths == [f"/?token={FINNHUB_KEY}"]
        assert srv.messages(0) == [
            {"type": "subscribe", "symbol": "AAPL"},
            {"type": "subscribe", "symbol": "BINANCE:BTCUSDT"},
        ]
        st = status(s.service, aapl)
        assert st.state == "live"
        assert st.connected
        assert st.malformed == 2  # the cut-off frame and the time sent as a string
        assert st.invalid == 1  # the negative price
        # two identical trades in one millisecond are two trades
        want = [211.52, 211.52, 211.55, 211.66, 211.7]
        assert wait_for(lambda: stored_trades(s.service, "finnhub", "AAPL") == want, 10)
        assert stored_trades(s.service, "finnhub", "BINANCE:BTCUSDT") == [64123.5]
        assert status(s.service, btc).last_trade["price"] == 64123.5  # type: ignore[index]
        # no bar stream: Live Market's candles are built from the trades
        bars = s.service.live_bars("finnhub", "AAPL")
        assert [t.minute for t in bars["ts"]] == [30, 31]
        assert bars.row(0, named=True) | {"ts": None} == {
            "ts": None,
            "venue": "finnhub",
            "symbol": "AAPL",
            "timeframe": "1m",
            "open": 211.52,
            "high": 211.66,
            "low": 211.52,
            "close": 211.66,
            "volume": 265.0,
        }
        assert s.service.spread("finnhub", "AAPL") is None  # Finnhub sends no quotes
        srv.drop()
        assert wait_for(lambda: 211.8 in stored_trades(s.service, "finnhub", "AAPL"), 10)
        assert len(srv.messages(1)) == 2  # both symbols subscribed again
        assert status(s.service, aapl).reconnects == 1
    assert FINNHUB_KEY not in caplog.text
    assert FINNHUB_KEY not in repr(s.service.status())


def test_finnhub_refused_key_is_auth_failed(make: Any) -> None:
    with ProviderServer("finnhub", finnhub_sessions()) as srv:
        s = make(finnhub_ws_url=srv.url)
        uid = s.user.user_id
        s.backend.save_api_keys(uid, {"finnhub": "notthekey0123456789"}, True, password=PASSWORD)
        key = s.service.subscribe("finnhub", "AAPL", "trades", user_id=uid)
        assert wait_for(lambda: status(s.service, key).state == "auth failed", 10)
        assert (
            status(s.service, key).last_error == "auth failed: check your key on the API keys page"
        )
        assert srv.paths == ["/?token=notthekey0123456789"]
        assert not wait_for(lambda: srv.connections > 1 or len(srv.paths) > 1, 1.0)


def test_no_key_or_a_wrong_request_is_a_clear_error(make: Any) -> None:
    s = make()
    other = s.backend.register("nokey", "nokey@example.org", PASSWORD)
    with pytest.raises(
        InvalidInput, match="Alpaca needs your API key: save one on the API keys page"
    ):
        s.service.subscribe("alpaca", "AAPL", "trades", user_id=other.user_id)
    with pytest.raises(InvalidInput, match="Finnhub needs your API key: sign in and save one"):
        s.service.subscribe("finnhub", "AAPL", "trades")
    with pytest.raises(InvalidInput, match="Finnhub streams trades only"):
        s.service.subscribe("finnhub", "AAPL", "ohlcv", user_id=s.user.user_id)
    with pytest.raises(InvalidInput, match="Alpaca streams 1-minute bars"):
        s.service.subscribe("alpaca", "AAPL", "ohlcv", "5m", user_id=s.user.user_id)
    with pytest.raises(InvalidInput, match="is not a valid Alpaca symbol"):
        s.service.subscribe("alpaca", "AA PL", "trades", user_id=s.user.user_id)
    s.backend.save_api_keys(other.user_id, {"alpaca": "no-colon-here"}, True, password=PASSWORD)
    with pytest.raises(InvalidInput, match="KEY_ID:SECRET") as info:
        s.service.subscribe("alpaca", "AAPL", "trades", user_id=other.user_id)
    assert "no-colon-here" not in str(info.value)
    assert s.service.subscriptions() == []
