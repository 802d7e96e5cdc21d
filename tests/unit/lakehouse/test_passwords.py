"""Passwords (ASVS V6): Argon2id at RFC 9106 params, length rules, common-password list."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import extract_parameters

from lakehouse import Argon2Params, InvalidInput, LakehouseAuthBackend, User
from lakehouse.passwords import PRODUCTION, check_policy, common_passwords
from tests.lakehouse_support import PASSWORD, make_backend


def test_common_list_has_at_least_3000_real_entries() -> None:
    words = common_passwords()
    assert len(words) >= 3000
    for w in ("123456", "password", "qwerty", "iloveyou"):
        assert w in words


@pytest.mark.parametrize("pw", ["password", "Password", "123456789", "qwertyuiop"])
def test_common_passwords_are_rejected(pw: str) -> None:
    with pytest.raises(InvalidInput, match="too common"):
        check_policy(pw)


def test_length_limits() -> None:
    with pytest.raises(InvalidInput, match="at least 8"):
        check_policy("zq7#Lm2")
    assert check_policy("zq7#Lm2x") == "zq7#Lm2x"
    long64 = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do ei"
    assert len(long64) == 64
    assert check_policy(long64) == long64
    assert check_policy("ü" * 128) == "ü" * 128
    with pytest.raises(InvalidInput, match="at most"):
        check_policy("x" * 129)


@pytest.mark.parametrize(
    "pw", ["all lower case words", "ALLUPPERCASEWORDS", "únicode pässwörd ✓", "12345678901234567"]
)
def test_no_composition_rules(pw: str) -> None:
    if pw.lower() in common_passwords():
        pytest.skip("happens to be a common password")
    assert check_policy(pw) == pw


@pytest.mark.parametrize("bad", [None, 12345678, b"bytespassword", ["a"]])
def test_non_string_password_is_invalid_input(bad: object) -> None:
    with pytest.raises(InvalidInput, match="string"):
        check_policy(bad)


def test_control_characters_rejected() -> None:
    with pytest.raises(InvalidInput, match="control"):
        check_policy("abc\x00defghij")


def test_production_params_meet_rfc9106() -> None:
    assert PRODUCTION.memory_kib >= 65536
    assert PRODUCTION.time_cost >= 3
    assert PRODUCTION.parallelism >= 4
    assert PRODUCTION.meets_rfc9106


def test_weak_params_need_the_explicit_test_flag(root: Path) -> None:
    with pytest.raises(InvalidInput, match="RFC 9106"):
        LakehouseAuthBackend(root, argon2_params=Argon2Params.fast_for_tests())
    with pytest.raises(InvalidInput, match="RFC 9106"):
        LakehouseAuthBackend(
            root, argon2_params=Argon2Params(memory_kib=32768), allow_weak_hashing_for_tests=1
        )  # type: ignore[arg-type]


def test_stored_hash_is_argon2id(backend: LakehouseAuthBackend, alice: User) -> None:
    stored = backend._accounts[alice.user_id].password_hash
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    raw = b"".join(p.read_bytes() for p in backend.root.rglob("*.parquet"))
    assert PASSWORD.encode() not in raw


def test_production_params_and_rehash_on_login(root: Path) -> None:
    """One test at full production cost: a hash made with weak params is upgraded at login."""
    weak = make_backend(root)
    user = weak.register("rehash", "rehash@example.org", PASSWORD)
    old = weak._accounts[user.user_id].password_hash
    assert extract_parameters(old).memory_cost == 1024
    strong = LakehouseAuthBackend(root)  # production defaults
    assert strong.hasher.params == PRODUCTION
    strong.login("rehash", PASSWORD)
    new = strong._accounts[user.user_id].password_hash
    p = extract_parameters(new)
    assert (p.memory_cost, p.time_cost, p.parallelism) == (65536, 3, 4)
    assert new != old
    assert strong.login("rehash", PASSWORD)  # still logs in with the upgraded hash
