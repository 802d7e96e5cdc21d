"""Polymarket's Gamma and CLOB APIs against a loopback server replaying their wire format
(tests/data/polymarket).

Each test checks what went out (paths, query strings, pages, windows) and that the per-IP
meter moved by exactly the number of requests the server saw.
"""

from __future__ import annotations

import itertools
import json
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from core.config import Settings
from core.data.schema import BARS
from core.errors import InvalidInput
from core.ingest.base import SourceError, SourceUnavailable
from core.ingest.meter import QuotaPause, WindowMeter, public_meter
from core.ingest.polymarket import PolymarketSource
from core.ingest.venues import venue
from tests.integration.ingest.recorded import DATA, RecordedServer, Reply, raw, recorded, serving

PM = venue("polymarket")
SLUG = "no-change-in-fed-interest-rates-after-january-2027-meeting"


def pm(name: str, status: int = 200, **headers: str) -> Reply:
    return recorded(f"polymarket/{name}", status, **headers)


def payload(name: str) -> Any:
    return json.loads((DATA / "polymarket" / name).read_text())


YES, NO = json.loads(payload("market_by_slug.json")[0]["clobTokenIds"])


class Clock:
    def __init__(self) -> None:
        self.now = 1_796_540_400.0

    def __call__(self) -> float:
        return self.now


def source(srv: RecordedServer, meter: WindowMeter | None = None, **kw: Any) -> PolymarketSource:
    settings = Settings(polymarket_gamma_url=srv.base, polymarket_clob_url=srv.base)
    return PolymarketSource(meter or WindowMeter(PM), settings=settings, **kw)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- search --------------------------------------------------------------------------------


def test_search_pages_through_public_search() -> None:
    pages = [pm("search_fed_page1.json"), pm("search_fed_page2.json")]
    with serving({"/public-search": pages}) as srv:
        src = source(srv, page_size=3)
        found = src.search("  fed ", limit=20)
        queries = [r.query for r in srv.hits("/public-search")]
        seen = len(srv.requests)
    assert queries == [
        {
            "q": "fed",
            "limit_per_type": "3",
            "page": str(page),
            "events_status": "active",
            "keep_closed_markets": "0",
        }
        for page in (1, 2)
    ]
    # page 1 has a closed market inside an active event: left out
    assert [m.id for m in found] == ["601229", "601230", "601231", "588105", "540017"]
    m = found[2]
    assert m.slug == SLUG
    assert m.question == "No change in Fed interest rates after January 2027 meeting?"
    assert m.outcomes == ("Yes", "No")
    assert m.outcome_prices == (0.765, 0.235)
    assert m.token_ids == (YES, NO)
    assert m.token_of("No") == NO
    assert m.volume == 4188021.512
    assert m.liquidity == 213044.3771
    assert m.end_date == datetime(2027, 1, 27, 12, tzinfo=UTC)
    assert (m.active, m.closed) == (True, False)
    assert m.event == "Fed decision in January?"
    assert src.meter.requests == src.requests == seen == 2


def test_search_stops_once_it_has_enough() -> None:
    pages = [pm("search_fed_page1.json"), pm("search_fed_page2.json")]
    with serving({"/public-search": pages}) as srv:
        src = source(srv)
        found = src.search("fed", limit=2)
        seen = len(srv.requests)
    assert [m.id for m in found] == ["601229", "601230"]
    assert src.meter.requests == seen == 1


def test_search_with_closed_markets() -> None:
    with serving({"/public-search": [pm("search_fed_page2.json")]}) as srv:
        src = source(srv)
        src.search("fed", active_only=False)
        (req,) = srv.hits("/public-search")
    assert req.query == {"q": "fed", "limit_per_type": "50", "page": "1"}
    with serving({"/public-search": [pm("search_fed_page1.json")]}) as srv:
        found = source(srv).search("fed", limit=6, active_only=False)
    assert "588102" in [m.id for m in found]  # the closed one is kept
    closed = next(m for m in found if m.id == "588102")
    assert closed.closed
    assert closed.outcome_prices == (0.0, 1.0)


