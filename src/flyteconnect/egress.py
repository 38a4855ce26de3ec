"""The egress policy: which network destinations a connector may reach when it fetches a URL for a caller.

Anyone who can reach the gRPC port chooses the URLs a webhook calls (and the paths a sensor polls), so without a
policy the server is a proxy into its own network: the metrics endpoint, other pods, the cloud metadata service at
169.254.169.254. The default policy refuses every address that is not globally routable unicast: loopback,
link-local, private (10/8, 172.16/12, 192.168/16), shared/CGNAT (100.64/10), unique-local (fc00::/7), unspecified,
multicast, reserved and broadcast, also when written as IPv4-mapped, -compatible, NAT64 or 6to4 IPv6, or in the
legacy decimal, octal, hex and short IPv4 forms (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``).

The operator opens it with an allow-list of networks (CIDRs) and host names (exact, or ``*.example.com`` for
subdomains): ``flyteconnect serve --egress-allow 10.1.0.0/16 --egress-allow api.internal`` or
``FLYTECONNECT_EGRESS_ALLOW=10.1.0.0/16,api.internal``.

``http_client()`` enforces the policy where it matters: on the address actually connected to, after DNS resolution
(the checked address is the one dialled, so DNS rebinding cannot swap it), for every connection of every redirect
hop. ``check_url`` is the same check ahead of time, for code that hands URLs to other libraries. Connectors that
make no outside calls never touch this module.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union
from urllib.parse import urlsplit

from flyteconnect.errors import InvalidRequest, TransientError

if TYPE_CHECKING:
    import httpx

__all__ = ["EgressDenied", "EgressPolicy", "configure", "current_policy", "http_client"]

ENV_VAR = "FLYTECONNECT_EGRESS_ALLOW"
RESOLVE_TIMEOUT = 10.0
"""Seconds a name may take to resolve when the caller gave no timeout: a refused or unknown name never hangs."""

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

_HINT = f"allow it with `flyteconnect serve --egress-allow` or {ENV_VAR}"
_HOST_NAME = re.compile(r"^(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")
_BROADCAST = ipaddress.ip_address("255.255.255.255")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # CGNAT: not "private" to ipaddress, yet inside someone's network
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible ::a.b.c.d (:: and ::1 are handled first)
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT IPv4-translated ::ffff:0:a.b.c.d


class EgressDenied(InvalidRequest):
    """The egress policy refused a destination (INVALID_ARGUMENT at create); names the host, never the URL."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"egress policy refused {host}: {reason} ({_HINT})")
        self.host = host
        self.reason = reason


def _parse_ip(text: str) -> IPAddress | None:
    """``text`` as an IP address in any spelling a resolver accepts, or None when it is a host name.

    Standard IPv4/IPv6 (a ``%zone`` suffix is dropped, brackets are allowed) and the legacy IPv4 forms that
    ``inet_aton`` and so ``getaddrinfo`` accept: 1 to 4 parts, each decimal, octal (leading 0) or hex (0x), the last
    part filling the remaining bytes (``127.1``, ``2130706433``, ``0x7f.0.0.1``, ``0177.0.0.1``).
    """
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return _legacy_ipv4(text)


def _legacy_ipv4(text: str) -> ipaddress.IPv4Address | None:
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = []
    for part in parts:
        lowered = part.lower()
        if lowered.startswith("0x"):
            digits, base, allowed = lowered[2:], 16, "0123456789abcdef"
        elif len(part) > 1 and part.startswith("0"):
            digits, base, allowed = part[1:], 8, "01234567"
        else:
            digits, base, allowed = part, 10, "0123456789"
        if not digits or any(c not in allowed for c in digits):
            return None
        numbers.append(int(digits, base))
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, translated, NAT64, 6to4), else None."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if any(address in net for net in _NAT64) or address in _TRANSLATED:
        return low32
    if address in _COMPATIBLE and int(address) > 1:
        return low32
    return None


def _refusal(address: IPAddress) -> str | None:
    """Why the default policy refuses ``address`` (``"a loopback address"``), or None for public unicast."""
    checks = (
        ("an unspecified", address.is_unspecified),
        ("a loopback", address.is_loopback),
        ("a link-local (cloud metadata)", address.is_link_local),
        ("a multicast", address.is_multicast),
        ("a broadcast", address == _BROADCAST),
        ("a shared (CGNAT)", address in _SHARED),
        ("a reserved", address.is_reserved),
        ("a private", address.is_private),
        ("a non-global", not address.is_global),
    )
    for label, hit in checks:
        if hit:
            return f"{label} address"
    return None


