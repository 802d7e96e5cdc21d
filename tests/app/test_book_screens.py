"""Order-book screens of Live Market (#16 item 4): the live book of the demo venue (depth
chart, top-20 ladder, heatmap with trades), replay of a recorded book equal to
`store.book_at` (also after a restart), and microstructure charts of a recorded window equal
to `store.book_features`; the empty and error states."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.data.store import MarketStore
from core.ingest.live_book import LiveBook
from core.ingest.service import stop_all
from pages._shared.format import md_escape
from tests.app.conftest import AppAs
from tests.app.helpers import rerun_until, texts

pytestmark = pytest.mark.app
PAGE = "pages/live_market.py"
VENUE, SYMBOL = "demo", "BTC/USDT"
T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
SECONDS = 120


@pytest.fixture(autouse=True)
def stop_services() -> Iterator[None]:
    yield
    stop_all()


def store() -> MarketStore:
    from pages._shared.engine import get_engine

    return get_engine().store


def record(
    target: MarketStore, seconds: int = SECONDS, start: dt.datetime = T0, seq: int = 5_000
) -> None:
    """A deterministic book: 30 levels a side, one update a second moving the mid and the
    sizes, a snapshot every minute; flushed to the store's files."""
    book = LiveBook(snapshot_every_s=60, seq_start=seq)
    rng = np.random.default_rng(7)
    mid = 100.0
    for i in range(seconds):
        mid += float(rng.choice([-0.5, 0.0, 0.5]))
        bids = [[mid - 0.5 - k * 0.5, float(rng.integers(1, 9))] for k in range(30)]
        asks = [[mid + 0.5 + k * 0.5, float(rng.integers(1, 9))] for k in range(30)]
        t = start + dt.timedelta(seconds=i)
        target.buffer_book(VENUE, SYMBOL, book.update(bids, asks, int(t.timestamp() * 1e6)))
    target.flush()


def charts(at: AppTest) -> dict[str, dict[str, Any]]:
    """Plotly figures by title (the part before the first " · ")."""
    out = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        title = spec["layout"].get("title", {}).get("text", "")
        out[title.split(" · ")[0]] = spec
    return out


def array(value: Any) -> np.ndarray:
    """A figure's array: a list, or Plotly's typed-array form {dtype, bdata, shape}."""
    if not isinstance(value, dict):
        return np.array(value, dtype=float)
    flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    shape = [int(n) for n in str(value.get("shape", flat.size)).split(",")]
    return flat.reshape(shape)


def frames(at: AppTest) -> list[Any]:
    return [d.value for d in at.dataframe if "bid total" in d.value.columns]


def check_depth(spec: dict[str, Any], bids: list[tuple[float, float]], asks: list[Any]) -> None:
    by_name = {t["name"]: t for t in spec["data"]}
    assert by_name["bids"]["x"] == [p for p, _ in bids]
    assert by_name["asks"]["x"] == [p for p, _ in asks]
    assert by_name["bids"]["y"] == pytest.approx(np.cumsum([q for _, q in bids]).tolist())
    assert by_name["asks"]["y"] == pytest.approx(np.cumsum([q for _, q in asks]).tolist())
    assert by_name["bids"]["line"]["shape"] == "hv"


def check_ladder(ladder: Any, bids: list[tuple[float, float]], asks: list[Any]) -> None:
    assert len(ladder) == 20
    assert ladder["bid"].tolist() == [p for p, _ in bids[:20]]
    assert ladder["bid size"].tolist() == [q for _, q in bids[:20]]
    assert ladder["ask"].tolist() == [p for p, _ in asks[:20]]
    assert ladder["ask size"].tolist() == [q for _, q in asks[:20]]
    assert ladder["bid total"].tolist() == pytest.approx(np.cumsum(ladder["bid size"]).tolist())
    assert ladder["ask total"].tolist() == pytest.approx(np.cumsum(ladder["ask size"]).tolist())


