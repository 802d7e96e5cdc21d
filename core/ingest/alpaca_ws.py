"""Alpaca market data v2 over its WebSocket: the wire format, as pure functions.

Stocks stream from `{stream}/v2/iex` (the feed every plan includes; SIP needs a paid plan),
crypto (a BASE/QUOTE symbol) from `{stream}/v1beta3/crypto/us`. Frames are JSON arrays.
- on connect the server sends `[{"T":"success","msg":"connected"}]`;
- the client sends `{"action":"auth","key":KEY_ID,"secret":SECRET}`, answered by
  `[{"T":"success","msg":"authenticated"}]` or `[{"T":"error","code":402,"msg":"auth failed"}]`;
- `{"action":"subscribe","trades":[..],"quotes":[..],"bars":[..]}` (and "unsubscribe") is
  answered by `[{"T":"subscription","trades":[..],"quotes":[..],"bars":[..],...}]`, the full
  list of what the connection now receives;
- data: `{"T":"t","S","i","x","p","s","t","c","z"}` trades (crypto adds `tks`, the taker side),
  `{"T":"q","S","bx","bp","bs","ax","ap","as","t",...}` quotes, `{"T":"b","S","o","h","l","c",
  "v","t","n","vw"}` 1-minute bars sent once the minute is over, `t` in RFC 3339 (ns).
Errors: 400 invalid syntax, 401 not authenticated, 402 auth failed, 404 auth timeout, 405 symbol
limit, 406 connection limit, 407 slow client, 409 insufficient subscription, 410 invalid
subscribe action, 500 internal error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.ingest.alpaca import key_pair
from core.ingest.ccxt_ws import StreamKey
from core.ingest.venues import venue

if TYPE_CHECKING:
    from core.config import Settings

VENUE = venue("alpaca")
KINDS = ("ohlcv", "trades", "quotes")
FEED = "iex"
AUTH_FAILED = "auth failed: check your key on the API keys page"
CHANNELS = {"trades": "trades", "quotes": "quotes", "ohlcv": "bars"}
"""Stream kind -> Alpaca's channel."""
MESSAGE_KINDS = {"t": "trades", "q": "quotes", "b": "ohlcv"}
"""A data message's `T` -> stream kind."""
_SIDES = {"B": "buy", "S": "sell"}


@dataclass(frozen=True, slots=True)
class Refusal:
    """What a provider's error means for the connection."""

    final: bool
    """Retrying cannot help (key or plan): stop until someone subscribes again."""
    state: str
    text: str


def endpoint(symbol: str, settings: Settings | None) -> str:
    path = "/v1beta3/crypto/us" if "/" in symbol else f"/v2/{FEED}"
    return VENUE.url("stream", settings) + path


def auth_text(stored: str) -> str:
    """The auth message for a stored "KEY_ID:SECRET" key (InvalidInput naming neither part)."""
    key_id, secret = key_pair(stored)
    return json.dumps({"action": "auth", "key": key_id, "secret": secret})


def greeted(messages: list[Any]) -> bool:
    return any(_is(m, "success", "connected") for m in messages)


def login_answer(messages: list[Any]) -> Refusal | None:
    """None when the key was accepted, else what the refusal means."""
    for m in messages:
        if _is(m, "success", "authenticated"):
            return None
        if isinstance(m, dict) and m.get("T") == "error":
            return refusal(m)
    return Refusal(False, "reconnecting", "Alpaca did not confirm the key")


def refusal(item: dict[str, Any]) -> Refusal:
    code, said = item.get("code"), str(item.get("msg", ""))[:200]
    if code in (401, 402):
        return Refusal(True, "auth failed", AUTH_FAILED)
    if code in (405, 409, 410):
        return Refusal(True, "refused", f"Alpaca refused the stream ({code}: {said})")
    if code == 406:
        return Refusal(
            False,
            "reconnecting",
            "Alpaca allows one connection per key and endpoint (406: connection limit "
            "exceeded); another program may be using this key",
        )
    return Refusal(False, "reconnecting", f"Alpaca error {code}: {said}")


def subscribe_texts(keys: list[StreamKey], action: str) -> list[str]:
    """One (un)subscribe message for every stream in `keys`."""
    if not keys:
        return []
    msg: dict[str, Any] = {"action": action, "trades": [], "quotes": [], "bars": []}
    for k in keys:
        msg[CHANNELS[k.kind]].append(k.symbol)
    return [json.dumps(msg)]


def confirmed(item: dict[str, Any], key: StreamKey) -> bool:
    """Whether a subscription message lists `key`'s symbol in its channel."""
    names = item.get(CHANNELS[key.kind]) or []
    return isinstance(names, list) and (key.symbol in names or "*" in names)


def stream_key(item: dict[str, Any]) -> StreamKey | None:
    """The stream a data message belongs to; None for control and other messages."""
    kind = MESSAGE_KINDS.get(str(item.get("T")))
    if kind is None:
        return None
    return StreamKey(VENUE.name, str(item.get("S")), kind, "1m" if kind == "ohlcv" else None)


def ms(stamp: object) -> int:
    """An RFC 3339 time (nanoseconds allowed) -> Unix milliseconds."""
    when = datetime.fromisoformat(str(stamp))
    if when.tzinfo is None:
        raise ValueError("timestamp without a time zone")
    return int(when.astimezone(UTC).timestamp() * 1000)


def number(value: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError("not a number")
    return float(value)


def trade(item: dict[str, Any]) -> dict[str, Any]:
    """A trade message -> the ccxt-shaped trade `trades_frame` takes. A stock trade id is unique
    per exchange: the exchange is kept with it (as the history source does)."""
    trade_id = f"{item['x']}-{item['i']}" if item.get("x") else str(item["i"])
    return {
        "id": trade_id,
        "timestamp": ms(item["t"]),
        "price": number(item["p"]),
        "amount": number(item["s"]),
        "side": _SIDES.get(str(item.get("tks", ""))),
    }


def quote(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "bid": number(item["bp"]),
        "ask": number(item["ap"]),
        "bid_size": number(item.get("bs", 0)),
        "ask_size": number(item.get("as", 0)),
        "received": datetime.now(UTC),
    }


def bar(item: dict[str, Any]) -> list[Any]:
    """A bar message -> [ms, open, high, low, close, volume]."""
    return [ms(item["t"]), *(number(item[f]) for f in "ohlcv")]


def _is(m: object, kind: str, said: str) -> bool:
    return isinstance(m, dict) and m.get("T") == kind and m.get("msg") == said
