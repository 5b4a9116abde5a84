"""Which addresses a URL source may reach (reconciler.sources.addresses): global unicast only, an IPv4
address inside an IPv6 one judged as the IPv4 address it reaches. One row per rule, each with its reason."""

from __future__ import annotations

import pytest

from reconciler.sources.addresses import is_loopback, refusal

REFUSED = [
    # (address, words the refusal must hold, reason)
    ("10.0.0.1", "a private address: not a global one", "RFC 1918"),
    ("192.168.1.10", "a private address", "RFC 1918"),
    ("127.0.0.1", "a loopback address", "the job's own services"),
    ("127.8.9.10", "a loopback address", "all of 127.0.0.0/8 is loopback"),
    ("169.254.169.254", "a link-local address", "the cloud metadata service"),
    ("100.64.0.1", "a shared address (100.64.0.0/10, carrier-grade NAT)", "neither private nor global"),
    ("224.0.0.1", "a multicast address", "Python calls some multicast global"),
    ("0.0.0.0", "the unspecified address", "connects to this host on Linux"),
    ("fd12:3456::1", "a private address (unique local, fc00::/7)", "IPv6 ULA"),
    ("fe80::1", "a link-local address", "IPv6 link-local"),
    ("fe80::1%eth0", "a link-local address", "getaddrinfo may add a zone"),
    ("fec0::1", "a site-local address (fec0::/10", "Python's is_global says True"),
    ("ff0e::1", "a multicast address", "global-scope multicast is still multicast"),
    ("::1", "a loopback address", "IPv6 loopback"),
    ("::ffff:127.0.0.1", "carrying 127.0.0.1 (IPv4-mapped, ::ffff:0:0/96), a loopback address", "v4-mapped loopback"),
    ("64:ff9b::a00:1", "carrying 10.0.0.1 (NAT64, 64:ff9b::/96), a private address", "NAT64 reaches 10.0.0.1"),
    ("::7f00:1", "carrying 127.0.0.1 (IPv4-compatible, ::/96), a loopback address", "v4-compatible loopback"),
    ("::ffff:0:7f00:1", "carrying 127.0.0.1 (IPv4-translated, ::ffff:0:0:0/96), a loopback", "SIIT loopback"),
    ("64:ff9b:1::a9fe:a9fe", "a NAT64 local-use address (64:ff9b:1::/48)", "local-use NAT64 may reach anything"),
    ("64:ff9b:1::808:808", "a NAT64 local-use address (64:ff9b:1::/48)", "local-use NAT64, whatever it carries"),
    ("2002:7f00:1::", "carrying 127.0.0.1 (6to4, 2002::/16), a loopback address", "6to4 reaches 127.0.0.1"),
    ("::ffff:169.254.169.254", "a link-local address", "the metadata service, mapped"),
]

ADMITTED = [
    ("93.184.216.34", "a global IPv4 address"),
    ("2606:4700:4700::1111", "a global IPv6 address"),
    ("::ffff:8.8.8.8", "a global address, v4-mapped (Python's table alone would refuse it)"),
    ("64:ff9b::808:808", "a global address through NAT64"),
    ("2002:808:808::1", "a global address through 6to4"),
    ("[2606:4700:4700::1111]", "brackets as a URL writes them"),
]


@pytest.mark.parametrize(("address", "words", "reason"), REFUSED, ids=[row[0] for row in REFUSED])
def test_an_address_that_is_not_global_is_refused_naming_the_rule(address, words, reason):
    refused = refusal(address)
    assert refused is not None, f"{address} should be refused ({reason})"
    assert words in refused.rule, f"want {words!r} in the rule, got {refused.rule!r} ({reason})"
    assert refused.address == address


@pytest.mark.parametrize(("address", "reason"), ADMITTED, ids=[row[0] for row in ADMITTED])
def test_a_global_address_is_admitted(address, reason):
    assert refusal(address) is None, reason


def test_the_refusal_names_the_host_the_address_the_rule_and_the_option():
    assert refusal("10.0.0.1").sentence("10.0.0.1") == (
        "10.0.0.1 is a private address: not a global one; pass --allow-url-host 10.0.0.1 to allow it"
    )
    assert refusal("10.0.0.1").sentence("artifacts.example.com") == (
        "artifacts.example.com resolves to 10.0.0.1, which is a private address: not a global one; "
        "pass --allow-url-host artifacts.example.com to allow it"
    )


@pytest.mark.parametrize(
    ("address", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("::ffff:127.0.0.1", True), ("10.0.0.1", False)],
)
def test_loopback_is_what_plain_http_may_reach(address, loopback):
    assert is_loopback(address) is loopback
