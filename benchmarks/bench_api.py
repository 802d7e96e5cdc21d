"""Serving bars to clients: Arrow Flight against a FastAPI + orjson JSON endpoint and against
reading the store in-process; and the REST API's latency for one symbol-day.

Data: one symbol-year of synthetic 1-minute bars (525,600 rows, seeded) written to a fresh
store in a temp dir. Every server runs in this process on loopback (uvicorn or gRPC threads),
so client and server share the 2 cores, as they would on one machine. The JSON peer serves
the same rows column by column (orjson with numpy arrays, the fastest way FastAPI offers to
send them) and its client parses the JSON into a Polars frame of the same schema.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl
import pyarrow.flight as fl
import uvicorn
from fastapi import FastAPI
from fastapi.responses import Response
from starlette.applications import Starlette

from benchmarks.common import TABLE_HEAD, Row, fmt_s, median_time
from core.client import Client
from core.config import Settings
from core.serve.flight import FlightService
from core.serve.rest import api_routes
from core.services import Services, build_services

MINUTES = 525_600
DAY = 1_440
SYMBOL = "BENCH/USD"
VENUE = "bench"
START = np.datetime64("2024-01-01T00:00:00", "us")
LATENCY_CALLS = 2_000
SECTION = "## Data API (Arrow Flight, REST)"


def year_of_bars() -> pl.DataFrame:
    rng = np.random.default_rng(15)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.0008, MINUTES)))
    open_ = np.concatenate([[100.0], close[:-1]])
    wick = np.abs(rng.normal(0, 0.0004, MINUTES)) * close
    ts = START + np.arange(MINUTES) * np.timedelta64(60, "s")
    return pl.DataFrame(
        {
            "ts": pl.Series(ts).dt.replace_time_zone("UTC"),
            "venue": VENUE,
            "symbol": SYMBOL,
            "timeframe": "1m",
            "open": open_,
            "high": np.maximum(open_, close) + wick,
            "low": np.minimum(open_, close) - wick,
            "close": close,
            "volume": rng.gamma(2.0, 5.0, MINUTES),
        }
    )


class Uvicorn:
    """An ASGI app under uvicorn in a daemon thread on a free loopback port."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", ws="none", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        self.port = int(self.server.servers[0].sockets[0].getsockname()[1])

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def json_peer(services: Services) -> FastAPI:
    """FastAPI + orjson: the same bars as JSON columns (ts in epoch microseconds)."""
    app = FastAPI()

    @app.get("/bars")
    def bars(symbol: str) -> Response:
        frame = services.engine.store.get_bars(symbol)
        cols: dict[str, Any] = {"ts": frame["ts"].dt.epoch("us").to_numpy()}
        for name in ("venue", "symbol", "timeframe"):
            cols[name] = frame[name].to_list()
        for name in ("open", "high", "low", "close", "volume"):
            cols[name] = frame[name].to_numpy()
        body = orjson.dumps(cols, option=orjson.OPT_SERIALIZE_NUMPY)
        return Response(body, media_type="application/json")

    return app


def parse_json_bars(body: bytes) -> pl.DataFrame:
    cols = orjson.loads(body)
    frame = pl.DataFrame(cols)
    return frame.with_columns(pl.col("ts").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"))


def get(conn: http.client.HTTPConnection, path: str, token: str | None = None) -> bytes:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"GET {path}: {resp.status} {body[:200]!r}")
    return body


def percentiles(fn: Any, n: int) -> tuple[float, float]:
    for _ in range(50):
        fn()
    samples = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        fn()
        samples[i] = time.perf_counter() - t0
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 95))


def setup(folder: Path) -> tuple[Services, str]:
    settings = dataclasses.replace(
        Settings(),
        data_dir=folder,
        demo_venue=False,
        flight_port=0,
        api_rate_per_minute=10_000_000,
    )
    services = build_services(settings)
    services.engine.store.write_bars(year_of_bars())
    password = secrets.token_urlsafe(18)  # a throwaway account in a temp dir
    user = services.auth.register("bench", "bench@example.test", password)
    services.auth.set_role_as_operator("bench", "analyst")
    token = services.auth.create_access_token(
        user.user_id, "bench", ["market:read"], 1, password=password
    )
    return services, token


def run() -> str:
    with tempfile.TemporaryDirectory(prefix="hfthot-bench-api-") as tmp:
        services, token = setup(Path(tmp) / "data")
        try:
            return measure(services, token)
        finally:
            services.close()


