"""Refresh the recorded provider answers in tests/data from the real APIs.

    HFT_RECORD_ALPHA_VANTAGE_KEY=... \\
    HFT_RECORD_ALPACA_KEY_ID=... HFT_RECORD_ALPACA_SECRET=... \\
    HFT_RECORD_FINNHUB_KEY=... \\
    .venv/bin/python scripts/record_payloads.py [alpha_vantage] [alpaca] [finnhub] [--out DIR]

For each provider named (default: every provider whose HFT_RECORD_* variables are set) it
asks the questions the tests in tests/integration/ingest replay and writes each answer
body to DIR/<provider>/<file> (DIR defaults to tests/data). The key is replaced by *** wherever
an answer repeats it, and a file still holding it is never written. A chain of pages is
followed through `next_page_token`; one cut short at `pages` gets a null token, and the
script says so. Base URLs are the app's settings (HFT_ALPHA_VANTAGE_URL,
HFT_ALPACA_DATA_URL, HFT_FINNHUB_URL), so the real hosts by default.

Exits 2 and writes nothing for a provider when its key variables are missing or it cannot
be reached. Answers whose status differs from the one expected (a plan that allows what
the refusal file shows, say) are reported and skipped. The tests pin values from these
files: run them after a refresh and update them where the market data changed. Answers
the APIs give only now and then (throttle notices, 429s, plan refusals) stay hand-written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.config import Settings  # noqa: E402
from core.ingest.alpaca import rfc3339  # noqa: E402
from core.ingest.finnhub import windows  # noqa: E402
from core.ingest.venues import venue  # noqa: E402

BAD_KEY = "INVALIDKEYFORRECORDING0"


@dataclass(frozen=True)
class Shot:
    file: str
    """File name; "{n}" is the page number in a chain of pages."""
    path: str
    params: dict[str, str]
    status: int = 200
    pages: int = 1
    bad_key: bool = False
    """Send a wrong key on purpose (to record the auth failure answer)."""


@dataclass(frozen=True)
class Provider:
    name: str
    env: tuple[str, ...]
    purpose: str
    """The venue URL used ("rest" or "data")."""
    auth: Callable[[tuple[str, ...]], tuple[dict[str, str], dict[str, str]]]
    """keys -> (query params, headers) carrying them."""
    shots: list[Shot] = field(default_factory=list)


def _epoch(when: datetime) -> str:
    return str(int(when.timestamp()))


def _finnhub_shots() -> list[Shot]:
    d1, d2 = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 7, tzinfo=UTC)
    nov20 = datetime(2026, 11, 20, tzinfo=UTC)
    shots = [Shot("candle_AAPL_D.json", "/stock/candle", _candle("AAPL", "D", d1, d2))]
    since, until = datetime(2026, 8, 1, tzinfo=UTC), datetime(2026, 10, 15, tzinfo=UTC)
    for n, (lo, hi) in enumerate(windows("5m", since, until), 1):
        params = _candle("AAPL", "5", lo, hi)
        shots.append(Shot(f"candle_AAPL_5_window{n}.json", "/stock/candle", params))
    shots += [
        Shot("no_data.json", "/stock/candle", _candle("ZZZZNOSUCH", "D", d1, d2)),
        Shot(
            "crypto_candle_BINANCE_BTCUSDT_60.json",
            "/crypto/candle",
            _candle("BINANCE:BTCUSDT", "60", nov20, nov20 + timedelta(hours=2)),
        ),
        Shot("quote_AAPL.json", "/quote", {"symbol": "AAPL"}),
        Shot("quote_unknown.json", "/quote", {"symbol": "ZZZZNOSUCH"}),
        Shot("error_401_invalid_key.json", "/quote", {"symbol": "AAPL"}, 401, bad_key=True),
    ]
    return shots


def _candle(symbol: str, resolution: str, lo: datetime, hi: datetime) -> dict[str, str]:
    return {
        "symbol": symbol,
        "resolution": resolution,
        "from": _epoch(lo),
        "to": str(int(hi.timestamp()) - 1),
    }


def _alpaca_shots() -> list[Shot]:
    def span(lo: datetime, hi: datetime, limit: int) -> dict[str, str]:
        return {"start": rfc3339(lo), "end": rfc3339(hi), "limit": str(limit)}

    nov1, nov14 = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 14, tzinfo=UTC)
    crypto = datetime(2026, 11, 20, tzinfo=UTC)
    trades = datetime(2026, 11, 16, 14, 30, tzinfo=UTC)
    stock = {"symbols": "AAPL"}
    btc = {"symbols": "BTC/USD"}
    return [
        Shot(
            "stock_bars_AAPL_1Day_page{n}.json",
            "/v2/stocks/bars",
            {**stock, "timeframe": "1Day", **span(nov1, nov14, 4)},
            pages=3,
        ),
        Shot(
            "crypto_bars_BTCUSD_1Hour.json",
            "/v1beta3/crypto/us/bars",
            {**btc, "timeframe": "1Hour", **span(crypto, crypto + timedelta(hours=3), 10_000)},
        ),
        Shot(
            "stock_trades_AAPL_page{n}.json",
            "/v2/stocks/trades",
            {**stock, **span(trades, trades + timedelta(minutes=1), 3)},
            pages=2,
        ),
        Shot(
            "crypto_trades_BTCUSD.json",
            "/v1beta3/crypto/us/trades",
            {**btc, **span(crypto, crypto + timedelta(days=4), 2)},
        ),
        Shot(
            "stock_quotes_AAPL.json",
            "/v2/stocks/quotes",
            {**stock, **span(trades, trades + timedelta(seconds=1), 2)},
        ),
        Shot(
            "empty_bars.json",
            "/v2/stocks/bars",
            {"symbols": "ZZZZNOSUCH", "timeframe": "1Day", **span(nov1, nov14, 10)},
        ),
        Shot(
            "error_401_not_authorized.json",
            "/v2/stocks/bars",
            {**stock, "timeframe": "1Day", **span(nov1, nov14, 10)},
            401,
            bad_key=True,
        ),
        Shot(
            "error_422_invalid_symbol.json",
            "/v2/stocks/bars",
            {"symbols": "AAPL$", "timeframe": "1Day", **span(nov1, nov14, 10)},
            422,
        ),
    ]


def _alpha_vantage_shots() -> list[Shot]:
    def intraday(month: str) -> dict[str, str]:
        return {
            "function": "TIME_SERIES_INTRADAY",
            "symbol": "IBM",
            "interval": "5min",
            "month": month,
            "outputsize": "full",
            "extended_hours": "false",
        }

    daily = {"function": "TIME_SERIES_DAILY", "symbol": "IBM", "outputsize": "compact"}
    return [
        Shot("daily_IBM.json", "/query", daily),
        Shot("intraday_IBM_5min_2026-06.json", "/query", intraday("2026-06")),
        Shot("intraday_IBM_5min_2026-07.json", "/query", intraday("2026-07")),
        Shot("error_invalid_call.json", "/query", {**daily, "symbol": "NOSUCH"}),
    ]


PROVIDERS = {
    p.name: p
    for p in (
        Provider(
            "alpha_vantage",
            ("HFT_RECORD_ALPHA_VANTAGE_KEY",),
            "rest",
            lambda k: ({"apikey": k[0]}, {}),
            _alpha_vantage_shots(),
        ),
        Provider(
            "alpaca",
            ("HFT_RECORD_ALPACA_KEY_ID", "HFT_RECORD_ALPACA_SECRET"),
            "data",
            lambda k: ({}, {"APCA-API-KEY-ID": k[0], "APCA-API-SECRET-KEY": k[1]}),
            _alpaca_shots(),
        ),
        Provider(
            "finnhub",
            ("HFT_RECORD_FINNHUB_KEY",),
            "rest",
            lambda k: ({}, {"X-Finnhub-Token": k[0]}),
            _finnhub_shots(),
        ),
    )
}


class Unreachable(Exception):
    pass


def scrub(body: bytes, secrets: tuple[str, ...]) -> bytes:
    """`body` with every secret (as is or URL-encoded) replaced by ***."""
    for s in secrets:
        for form in {s, quote(s, safe="")}:
            body = body.replace(form.encode(), b"***")
    return body


def record(
    provider: Provider, keys: tuple[str, ...], base: str
) -> tuple[dict[str, bytes], list[str]]:
    """Every answer of `provider` -> (file name -> scrubbed body, notes)."""
    secrets = (*keys, BAD_KEY)
    session = requests.Session()
    files: dict[str, bytes] = {}
    notes: list[str] = []
    for shot in provider.shots:
        sent = tuple(BAD_KEY for _ in keys) if shot.bad_key else keys
        extra, headers = provider.auth(sent)
        params = dict(shot.params)
        for n in range(1, shot.pages + 1):
            name = shot.file.format(n=n)
            try:
                reply = session.get(
                    base + shot.path, params={**params, **extra}, headers=headers, timeout=30
                )
            except requests.RequestException as exc:
                raise Unreachable(f"{type(exc).__name__}") from None
            if reply.status_code != shot.status:
                notes.append(
                    f"skipped {name}: expected HTTP {shot.status}, got {reply.status_code}"
                )
                break
            body = reply.content
            token = None
            try:
                page = json.loads(body)
            except ValueError:
                page = None
            if isinstance(page, dict) and page.get("next_page_token"):  # an Alpaca page
                token = str(page["next_page_token"])
                if n == shot.pages:  # cut the chain here: the replay must end
                    page["next_page_token"] = None
                    body = json.dumps(page, separators=(",", ":")).encode()
                    notes.append(f"{name}: the chain was cut after {n} page(s) (token now null)")
                    token = None
            files[name] = scrub(body, secrets)
            if not token:
                break
            params["page_token"] = token
    return files, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("providers", nargs="*", help=f"any of {', '.join(PROVIDERS)}")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data")
    args = parser.parse_args(argv)
    unknown = [n for n in args.providers if n not in PROVIDERS]
    if unknown:
        parser.error(
            f"unknown provider(s) {', '.join(unknown)}; choose from {', '.join(PROVIDERS)}"
        )
    names = args.providers or [
        n for n, p in PROVIDERS.items() if all(os.environ.get(e) for e in p.env)
    ]
    if not names:
        every = ", ".join(e for p in PROVIDERS.values() for e in p.env)
        print(
            f"no provider keys set: set {every} (the providers to record need them)",
            file=sys.stderr,
        )
        return 2
    settings = Settings.from_env()
    status = 0
    for name in names:
        provider = PROVIDERS[name]
        missing = [e for e in provider.env if not os.environ.get(e)]
        if missing:
            print(
                f"{name}: set {', '.join(missing)} to record it; nothing written", file=sys.stderr
            )
            status = 2
            continue
        keys = tuple(os.environ[e].strip() for e in provider.env)
        base = venue(name).url(provider.purpose, settings)
        try:
            files, notes = record(provider, keys, base)
        except Unreachable as exc:
            print(
                f"{name}: cannot reach {base} ({exc}; no network?); nothing written",
                file=sys.stderr,
            )
            status = 2
            continue
        leaked = [f for f, body in files.items() if any(k.encode() in body for k in keys)]
        if leaked:  # scrub() should make this impossible; never write a key
            print(
                f"{name}: the key is still in {', '.join(leaked)}; nothing written", file=sys.stderr
            )
            status = 2
            continue
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        for file, body in files.items():
            (folder / file).write_bytes(body)
        for note in notes:
            print(f"{name}: {note}")
        print(f"{name}: wrote {len(files)} file(s) to {folder}")
    return status


if __name__ == "__main__":
    sys.exit(main())
