"""The HFT_ALERT_* settings, and how the evaluator lays live bars over stored ones."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from core.alerts.evaluator import error_text, merge_live
from core.config import Settings
from core.errors import InvalidInput

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def test_alert_settings_from_env() -> None:
    s = Settings.from_env(
        {
            "HFT_ALERT_INTERVAL_S": "0.5",
            "HFT_ALERT_QUERY_INTERVAL_S": "30",
            "HFT_ALERT_WEBHOOK_ALLOW_PRIVATE": "true",
            "HFT_ALERT_WEBHOOK_ATTEMPTS": "6",
            "HFT_ALERT_WEBHOOK_BACKOFF_S": "2",
        }
    )
    assert (
        s.alert_interval_s,
        s.alert_query_interval_s,
        s.alert_webhook_allow_private,
        s.alert_webhook_attempts,
        s.alert_webhook_backoff_s,
    ) == (0.5, 30.0, True, 6, 2.0)
    d = Settings.from_env({})
    assert (d.alert_interval_s, d.alert_query_interval_s, d.alert_webhook_allow_private) == (
        1.0,
        60.0,
        False,
    )


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("HFT_ALERT_INTERVAL_S", "0"),
        ("HFT_ALERT_QUERY_INTERVAL_S", "-1"),
        ("HFT_ALERT_WEBHOOK_ATTEMPTS", "0"),
        ("HFT_ALERT_WEBHOOK_ALLOW_PRIVATE", "maybe"),
        ("HFT_ALERT_WEBHOOK_BACKOFF_S", "soon"),
    ],
)
def test_bad_alert_settings_name_the_variable(name: str, raw: str) -> None:
    with pytest.raises(InvalidInput, match=name):
        Settings.from_env({name: raw})


def frame(minutes: list[int], closes: list[float]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": [T0 + dt.timedelta(minutes=m) for m in minutes],
            "venue": ["v"] * len(minutes),
            "open": closes,
            "high": closes,
            "low": closes,
            "close": closes,
            "volume": [1.0] * len(minutes),
        }
    ).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))


def test_live_bars_extend_and_replace_stored_ones() -> None:
    stored = frame([0, 1, 2], [10.0, 11.0, 12.0])
    live = frame([2, 3], [12.5, 13.0])  # the stored bar 2 was still forming when flushed
    out = merge_live(stored, live)
    assert out.columns == ["ts", "open", "high", "low", "close", "volume"]
    assert out["close"].to_list() == [10.0, 11.0, 12.5, 13.0]
    assert merge_live(stored, None)["close"].to_list() == [10.0, 11.0, 12.0]
    assert merge_live(stored, live.head(0))["close"].to_list() == [10.0, 11.0, 12.0]


def test_unexpected_errors_show_only_their_type() -> None:
    assert error_text(InvalidInput("window too long")) == "window too long"
    assert error_text(OSError("/srv/hfthot/data/market: disk full")) == (
        "evaluation failed (OSError)"
    )
