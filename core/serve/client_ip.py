"""A caller's IP address for login throttling and the audit (pages and REST API alike).

`X-Forwarded-For` is believed only when the direct peer is one of the reverse proxies listed in
HFT_TRUSTED_PROXIES (CIDRs). Its entries are then read from the right, skipping trusted hops:
the first address that is not a trusted proxy is the client (entries further left were
written by the client itself and can be anything). Otherwise the direct peer is the client.

A loopback or unreadable address is no address: it cannot tell visitors apart, so it gives
None, and the throttle then skips its per-IP counters instead of merging everyone into one.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address


def parse(text: str | None) -> Address | None:
    """An address from a peer or an X-Forwarded-For entry (`1.2.3.4:80`, `[::1]:80` too)."""
    if not text:
        return None
    s = text.strip()
    if s.startswith("["):  # [v6]:port
        s = s[1 : s.find("]")] if "]" in s else ""
    elif s.count(":") == 1:  # v4:port
        s = s.split(":", 1)[0]
    try:
        addr = ip_address(s)
    except ValueError:
        return None
    if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _trusted(addr: Address, trusted: Sequence[Network]) -> bool:
    return any(addr.version == net.version and addr in net for net in trusted)


def _usable(addr: Address | None) -> str | None:
    if addr is None or addr.is_loopback or addr.is_unspecified:
        return None
    return str(addr)


def client_ip(peer: str | None, xff_header: str | None, trusted: Sequence[Network]) -> str | None:
    """The client's address, or None when it cannot be known.

    `peer` is the direct TCP peer, `xff_header` every X-Forwarded-For value joined with
    commas (or None), `trusted` the proxies' networks.
    """
    addr = parse(peer)
    if addr is None or not _trusted(addr, trusted):
        return _usable(addr)
    hops = [h for h in (xff_header or "").split(",") if h.strip()]
    if not hops:
        return None  # a proxy that forwards nothing: the client is unknown
    for hop in reversed(hops):
        hop_addr = parse(hop)
        if hop_addr is None:
            return None  # garbage where a proxy should have written the peer it saw
        if not _trusted(hop_addr, trusted):
            return _usable(hop_addr)
    return _usable(parse(hops[0]))  # every hop is a trusted network: the leftmost is the client
