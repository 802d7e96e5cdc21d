"""Login throttling that slows attackers without locking the owner out (device cookies, known
IPs), and that never merges visitors without an IP into one shared counter."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import pytest

from lakehouse import InvalidCredentials, LakehouseAuthBackend, Throttled, User
from lakehouse.devices import DEVICE_TTL_S
from lakehouse.throttle import ACCOUNT, DEVICE_LOCK_AFTER
from tests.lakehouse_support import ADMIN_PASSWORD, PASSWORD, FakeClock, make_admin

OWNER_IP = "192.0.2.10"
HOUR_S = 3600.0
OWNER_EVERY_S = 37.0


@dataclass
class Siege:
    owner_ok: int = 0
    owner_tries: int = 0
    attacker_failures: int = 0
    attacker_delays: list[float] = field(default_factory=list)


def _siege(
    backend: LakehouseAuthBackend, clock: FakeClock, *, device: str | None, owner_ip: str
) -> Siege:
    """One simulated hour: an attacker on a fresh IP per attempt retries the moment each delay
    ends, while the owner signs in every ~37 s with the right password."""
    out = Siege()
    start = clock.t
    attacker_at, owner_at = start, start + OWNER_EVERY_S
    n = 0
    while min(attacker_at, owner_at) < start + HOUR_S:
        if attacker_at <= owner_at:
            clock.t = attacker_at
            n += 1
            try:
                backend.login("alice", "wrong password!", ip=f"198.51.{n // 250}.{n % 250 + 1}")
            except InvalidCredentials:
                out.attacker_failures += 1  # retry at once: the next try learns the delay
            except Throttled as exc:
                out.attacker_delays.append(exc.retry_after_s)
                attacker_at = clock.t + exc.retry_after_s + 0.001
        else:
            clock.t = owner_at
            out.owner_tries += 1
            with contextlib.suppress(Throttled):
                result = backend.login_with_device("alice", PASSWORD, ip=owner_ip, device=device)
                out.owner_ok += 1
                device = result.device if device is not None else None
            owner_at = clock.t + OWNER_EVERY_S
    return out


def _attacker_slowed(s: Siege) -> None:
    # The attacker still meets growing delays: 1 s, 2 s, 4 s ... up to the account cap, and
    # never gets more than one guess per capped delay once there.
    first = s.attacker_delays[:4]
    assert first == sorted(first)
    assert first[0] < first[-1]
    assert max(s.attacker_delays) == pytest.approx(ACCOUNT.cap_s, abs=0.01)
    assert s.attacker_failures <= ACCOUNT.free + HOUR_S / ACCOUNT.cap_s + 5


@pytest.mark.slow  # an hour of attacks: ~800 audited logins
def test_device_cookie_keeps_the_owner_in_during_a_distributed_attack(
    backend: LakehouseAuthBackend, alice: User, clock: FakeClock
) -> None:
    first = backend.login_with_device("alice", PASSWORD, ip=OWNER_IP)
    assert first.device
    # The owner's browser carries its cookie; its IP is a new one this time.
    s = _siege(backend, clock, device=first.device, owner_ip="192.0.2.77")
    assert s.owner_tries >= 95
    assert s.owner_ok == s.owner_tries
    _attacker_slowed(s)


@pytest.mark.slow  # an hour of attacks: ~800 audited logins
def test_a_known_ip_keeps_the_owner_in_during_a_distributed_attack(
    backend: LakehouseAuthBackend, alice: User, clock: FakeClock
) -> None:
    backend.login("alice", PASSWORD, ip=OWNER_IP)  # signed in from here before
    s = _siege(backend, clock, device=None, owner_ip=OWNER_IP)
    assert s.owner_tries >= 95
    assert s.owner_ok == s.owner_tries
    _attacker_slowed(s)


def test_an_untrusted_client_still_meets_the_account_delay(
    backend: LakehouseAuthBackend, alice: User, clock: FakeClock
) -> None:
    for i in range(ACCOUNT.free + 3):
        with contextlib.suppress(InvalidCredentials, Throttled):
            backend.login("alice", "wrong password!", ip=f"203.0.113.{i + 1}")
    with pytest.raises(Throttled):  # new IP, no cookie: judged by the account counter
        backend.login("alice", PASSWORD, ip="192.0.2.99")


def test_a_device_cookie_locks_after_repeated_failures(
    backend: LakehouseAuthBackend, alice: User, clock: FakeClock
) -> None:
    device = backend.login_with_device("alice", PASSWORD, ip=OWNER_IP).device
    for _ in range(DEVICE_LOCK_AFTER):
        try:
            backend.login("alice", "wrong password!", ip="203.0.113.50", device=device)
        except Throttled as exc:
            clock.advance(exc.retry_after_s + 0.01)
            with contextlib.suppress(InvalidCredentials):
                backend.login("alice", "wrong password!", ip="203.0.113.50", device=device)
        except InvalidCredentials:
            pass
    # Locked: the cookie no longer lifts the account counter, which others have filled.
    for i in range(ACCOUNT.free + 3):
        with contextlib.suppress(InvalidCredentials, Throttled):
            backend.login("alice", "wrong password!", ip=f"203.0.113.{i + 100}")
    with pytest.raises(Throttled):
        backend.login("alice", PASSWORD, ip="203.0.113.51", device=device)


@pytest.mark.parametrize("case", ["other account", "tampered", "expired", "garbage"])
def test_only_a_valid_cookie_of_this_account_is_trusted(
    backend: LakehouseAuthBackend, alice: User, clock: FakeClock, case: str
) -> None:
    backend.register("bobby", "bobby@example.org", PASSWORD)
    device = backend.login_with_device("alice", PASSWORD, ip=OWNER_IP).device
    if case == "other account":
        device = backend.login_with_device("bobby", PASSWORD, ip=OWNER_IP).device
    elif case == "tampered":
        device = device[:-3] + ("AAA" if not device.endswith("AAA") else "BBB")
    elif case == "expired":
        clock.advance(DEVICE_TTL_S + 60)
    else:
        device = "x" * 100
    for i in range(ACCOUNT.free + 3):
        with contextlib.suppress(InvalidCredentials, Throttled):
            backend.login("alice", "wrong password!", ip=f"203.0.113.{i + 1}")
    with pytest.raises(Throttled):
        backend.login("alice", PASSWORD, ip="192.0.2.99", device=device)


def test_device_tokens_are_signed_and_carry_no_secret(
    backend: LakehouseAuthBackend, alice: User
) -> None:
    result = backend.login_with_device("alice", PASSWORD, ip=OWNER_IP)
    again = backend.login_with_device("alice", PASSWORD, ip=OWNER_IP, device=result.device)
    assert again.device != result.device  # a fresh nonce on every sign-in
    assert PASSWORD not in result.device
    assert backend.verify_persistent_token(again.token).user_id == alice.user_id
    key_file = backend.store.secrets_dir / "device-cookie-keys.json"
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_visitors_without_an_ip_do_not_share_one_counter(backend: LakehouseAuthBackend) -> None:
    make_admin(backend, "boss")
    for i in range(48):  # made-up names, all from visitors Streamlit gives no IP for
        with pytest.raises(InvalidCredentials):
            backend.login(f"nobody{i:02d}", "whatever123", ip=None)
    assert backend.login("boss", ADMIN_PASSWORD, ip=None)
