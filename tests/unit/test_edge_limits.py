"""The pure parts of `receiver.http.limits`: the per-client token bucket and who the client is."""

from __future__ import annotations

from receiver.http.limits import ClientRate, client_key, trusted_networks


def test_token_bucket_allows_the_burst_then_waits_for_refill() -> None:
    rate = ClientRate(rate_per_s=2, burst=3)
    assert [rate.wait_s("a", now_s=0) for _ in range(3)] == [0, 0, 0]
    assert rate.wait_s("a", now_s=0) == 0.5
    assert rate.wait_s("b", now_s=0) == 0  # another client
    assert rate.wait_s("a", now_s=0.5) == 0  # one token back after 0.5 s


def test_zero_rate_means_no_limit() -> None:
    rate = ClientRate(rate_per_s=0, burst=1)
    assert all(rate.wait_s("a", now_s=0) == 0 for _ in range(100))


def test_buckets_are_bounded() -> None:
    rate = ClientRate(rate_per_s=1, burst=1, max_clients=10)
    for n in range(1000):
        rate.wait_s(str(n), now_s=0)
    assert len(rate._buckets) == 10


PROXIES = trusted_networks(["10.0.0.0/8", "192.0.2.1"])


def test_forwarded_for_counts_only_from_a_trusted_peer() -> None:
    assert client_key(peer="203.0.113.9", forwarded_for=["1.2.3.4"], trusted=PROXIES) == (
        "203.0.113.9"
    )
    assert client_key(peer="10.1.1.1", forwarded_for=["1.2.3.4"], trusted=PROXIES) == "1.2.3.4"


def test_the_client_is_the_rightmost_untrusted_hop() -> None:
    # The client wrote "6.6.6.6" itself; the proxies appended what they saw.
    key = client_key(
        peer="10.0.0.2", forwarded_for=["6.6.6.6, 1.2.3.4", "192.0.2.1"], trusted=PROXIES
    )
    assert key == "1.2.3.4"


def test_ipv6_clients_count_by_their_64() -> None:
    assert client_key(peer="2001:db8::1", forwarded_for=[], trusted=()) == "2001:db8::/64"
    assert client_key(peer="2001:db8::2", forwarded_for=[], trusted=()) == "2001:db8::/64"
    assert client_key(peer="::ffff:1.2.3.4", forwarded_for=[], trusted=()) == "1.2.3.4"