def _network(item: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(item, strict=False)
    except ValueError:
        address = _parse_ip(item)
        return ipaddress.ip_network(address) if address is not None else None


def _normalize_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


@dataclass(frozen=True)
class EgressPolicy:
    """Where connectors may connect: public unicast addresses, plus the networks and host names allowed here.

    ``allow_networks`` takes CIDRs (or addresses); ``allow_hosts`` exact host names or ``*.suffix`` patterns (a
    pattern matches subdomains, not the suffix itself). A host name on the list is trusted whatever it resolves to.
    """

    allow_networks: tuple[IPNetwork, ...] = ()
    allow_hosts: tuple[str, ...] = ()
    _exact: frozenset[str] = field(init=False, repr=False, compare=False)
    _suffixes: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        networks = []
        for item in self.allow_networks:
            net = item if not isinstance(item, str) else _network(item)
            if not isinstance(net, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
                raise ValueError(f"egress allow-list: {item!r} is not a network (CIDR) or address")
            networks.append(net)
        hosts = []
        for name in self.allow_hosts:
            host = _normalize_host(name)
            if not _HOST_NAME.match(host):
                raise ValueError(f"egress allow-list: {name!r} is not a host name or *.suffix pattern")
            hosts.append(host)
        object.__setattr__(self, "allow_networks", tuple(networks))
        object.__setattr__(self, "allow_hosts", tuple(hosts))
        object.__setattr__(self, "_exact", frozenset(h for h in hosts if not h.startswith("*.")))
        object.__setattr__(self, "_suffixes", tuple(h[1:] for h in hosts if h.startswith("*.")))

    @classmethod
    def from_allow(cls, items: Iterable[str]) -> EgressPolicy:
        """A policy allowing ``items``: each a CIDR, an address, a host name or ``*.suffix`` (ValueError if not)."""
        networks: list[IPNetwork] = []
        hosts: list[str] = []
        for raw in items:
            item = raw.strip()
            if not item:
                continue
            net = _network(item)
            if net is not None:
                networks.append(net)
            else:
                hosts.append(item)
        return cls(allow_networks=tuple(networks), allow_hosts=tuple(hosts))

    @classmethod
    def from_env(cls) -> EgressPolicy:
        """The policy ``FLYTECONNECT_EGRESS_ALLOW`` (comma-separated CIDRs and host names) describes."""
        return cls.from_allow(os.environ.get(ENV_VAR, "").split(","))

    def merged(self, other: EgressPolicy) -> EgressPolicy:
        """A policy allowing what either allows."""
        return EgressPolicy(self.allow_networks + other.allow_networks, self.allow_hosts + other.allow_hosts)

    def allows_host(self, host: str) -> bool:
        """True when ``host`` is on the host allow-list (then its addresses are not checked)."""
        name = _normalize_host(host)
        return name in self._exact or name.endswith(self._suffixes)

    def refusal(self, address: IPAddress) -> str | None:
        """Why this policy refuses ``address`` (``"127.0.0.1, a loopback address"``), or None when it may be dialled."""
        if any(address in net for net in self.allow_networks):
            return None
        inner = _embedded_ipv4(address)
        if inner is not None:
            reason = self.refusal(inner)
            return None if reason is None else f"{address} carrying {reason}"
        reason = _refusal(address)
        return None if reason is None else f"{address}, {reason}"

    def check_ip(self, ip: str) -> None:
        """Raise EgressDenied unless ``ip`` (an address in any spelling) may be connected to."""
        address = _parse_ip(ip)
        if address is None:
            raise EgressDenied(ip, "not an IP address")
        reason = self.refusal(address)
        if reason is not None:
            raise EgressDenied(ip, reason)

    async def check_url(self, url: str, timeout: float | None = RESOLVE_TIMEOUT) -> None:
        """Raise EgressDenied unless the URL's host and every address it resolves to (now) are allowed.

        Resolution uses the event loop's ``getaddrinfo``; a name that does not resolve (or not within ``timeout``)
        is a TransientError. A URL without a host is refused. Code that connects itself should use ``http_client``,
        which checks the address it actually dials.
        """
        try:
            parts = urlsplit(url)
            host = parts.hostname
            port = parts.port
        except ValueError as e:
            raise EgressDenied("?", f"not a valid URL ({e})") from None
        if not host:
            raise EgressDenied("?", "the URL has no host")
        await self.resolve(host, port, timeout)

    async def resolve(self, host: str, port: int | None, timeout: float | None) -> list[str]:
        """The addresses to connect to for ``host`` (all checked), or ``[host]`` for an allowed host name.

        Raises EgressDenied when any resolved address is refused (one bad address poisons the name), TransientError
        when the name does not resolve in time.
        """
        if self.allows_host(host):
            return [host]
        literal = _parse_ip(host)
        if literal is not None:
            reason = self.refusal(literal)
            if reason is not None:
                raise EgressDenied(host, reason)
            return [str(literal)]
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout or RESOLVE_TIMEOUT
            )
        except (OSError, asyncio.TimeoutError) as e:
            raise TransientError(f"cannot resolve {host}: {type(e).__name__}: {e}") from None
        addresses: list[str] = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).partition("%")[0])
            reason = self.refusal(address)
            if reason is not None:
                raise EgressDenied(host, f"it resolves to {reason}")
            if str(address) not in addresses:
                addresses.append(str(address))
        if not addresses:
            raise TransientError(f"cannot resolve {host}: no addresses")
        return addresses


_policy: EgressPolicy | None = None


def current_policy() -> EgressPolicy:
    """The process-wide policy: what ``configure`` set, else the one ``FLYTECONNECT_EGRESS_ALLOW`` describes."""
    global _policy
    if _policy is None:
        _policy = EgressPolicy.from_env()
    return _policy


def configure(policy: EgressPolicy) -> None:
    """Make ``policy`` the process-wide policy (``flyteconnect serve`` calls this at start)."""
    global _policy
    _policy = policy


def http_client(*, policy: EgressPolicy | None = None, **kwargs: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose every connection, including each redirect hop, passes the egress policy.

    ``kwargs`` are ``httpx.AsyncClient``'s (``verify``, ``cert``, ``http1``, ``http2``, ``limits`` and ``trust_env``
    go to its transport). ``transport``, ``mounts`` and ``proxy`` are refused: they would connect around the policy,
    and so environment proxies are not used. ``policy`` defaults to ``current_policy()`` at each connection.
    """
    from flyteconnect._egress_http import make_client

    return make_client(policy, kwargs)
