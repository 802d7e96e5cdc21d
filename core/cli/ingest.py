"""`hfthot demo` and `hfthot ingest`: the demo venue, and history into the store."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any, TextIO

from core.config import Settings
from core.errors import InvalidInput
from core.ingest.base import check_timeframe, parse_since
from core.ingest.venues import history_venues, venue


class ProgressBar:
    """A one-line text progress bar on a terminal (plain lines when not a terminal)."""

    def __init__(self, out: TextIO | None = None, width: int = 30) -> None:
        self.out = out if out is not None else sys.stderr
        self.width = width
        self.tty = self.out.isatty()
        self._last = -1.0

    def __call__(self, fraction: float, message: str) -> None:
        fraction = min(1.0, max(0.0, fraction))
        filled = round(fraction * self.width)
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {fraction * 100:5.1f}% {message}"
        if self.tty:
            self.out.write("\r" + line[:120].ljust(120))
        elif fraction - self._last >= 0.1 or fraction >= 1.0:
            self.out.write(line + "\n")
            self._last = fraction
        self.out.flush()

    def done(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()


def run_demo(args: Any) -> int:
    from core.data.store import MarketStore, import_bundled
    from core.ingest.service import IngestService

    settings = Settings.from_env()
    store = MarketStore(settings.market_dir, hot_bytes=settings.hot_cache_mb * 2**20)
    written = import_bundled(store)
    print(f"bundled history: {written} new rows in {settings.market_dir}")
    service = IngestService(store, demo=False).start()
    stop = threading.Event()
    try:
        venue = service.start_demo()
        print(
            f"demo venue (SIMULATED, Binance format) on {venue.ws_url}/stream and "
            f"{venue.rest_url}/api/v3; streaming {', '.join(service.live_symbols)}"
        )
        print("press Ctrl-C to stop")
        deadline = None if args.seconds is None else time.monotonic() + args.seconds
        while not stop.wait(args.report_s):
            for st in service.status():
                lag = "—" if st.lag_s is None else f"{st.lag_s:.2f}s"
                print(
                    f"  {st.key.name:<28} {st.state:<12} msgs {st.messages:>7} "
                    f"{st.rate_per_s:5.1f}/s lag {lag}"
                )
            if deadline is not None and time.monotonic() >= deadline:
                break
    except KeyboardInterrupt:
        print("stopping")
    finally:
        service.stop()
        store.close()
    stats = service.writer_stats()
    print(f"wrote {stats.bars_written} bars and {stats.trades_written} trades")
    return 0


def run_ingest(args: Any) -> int:
    from core.data.store import MarketStore
    from core.ingest.ccxt_ws import VenueConfig
    from core.ingest.demo_venue import VENUE as DEMO
    from core.ingest.demo_venue import ccxt_urls
    from core.ingest.service import IngestService, Job, run_job

    check_timeframe(args.timeframe)
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    if not symbols:
        raise InvalidInput("--symbols needs at least one symbol, e.g. BTC/USDT,ETH/USDT")
    since = parse_since(args.since)
    until = parse_since(args.until) if args.until else None
    settings = Settings.from_env()
    record = venue(args.venue)
    keys, user_id = None, None
    if record.key_required or args.user:
        if not args.user:
            raise InvalidInput(
                f"{record.title} uses a user's own key: add --user NAME (the key saved on "
                "that user's API keys page)"
            )
        from core.services import build_auth

        keys = build_auth(settings)
        found = keys.find_user(args.user)
        if found is None:
            raise InvalidInput(f"no user named {args.user!r}")
        user_id = found.user_id
    store = MarketStore(settings.market_dir, hot_bytes=settings.hot_cache_mb * 2**20)
    service = IngestService(store, keys=keys, settings=settings)
    try:
        if args.venue == DEMO:
            if not args.url:
                raise InvalidInput(
                    "--venue demo needs --url, the REST address `hfthot demo` printed"
                )
            service.manager.add_venue(VenueConfig(DEMO, "binance", ccxt_urls(args.url), True))
        source = service.source(args.venue, user_id)
        job = Job(0, args.venue, symbols, args.timeframe, since, until, user_id)
        bar = ProgressBar()
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.2):
                bar(job.progress, job.message)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        run_job(job, source, store)
        stop.set()
        watcher.join()
        bar(job.progress, job.message)
        bar.done()
    except KeyboardInterrupt:
        job.cancel()
        raise
    finally:
        store.close()
        if keys is not None:
            keys.flush()
    if job.state != "done":
        print(f"error: {job.error}", file=sys.stderr)
        return 1
    sent = f"; {job.requests:,} requests sent" if job.requests else ""
    print(
        f"{job.rows} rows written for {', '.join(symbols)} ({args.venue}, {args.timeframe}){sent}"
    )
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    demo = sub.add_parser(
        "demo", help="import the bundled history and run the SIMULATED demo venue until Ctrl-C"
    )
    demo.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    demo.add_argument("--report-s", type=float, default=5.0, help="status print interval")
    demo.set_defaults(run=run_demo)

    ing = sub.add_parser("ingest", help="fetch history from a venue into the store")
    names = ", ".join(v.name for v in history_venues())
    ing.add_argument("--venue", required=True, help=names)
    ing.add_argument(
        "--user", default=None, help="use this user's saved key and quota (keyed providers)"
    )
    ing.add_argument("--url", default=None, help="with --venue demo: the demo venue's REST url")
    ing.add_argument("--symbols", required=True, help="comma separated, e.g. BTC/USDT,ETH/USDT")
    ing.add_argument("--timeframe", default="1m", help="1m, 5m, 15m, 1h, 4h, 1d")
    ing.add_argument("--since", required=True, help="YYYY-MM-DD or ISO timestamp (UTC)")
    ing.add_argument("--until", default=None, help="YYYY-MM-DD or ISO timestamp (default: now)")
    ing.set_defaults(run=run_ingest)


__all__ = ["ProgressBar", "register"]
