"""Which address is the browser's: X-Forwarded-For only through trusted proxies."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from core.serve.client_ip import client_ip

LOCAL = (ip_network("127.0.0.1/32"), ip_network("::1/128"))
LAN_PROXIES = (ip_network("10.0.0.0/8"),)


def test_direct_public_peer_is_the_client() -> None:
    assert client_ip("203.0.113.9", None, ()) == "203.0.113.9"


def test_untrusted_peer_cannot_choose_its_address_with_a_header() -> None:
    assert client_ip("203.0.113.9", "198.51.100.1", ()) == "203.0.113.9"
    assert client_ip("203.0.113.9", "198.51.100.1", LAN_PROXIES) == "203.0.113.9"


def test_trusted_proxy_forwards_the_client() -> None:
    assert client_ip("127.0.0.1", "198.51.100.7", LOCAL) == "198.51.100.7"
    assert client_ip("::1", "2001:db8::5", LOCAL) == "2001:db8::5"


def test_walk_from_the_right_skipping_trusted_hops() -> None:
    # The client wrote a fake first entry; the proxies appended what they saw.
    xff = "6.6.6.6, 198.51.100.7, 10.1.2.3"
    assert client_ip("10.0.0.1", xff, LAN_PROXIES) == "198.51.100.7"
    # Several headers are joined in order.
    assert client_ip("10.0.0.1", "6.6.6.6, 198.51.100.7,10.1.2.3", LAN_PROXIES) == "198.51.100.7"


def test_all_hops_trusted_gives_the_leftmost() -> None:
    assert client_ip("10.0.0.1", "10.9.9.9, 10.1.2.3", LAN_PROXIES) == "10.9.9.9"


@pytest.mark.parametrize(
    ("peer", "xff"),
    [
        (None, None),  # no peer at all
        ("127.0.0.1", None),  # a local browser or a local proxy that forwards nothing
        ("::1", ""),
        ("127.0.0.1", "127.0.0.1"),  # still only loopback
        ("127.0.0.1", "unknown"),  # a proxy's placeholder, not an address
        ("127.0.0.1", "198.51.100.7, not-an-ip"),  # garbage where the client must be
        ("garbage", None),
    ],
)
def test_no_usable_address_is_none_never_a_shared_key(peer: str | None, xff: str | None) -> None:
    assert client_ip(peer, xff, LOCAL) is None


def test_loopback_peer_without_trusted_proxies_is_none() -> None:
    assert client_ip("127.0.0.1", "198.51.100.7", ()) is None


def test_addresses_are_normalised() -> None:
    assert client_ip("::ffff:203.0.113.9", None, ()) == "203.0.113.9"
    assert client_ip("2001:DB8:0:0::1", None, ()) == "2001:db8::1"
    assert client_ip("127.0.0.1", "198.51.100.7:5555", LOCAL) == "198.51.100.7"
    assert client_ip("127.0.0.1", "[2001:db8::5]:443", LOCAL) == "2001:db8::5"
