"""Book streams: one ccxt.pro `watch_order_book` update into the live book and the recorder.

The venue client syncs the book: Binance's snapshot + diffs with its update-id rule (ccxt
raises `InvalidNonce` on a gap), OKX's sequence ids (ccxt, `InvalidNonce`), and Kraken's and
OKX's checksums, which ccxt does not check: core.ingest.book_checksum hooks them into the
client and raises `ChecksumError`. Either way the client drops its copy so the next watch
starts from a new snapshot. A crossed book (best bid >= best ask) is a sync error no client
catches: `take` drops the client's copy the same way. Each resync is counted in the stream
status.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import ccxt

from core.data.books import BookEvent
from core.ingest.live_book import LiveBook

OnBook = Callable[[Any, list[BookEvent]], None]
"""on_book(stream key, events): what a book update changed, for the recorder."""

RESYNC_ERRORS = (ccxt.ChecksumError, ccxt.InvalidNonce)


class CrossedBook(ccxt.InvalidNonce):  # type: ignore[misc]
    """The client's book is crossed: it fell out of sync with the venue."""


def drop_client_book(ex: Any, symbol: str) -> None:
    """Forget the client's copy of `symbol`'s book, so the next watch resubscribes and
    fetches a new snapshot (what ccxt itself does after a nonce or checksum error)."""
    venue_drop = getattr(ex, "hft_drop_book", None)
    if venue_drop is not None:  # Kraken, OKX: unsubscribe before the new snapshot
        venue_drop(symbol)
        return
    books = getattr(ex, "orderbooks", None)
    if isinstance(books, dict):
        books.pop(symbol, None)
    for client in list(getattr(ex, "clients", {}).values()):
        subs = getattr(client, "subscriptions", {})
        for name in [n for n in subs if n.startswith("orderbook") and n.endswith(symbol)]:
            subs.pop(name, None)


def take(ex: Any, symbol: str, ob: dict[str, Any], book: LiveBook) -> list[BookEvent]:
    """Check one client book and feed it to `book`; raises CrossedBook when crossed."""
    bids, asks = ob.get("bids") or [], ob.get("asks") or []
    if bids and asks and float(bids[0][0]) >= float(asks[0][0]):
        drop_client_book(ex, symbol)
        book.resync()
        raise CrossedBook(f"{symbol} book crossed: bid {bids[0][0]} >= ask {asks[0][0]}")
    stamp = ob.get("timestamp")
    ts_us = int(stamp) * 1000 if isinstance(stamp, int) else int(time.time() * 1e6)
    return book.update(bids, asks, ts_us)
