"""Polymarket's public data: market search (Gamma API), probability history and order books
(CLOB API). Read-only: no key is needed and nothing here can trade.

- `search(query)` asks Gamma's `/public-search` page by page (`page`, `limit_per_type`); an
  empty query lists the markets with the most volume in the last 24 hours from `/markets`
  (paged by `offset` and `limit`). `market(slug_or_id)` reads one market from `/markets`.
- `fetch_bars(token_id, ...)` turns CLOB `/prices-history` points into probability bars:
  open, high, low and close are the first, highest, lowest and last point inside each bar;
  volume is null (the endpoint publishes prices only). Points are asked at a finer step than
  the bar (1m bars: 1-minute points, 1h: 10-minute, 1d: 12-hour; resolved markets keep only
  12-hour points) and in windows of 14 days, since longer `startTs..endTs` ranges are refused.
- `book(token_id)` reads CLOB `/book` (prices and sizes come as strings; bids arrive lowest
  first and asks highest first) into a `BookSnapshot` with the best price of each side first.

Every request goes through the meter (by default the process-wide per-IP meter of the venue);
HTTP 429 pauses it for Retry-After seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import requests

from core.config import Settings
from core.data.schema import BARS, TIMEFRAMES, conform
from core.errors import InvalidInput
from core.ingest.base import Progress, SourceError, count
from core.ingest.http import ProviderHttp
from core.ingest.meter import Meter, public_meter
from core.ingest.venues import venue

VENUE = venue("polymarket")
FIDELITY = {"1m": 1, "1h": 10, "1d": 720}
"""Minutes between the points asked of prices-history, per bar timeframe."""
CHUNK = timedelta(days=14)
"""The longest startTs..endTs window asked at once (Polymarket refuses about 15 days)."""
MAX_PAGES = 10
"""Search pages read at most for one search."""


@dataclass(frozen=True, slots=True)
class Market:
    """One Polymarket market (a question) with its outcomes, their tokens and prices."""

    id: str
    question: str
    slug: str
    outcomes: tuple[str, ...]
    token_ids: tuple[str, ...]
    """CLOB token id of each outcome, in the order of `outcomes` (empty: no order book)."""
    outcome_prices: tuple[float, ...]
    """Last price of each outcome, 0..1 (the market's implied probability)."""
    volume: float | None
    liquidity: float | None
    end_date: datetime | None
    active: bool
    closed: bool
    event: str = ""
    """Title of the event the market belongs to, when the answer named it."""

    def token_of(self, outcome: str) -> str:
        """The token id of `outcome` ("Yes"); InvalidInput for an outcome it does not have."""
        if outcome in self.outcomes and len(self.token_ids) == len(self.outcomes):
            return self.token_ids[self.outcomes.index(outcome)]
        raise InvalidInput(f"this market has no tradable outcome {outcome!r}")


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """An outcome token's order book at `ts`: (price, size) levels, the best price first."""

    token_id: str
    market: str
    """The market's condition id."""
    ts: datetime
    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]
    hash: str
    tick_size: float | None = None
    last_trade_price: float | None = None

    @property
    def best_bid(self) -> float | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> float | None:
        return self.asks[0][0] if self.asks else None

    @property
    def spread(self) -> float | None:
        bid, ask = self.best_bid, self.best_ask
        return None if bid is None or ask is None else ask - bid

    @property
    def mid(self) -> float | None:
        bid, ask = self.best_bid, self.best_ask
        return None if bid is None or ask is None else (bid + ask) / 2

    def side(self, name: str) -> pl.DataFrame:
        """One side ("bids" or "asks") as price, size and the size summed from the best."""
        levels = self.bids if name == "bids" else self.asks
        frame = pl.DataFrame(
            {"price": [p for p, _ in levels], "size": [s for _, s in levels]},
            schema={"price": pl.Float64, "size": pl.Float64},
        )
        return frame.with_columns(cumulative=pl.col("size").cum_sum())


def short(token_id: str) -> str:
    """A token id for messages: "716420…9011" (they are 70-odd digits long)."""
    return token_id if len(token_id) <= 12 else f"{token_id[:6]}…{token_id[-4:]}"


def check_token(token_id: object) -> str:
    """A CLOB token id (a long decimal number), stripped; InvalidInput otherwise."""
    text = token_id.strip() if isinstance(token_id, str) else ""
    if not text.isdigit() or not text.isascii() or len(text) > 100:
        raise InvalidInput(
            "a Polymarket outcome token id is a long number; find it by searching on the "
            "Prediction markets page"
        )
    return text