def test_no_match_is_an_empty_list() -> None:
    with serving({"/public-search": [pm("search_nothing.json")]}) as srv:
        src = source(srv)
        assert src.search("zzzz no such market") == []
        assert src.meter.requests == len(srv.requests) == 1


def test_empty_query_lists_the_top_markets_by_offset() -> None:
    pages = [pm(f"markets_top_offset{n}.json") for n in (0, 2, 4)]
    with serving({"/markets": pages}) as srv:
        src = source(srv, page_size=2)
        found = src.search("", limit=10)
        queries = [r.query for r in srv.hits("/markets")]
    assert [q["offset"] for q in queries] == ["0", "2", "4"]  # the short last page ends it
    assert queries[0] == {
        "limit": "2",
        "offset": "0",
        "order": "volume24hr",
        "ascending": "false",
        "active": "true",
        "closed": "false",
    }
    assert len(found) == 5
    assert found[0].question == "Will Bitcoin reach $150,000 by December 31, 2026?"
    assert src.meter.requests == src.requests == 3


def test_one_market_by_slug_or_id() -> None:
    replies = [
        pm("market_by_slug.json"),
        pm("market_by_slug.json"),
        raw("[]", 200, "application/json"),
    ]
    with serving({"/markets": replies}) as srv:
        src = source(srv)
        by_slug = src.market(SLUG)
        by_id = src.market("601231")
        with pytest.raises(SourceError, match="Polymarket has no market 'gone-market'"):
            src.market("gone-market")
        with pytest.raises(InvalidInput, match="slug"):
            src.market("../../etc/passwd")
        queries = [r.query for r in srv.hits("/markets")]
    assert queries == [{"slug": SLUG}, {"id": "601231"}, {"slug": "gone-market"}]
    assert by_slug == by_id
    assert by_slug.token_ids == (YES, NO)
    assert src.meter.requests == 3  # the refused slug was never sent


def test_the_default_meter_is_the_process_wide_public_one() -> None:
    meter = public_meter(PM)
    before = meter.requests
    with serving({"/public-search": [pm("search_fed_page2.json")]}) as srv:
        src = PolymarketSource(settings=Settings(polymarket_gamma_url=srv.base))
        src.search("fed")
        seen = len(srv.requests)
    assert src.meter is meter
    assert meter.requests - before == seen == 1


def test_urls_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with serving({"/public-search": [pm("search_fed_page2.json")]}) as srv:
        monkeypatch.setenv("HFT_POLYMARKET_GAMMA_URL", srv.base + "/")
        src = PolymarketSource(WindowMeter(PM))
        assert [m.id for m in src.search("fed")] == ["540017"]
    assert src.gamma_url == srv.base
    assert src.clob_url == "https://clob.polymarket.com"


# --- history -------------------------------------------------------------------------------


def test_bars_take_open_high_low_close_from_the_points_inside() -> None:
    day = datetime(2026, 12, 4, tzinfo=UTC)
    with serving({"/prices-history": [pm("prices_history_10min.json")]}) as srv:
        src = source(srv)
        bars = src.fetch_bars(YES, "1h", day, day + timedelta(days=1))
        (req,) = srv.hits("/prices-history")
    assert req.query == {
        "market": YES,
        "startTs": str(int(day.timestamp())),
        "endTs": str(int((day + timedelta(days=1)).timestamp())),
        "fidelity": "10",
    }
    assert bars.schema == BARS
    assert bars.height == 24
    points = pl.DataFrame(payload("prices_history_10min.json")["history"])
    hour = int(day.timestamp()) + 5 * 3600
    inside = points.filter((pl.col("t") >= hour) & (pl.col("t") < hour + 3600)).sort("t")
    row = bars.filter(pl.col("ts") == datetime.fromtimestamp(hour, UTC)).row(0, named=True)
    assert inside.height == 6
    assert (row["open"], row["close"]) == (inside["p"][0], inside["p"][-1])
    assert (row["high"], row["low"]) == (inside["p"].max(), inside["p"].min())
    assert bars["volume"].null_count() == 24  # prices-history publishes no volume
    assert set(bars["venue"]) == {"polymarket"}
    assert set(bars["symbol"]) == {YES}
    assert bars["ts"].is_sorted()
    assert src.meter.requests == 1