@pytest.mark.slow
def test_live_book_shows_depth_ladder_and_heatmap_for_the_demo_venue(
    app_as: AppAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HFT_DEMO_VENUE", "true")
    at = app_as("viewer", PAGE)

    def ready() -> bool:
        shown = charts(at)
        heat = shown.get("Liquidity heatmap")
        return bool(heat and len(heat["data"][0]["x"]) >= 10 and len(heat["data"]) == 4)

    rerun_until(at, ready, timeout=90, pause=0.5)
    shown = charts(at)
    depth = {t["name"]: t for t in shown["Depth"]["data"]}
    bids, asks = depth["bids"], depth["asks"]
    assert len(bids["x"]) == len(asks["x"]) == 20
    assert bids["x"] == sorted(bids["x"], reverse=True)  # best (highest) bid first
    assert asks["x"] == sorted(asks["x"])
    assert bids["x"][0] < asks["x"][0]
    assert np.all(np.diff(bids["y"]) > 0)
    assert np.all(np.diff(asks["y"]) > 0)
    assert "SIMULATED" in shown["Depth"]["layout"]["title"]["text"]

    ladder, replayed = frames(at)  # the live book, then the recorded one (buffered) replayed
    assert ladder["bid"].notna().sum() == ladder["ask"].notna().sum() == 20
    assert replayed["bid"].notna().sum() == 20
    assert ladder["bid"].is_monotonic_decreasing
    assert ladder["ask"].is_monotonic_increasing
    assert ladder["bid total"].tolist() == pytest.approx(np.cumsum(ladder["bid size"]).tolist())

    heat = shown["Liquidity heatmap"]
    grid, best_bid, best_ask, trades = heat["data"]
    assert grid["type"] == "heatmap"
    assert "SIMULATED" in heat["layout"]["title"]["text"]
    z = array(grid["z"])
    assert z.shape[0] == 100
    assert 10 <= z.shape[1] <= 1200
    drawn = z[~np.isnan(z)]  # a cell with no resting size is left blank (NaN)
    assert drawn.size > 0
    assert (drawn > 0).all()
    assert len(best_bid["y"]) == z.shape[1]
    assert all(b < a for b, a in zip(best_bid["y"], best_ask["y"], strict=True))
    assert trades["mode"] == "markers"
    assert len(trades["x"]) > 0
    shown_text = texts(at)
    assert f"Book stream {md_escape('demo:BTC/USDT:book')}" in shown_text
    assert "resyncs" in shown_text
    assert "trades drawn" in shown_text


def replay_at(at: AppTest, when: dt.datetime) -> AppTest:
    prefix = f"replay:{VENUE}:{SYMBOL}"
    at.date_input(key=f"{prefix}_day").set_value(when.date())
    at.text_input(key=f"{prefix}_time").set_value(f"{when:%H:%M:%S.%f}")
    at.run()
    assert not at.exception, at.exception
    return at


def test_replay_after_a_restart_equals_book_at(app_as: AppAs) -> None:
    record(store())
    st.cache_resource.clear()  # a restart: a new engine reads what the files hold
    at = app_as("viewer", PAGE).run()
    assert not at.exception, at.exception
    assert "No live subscriptions yet" in texts(at)
    assert at.selectbox(key="recorded_book").value == (VENUE, SYMBOL)
    end = T0 + dt.timedelta(seconds=SECONDS - 1)
    assert f"Recorded from {T0:%Y-%m-%d %H:%M:%S} to {end:%Y-%m-%d %H:%M:%S} UTC" in texts(at)

    # by default the latest recorded instant
    latest = store().book_at(VENUE, SYMBOL, end, depth=50)
    (ladder,) = frames(at)
    check_ladder(ladder, latest.bids.rows(), latest.asks.rows())
    check_depth(charts(at)["Replayed depth"], latest.bids.rows(), latest.asks.rows())
    assert f"sequence {latest.seq}" in texts(at)
    assert "SIMULATED" in charts(at)["Replayed depth"]["layout"]["title"]["text"]

    # an instant between updates: the book after the last change at or before it
    when = T0 + dt.timedelta(seconds=73, milliseconds=400)
    book = store().book_at(VENUE, SYMBOL, when, depth=50)
    assert book.seq < latest.seq
    replay_at(at, when)
    (ladder,) = frames(at)
    check_ladder(ladder, book.bids.rows(), book.asks.rows())
    check_depth(charts(at)["Replayed depth"], book.bids.rows(), book.asks.rows())
    assert f"sequence {book.seq}" in texts(at)


def test_replay_states_what_is_wrong(app_as: AppAs) -> None:
    at = app_as("viewer", PAGE).run()
    assert not at.exception, at.exception
    assert "No recorded order book yet" in texts(at)

    record(store())
    at.run()
    replay_at(at, T0 - dt.timedelta(minutes=1))
    assert md_escape("no recorded book of BTC/USDT on demo at or before") in texts(at)
    assert not frames(at)
    prefix = f"replay:{VENUE}:{SYMBOL}"
    at.text_input(key=f"{prefix}_time").set_value("25:99").run()
    assert not at.exception, at.exception
    assert md_escape("time must be HH:MM:SS in UTC") in texts(at)
    # the Latest button goes to the end of the recording as it is now (it grew meanwhile)
    later = T0 + dt.timedelta(minutes=10)
    record(store(), seconds=5, start=later, seq=1_000_000)
    at.button(key=f"{prefix}_latest").click().run()
    end = later + dt.timedelta(seconds=4)
    assert at.text_input(key=f"{prefix}_time").value == f"{end:%H:%M:%S.%f}"
    (ladder,) = frames(at)
    book = store().book_at(VENUE, SYMBOL, end, depth=20)
    check_ladder(ladder, book.bids.rows(), book.asks.rows())
    assert f"sequence {book.seq}" in texts(at)


def test_microstructure_charts_a_window_equal_to_book_features(app_as: AppAs) -> None:
    record(store())
    at = app_as("viewer", PAGE).run()
    assert not at.exception, at.exception
    end = T0 + dt.timedelta(seconds=SECONDS - 1)
    # "Last 5 minutes" is longer than the recording: it starts at the first snapshot
    assert at.radio(key="micro_window").value == "Last 5 minutes"
    assert "the window is shorter" in texts(at)
    want = store().book_features(VENUE, SYMBOL, T0, end + dt.timedelta(microseconds=1), "1s")
    spec = charts(at)["Microstructure"]
    traces = {t["name"]: t for t in spec["data"]}
    assert set(traces) == {
        "mid",
        "microprice",
        "spread",
        "depth_bid_10bps",
        "depth_ask_10bps",
        "depth_bid_50bps",
        "depth_ask_50bps",
        "imbalance",
        "ofi",
    }
    for name in ("mid", "microprice", "spread", "depth_bid_50bps", "imbalance"):
        assert traces[name]["y"] == pytest.approx(want[name].to_list()), name
    assert len(traces["mid"]["x"]) == want.height == SECONDS
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Samples"] == str(SECONDS)
    assert "Cont, Kukanov and Stoikov 2014" in texts(at)

    # a custom range, sampled every 5 s
    at.selectbox(key="micro_every").set_value("5s")
    at.radio(key="micro_window").set_value("Custom range").run()
    prefix = f"micro:{VENUE}:{SYMBOL}"
    at.text_input(key=f"{prefix}_from_time").set_value("10:00:30")
    at.text_input(key=f"{prefix}_to_time").set_value("10:01:30").run()
    assert not at.exception, at.exception
    lo, hi = T0 + dt.timedelta(seconds=30), T0 + dt.timedelta(seconds=90)
    want = store().book_features(VENUE, SYMBOL, lo, hi, "5s")
    traces = {t["name"]: t for t in charts(at)["Microstructure"]["data"]}
    assert len(traces["mid"]["x"]) == want.height == 12
    assert traces["mid"]["y"] == pytest.approx(want["mid"].to_list())
    ofi = [v if v is not None else np.nan for v in traces["ofi"]["y"]]
    assert ofi == pytest.approx(want["ofi"].to_list(), nan_ok=True)

    # the error states: an end before the start, too many samples, before the recording
    at.text_input(key=f"{prefix}_to_time").set_value("10:00:10").run()
    assert md_escape("the end must be after the start") in texts(at)
    at.selectbox(key="micro_every").set_value("100ms")
    at.text_input(key=f"{prefix}_to_time").set_value("23:00").run()
    assert md_escape("pick a coarser interval") in texts(at)
    at.selectbox(key="micro_every").set_value("1m")
    at.text_input(key=f"{prefix}_from_time").set_value("09:00").run()
    assert md_escape("no recorded book of BTC/USDT on demo at or before") in texts(at)
    assert not at.exception, at.exception


def test_heat_grid_sums_resting_size_per_price_bucket_and_sample() -> None:
    from core.ingest.live_book import BookView
    from pages._shared.book_view import heat_grid, ladder_frame

    t = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    history = [
        BookView(t, [(99.0, 1.0), (90.0, 2.0)], [(101.0, 3.0)], 1),
        BookView(t + dt.timedelta(seconds=1), [(100.0, 4.0)], [(110.0, 5.0), (101.0, 6.0)], 2),
    ]
    times, centres, grid = heat_grid(history, rows=4)  # buckets of 5 from 90 to 110
    assert times == [v.ts for v in history]
    assert centres.tolist() == [92.5, 97.5, 102.5, 107.5]
    assert grid[:, 0].tolist() == [2.0, 1.0, 3.0, 0.0]
    assert grid[:, 1].tolist() == [0.0, 0.0, 10.0, 5.0]  # 110 is the top bucket's edge
    assert grid.sum() == sum(q for v in history for _, q in (*v.bids, *v.asks))
    assert heat_grid([], rows=4)[2].shape == (4, 0)

    ladder = ladder_frame([(99.0, 1.0), (98.0, 2.0)], [(101.0, 3.0)], rows=3)
    assert ladder.rows() == [
        (1.0, 1.0, 99.0, 101.0, 3.0, 3.0),
        (3.0, 2.0, 98.0, None, None, None),
        (None, None, None, None, None, None),
    ]
