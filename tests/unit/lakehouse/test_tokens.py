"""Token attacks (RFC 8725, ASVS V9): every forged or stale token is refused."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest

from lakehouse import (
    AccountDisabled,
    AuthError,
    InvalidToken,
    LakehouseAuthBackend,
    SessionRevoked,
    TokenExpired,
    User,
)
from lakehouse.tokens import AUDIENCE, ISSUER
from tests.lakehouse_support import PASSWORD, FakeClock, make_backend


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    h, p, s = token.split(".")
    pad = lambda x: x + "=" * (-len(x) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(h))),
        json.loads(base64.urlsafe_b64decode(pad(p))),
        s,
    )


def _forge(backend: LakehouseAuthBackend, payload: dict[str, Any], **headers: Any) -> str:
    """Sign with the REAL current key: only the claims/headers are wrong."""
    ring = backend.store.jwt_ring
    hdr = {"kid": ring.current_kid, "typ": "JWT", **headers}
    return jwt.encode(payload, ring.current, algorithm="HS256", headers=hdr)


def _claims(token: str) -> dict[str, Any]:
    return _parts(token)[1]


@pytest.fixture
def token(backend: LakehouseAuthBackend, alice: User) -> str:
    return backend.login("alice", PASSWORD)


def test_valid_token_has_every_required_claim(backend: LakehouseAuthBackend, token: str) -> None:
    header, payload, _ = _parts(token)
    assert header["alg"] == "HS256"
    assert header["typ"] == "JWT"
    assert header["kid"] == backend.store.jwt_ring.current_kid
    assert {"exp", "iat", "nbf", "iss", "aud", "jti", "sub"} <= set(payload)
    assert payload["iss"] == ISSUER
    assert payload["aud"] == AUDIENCE
    user = backend.verify_persistent_token(token)
    assert user.username == "alice"
    assert user.session_id == payload["jti"]


def test_tampered_payload_is_rejected(backend: LakehouseAuthBackend, token: str) -> None:
    h, _p, s = token.split(".")
    payload = _claims(token)
    payload["sub"] = "f" * 32
    forged = f"{h}.{_b64(json.dumps(payload).encode())}.{s}"
    with pytest.raises(InvalidToken):
        backend.verify_persistent_token(forged)


def test_tampered_signature_is_rejected(backend: LakehouseAuthBackend, token: str) -> None:
    h, p, s = token.split(".")
    flipped = s[:-2] + ("A" if s[-2] != "A" else "B") + s[-1]
    with pytest.raises(InvalidToken):
        backend.verify_persistent_token(f"{h}.{p}.{flipped}")


def test_alg_none_is_rejected(backend: LakehouseAuthBackend, token: str) -> None:
    header = {"alg": "none", "typ": "JWT", "kid": backend.store.jwt_ring.current_kid}
    forged = f"{_b64(json.dumps(header).encode())}.{token.split('.')[1]}."
    with pytest.raises(InvalidToken, match="not allowed"):
        backend.verify_persistent_token(forged)


def test_other_algorithm_is_rejected(backend: LakehouseAuthBackend, token: str) -> None:
    ring = backend.store.jwt_ring
    forged = jwt.encode(
        _claims(token), ring.current * 2, algorithm="HS512", headers={"kid": ring.current_kid}
    )
    with pytest.raises(InvalidToken, match="not allowed"):
        backend.verify_persistent_token(forged)


@pytest.mark.parametrize("header", ["jku", "x5u", "jwk"])
def test_key_location_headers_are_rejected(
    backend: LakehouseAuthBackend, token: str, header: str
) -> None:
    value: Any = {"kty": "oct", "k": "AAAA"} if header == "jwk" else "https://evil.example/k"
    forged = _forge(backend, _claims(token), **{header: value})
    with pytest.raises(InvalidToken, match="not allowed"):
        backend.verify_persistent_token(forged)


def test_missing_typ_header_is_rejected(backend: LakehouseAuthBackend, token: str) -> None:
    ring = backend.store.jwt_ring
    forged = jwt.encode(
        _claims(token), ring.current, algorithm="HS256", headers={"kid": ring.current_kid}
    )
    # PyJWT adds typ=JWT by default; drop it explicitly.
    _h, p, s = forged.split(".")
    header = _parts(forged)[0]
    header.pop("typ", None)
    with pytest.raises(InvalidToken):
        backend.verify_persistent_token(f"{_b64(json.dumps(header).encode())}.{p}.{s}")


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf", "iss", "aud", "jti", "sub"])
def test_missing_claim_is_rejected(backend: LakehouseAuthBackend, token: str, claim: str) -> None:
    payload = _claims(token)
    del payload[claim]
    with pytest.raises(InvalidToken):
        backend.verify_persistent_token(_forge(backend, payload))


def test_expired_token_is_rejected(backend: LakehouseAuthBackend, token: str) -> None:
    payload = _claims(token)
    payload["exp"] = int(time.time()) - 10
    with pytest.raises(TokenExpired):
        backend.verify_persistent_token(_forge(backend, payload))


def test_future_nbf_is_rejected(backend: LakehouseAuthBackend, token: str) -> None:
    payload = _claims(token)
    payload["nbf"] = int(time.time()) + 3600
    with pytest.raises(InvalidToken, match="not valid yet"):
        backend.verify_persistent_token(_forge(backend, payload))


@pytest.mark.parametrize(("claim", "value"), [("aud", "other-app"), ("iss", "evil")])
def test_wrong_audience_or_issuer_is_rejected(
    backend: LakehouseAuthBackend, token: str, claim: str, value: str
) -> None:
    payload = _claims(token)
    payload[claim] = value
    with pytest.raises(InvalidToken):
        backend.verify_persistent_token(_forge(backend, payload))


def test_token_signed_with_another_secret_is_rejected(
    backend: LakehouseAuthBackend, token: str
) -> None:
    forged = jwt.encode(
        _claims(token),
        b"x" * 32,
        algorithm="HS256",
        headers={"kid": backend.store.jwt_ring.current_kid},
    )
    with pytest.raises(InvalidToken):
        backend.verify_persistent_token(forged)


def test_unknown_session_id_is_rejected(backend: LakehouseAuthBackend, token: str) -> None:
    payload = _claims(token)
    payload["jti"] = "0" * 32
    with pytest.raises(SessionRevoked):
        backend.verify_persistent_token(_forge(backend, payload))


def test_revoked_token_is_rejected(backend: LakehouseAuthBackend, token: str) -> None:
    backend.verify_persistent_token(token)  # warm the cache first
    backend.logout(token)
    with pytest.raises(SessionRevoked):
        backend.verify_persistent_token(token)


def test_token_after_password_change_is_rejected(
    backend: LakehouseAuthBackend, alice: User, token: str
) -> None:
    backend.verify_persistent_token(token)
    backend.change_password(alice.user_id, PASSWORD, "a brand new passphrase")
    with pytest.raises(SessionRevoked):
        backend.verify_persistent_token(token)


def test_token_of_disabled_account_is_rejected(
    backend: LakehouseAuthBackend, alice: User, admin: User, token: str
) -> None:
    backend.verify_persistent_token(token)
    backend.disable_user(admin, alice.user_id)
    with pytest.raises(AuthError):
        backend.verify_persistent_token(token)
    with pytest.raises(AccountDisabled):
        backend.login("alice", PASSWORD)


def test_absolute_lifetime_is_enforced(
    backend: LakehouseAuthBackend, clock: FakeClock, token: str
) -> None:
    for _ in range(7 * 24):  # active every hour, never idle
        clock.advance(3600)
        if clock.t >= _claims(token)["exp"]:
            break
        backend.verify_persistent_token(token)
    with pytest.raises(TokenExpired):
        backend.verify_persistent_token(token)


def test_idle_timeout_is_enforced(
    backend: LakehouseAuthBackend, clock: FakeClock, token: str
) -> None:
    clock.advance(backend.idle_s - 5)
    backend.verify_persistent_token(token)
    clock.advance(backend.idle_s + 1)
    with pytest.raises(TokenExpired, match="inactivity"):
        backend.verify_persistent_token(token)
    clock.advance(-backend.idle_s)  # the idle session stays ended
    with pytest.raises(SessionRevoked):
        backend.verify_persistent_token(token)


def test_key_rotation_keeps_previous_key_valid(
    backend: LakehouseAuthBackend, alice: User, token: str
) -> None:
    backend.verify_persistent_token(token)
    backend.rotate_token_key()
    backend.verify_persistent_token(token)  # signed with the previous key
    new = backend.login("alice", PASSWORD)
    assert _parts(new)[0]["kid"] == backend.store.jwt_ring.current_kid
    backend.verify_persistent_token(new)
    backend.rotate_token_key()  # the first key is now retired
    with pytest.raises(InvalidToken, match="unknown or retired"):
        backend.verify_persistent_token(token)
    backend.verify_persistent_token(new)


def test_rotation_in_another_process_retires_keys_here(
    backend: LakehouseAuthBackend, alice: User, token: str
) -> None:
    backend.verify_persistent_token(token)  # cached as valid
    other = make_backend(backend.root)
    other.rotate_token_key()
    other.rotate_token_key()
    backend._next_probe = 0.0  # the periodic probe is due
    with pytest.raises(InvalidToken, match="unknown or retired"):
        backend.verify_persistent_token(token)


@pytest.mark.parametrize("bad", ["", "abc", "a.b.c", None, 42, "x" * 10_000])
def test_garbage_tokens_are_rejected(backend: LakehouseAuthBackend, bad: Any) -> None:
    with pytest.raises(InvalidToken):
        backend.verify_persistent_token(bad)


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("bad", ["99999999999", True, [1], {"n": 1}, float("nan"), float("inf")])
def test_time_claims_must_be_numbers(
    backend: LakehouseAuthBackend, token: str, claim: str, bad: Any
) -> None:
    payload = _claims(token)
    payload[claim] = bad
    forged = _forge(backend, payload)  # correctly signed: only the claim's type is wrong
    with pytest.raises(InvalidToken, match="must be numbers"):
        backend.verify_persistent_token(forged)


def test_float_time_claims_still_verify(backend: LakehouseAuthBackend, token: str) -> None:
    payload = _claims(token)
    payload["exp"] = float(payload["exp"]) + 0.5
    assert backend.verify_persistent_token(_forge(backend, payload)).username == "alice"
