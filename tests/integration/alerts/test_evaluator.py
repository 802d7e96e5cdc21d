"""The evaluator thread over a real MarketStore: bars land, a rule fires once into the inbox
and the webhook; errors in one rule are recorded and never stop the others."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from core.alerts import AlertRule, Alerts
from tests.integration.alerts.conftest import SYMBOL, VENUE, Receiver, Team, bar_frame, wait_until

START = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(hours=1)
CALM = [100.0, 100.2] * 15


def checked_after(alerts: Alerts, rule: AlertRule, since: dt.datetime) -> bool:
    status = alerts.status.get(rule.rule_id)
    return status is not None and status.checked_at is not None and status.checked_at > since


def write(team: Team, closes: list[float], offset: int) -> dt.datetime:
    """Write bars starting `offset` minutes after START; returns the wall time before it."""
    before = team.services.auth.store.now()
    team.services.engine.store.write_bars(bar_frame(closes, START + dt.timedelta(minutes=offset)))
    return before


def test_zscore_rule_fires_once_into_inbox_and_webhook(team: Team, receiver: Receiver) -> None:
    alerts = team.services.alerts
    write(team, CALM, 0)
    created = alerts.create_rule(
        team.alice,
        "ALRT stretch",
        "zscore",
        {"window": 10, "bound": 1.5},
        venue=VENUE,
        symbol=SYMBOL,
        cooldown_s=0,
        webhook_url=receiver.url,
    )
    receiver.secret = created.secret or ""
    slow = alerts.create_rule(
        team.bob, "slow", "zscore", {"window": 10, "bound": 1.5},
        venue=VENUE, symbol=SYMBOL, cooldown_s=3600,
    )  # fmt: skip
    alerts.start()
    assert alerts.running
    assert wait_until(lambda: checked_after(alerts, created.rule, START))
    assert alerts.unread_count(team.alice) == 0

    write(team, [105.0], len(CALM))  # z ~ +3 over the last 10 closes
    assert wait_until(lambda: alerts.unread_count(team.alice) == 1)
    [event] = alerts.events(team.alice)
    assert event.rule_id == created.rule.rule_id
    assert event.unread
    window = np.array([*CALM[-9:], 105.0])
    z = (105.0 - window.mean()) / window.std()
    assert "ALRT stretch" in event.message
    assert f"{z:+.3f}" in event.message
    assert event.value == pytest.approx(z)
    assert event.data_ts == START + dt.timedelta(minutes=len(CALM))
    [hit] = receiver.wait_for(1)
    assert hit.valid
    assert hit.json["event_id"] == event.event_id
    assert wait_until(lambda: len(alerts.deliveries(team.alice)) == 1)
    assert alerts.deliveries(team.alice)[0].status == "delivered"
    assert alerts.rule(team.alice, created.rule.rule_id).last_fired_at is not None

    # still beyond the bound on the next bar: no second firing
    since = write(team, [105.5], len(CALM) + 1)
    assert wait_until(lambda: checked_after(alerts, created.rule, since))
    assert alerts.status[created.rule.rule_id].state == 1
    assert len(alerts.events(team.alice)) == 1

    # back inside, then beyond again: fires again (cool-down 0) but not for bob (1 hour)
    since = write(team, [101.0, 100.5, 100.8, 99.0, 100.2, 100.6, 100.4], len(CALM) + 2)
    assert wait_until(lambda: checked_after(alerts, created.rule, since))
    assert alerts.status[created.rule.rule_id].state == 0
    write(team, [95.0], len(CALM) + 9)
    assert wait_until(lambda: alerts.unread_count(team.alice) == 2)
    assert alerts.events(team.alice)[0].value is not None
    assert alerts.events(team.alice)[0].value < -1.5  # type: ignore[operator]
    assert len(alerts.events(team.bob)) == 1
    assert alerts.status[slow.rule.rule_id].error is None

    assert alerts.mark_read(team.alice, [event.event_id]) == 1
    assert alerts.unread_count(team.alice) == 1
    assert alerts.mark_read(team.bob, "all") == 1  # bob's own only
    assert alerts.unread_count(team.alice) == 1
    assert alerts.mark_read(team.alice, "all") == 1
    assert alerts.unread_count(team.alice) == 0


def test_a_failing_rule_is_recorded_and_the_others_still_fire(team: Team) -> None:
    alerts = team.services.alerts
    write(team, CALM, 0)
    broken = alerts.create_rule(
        team.alice, "hmm", "regime_change", {"n_states": 2, "history": 100},
        venue=VENUE, symbol=SYMBOL,
    )  # fmt: skip
    level = alerts.create_rule(
        team.alice, "level", "price_cross", {"level": 104, "direction": "up"},
        venue=VENUE, symbol=SYMBOL, cooldown_s=0,
    )  # fmt: skip
    alerts.start()
    assert wait_until(lambda: checked_after(alerts, level.rule, START))

    def broken_error() -> str | None:
        status = alerts.status.get(broken.rule.rule_id)
        return status.error if status is not None else None

    assert wait_until(lambda: broken_error() is not None)
    error = alerts.status[broken.rule.rule_id].error or ""
    assert "needs at least 50 bars" in error
    assert "/" not in error.split("bars")[0]
    write(team, [104.5], len(CALM))
    assert wait_until(lambda: alerts.unread_count(team.alice) == 1)
    assert alerts.running
    # disabled rules are not evaluated
    alerts.disable(team.alice, level.rule.rule_id)
    since = team.services.auth.store.now()
    write(team, [100.0, 104.6], len(CALM) + 1)
    ticks = alerts.evaluator.ticks
    assert wait_until(lambda: alerts.evaluator.ticks > ticks + 5)
    assert not checked_after(alerts, level.rule, since)
    assert alerts.unread_count(team.alice) == 1


def test_saved_query_rule_fires_when_the_query_returns_rows(team: Team) -> None:
    alerts = team.services.alerts
    write(team, CALM, 0)
    query = team.services.queries.save(
        team.alice,
        "big closes",
        f"SELECT ts, close FROM bars WHERE symbol = '{SYMBOL}' AND close > 104",
    )
    created = alerts.create_rule(
        team.alice, "query", "query_rows", {"max_rows": 10}, query_id=query.query_id, cooldown_s=0
    )
    assert created.rule.venue is None
    assert created.rule.target.startswith("saved query")
    alerts.start()
    assert wait_until(lambda: checked_after(alerts, created.rule, START), timeout=60)
    assert alerts.status[created.rule.rule_id].state == 0
    write(team, [104.5], len(CALM))
    assert wait_until(lambda: alerts.unread_count(team.alice) == 1, timeout=60)
    [event] = alerts.events(team.alice)
    assert "'big closes' returned 1 rows" in event.message
    assert event.value == 1.0
    assert event.data_ts == START + dt.timedelta(minutes=len(CALM))
