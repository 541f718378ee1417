from ipaddress import ip_network

from gateway.client_ip import resolve_client_ip

PROXIES = [ip_network("10.0.0.0/8")]


def test_forwarded_for_is_ignored_from_untrusted_peers() -> None:
    assert resolve_client_ip("203.0.113.9", "1.2.3.4", PROXIES) == "203.0.113.9"


def test_forwarded_for_is_used_behind_a_trusted_proxy() -> None:
    assert resolve_client_ip("10.0.0.2", "198.51.100.7", PROXIES) == "198.51.100.7"


def test_spoofed_leftmost_hops_are_skipped() -> None:
    # The client sent "X-Forwarded-For: 1.1.1.1"; our proxy appended the real address.
    assert (
        resolve_client_ip("10.0.0.2", "1.1.1.1, 198.51.100.7, 10.0.0.3", PROXIES) == "198.51.100.7"
    )


def test_garbage_hops_fall_back_to_the_peer() -> None:
    assert resolve_client_ip("10.0.0.2", "not-an-ip", PROXIES) == "10.0.0.2"
