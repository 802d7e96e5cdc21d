"""Rule management (owner only, analysts and admins), clear errors that change nothing, and
the GDPR export and erasure of rules, events and deliveries."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from core.alerts import rules as r
from core.errors import InvalidInput
from lakehouse.errors import NotFound, PermissionDenied
from tests.integration.alerts.conftest import SYMBOL, VENUE, Receiver, Team


def zscore(team: Team, **extra: object) -> str:
    created = team.services.alerts.create_rule(
        team.alice, "z", "zscore", {"window": 20, "bound": 2}, venue=VENUE, symbol=SYMBOL,
        **extra,  # type: ignore[arg-type]
    )  # fmt: skip
    return created.rule.rule_id


def test_owner_manages_rules_others_cannot_see_them(team: Team) -> None:
    alerts = team.services.alerts
    rule_id = zscore(team, cooldown_s=60)
    [rule] = alerts.rules(team.alice)
    assert (rule.kind, rule.params, rule.cooldown_s, rule.enabled) == (
        "zscore", r.ZScore(20, 2.0), 60, True,
    )  # fmt: skip
    assert rule.webhook_url is None
    assert rule.target == f"{SYMBOL} · {VENUE} · 1m"
    assert alerts.rules(team.bob) == []
    for act in (
        lambda: alerts.rule(team.bob, rule_id),
        lambda: alerts.disable(team.bob, rule_id),
        lambda: alerts.delete_rule(team.bob, rule_id),
        lambda: alerts.update_rule(team.bob, rule_id, name="mine now"),
    ):
        with pytest.raises(NotFound):
            act()
    alerts.disable(team.alice, rule_id)
    assert not alerts.rule(team.alice, rule_id).enabled
    alerts.enable(team.alice, rule_id)
    updated = alerts.update_rule(
        team.alice, rule_id, name="wider", params={"window": 30, "bound": 3}, cooldown_s=0
    )
    assert updated.secret is None
    again = alerts.rule(team.alice, rule_id)
    assert (again.name, again.params, again.cooldown_s) == ("wider", r.ZScore(30, 3.0), 0)
    alerts.delete_rule(team.alice, rule_id)
    assert alerts.rules(team.alice) == []


def test_viewers_cannot_make_rules(team: Team) -> None:
    with pytest.raises(PermissionDenied, match="analysts and admins"):
        team.services.alerts.create_rule(
            team.viewer, "v", "price_cross", {"level": 1}, venue=VENUE, symbol=SYMBOL
        )
    admin_rule = team.services.alerts.create_rule(
        team.admin, "a", "price_cross", {"level": 1}, venue=VENUE, symbol=SYMBOL
    )
    assert admin_rule.rule.user_id == team.admin.user_id


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"name": " "}, "name must be 1 to 100"),
        ({"params": {"window": 1}}, "window must be between 3"),
        ({"venue": ""}, "needs a venue and a symbol"),
        ({"symbol": "X" * 65}, "at most 64 characters"),
        ({"timeframe": "7m"}, "timeframe must be one of"),
        ({"cooldown_s": -1}, "cooldown_s must be between"),
        ({"cooldown_s": 1.5}, "whole number"),
        ({"webhook_url": "ftp://example.com/x"}, "http:// or https://"),
        ({"kind": "query_rows", "params": {}}, "needs a saved query"),
    ],
)
def test_bad_rules_are_refused_and_nothing_is_saved(
    team: Team, kwargs: dict[str, object], words: str
) -> None:
    args: dict[str, object] = {
        "name": "ok",
        "kind": "zscore",
        "params": {"window": 20, "bound": 2},
        "venue": VENUE,
        "symbol": SYMBOL,
        "timeframe": "1m",
    } | kwargs
    with pytest.raises(InvalidInput, match=words):
        team.services.alerts.create_rule(team.alice, **args)  # type: ignore[arg-type]
    assert team.services.alerts.rules(team.alice) == []


def test_query_rules_need_a_query_the_owner_can_read(team: Team) -> None:
    private = team.services.queries.save(team.bob, "bob's", "SELECT 1 AS x FROM bars LIMIT 1")
    with pytest.raises(NotFound):
        team.services.alerts.create_rule(
            team.alice, "q", "query_rows", {}, query_id=private.query_id
        )
    team.services.queries.share(team.bob, private.query_id, True)
    created = team.services.alerts.create_rule(
        team.alice, "q", "query_rows", {}, query_id=private.query_id
    )
    assert created.rule.query_id == private.query_id


def test_export_and_erasure_cover_rules_events_and_deliveries(
    team: Team, receiver: Receiver
) -> None:
    alerts = team.services.alerts
    created = alerts.create_rule(
        team.alice, "z", "zscore", {"window": 20, "bound": 2}, venue=VENUE, symbol=SYMBOL,
        webhook_url=receiver.url,
    )  # fmt: skip
    receiver.secret = created.secret or ""
    alerts.deliverer.start()
    event = alerts.fire(created.rule, r.Reading(1, 2.5, "z is 2.5", None))
    assert alerts.deliverer.wait_idle(20)
    bob_rule = alerts.create_rule(
        team.bob, "b", "price_cross", {"level": 1}, venue=VENUE, symbol=SYMBOL
    )
    alerts.fire(bob_rule.rule, r.Reading(1, 1.5, "up", None))

    data = team.services.accounts.export_user_data(team.alice.user_id, acting_user=team.alice)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        rules = json.loads(zf.read("alert_rules.json"))
        events = json.loads(zf.read("alert_events.json"))
        deliveries = json.loads(zf.read("alert_deliveries.json"))
        everything = b"".join(zf.read(n) for n in zf.namelist())
    assert [x["rule_id"] for x in rules] == [created.rule.rule_id]
    assert "webhook_secret" not in rules[0]
    assert "webhook_nonce" not in rules[0]
    assert [x["event_id"] for x in events] == [event.event_id]
    assert [(x["event_id"], x["status"]) for x in deliveries] == [(event.event_id, "delivered")]
    assert (created.secret or "").encode() not in everything

    team.services.accounts.erase_user(team.alice.user_id, acting_user=team.alice)
    store = team.services.auth.store
    for table in (store.alert_rules, store.alert_events, store.alert_deliveries):
        assert team.alice.user_id not in table.read()["user_id"].to_list()
    assert len(alerts.events(team.bob)) == 1
    assert len(alerts.rules(team.bob)) == 1


def test_adding_and_removing_a_webhook_later(team: Team, receiver: Receiver) -> None:
    alerts = team.services.alerts
    rule_id = zscore(team)
    added = alerts.update_rule(team.alice, rule_id, webhook_url=receiver.url)
    assert added.secret
    assert alerts.webhook_secret(added.rule) == added.secret
    kept = alerts.update_rule(team.alice, rule_id, name="renamed")
    assert kept.secret is None
    assert alerts.webhook_secret(kept.rule) == added.secret  # the secret survives an edit
    removed = alerts.update_rule(team.alice, rule_id, webhook_url="")
    assert removed.rule.webhook_url is None
    assert alerts.webhook_secret(removed.rule) is None
