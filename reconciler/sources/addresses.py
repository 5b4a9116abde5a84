"""Which network addresses a `source.url` may reach (docs/manifest.md, "Images from a file or a URL").

A manifest comes from a pull request, so its URL must not make the apply job (which runs inside the
operator's network, holding cloud credentials) fetch from that network: a metadata service on a link-local
address, an admin page on a private one, the job's own loopback. Every address a host resolves to must be a
global unicast one; an IPv4 address carried inside an IPv6 one (IPv4-mapped, NAT64, 6to4, IPv4-compatible,
SIIT's IPv4-translated) is judged as the IPv4 address it reaches, and NAT64's local-use prefix is refused.
The operator admits a host anyway with --allow-url-host.

Pure: no resolution, no socket. reconciler.sources.urls resolves and connects."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 prefixes whose low 32 bits (or, for 6to4, bits 16 to 48) name the IPv4 host actually reached.
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")  # IPv4-mapped (RFC 4291)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # the NAT64 well-known prefix (RFC 6052)
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")  # 6to4 (RFC 3056)
# Translators that are not in the well-known list above, yet reach an IPv4 host all the same:
_COMPATIBLE = ipaddress.IPv6Network("::/96")  # IPv4-compatible (RFC 4291, deprecated), e.g. ::127.0.0.1
_SIIT = ipaddress.IPv6Network("::ffff:0:0:0/96")  # IPv4-translated (RFC 2765, SIIT)
# NAT64 local-use (RFC 8215): where the IPv4 address sits depends on the prefix length the local translator
# uses, so which host it reaches cannot be read from the address; refused whole.
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
# Deprecated site-local (RFC 3879): Python's is_global calls it global, yet it never left a site.
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")
# Shared address space for carrier-grade NAT (RFC 6598): neither private nor global to Python.
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why one address may not be connected to: `rule` completes "<address> is ..."."""

    address: str
    rule: str

    def sentence(self, host: str) -> str:
        """The whole refusal for `host` (as written in the URL), with the option that admits it."""
        subject = self.address if host == self.address else f"{host} resolves to {self.address}, which"
        return f"{subject} is {self.rule}; pass --allow-url-host {host} to allow it"


def parse(address: str) -> IPAddress:
    """An address as getaddrinfo or a URL gives it; an IPv6 zone (`fe80::1%eth0`) is kept, brackets are not."""
    return ipaddress.ip_address(address.strip("[]"))


def refusal(address: str) -> Refusal | None:
    """None when `address` is one a URL source may reach, else the rule it breaks."""
    parsed = parse(address)
    rule = _rule_broken(parsed)
    return None if rule is None else Refusal(address=address, rule=rule)


def embedded_ipv4(address: IPAddress) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 one carries (and through what), or None."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address in _MAPPED:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "IPv4-mapped, ::ffff:0:0/96"
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "NAT64, 64:ff9b::/96"
    if address in _SIX_TO_FOUR:
        return ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF), "6to4, 2002::/16"
    low = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _COMPATIBLE and int(address) > 1:  # :: and ::1 are themselves (unspecified, loopback)
        return low, "IPv4-compatible, ::/96"
    if address in _SIIT:
        return low, "IPv4-translated, ::ffff:0:0:0/96"
    return None


def is_loopback(address: str) -> bool:
    """Whether `address` is loopback (127.0.0.0/8, ::1, or ::ffff:127.x): the only place plain http may go."""
    parsed = parse(address)
    carried = embedded_ipv4(parsed)
    return (carried[0] if carried else parsed).is_loopback


def _rule_broken(address: IPAddress) -> str | None:
    carried = embedded_ipv4(address)
    if carried is not None:
        inner, through = carried
        rule = _rule_broken(inner)
        return None if rule is None else f"an IPv6 address carrying {inner} ({through}), {rule}"
    if address.is_multicast:
        return "a multicast address"
    if address in _SITE_LOCAL:
        return "a site-local address (fec0::/10, deprecated): not a global one"
    if address in _NAT64_LOCAL:
        return "a NAT64 local-use address (64:ff9b:1::/48): the IPv4 host it reaches depends on the local translator"
    if not address.is_global:
        return f"{_kind(address)}: not a global one"
    return None


def _kind(address: IPAddress) -> str:
    """What a non-global address is, for the refusal; the first matching name wins."""
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "a shared address (100.64.0.0/10, carrier-grade NAT)"
    if isinstance(address, ipaddress.IPv6Address) and address in ipaddress.IPv6Network("fc00::/7"):
        return "a private address (unique local, fc00::/7)"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    return "a special-purpose address"
