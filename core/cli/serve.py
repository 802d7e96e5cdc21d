"""`hfthot serve`: the Arrow Flight data service in the foreground, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
from types import FrameType
from typing import Any

from core.config import Settings


def run(args: Any) -> int:
    from core.serve.flight import open_flight
    from core.services import build_services

    settings = Settings.from_env()
    if args.host is not None:
        settings = dataclasses.replace(settings, flight_host=args.host)
    if args.port is not None:
        settings = dataclasses.replace(settings, flight_port=args.port)
    settings.validate()
    if settings.flight_port == 0:
        print(
            "error: the Flight port is 0, which turns the service off; set HFT_FLIGHT_PORT "
            "or pass --port (the default is 50053)",
            file=sys.stderr,
        )
        return 2
    services = build_services(settings)
    try:
        service = open_flight(lambda: services, settings)
    except BaseException:
        services.close()
        raise
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_term)
    service.start()
    print(f"Arrow Flight data service on {service.location} (Ctrl-C stops it)", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        service.stop()
        services.close()
    print("Flight service stopped", flush=True)
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "serve", help="run the Arrow Flight data service (HFT_FLIGHT_PORT) in the foreground"
    )
    p.add_argument("--host", default=None, help="listen address (default HFT_FLIGHT_HOST)")
    p.add_argument("--port", type=int, default=None, help="port (default HFT_FLIGHT_PORT)")
    p.set_defaults(run=run)
