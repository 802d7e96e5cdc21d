"""Look-alike usernames (Unicode TR39 confusable skeletons) are refused at registration."""

from __future__ import annotations

import pytest

from lakehouse import LakehouseAuthBackend, User, UsernameTaken
from lakehouse import validate as v
from tests.lakehouse_support import PASSWORD


@pytest.mark.parametrize(
    ("spoof", "real"),
    [
        ("\u0430lice", "alice"),  # Cyrillic small a
        ("b\u03bfb", "bob"),  # Greek small omicron
        ("al\u0131ce", "alice"),  # Latin small dotless i
        ("a1ice", "alice"),  # digit one looks like l
        ("ALICE", "alice"),  # case-insensitive like the keys
    ],
)
def test_skeleton_of_lookalikes_matches(spoof: str, real: str) -> None:
    assert v.username_skeleton(v.username(spoof)[1]) == v.username_skeleton(real)


@pytest.mark.parametrize(("a", "b"), [("alice", "alina"), ("bob", "bop"), ("carol", "karol")])
def test_different_names_keep_different_skeletons(a: str, b: str) -> None:
    assert v.username_skeleton(a) != v.username_skeleton(b)


@pytest.mark.parametrize("spoof", ["\u0430lice", "al\u0131ce", "a1ice", "\u0430L\u0131CE"])
def test_lookalike_of_alice_is_refused(
    backend: LakehouseAuthBackend, alice: User, spoof: str
) -> None:
    with pytest.raises(UsernameTaken, match="too similar to an existing username"):
        backend.register(spoof, "spoof@example.org", PASSWORD)
    assert backend.find_user(spoof) is None or backend.find_user(spoof) == alice


def test_lookalike_of_bob_is_refused(backend: LakehouseAuthBackend) -> None:
    backend.register("bob", "bob@example.org", PASSWORD)
    with pytest.raises(UsernameTaken, match="too similar to an existing username"):
        backend.register("b\u03bfb", "bob2@example.org", PASSWORD)
    # Nothing was written: only bob exists.
    assert backend.store.users.read().height == 1


def test_distinct_names_and_exact_logins_keep_working(
    backend: LakehouseAuthBackend, alice: User
) -> None:
    backend.register("alina", "alina@example.org", PASSWORD)
    backend.register("\u0431\u043e\u0440\u0438\u0441", "boris@example.org", PASSWORD)  # борис
    assert backend.login("alice", PASSWORD)
    assert backend.login("Alice", PASSWORD)
    assert backend.login("\u0431\u043e\u0440\u0438\u0441", PASSWORD)


def test_existing_lookalike_accounts_keep_working(
    backend: LakehouseAuthBackend, alice: User
) -> None:
    # An account that slipped in before this check (written straight to the table) still
    # signs in by its exact name, and the index survives the collision.
    from lakehouse.tables import USERS, to_arrow

    row = backend.store.users.read().row(0, named=True)
    row.update(user_id="f" * 32, username="\u0430lice", username_key="\u0430lice")
    backend.store.users.append_now(to_arrow(USERS, [row]))
    backend._refresh(force=True)
    assert backend.login("\u0430lice", PASSWORD)
    assert backend.login("alice", PASSWORD)
    with pytest.raises(UsernameTaken):
        backend.register("al\u0131ce", "x@example.org", PASSWORD)
