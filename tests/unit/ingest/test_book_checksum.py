"""Kraken's and OKX's book checksums against the venues' own examples, and the OKX hook on a
real ccxt.pro client fed the venue's messages."""

from __future__ import annotations

import asyncio
import json
import zlib
from pathlib import Path
from typing import Any

import ccxt
import ccxt.pro
import pytest

from core.ingest.book_checksum import RawBook, kraken_checksum, kraken_decimals, okx_checksum
from core.ingest.ccxt_ws import _guarded_class

DATA = Path(__file__).resolve().parents[2] / "data" / "ccxt"

# Kraken's documented book (docs.kraken.com/api/docs/guides/spot-ws-book-v1, "Example"):
# ten asks from 0.05005 up in steps of 0.00005, ten bids from 0.05000 down (0.04985 is not
# in the book), every level 0.00000500; the published checksum is 974947235.
KRAKEN_ASKS = [f"0.0{5005 + 5 * i}" for i in range(10)]
KRAKEN_BIDS = ["0.05000", "0.04995", "0.04990", "0.04980", "0.04975"]
KRAKEN_BIDS += ["0.04970", "0.04965", "0.04960", "0.04955", "0.04950"]
KRAKEN_DOC_CHECKSUM = 974947235


def signed(crc: int) -> int:
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def test_kraken_checksum_matches_krakens_example() -> None:
    asks = [[p, "0.00000500"] for p in KRAKEN_ASKS]
    bids = [[p, "0.00000500"] for p in KRAKEN_BIDS]
    assert kraken_checksum(bids, asks, 5, 8) == KRAKEN_DOC_CHECKSUM
    # WebSocket v2 sends JSON numbers: floats give the same answer with the pair's decimals
    floats = [[float(p), float(q)] for p, q in asks], [[float(p), float(q)] for p, q in bids]
    assert kraken_checksum(floats[1], floats[0], 5, 8) == KRAKEN_DOC_CHECKSUM
    assert kraken_checksum(floats[1], floats[0], 4, 8) != KRAKEN_DOC_CHECKSUM


def test_kraken_checksum_rules_by_hand() -> None:
    # asks before bids, only ten of each, leading zeros stripped per field, unsigned
    bids = [[42_000.5 - i, 0.25] for i in range(12)]
    asks = [[42_001.0 + i, 1.5] for i in range(12)]
    text = "".join(f"{int(a[0])}0150000000" for a in asks[:10])
    text += "".join(f"{str(b[0]).replace('.', '')}25000000" for b in bids[:10])
    expected = zlib.crc32(text.encode())
    assert kraken_checksum(bids, asks, 1, 8) == expected
    huge = [[1.0, 0.5]]
    value = kraken_checksum(huge, huge, 1, 8)
    assert value == zlib.crc32(b"1050000000" * 2)
    assert value >= 0


def test_kraken_decimals_from_asset_pairs_or_tick_sizes() -> None:
    pairs = json.loads((DATA / "kraken" / "AssetPairs.json").read_text())["result"]
    assert kraken_decimals({"info": pairs["XXBTZUSD"]}) == (1, 8)
    assert kraken_decimals({"info": {}, "precision": {"price": 0.01, "amount": 1e-8}}) == (2, 8)


# OKX's documented examples (OKX API docs, "Checksum": a book with two levels a side, and one
# with one bid and three asks), with the checksums the docs give.
OKX_EVEN = ([["3366.1", "7"], ["3366", "6"]], [["3366.8", "9"], ["3368", "8"]], -1881014294)
OKX_ODD = ([["3366.1", "7"]], [["3366.8", "9"], ["3368", "8"], ["3372", "8"]], 831078360)


@pytest.mark.parametrize(("bids", "asks", "checksum"), [OKX_EVEN, OKX_ODD])
def test_okx_checksum_matches_okxs_examples(
    bids: list[list[str]], asks: list[list[str]], checksum: int
) -> None:
    assert okx_checksum(bids, asks) == checksum


def test_okx_checksum_uses_the_venues_strings_and_25_levels() -> None:
    bids = [[f"{100 - i}", "1.50"] for i in range(30)]
    asks = [[f"{101 + i}.0", "2"] for i in range(30)]
    fields = [f"{100 - i}:1.50:{101 + i}.0:2" for i in range(25)]
    assert okx_checksum(bids, asks) == signed(zlib.crc32(":".join(fields).encode()))
    as_floats = [[str(float(p)), str(float(s))] for p, s in bids]
    assert okx_checksum(as_floats, asks) != okx_checksum(bids, asks)  # "100.0" is not "100"