class PolymarketSource:
    """Polymarket's public REST APIs; every request goes through `meter`."""

    venue = VENUE.name

    def __init__(
        self,
        meter: Meter | None = None,
        settings: Settings | None = None,
        session: requests.Session | None = None,
        timeout_s: float = 30.0,
        *,
        page_size: int = 50,
    ) -> None:
        settings = settings or Settings.from_env()
        self.meter: Meter = meter or public_meter(VENUE)
        self.gamma_url = VENUE.url("gamma", settings).rstrip("/")
        self.clob_url = VENUE.url("clob", settings).rstrip("/")
        self.http = ProviderHttp(VENUE.title, self.meter, self.clob_url, session, timeout_s)
        self.page_size = page_size
        self._pages: dict[tuple[str, int, int, int], list[tuple[int, float]]] = {}
        """prices-history windows already fetched: a job resumed after a pause skips them."""

    # --- one request ---------------------------------------------------------------------
    @property
    def requests(self) -> int:
        return self.http.requests

    def _get(self, base: str, path: str, params: dict[str, str], what: str) -> Any:
        reply = self.http.get(path, params, base_url=base)
        body = reply.body
        said = body.get("error") if isinstance(body, dict) else None
        reason = str(said)[:300] if isinstance(said, str) else reply.text
        if reply.status == 404:
            raise SourceError(f"Polymarket has no {what}", reason)
        if reply.status >= 500:
            raise SourceError(
                f"Polymarket answered HTTP {reply.status} (a problem on its side); try again later",
                reason,
            )
        if reply.status != 200:
            raise SourceError(
                f"Polymarket refused the request for {what} (HTTP {reply.status}): "
                f"{reason[:200] or 'no reason given'}",
                reason,
            )
        if body is None:
            raise SourceError(f"Polymarket sent something that is not JSON for {what}", reason)
        return body

    # --- markets -------------------------------------------------------------------------
    def search(self, query: str, *, limit: int = 20, active_only: bool = True) -> list[Market]:
        """Markets matching `query` (best matches first); an empty query lists the markets
        with the most volume in the last 24 hours."""
        if not isinstance(limit, int) or not 1 <= limit <= 500:
            raise InvalidInput(f"limit must be a whole number from 1 to 500, got {limit!r}")
        text = (query or "").strip()
        if len(text) > 200:
            raise InvalidInput("a search is at most 200 characters long")
        found: dict[str, Market] = {}
        for page in range(MAX_PAGES):
            if text:
                markets, more = self._search_page(text, page + 1, active_only)
            else:
                markets, more = self._top_page(page * self.page_size, active_only)
            for m in markets:
                if not active_only or (m.active and not m.closed):
                    found.setdefault(m.id, m)
            if not more or len(found) >= limit:
                break
        return list(found.values())[:limit]

    def _search_page(self, text: str, page: int, active_only: bool) -> tuple[list[Market], bool]:
        params = {"q": text, "limit_per_type": str(self.page_size), "page": str(page)}
        if active_only:
            params |= {"events_status": "active", "keep_closed_markets": "0"}
        body = self._get(self.gamma_url, "/public-search", params, "search results")
        if not isinstance(body, dict):
            raise SourceError("Polymarket sent an unexpected search answer", type(body).__name__)
        markets: list[Market] = []
        for event in body.get("events") or []:
            if not isinstance(event, dict):
                raise SourceError("Polymarket sent a malformed event", repr(event)[:200])
            title = str(event.get("title") or "")
            markets += [_market(m, title) for m in event.get("markets") or []]
        paging = body.get("pagination")
        more = bool(paging.get("hasMore")) if isinstance(paging, dict) else False
        return markets, more

    def _top_page(self, offset: int, active_only: bool) -> tuple[list[Market], bool]:
        params = {
            "limit": str(self.page_size),
            "offset": str(offset),
            "order": "volume24hr",
            "ascending": "false",
        }
        if active_only:
            params |= {"active": "true", "closed": "false"}
        rows = self._get(self.gamma_url, "/markets", params, "market list")
        if not isinstance(rows, list):
            raise SourceError("Polymarket sent an unexpected market list", type(rows).__name__)
        return [_market(m) for m in rows], len(rows) >= self.page_size

    def market(self, slug_or_id: str) -> Market:
        """One market by its slug ("fed-decision-in-january") or numeric id."""
        key = (slug_or_id or "").strip()
        if key.isdigit() and key.isascii():
            params = {"id": key}
        elif key and len(key) <= 300 and all(c.isalnum() or c in "-_." for c in key):
            params = {"slug": key}
        else:
            raise InvalidInput(
                "give a market's slug (the last part of its polymarket.com address) or its id"
            )
        rows = self._get(self.gamma_url, "/markets", params, f"market {key}")
        if not isinstance(rows, list):
            raise SourceError("Polymarket sent an unexpected market answer", type(rows).__name__)
        if not rows:
            raise SourceError(f"Polymarket has no market {key!r}")
        return _market(rows[0])

    # --- history -------------------------------------------------------------------------
    def fetch_bars(
        self,
        symbol: str,
        timeframe: str,
        since: datetime,
        until: datetime | None = None,
        progress: Progress | None = None,
    ) -> pl.DataFrame:
        """Probability bars of outcome token `symbol` with open time in [since, until)."""
        token = check_token(symbol)
        if timeframe not in FIDELITY:
            raise InvalidInput(f"Polymarket has no {timeframe} bars; use one of 1m, 1h, 1d")
        until = until or datetime.now(UTC)
        if since.tzinfo is None or until.tzinfo is None:
            raise InvalidInput("since and until must be timezone-aware")
        lo, hi = since.astimezone(UTC), until.astimezone(UTC)
        windows: list[tuple[datetime, datetime]] = []
        start = lo
        while start < hi:
            windows.append((start, min(start + CHUNK, hi)))
            start += CHUNK
        points: dict[int, float] = {}
        for i, (a, b) in enumerate(windows):
            points.update(self._points(token, FIDELITY[timeframe], a, b))
            if progress is not None:
                progress(
                    (i + 1) / len(windows),
                    f"{short(token)} {timeframe}: to {b:%Y-%m-%d} ({count(len(points), 'point')})",
                )
        lo_s, hi_s = lo.timestamp(), hi.timestamp()
        inside = sorted((t, p) for t, p in points.items() if lo_s <= t < hi_s)
        return _bars(inside, token, timeframe)

    def _points(self, token: str, fidelity: int, a: datetime, b: datetime) -> dict[int, float]:
        memo = (token, fidelity, int(a.timestamp()), int(b.timestamp()))
        if memo not in self._pages:
            params = {
                "market": token,
                "startTs": str(memo[2]),
                "endTs": str(memo[3]),
                "fidelity": str(fidelity),
            }
            body = self._get(self.clob_url, "/prices-history", params, "price history")
            self._pages[memo] = _history(body, token)
        return dict(self._pages[memo])

    def fetch_trades(
        self,
        symbol: str,
        since: datetime,
        until: datetime | None = None,
        progress: Progress | None = None,
    ) -> pl.DataFrame:
        raise InvalidInput("Polymarket's public history has prices only; fetch bars instead")

    # --- order book ----------------------------------------------------------------------
    def book(self, token_id: str) -> BookSnapshot:
        """The order book of one outcome token now."""
        token = check_token(token_id)
        what = f"order book for outcome token {short(token)} (the market may be closed)"
        body = self._get(self.clob_url, "/book", {"token_id": token}, what)
        if not isinstance(body, dict):
            raise SourceError("Polymarket sent an unexpected order book", type(body).__name__)
        try:
            bids = sorted(_levels(body.get("bids")), reverse=True)
            asks = sorted(_levels(body.get("asks")))
            return BookSnapshot(
                token_id=str(body.get("asset_id") or token),
                market=str(body.get("market") or ""),
                ts=from_ms_text(body.get("timestamp")),
                bids=tuple(bids),
                asks=tuple(asks),
                hash=str(body.get("hash") or ""),
                tick_size=_optional_float(body.get("tick_size")),
                last_trade_price=_optional_float(body.get("last_trade_price")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError(
                f"Polymarket sent a malformed order book for {short(token)}",
                f"{type(exc).__name__}: {exc}",
            ) from None


# --- parsing -------------------------------------------------------------------------------
def _json_list(value: object, field: str) -> list[Any]:
    """Gamma sends outcomes, outcomePrices and clobTokenIds as JSON text of a list."""
    if value is None or value == "":
        return []
    parsed = json.loads(value) if isinstance(value, str) else value
    if not isinstance(parsed, list):
        raise ValueError(f"{field} is not a list")
    return parsed


def _optional_float(value: object) -> float | None:
    if value is None or value == "":
        return None
    return float(value)  # type: ignore[arg-type]


def _date(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _market(raw: object, event: str = "") -> Market:
    """A Gamma market object -> Market; SourceError when a field cannot be read."""
    try:
        if not isinstance(raw, dict) or raw.get("id") in (None, ""):
            raise ValueError("no market id")
        outcomes = tuple(str(o) for o in _json_list(raw.get("outcomes"), "outcomes"))
        prices = tuple(float(p) for p in _json_list(raw.get("outcomePrices"), "outcomePrices"))
        tokens = tuple(str(t) for t in _json_list(raw.get("clobTokenIds"), "clobTokenIds"))
        if prices and len(prices) != len(outcomes):
            raise ValueError(f"{len(outcomes)} outcomes but {len(prices)} prices")
        if tokens and len(tokens) != len(outcomes):
            raise ValueError(f"{len(outcomes)} outcomes but {len(tokens)} tokens")
        volume = raw.get("volumeNum", raw.get("volume"))
        liquidity = raw.get("liquidityNum", raw.get("liquidity"))
        return Market(
            id=str(raw["id"]),
            question=str(raw.get("question") or ""),
            slug=str(raw.get("slug") or ""),
            outcomes=outcomes,
            token_ids=tokens,
            outcome_prices=prices,
            volume=_optional_float(volume),
            liquidity=_optional_float(liquidity),
            end_date=_date(raw.get("endDate")) or _date(raw.get("endDateIso")),
            active=bool(raw.get("active")),
            closed=bool(raw.get("closed")),
            event=event,
        )
    except (KeyError, TypeError, ValueError) as exc:
        name = raw.get("slug") if isinstance(raw, dict) else None
        raise SourceError(
            f"Polymarket sent a malformed market{f' ({name})' if name else ''}",
            f"{type(exc).__name__}: {exc}",
        ) from None


def _levels(raw: object) -> list[tuple[float, float]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise TypeError("book side is not a list")
    return [(float(level["price"]), float(level["size"])) for level in raw]


def from_ms_text(value: object) -> datetime:
    """CLOB timestamps: milliseconds since the epoch, sent as text."""
    if value is None or value == "":
        raise ValueError("no timestamp")
    return datetime.fromtimestamp(int(str(value)) / 1000, tz=UTC)


def _history(body: object, token: str) -> list[tuple[int, float]]:
    """{"history": [{"t": unix seconds, "p": price}, ...]} -> [(t, p), ...]."""
    history = body.get("history") if isinstance(body, dict) else None
    if not isinstance(history, list):
        raise SourceError(f"Polymarket sent no price history for {short(token)}", repr(body)[:200])
    points: list[tuple[int, float]] = []
    for point in history:
        try:
            t, p = int(point["t"]), float(point["p"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError(
                f"Polymarket sent a malformed price point for {short(token)}",
                f"{type(exc).__name__}: {exc}",
            ) from None
        if not 0.0 <= p <= 1.0:
            raise SourceError(
                f"Polymarket sent a price outside 0..1 for {short(token)}", f"t={t} p={p}"
            )
        points.append((t, p))
    return points


def _bars(points: list[tuple[int, float]], token: str, timeframe: str) -> pl.DataFrame:
    """Sorted (t, p) points -> one BARS row per bar that has points; volume null."""
    if not points:
        return pl.DataFrame(schema=BARS)
    step = TIMEFRAMES[timeframe]
    frame = pl.DataFrame(
        {"t": [t for t, _ in points], "p": [p for _, p in points]},
        schema={"t": pl.Int64, "p": pl.Float64},
    )
    bars = (
        frame.with_columns(bar=pl.col("t") - pl.col("t") % step)
        .group_by("bar", maintain_order=True)
        .agg(
            open=pl.col("p").first(),
            high=pl.col("p").max(),
            low=pl.col("p").min(),
            close=pl.col("p").last(),
        )
        .sort("bar")
    )
    out = bars.select(
        ts=(pl.col("bar") * 1_000_000).cast(pl.Datetime("us", "UTC")),
        venue=pl.lit(VENUE.name),
        symbol=pl.lit(token),
        timeframe=pl.lit(timeframe),
        open="open",
        high="high",
        low="low",
        close="close",
        volume=pl.lit(None, dtype=pl.Float64),
    )
    return conform(out, BARS, f"polymarket {short(token)}")
