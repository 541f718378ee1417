"""The client's address: X-Forwarded-For is believed only when it comes from our proxies."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address


def resolve_client_ip(
    peer: str, forwarded_for: str | None, trusted: list[IPv4Network | IPv6Network]
) -> str:
    """Walk X-Forwarded-For from the right, skipping trusted proxies; first other hop wins."""
    if not trusted or not forwarded_for or not _is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop if _is_ip(hop) else peer
    return hops[0] if hops and _is_ip(hops[0]) else peer


def _is_ip(value: str) -> bool:
    try:
        ip_address(value)
    except ValueError:
        return False
    return True


def _is_trusted(value: str, trusted: list[IPv4Network | IPv6Network]) -> bool:
    try:
        address = ip_address(value)
    except ValueError:
        return False
    return any(address in network for network in trusted)