def test_raw_book_applies_updates_on_strings() -> None:
    raw = RawBook()
    raw.apply({"bids": [["3366.1", "7", "0", "1"], ["3365", "1", "0", "1"]], "asks": []})
    raw.apply({"bids": [["3366", "6", "0", "2"], ["3365.0", "0", "0", "0"]], "asks": []})
    raw.apply({"asks": [["3368", "8", "0", "1"], ["3366.8", "9", "0", "3"]]})
    checksum = OKX_EVEN[2]
    assert raw.checksum() == checksum
    assert list(raw.bids.values()) == [("3366.1", "7"), ("3366", "6")]


def okx_book(action: str, bids: list[list[str]], asks: list[list[str]], **data: Any) -> dict:
    levels = {k: [[p, s, "0", "1"] for p, s in v] for k, v in (("bids", bids), ("asks", asks))}
    return {
        "arg": {"channel": "books", "instId": "BTC-USDT"},
        "action": action,
        "data": [{**levels, "ts": "1765000000000", **data}],
    }


async def okx_client_run(messages: list[dict[str, Any]]) -> tuple[list[Any], Any]:
    """Feed `messages` to a guarded ccxt.pro okx client; what each watch got, and the client."""
    ex = _guarded_class(ccxt.pro.okx)({})
    payload = json.loads((DATA / "okx" / "instruments_SPOT.json").read_text())
    ex.set_markets(ex.parse_markets(payload["data"]))
    client = ex.client(ex.get_url("books", "public"))
    client.subscriptions["books:BTC/USDT"] = True
    got: list[Any] = []
    for message in messages:
        future = client.future("books:BTC/USDT")
        ex.handle_message(client, message)
        try:
            book = await asyncio.wait_for(future, 1)
            got.append({side: [list(level) for level in book[side]] for side in ("bids", "asks")})
        except ccxt.ChecksumError as exc:
            got.append(exc)
    await ex.close()
    return got, client


def test_the_okx_hook_rejects_a_wrong_checksum_and_marks_a_resync() -> None:
    bids, asks, checksum = OKX_EVEN
    good = okx_book("snapshot", bids, asks, checksum=checksum, prevSeqId=-1, seqId=10)
    update = okx_book("update", [["3366.1", "5"]], [], prevSeqId=10, seqId=11)
    update["data"][0]["checksum"] = okx_checksum([["3366.1", "5"], ["3366", "6"]], asks) + 1
    got, client = asyncio.run(okx_client_run([good, update]))
    assert got[0]["bids"] == [[3366.1, 7.0], [3366.0, 6.0]]
    assert isinstance(got[1], ccxt.ChecksumError)
    assert client.subscriptions["books:BTC/USDT"] == "resync"  # next watch resubscribes


def test_the_okx_hook_reads_a_zero_checksum_as_not_sent() -> None:
    bids, asks, _ = OKX_EVEN
    snapshot = okx_book("snapshot", bids, asks, checksum=0, prevSeqId=-1, seqId=10)
    got, client = asyncio.run(okx_client_run([snapshot]))
    assert got[0]["asks"] == [[3366.8, 9.0], [3368.0, 8.0]]
    assert client.subscriptions["books:BTC/USDT"] is True


def test_a_crossed_okx_book_is_dropped_for_a_resubscribe() -> None:
    """`take` drops a crossed book through the venue's hook: OKX marks the channel for
    ccxt's unsubscribe-then-subscribe, as after a sequence gap."""
    from core.ingest.book_stream import drop_client_book

    async def run() -> tuple[Any, Any]:
        bids, asks, checksum = OKX_EVEN
        snapshot = okx_book("snapshot", bids, asks, checksum=checksum, prevSeqId=-1, seqId=10)
        ex = _guarded_class(ccxt.pro.okx)({})
        payload = json.loads((DATA / "okx" / "instruments_SPOT.json").read_text())
        ex.set_markets(ex.parse_markets(payload["data"]))
        client = ex.client(ex.get_url("books", "public"))
        client.subscriptions["books:BTC/USDT"] = True
        ex.handle_message(client, snapshot)
        assert "BTC/USDT" in ex.orderbooks
        assert "BTC/USDT" in ex.hft_raw
        drop_client_book(ex, "BTC/USDT")
        await ex.close()
        return ex, client

    ex, client = asyncio.run(run())
    assert "BTC/USDT" not in ex.orderbooks
    assert "BTC/USDT" not in ex.hft_raw
    assert client.subscriptions["books:BTC/USDT"] == "resync"
