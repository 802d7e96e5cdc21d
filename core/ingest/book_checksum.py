"""Order-book checksums of Kraken and OKX, and the hooks that make a ccxt.pro client check
every book message before the watcher gets the book.

ccxt cannot be relied on for this: its Kraken check is off by default and breaks on the float
prices of WebSocket v2 (ccxt 4.5), and it never checks OKX's. On a mismatch the hooks do what
ccxt does after its own nonce errors: the client forgets its book and its subscription and
rejects the watch with `ChecksumError`; the next watch unsubscribes and subscribes again, so
the venue sends a fresh snapshot, and the stream manager counts a resync.

- Kraken, WebSocket v2 `book` (docs.kraken.com/exchange/guides/websockets/book-checksum-v2):
  the top 10 asks (low to high) then the top 10 bids (high to low); each price and quantity
  printed with the pair's decimals, '.' removed, leading zeros stripped; all concatenated;
  CRC32 as an unsigned 32-bit integer.
- OKX `books` (www.okx.com/docs-v5, "Checksum"): up to 25 levels interleaved
  `bid price:bid size:ask price:ask size:...` (the longer side goes on alone), on the exact
  strings the venue sent; CRC32 as a signed 32-bit integer. OKX stopped filling the field on
  23 June 2026 (it is 0 since, and sequence ids are the check): 0 means "not sent".
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import ccxt

KRAKEN_LEVELS = 10
OKX_LEVELS = 25
OKX_KEEP = 400
"""Levels per side OKX's `books` channel streams (and ccxt keeps)."""


def _digits(value: object, decimals: int) -> str:
    """Kraken's form of one number: fixed decimals, no '.', no leading zeros."""
    try:
        text = f"{Decimal(str(value)):.{decimals}f}"
    except (InvalidOperation, ValueError):
        text = str(value)
    return text.replace(".", "").lstrip("0")


def kraken_checksum(
    bids: Sequence[Sequence[Any]],
    asks: Sequence[Sequence[Any]],
    price_decimals: int,
    qty_decimals: int,
) -> int:
    """Kraken's CRC32 of a book: `bids` best (highest) first, `asks` best (lowest) first,
    levels as [price, qty, ...] numbers or strings."""
    text = "".join(
        _digits(level[0], price_decimals) + _digits(level[1], qty_decimals)
        for level in [*asks[:KRAKEN_LEVELS], *bids[:KRAKEN_LEVELS]]
    )
    return zlib.crc32(text.encode())