def test_one_minute_bars() -> None:
    end = datetime(2026, 12, 6, 7, tzinfo=UTC)
    with serving({"/prices-history": [pm("prices_history_1min.json")]}) as srv:
        src = source(srv)
        bars = src.fetch_bars(YES, "1m", end - timedelta(hours=6), end)
        assert srv.requests[0].query["fidelity"] == "1"
    assert bars.height == 360
    assert (bars["ts"].diff().drop_nulls().dt.total_seconds() == 60).all()
    assert (bars["open"] == bars["close"]).all()  # one point per minute


def test_long_ranges_are_asked_in_windows_of_14_days() -> None:
    steps: list[tuple[float, str]] = []
    d0 = datetime(2026, 10, 1, tzinfo=UTC)
    parts = [pm(f"prices_history_12h_part{n}.json") for n in (1, 2, 3)]
    with serving({"/prices-history": parts}) as srv:
        src = source(srv)
        bars = src.fetch_bars(
            YES, "1d", d0, d0 + timedelta(days=40), progress=lambda f, m: steps.append((f, m))
        )
        windows = [(r.query["startTs"], r.query["endTs"]) for r in srv.hits("/prices-history")]
        fidelity = {r.query["fidelity"] for r in srv.requests}
    edges = [int((d0 + timedelta(days=d)).timestamp()) for d in (0, 14, 28, 40)]
    assert windows == [(str(a), str(b)) for a, b in itertools.pairwise(edges)]
    assert fidelity == {"720"}
    assert bars.height == 40
    assert bars["ts"][0] == d0
    assert [f for f, _ in steps] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert "to 2026-11-10" in steps[-1][1]
    assert src.meter.requests == src.requests == 3


def test_a_paused_job_resumes_without_asking_again() -> None:
    clock = Clock()
    meter = WindowMeter(PM, clock=clock)
    d0 = datetime(2026, 10, 1, tzinfo=UTC)
    replies = [
        pm("prices_history_12h_part1.json"),
        pm("error_rate_limited.json", 429, **{"Retry-After": "5"}),
        pm("prices_history_12h_part2.json"),
        pm("prices_history_12h_part3.json"),
    ]
    with serving({"/prices-history": replies}) as srv:
        src = source(srv, meter)
        with pytest.raises(QuotaPause, match="Polymarket refused: limit reached") as err:
            src.fetch_bars(YES, "1d", d0, d0 + timedelta(days=40))
        assert err.value.retry_after_s == 5
        with pytest.raises(QuotaPause):  # still paused: nothing is sent
            src.fetch_bars(YES, "1d", d0, d0 + timedelta(days=40))
        assert len(srv.requests) == 2
        clock.now += 6
        bars = src.fetch_bars(YES, "1d", d0, d0 + timedelta(days=40))
        starts = [r.query["startTs"] for r in srv.requests]
    assert bars.height == 40
    assert starts[0] != starts[2]  # the first window was not asked twice
    assert starts[1] == starts[2]  # the refused one was asked again
    assert meter.requests == len(starts) == 4


def test_no_points_is_an_empty_frame() -> None:
    with serving({"/prices-history": [pm("prices_history_empty.json")]}) as srv:
        bars = source(srv).fetch_bars(YES, "1h", datetime(2026, 12, 1, tzinfo=UTC))
    assert bars.is_empty()
    assert bars.schema == BARS


