"""Finnhub trades over its WebSocket: the wire format, as pure functions.

The key travels in the `token` query parameter of `wss://ws.finnhub.io?token=KEY` (the only
way Finnhub takes it); a refused key fails the upgrade with HTTP 401. The client sends
`{"type":"subscribe","symbol":"AAPL"}` (and "unsubscribe") per symbol; the server sends
`{"type":"trade","data":[{"s","p","t","v","c"}]}` (`t` in Unix ms, `v` the volume, `c` the
trade conditions), `{"type":"ping"}` keep-alives, and `{"type":"error","msg":...}`.
Trades carry no id: it is made from their time and their order within that millisecond.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from core.ingest.alpaca_ws import AUTH_FAILED, Refusal, number
from core.ingest.ccxt_ws import StreamKey
from core.ingest.venues import venue

if TYPE_CHECKING:
    from core.config import Settings

VENUE = venue("finnhub")
KINDS = ("trades",)


def endpoint(settings: Settings | None) -> str:
    return VENUE.url("ws", settings)


def connect_url(base: str, stored: str) -> str:
    """The URL with the key; built inside the connect coroutine and never kept."""
    return base + ("&" if "?" in base else "?") + "token=" + quote(stored.strip(), safe="")


def subscribe_texts(keys: list[StreamKey], action: str) -> list[str]:
    return [json.dumps({"type": action, "symbol": k.symbol}) for k in keys]


def error(msg: dict[str, Any]) -> Refusal:
    said = str(msg.get("msg", ""))[:200]
    if any(w in said.lower() for w in ("api key", "token")):
        return Refusal(True, "auth failed", AUTH_FAILED)
    return Refusal(False, "", f"Finnhub: {said}")


def stream_key(item: dict[str, Any]) -> StreamKey:
    return StreamKey(VENUE.name, str(item.get("s")), "trades")


def trade(item: dict[str, Any], next_id: Callable[[int], str]) -> dict[str, Any]:
    """A trade of a `data` list -> the ccxt-shaped trade `trades_frame` takes; `next_id(ms)`
    numbers the trades of one millisecond."""
    ms = item["t"]
    if not isinstance(ms, int) or isinstance(ms, bool):
        raise TypeError("trade time is not a number")
    price, amount = number(item["p"]), number(item["v"])
    return {
        "id": next_id(ms),
        "timestamp": ms,
        "price": price,
        "amount": amount,
        "side": None,
    }