def okx_checksum(bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> int:
    """OKX's CRC32 of a book, from the venue's own strings, best levels first."""
    fields: list[str] = []
    for i in range(OKX_LEVELS):
        for side in (bids, asks):
            if i < len(side):
                fields += [str(side[i][0]), str(side[i][1])]
    crc = zlib.crc32(":".join(fields).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def _sent(checksum: object) -> bool:
    return isinstance(checksum, int) and not isinstance(checksum, bool) and checksum != 0


class RawBook:
    """One OKX book as the venue's strings: price -> (price text, size text)."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, tuple[str, str]] = {}
        self.asks: dict[Decimal, tuple[str, str]] = {}

    def apply(self, message: dict[str, Any]) -> None:
        for name, side in (("bids", self.bids), ("asks", self.asks)):
            for level in message.get(name) or []:
                price, size = str(level[0]), str(level[1])
                if Decimal(size) == 0:
                    side.pop(Decimal(price), None)
                else:
                    side[Decimal(price)] = (price, size)
            if len(side) > OKX_KEEP:
                worst = sorted(side, reverse=name == "asks")[: len(side) - OKX_KEEP]
                for price_key in worst:
                    del side[price_key]

    def checksum(self) -> int:
        bids = [self.bids[p] for p in sorted(self.bids, reverse=True)[:OKX_LEVELS]]
        asks = [self.asks[p] for p in sorted(self.asks)[:OKX_LEVELS]]
        return okx_checksum(bids, asks)


class KrakenChecks:
    """Mixed into a ccxt.pro kraken class: checks each `book` message's checksum on the
    client's own book before the watcher is resolved."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)  # type: ignore[call-arg]
        self.hft_resync: set[str] = set()

    def handle_order_book(self: Any, client: Any, message: Any) -> None:
        first = (message.get("data") or [{}])[0]
        symbol = first.get("symbol")
        if message.get("type") == "update" and symbol not in self.orderbooks:
            return  # the book was dropped: wait for the new snapshot
        name = self.get_message_hash("orderbook", None, symbol)
        waiting = client.futures.pop(name, None)  # ccxt resolves nothing while we check
        try:
            ccxt_handler: Any = super()
            ccxt_handler.handle_order_book(client, message)
        finally:
            if waiting is not None:
                client.futures[name] = waiting
        book = self.orderbooks.get(symbol)
        if book is None:
            return
        sent = first.get("checksum")
        if _sent(sent):
            price_decimals, qty_decimals = kraken_decimals(self.market(symbol))
            if kraken_checksum(book["bids"], book["asks"], price_decimals, qty_decimals) != sent:
                self.hft_drop_book(symbol)
                error = ccxt.ChecksumError(f"{self.id} {self.orderbook_checksum_message(symbol)}")
                client.reject(error, name)
                return
        client.resolve(book, name)

    def hft_drop_book(self: Any, symbol: str) -> None:
        """Forget the book; the next watch unsubscribes first (a second subscribe to a
        streaming channel brings no snapshot)."""
        self.orderbooks.pop(symbol, None)
        name = self.get_message_hash("orderbook", None, symbol)
        for client in list(self.clients.values()):
            if client.subscriptions.pop(name, None) is not None:
                self.hft_resync.add(symbol)

    async def watch_order_book_for_symbols(
        self: Any, symbols: list[str], limit: int | None = None, params: Any = None
    ) -> Any:
        stale = [s for s in symbols if s in self.hft_resync]
        if stale:
            self.hft_resync.difference_update(stale)
            client = self.clients.get(self.urls["api"]["ws"]["publicV2"])
            if client is not None and client.connected.done() and not client.closed():
                request = {"channel": "book", "symbol": stale}
                message = {"method": "unsubscribe", "params": request, "req_id": self.request_id()}
                await client.send(message)  # sent before the new subscribe
        ccxt_watch: Any = super()
        return await ccxt_watch.watch_order_book_for_symbols(symbols, limit, params or {})


def kraken_decimals(market: dict[str, Any]) -> tuple[int, int]:
    """(price decimals, qty decimals) of a ccxt Kraken market: AssetPairs' `pair_decimals`
    and `lot_decimals`, else the market's tick sizes."""
    info = market.get("info") or {}
    if "pair_decimals" in info and "lot_decimals" in info:
        return int(info["pair_decimals"]), int(info["lot_decimals"])
    precision = market.get("precision") or {}
    return (
        _decimals_of(precision.get("price")),
        _decimals_of(precision.get("amount")),
    )


def _decimals_of(tick: object) -> int:
    if tick is None:
        return 8
    exponent = Decimal(str(tick)).normalize().as_tuple().exponent
    return max(0, -int(exponent))


class OkxChecks:
    """Mixed into a ccxt.pro okx class: keeps each book as the venue's strings and checks
    each `books` message's checksum before ccxt resolves the watcher."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)  # type: ignore[call-arg]
        self.hft_raw: dict[str, RawBook] = {}
        self.hft_action: str | None = None
        self.hft_failed: set[str] = set()

    def handle_order_book(self: Any, client: Any, message: Any) -> Any:
        self.hft_action = message.get("action")
        self.hft_failed = set()
        try:
            ccxt_handler: Any = super()
            return ccxt_handler.handle_order_book(client, message)
        finally:
            for name in self.hft_failed:
                client.subscriptions[name] = "resync"  # ccxt's own nonce path: resubscribe

    def handle_order_book_message(
        self: Any, client: Any, message: Any, orderbook: Any, name: str, market: Any = None
    ) -> Any:
        ccxt_handler: Any = super()
        result = ccxt_handler.handle_order_book_message(client, message, orderbook, name, market)
        symbol = orderbook.get("symbol")
        if name not in client.subscriptions:  # ccxt saw a sequence gap and dropped the book
            self.hft_raw.pop(symbol, None)
            return result
        raw = None if self.hft_action == "snapshot" else self.hft_raw.get(symbol)
        if raw is None:
            raw = self.hft_raw[symbol] = RawBook()
        raw.apply(message)
        if _sent(message.get("checksum")) and raw.checksum() != message["checksum"]:
            del client.subscriptions[name]
            self.orderbooks.pop(symbol, None)
            self.hft_raw.pop(symbol, None)
            self.hft_failed.add(name)
            error = ccxt.ChecksumError(f"{self.id} {self.orderbook_checksum_message(symbol)}")
            client.reject(error, name)
        return result

    def hft_drop_book(self: Any, symbol: str) -> None:
        """Forget the book; the next watch unsubscribes and subscribes (ccxt's resync)."""
        self.orderbooks.pop(symbol, None)
        self.hft_raw.pop(symbol, None)
        for client in list(self.clients.values()):
            for name in list(client.subscriptions):
                if name.startswith("books") and name.endswith(f":{symbol}"):
                    client.subscriptions[name] = "resync"


BOOK_CHECKS: dict[str, type] = {"kraken": KrakenChecks, "okx": OkxChecks}
"""ccxt id -> the mixin that checks its book checksums."""