# --- order book ----------------------------------------------------------------------------


def test_book_is_sorted_best_first_with_floats() -> None:
    with serving({"/book": [pm("book_no_change_yes.json")]}) as srv:
        src = source(srv)
        book = src.book(YES)
        (req,) = srv.hits("/book")
    assert req.query == {"token_id": YES}
    assert book.token_id == YES
    assert book.market.startswith("0x")
    assert book.ts == datetime(2026, 12, 6, 7, 0, 3, 117000, tzinfo=UTC)
    assert book.bids[0][0] == 0.75
    assert book.bids[-1][0] == 0.01
    assert book.asks[0][0] == 0.77
    assert book.asks[-1][0] == 0.99
    assert all(isinstance(x, float) for level in book.bids + book.asks for x in level)
    assert book.spread == pytest.approx(0.02)
    assert book.mid == pytest.approx(0.76)
    assert (book.tick_size, book.last_trade_price) == (0.01, 0.765)
    bids = book.side("bids")
    assert bids["cumulative"][-1] == pytest.approx(sum(s for _, s in book.bids))
    assert src.meter.requests == 1


# --- refusals and failures -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reply", "message"),
    [
        ("/prices-history", pm("error_interval_too_long.json", 400), "interval is too long"),
        ("/book", pm("error_no_orderbook.json", 404), "no order book for outcome token"),
        ("/book", raw("<html>bad gateway</html>", 502), "HTTP 502 \\(a problem on its side\\)"),
        ("/book", raw("<html>maintenance</html>", 200, "text/html"), "not JSON"),
        ("/prices-history", pm("prices_history_bad_point.json"), "malformed price point"),
        ("/public-search", pm("search_fed_page1.json"), None),
        ("/markets", pm("markets_malformed.json"), "malformed market"),
    ],
)
def test_refusals_and_malformed_answers_are_clear_source_errors(
    path: str, reply: Reply, message: str | None
) -> None:
    with serving({path: [reply]}) as srv:
        src = source(srv)
        calls = {
            "/prices-history": lambda: src.fetch_bars(YES, "1h", datetime(2026, 12, 1, tzinfo=UTC)),
            "/book": lambda: src.book(YES),
            "/markets": lambda: src.market(SLUG),
            "/public-search": lambda: src.search("fed", limit=1),
        }
        if message is None:  # the well-formed control case
            calls[path]()
        else:
            with pytest.raises(SourceError, match=message):
                calls[path]()
        assert src.meter.requests == len(srv.requests) == 1  # a refusal is still a request


@pytest.mark.parametrize(
    "base", ["http://gamma.polymarket.invalid", f"http://127.0.0.1:{closed_port()}"]
)
def test_unreachable_says_so_in_words(base: str) -> None:
    meter = WindowMeter(PM)
    src = PolymarketSource(meter, Settings(polymarket_gamma_url=base), timeout_s=5)
    with pytest.raises(SourceUnavailable) as err:
        src.search("fed")
    assert str(err.value) == "Polymarket is not reachable from this server (no network?)"
    assert "ConnectionError" in err.value.detail
    assert meter.requests == 1


def test_bad_input_is_refused_before_anything_is_sent() -> None:
    with serving({}) as srv:
        src = source(srv)
        for call, message in [
            (lambda: src.book("abc"), "outcome token id is a long number"),
            (lambda: src.fetch_bars(YES, "4h", datetime.now(UTC)), "no 4h bars"),
            (lambda: src.fetch_bars(YES, "1h", datetime(2026, 12, 1)), "timezone-aware"),
            (lambda: src.fetch_trades(YES, datetime.now(UTC)), "prices only"),
            (lambda: src.search("fed", limit=0), "limit must be"),
            (lambda: src.search("x" * 201), "at most 200 characters"),
        ]:
            with pytest.raises(InvalidInput, match=message):
                call()
        assert srv.requests == []
    assert src.meter.requests == 0
