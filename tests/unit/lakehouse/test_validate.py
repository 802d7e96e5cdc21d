"""Validators never fail with anything but InvalidInput, whatever they are given."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lakehouse import InvalidInput
from lakehouse import validate as v
from lakehouse.passwords import check_policy
from lakehouse.throttle import ACCOUNT, IP, PAIR

anything = st.one_of(st.text(max_size=300), st.integers(), st.none(), st.binary(max_size=20))


@settings(max_examples=300, deadline=None, database=None)
@given(anything)
def test_username_is_clean_or_invalid(value: Any) -> None:
    try:
        name, key = v.username(value)
    except InvalidInput:
        return
    assert 3 <= len(name) <= 32
    assert all(c.isalnum() or c in "._-" for c in name)
    assert key == name.casefold()


@settings(max_examples=300, deadline=None, database=None)
@given(anything)
def test_email_is_clean_or_invalid(value: Any) -> None:
    try:
        addr = v.email(value)
    except InvalidInput:
        return
    local, at, domain = addr.rpartition("@")
    assert at == "@"
    assert local
    assert "." in domain
    assert len(addr) <= 254
    assert not any(c.isspace() for c in addr)


@settings(max_examples=300, deadline=None, database=None)
@given(anything)
def test_password_policy_is_clean_or_invalid(value: Any) -> None:
    try:
        pw = check_policy(value)
    except InvalidInput:
        return
    assert 8 <= len(pw) <= 128


def test_throttle_delays_grow_and_are_capped() -> None:
    for rule in (PAIR, IP, ACCOUNT):
        delays = [rule.delay(n) for n in range(rule.free + 40)]
        assert delays[: rule.free] == [0.0] * rule.free
        assert all(b >= a for a, b in itertools.pairwise(delays))
        assert max(delays) == rule.cap_s
    assert ACCOUNT.cap_s <= 10  # an attacker can delay an owner, never lock them out