def measure(services: Services, token: str) -> str:
    store = services.engine.store
    want = store.get_bars(SYMBOL)
    assert want.height == MINUTES
    auth = fl.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())])
    ticket = fl.Ticket(json.dumps({"kind": "bars", "symbol": SYMBOL}).encode())
    flight = FlightService(lambda: services, per_minute=10_000_000).start()
    peer = Uvicorn(json_peer(services))
    rest = Uvicorn(Starlette(routes=api_routes("", lambda: services)))
    try:
        raw = fl.FlightClient(flight.location)
        client = Client(f"http://127.0.0.1:{rest.port}", token, flight=flight.location)
        conn = http.client.HTTPConnection("127.0.0.1", peer.port, timeout=120)

        def over_flight() -> pl.DataFrame:
            out = pl.from_arrow(raw.do_get(ticket, auth).read_all())
            assert isinstance(out, pl.DataFrame)
            return out

        def over_json() -> pl.DataFrame:
            return parse_json_bars(get(conn, f"/bars?symbol={SYMBOL.replace('/', '%2F')}"))

        def in_process() -> pl.DataFrame:
            return store.get_bars(SYMBOL, cache=False)

        # Same data through every door, checked before timing.
        assert over_flight().equals(want)
        mb = raw.do_get(ticket, auth).read_all().nbytes / 1e6  # the Arrow data Flight sends
        assert client.bars(SYMBOL).equals(want)
        assert over_json().select(want.columns).cast(want.schema).equals(want)  # type: ignore[arg-type]
        assert in_process().equals(want)
        t_flight = median_time(over_flight, repeats=21)
        t_client = median_time(lambda: client.bars(SYMBOL), repeats=21)
        t_json = median_time(over_json, repeats=5, min_total_s=0)
        t_store = median_time(in_process, repeats=15)
        t_hot = median_time(lambda: store.get_bars(SYMBOL))
        json_mb = len(get(conn, f"/bars?symbol={SYMBOL.replace('/', '%2F')}")) / 1e6

        # REST: one symbol-day from the hot cache over one kept-alive connection.
        day = "/api/v1/bars?symbol=BENCH%2FUSD&start=2024-06-01&end=2024-06-02"
        api = http.client.HTTPConnection("127.0.0.1", rest.port, timeout=30)
        body = get(api, day, token)
        assert client.bars(SYMBOL, start="2024-06-01", end="2024-06-02").height == DAY
        p50, p95 = percentiles(lambda: get(api, day, token), LATENCY_CALLS)
        raw.close()
        client.close()
        conn.close()
        api.close()
    finally:
        rest.stop()
        peer.stop()
        flight.stop()
    return report(mb, json_mb, t_flight, t_client, t_json, t_store, t_hot, p50, p95, len(body))


def report(
    mb: float,
    json_mb: float,
    t_flight: float,
    t_client: float,
    t_json: float,
    t_store: float,
    t_hot: float,
    p50: float,
    p95: float,
    day_bytes: int,
) -> str:
    rows = [
        Row(
            "1 symbol-year of 1m bars, Flight DoGet → Polars",
            t_flight,
            "FastAPI + orjson JSON",
            t_json,
        ),
        Row("same, core.client.Client.bars over Flight", t_client, "FastAPI + orjson JSON", t_json),
    ]
    vs_json = t_json / t_flight
    vs_store = t_flight / t_store
    lines = [
        SECTION,
        "",
        f"{MINUTES:,} synthetic 1-minute bars of one symbol ({mb:.1f} MB as Arrow) in a fresh "
        "store; servers in this process on loopback (client and server share the 2 cores). "
        "The JSON peer sends the same rows as orjson columns (numpy arrays, "
        f"{json_mb:.1f} MB) and its client parses them into the same Polars frame. Every door's "
        "answer is checked equal to the store's before timing.",
        "",
        TABLE_HEAD,
        *(r.markdown() for r in rows),
        "",
        f"- Throughput: Flight {mb / t_flight:,.0f} MB/s; Client.bars over Flight "
        f"{mb / t_client:,.0f} MB/s; JSON {mb / t_json:,.0f} MB/s (of Arrow-equivalent data); "
        f"in-process uncached read {mb / t_store:,.0f} MB/s.",
        f"- Flight vs JSON: {vs_json:.1f}× faster; target ≥ 10×: "
        f"{'meets it' if vs_json >= 10 else 'MISSES it'}.",
        f"- Flight vs in-process read (`store.get_bars(cache=False)`: the warm tier maps its "
        f"bar files and copies nothing): {vs_store:.1f}× its time; target within 2×: "
        f"{'meets it' if vs_store <= 2 else 'MISSES it'}. Any socket moves the "
        f"{mb:.0f} MB through at least two copies, so it cannot come near a zero-copy read; a "
        f"hot-cache hit in-process takes {fmt_s(t_hot)}.",
        f"- `GET /api/v1/bars` for one symbol-day ({DAY:,} bars, {day_bytes / 1e3:.0f} kB "
        f"Arrow) from the hot cache, token checked on every call, {LATENCY_CALLS:,} calls over "
        f"one kept-alive connection: p50 {fmt_s(p50)}, p95 {fmt_s(p95)}; target p50 < 2 ms: "
        f"{'meets it' if p50 < 2e-3 else 'MISSES it'}. (The route under uvicorn alone; the "
        "app adds Streamlit's middleware.)",
    ]
    return "\n".join(lines) + "\n"
