"""The address policy on its own: every spelling of a denied address, the allow-list, names that resolve."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from typing import Any

import pytest

from flyteconnect import egress
from flyteconnect.egress import EgressDenied, EgressPolicy
from flyteconnect.errors import InvalidRequest

DEFAULT = EgressPolicy()

DENIED = {
    # loopback, every spelling
    "127.0.0.1": "loopback",
    "127.8.9.10": "loopback",
    "2130706433": "loopback",  # decimal
    "0177.0.0.1": "loopback",  # octal
    "0x7f.1": "loopback",  # hex, short
    "0x7f000001": "loopback",
    "127.1": "loopback",  # short form
    "0177.1": "loopback",
    "::1": "loopback",
    "[::1]": "loopback",
    "0:0:0:0:0:0:0:1": "loopback",
    "::ffff:127.0.0.1": "loopback",  # IPv4-mapped
    "::ffff:7f00:1": "loopback",
    "::127.0.0.1": "loopback",  # IPv4-compatible
    "::ffff:0:127.0.0.1": "loopback",  # IPv4-translated (SIIT)
    "64:ff9b::127.0.0.1": "loopback",  # NAT64 well-known prefix
    "64:ff9b:1::7f00:1": "loopback",  # NAT64 local-use prefix
    "2002:7f00:1::": "loopback",  # 6to4
    # link-local and cloud metadata
    "169.254.169.254": "link-local",
    "0xa9.0xfe.0xa9.0xfe": "link-local",
    "2852039166": "link-local",
    "::ffff:169.254.169.254": "link-local",
    "fe80::1": "link-local",
    "fe80::1%eth0": "link-local",
    # private, shared, unique-local
    "10.0.0.1": "private",
    "012.0.0.1": "private",  # octal 10.0.0.1
    "172.16.5.4": "private",
    "172.31.255.255": "private",
    "192.168.1.1": "private",
    "::ffff:10.1.2.3": "private",
    "100.64.0.1": "shared",
    "100.127.255.254": "shared",
    "fc00::1": "private",
    "fd12:3456::1": "private",
    # unspecified, multicast, broadcast, reserved
    "0.0.0.0": "unspecified",
    "0": "unspecified",
    "::": "unspecified",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "ff02::1": "multicast",
    "255.255.255.255": "broadcast",
    "240.0.0.1": "reserved",
    "0.1.2.3": "private",  # "this network"
}

ALLOWED = ["8.8.8.8", "134744072", "0x08080808", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8"]


@pytest.mark.parametrize(("ip", "kind"), sorted(DENIED.items()))
def test_default_policy_refuses_every_spelling(ip: str, kind: str) -> None:
    with pytest.raises(EgressDenied) as caught:
        DEFAULT.check_ip(ip)
    message = str(caught.value)
    assert kind in message
    assert message.startswith(f"egress policy refused {ip}:")
    assert "--egress-allow" in message and "FLYTECONNECT_EGRESS_ALLOW" in message


@pytest.mark.parametrize("ip", ALLOWED)
def test_default_policy_allows_public_unicast(ip: str) -> None:
    DEFAULT.check_ip(ip)


@pytest.mark.parametrize("text", ["127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.1", "127.1", "0x7f000001", "1.2.3"])
def test_legacy_spellings_parse_like_inet_aton(text: str) -> None:
    parsed = egress._parse_ip(text)
    assert parsed is not None
    assert str(parsed) == socket.inet_ntoa(socket.inet_aton(text))


@pytest.mark.parametrize("text", ["example.com", "1.2.3.4.5", "256.1.1.1", "08.1.1.1", "0x", "1..1", "", "0xg.1"])
def test_names_and_malformed_numbers_are_not_addresses(text: str) -> None:
    assert egress._parse_ip(text) is None


def test_denied_is_invalid_argument_and_not_an_address_is_denied() -> None:
    assert issubclass(EgressDenied, InvalidRequest)
    with pytest.raises(EgressDenied, match="not an IP address"):
        DEFAULT.check_ip("example.com")


def test_allow_list_opens_networks_in_every_spelling_of_their_addresses() -> None:
    policy = EgressPolicy.from_allow(["127.0.0.2", "10.1.0.0/16", "fd00::/8"])
    for ip in ("127.0.0.2", "0x7f.0.0.2", "::ffff:127.0.0.2", "10.1.200.3", "fd00::5"):
        policy.check_ip(ip)
    for ip in ("127.0.0.1", "10.2.0.1", "fc00::1", "169.254.169.254"):
        with pytest.raises(EgressDenied):
            policy.check_ip(ip)


def test_allow_list_hosts_exact_and_suffix() -> None:
    policy = EgressPolicy.from_allow(["api.internal", "*.svc.cluster.local", "LocalHost."])
    assert policy.allows_host("api.internal") and policy.allows_host("API.Internal.")
    assert policy.allows_host("db.ns.svc.cluster.local")
    assert not policy.allows_host("svc.cluster.local")  # a pattern matches subdomains only
    assert not policy.allows_host("evil-svc.cluster.local")
    assert not policy.allows_host("api.internal.evil.com")
    assert policy.allows_host("localhost")


@pytest.mark.parametrize("item", ["*", "*foo.com", "a b", "http://x", "x/y", "*.", "-bad.com"])
def test_allow_list_rejects_what_is_neither_network_nor_host(item: str) -> None:
    with pytest.raises(ValueError, match="egress allow-list"):
        EgressPolicy.from_allow([item])


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYTECONNECT_EGRESS_ALLOW", " 10.0.0.0/8 , hooks.internal,,::1 ")
    policy = EgressPolicy.from_env()
    assert [str(n) for n in policy.allow_networks] == ["10.0.0.0/8", "::1/128"]
    assert policy.allow_hosts == ("hooks.internal",)
    monkeypatch.delenv("FLYTECONNECT_EGRESS_ALLOW")
    assert EgressPolicy.from_env() == EgressPolicy()


def test_process_policy_defaults_to_env_and_configure_replaces_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(egress, "_policy", None)
    monkeypatch.setenv("FLYTECONNECT_EGRESS_ALLOW", "192.168.0.0/16")
    assert egress.current_policy().allow_networks[0].compressed == "192.168.0.0/16"
    mine = EgressPolicy.from_allow(["example.org"])
    egress.configure(mine)
    assert egress.current_policy() is mine


async def test_check_url_resolves_names_and_refuses_denied_addresses() -> None:
    with pytest.raises(EgressDenied, match=r"refused localhost: it resolves to .*loopback"):
        await DEFAULT.check_url("http://localhost:8080/x?token=SECRET")
    for url in ("http://2130706433/", "https://0x7f.1:443/", "http://[::ffff:127.0.0.1]/", "http://169.254.169.254/"):
        with pytest.raises(EgressDenied) as caught:
            await DEFAULT.check_url(url)
        assert "SECRET" not in str(caught.value)
    await DEFAULT.check_url("https://8.8.8.8/")  # a literal public address needs no resolution
    await EgressPolicy.from_allow(["localhost"]).check_url("http://localhost:1/")


@pytest.mark.parametrize("url", ["/relative/path", "http://", "file:///etc/passwd", "http://[::1/"])
async def test_check_url_refuses_urls_without_a_host(url: str) -> None:
    with pytest.raises(EgressDenied):
        await DEFAULT.check_url(url)


async def test_one_denied_address_poisons_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name answering both a public and a private address is refused (the resolver is the one fake here)."""
    loop = asyncio.get_running_loop()

    async def getaddrinfo(host: str, port: Any, **kwargs: Any) -> list[Any]:
        assert host == "mixed.example"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port or 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port or 0)),
        ]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    with pytest.raises(EgressDenied, match=r"mixed.example: it resolves to 10.0.0.7, a private address"):
        await DEFAULT.check_url("https://mixed.example/")


async def test_a_name_that_does_not_resolve_or_never_answers_is_transient_not_a_hang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Resolver failures are faked: tests send no DNS queries off the machine."""
    from flyteconnect.errors import TransientError

    async def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "silent.example":
            await asyncio.Event().wait()  # a resolver that never answers
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    with pytest.raises(TransientError, match=r"cannot resolve no-such-host\.invalid: gaierror"):
        await DEFAULT.check_url("http://no-such-host.invalid/")
    with pytest.raises(TransientError, match=r"cannot resolve silent\.example: TimeoutError"):
        await DEFAULT.check_url("http://silent.example/", timeout=0.05)


def test_the_policy_module_imports_no_http_library() -> None:
    """Connectors that make no outside calls pay nothing: the policy itself needs only the standard library."""
    code = "import sys, flyteconnect.egress; print(sorted({'httpx', 'httpcore', 'anyio'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
