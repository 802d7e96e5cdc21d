"""Provider plans (query quotas) and fixed-window counters.

Defaults (configurable per backend with `plans=`):
- Finnhub 60/min, Alpha Vantage 25/day, Alpaca 200/min: the issue's plan defaults.
- Binance 6000/min: spot REST REQUEST_WEIGHT per IP per minute
  (developers.binance.com/docs/binance-spot-api-docs/rest-api/limits); one query counts 1.
- Coinbase 10/s: public REST endpoints per IP
  (docs.cdp.coinbase.com/exchange/rest-api/rate-limits).
- Kraken 1/s: public REST per IP (support.kraken.com, "What are the API rate limits?").
- OKX 20/2 s: public data endpoints per IP (www.okx.com/docs-v5, rate limits).
- Polymarket 9000/10 s: CLOB API general limit (docs.polymarket.com/api-reference/rate-limits).
Windows are fixed and aligned to the Unix epoch (a day is a UTC day).
"""

from __future__ import annotations

from dataclasses import dataclass

from lakehouse.errors import InvalidInput

ALERT_LEVELS = (0.80, 0.95)


@dataclass(frozen=True, slots=True)
class Plan:
    limit: int
    window_s: int

    def __post_init__(self) -> None:
        if not isinstance(self.limit, int) or self.limit <= 0:
            raise InvalidInput(f"plan limit must be a positive integer, got {self.limit!r}")
        if not isinstance(self.window_s, int) or self.window_s <= 0:
            raise InvalidInput(f"plan window must be positive seconds, got {self.window_s!r}")

    @property
    def window(self) -> str:
        names = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
        if self.window_s in names:
            return names[self.window_s]
        return f"{self.window_s} s"

    def window_start(self, now: float) -> float:
        return now - (now % self.window_s)


DEFAULT_PLANS: dict[str, Plan] = {
    "finnhub": Plan(60, 60),
    "alpha_vantage": Plan(25, 86400),
    "alpaca": Plan(200, 60),
    "binance": Plan(6000, 60),
    "coinbase": Plan(10, 1),
    "kraken": Plan(1, 1),
    "okx": Plan(20, 2),
    "polymarket": Plan(9000, 10),
}

PROVIDER_NAMES = {
    "finnhub": "Finnhub",
    "alpha_vantage": "Alpha Vantage",
    "alpaca": "Alpaca",
    "binance": "Binance",
    "coinbase": "Coinbase",
    "kraken": "Kraken",
    "okx": "OKX",
    "polymarket": "Polymarket",
}


def alert_level(done: int, limit: int) -> float | None:
    """Highest alert level reached (0.8 or 0.95), or None."""
    reached = [lvl for lvl in ALERT_LEVELS if done >= lvl * limit]
    return max(reached) if reached else None
