"""``egress.http_client`` against real HTTP(S) listeners on loopback: refused destinations are never contacted."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from flyteconnect import egress
from flyteconnect.egress import EgressDenied, EgressPolicy


class Listener:
    """A real HTTP server on ``host``; records every request; ``redirect_to`` makes it answer 302 there."""

    def __init__(self, host: str, redirect_to: str | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[dict[str, str]] = []
        state = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so pooled connections are reused

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                state.requests.append({"path": self.path, "host": self.headers.get("Host", "")})
                if redirect_to is not None:
                    self.send_response(302)
                    self.send_header("Location", redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self._httpd = ThreadingHTTPServer((host, 0), Handler)
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


@pytest.fixture
def listen() -> Iterator[Callable[..., Listener]]:
    started: list[Listener] = []

    def start(host: str = "127.0.0.1", **kwargs: Any) -> Listener:
        started.append(Listener(host, **kwargs))
        return started[-1]

    yield start
    for listener in started:
        listener.close()


@pytest.fixture
def default_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process policy is the default one for this test, whatever the environment says."""
    monkeypatch.setattr(egress, "_policy", EgressPolicy())


def resolve_as(monkeypatch: pytest.MonkeyPatch, names: dict[str, list[str]]) -> list[str]:
    """Make the running loop's resolver answer ``names`` (other hosts resolve normally); returns the names asked."""
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo
    asked: list[str] = []

    async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in names:
            asked.append(host)
            answers = names[host] if len(names[host]) == 1 or asked.count(host) == 1 else names[host][1:]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[0], port or 0))]
        return await real(host, port, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.usefixtures("default_policy")
@pytest.mark.parametrize(
    "spelling",
    ["127.0.0.1", "localhost", "2130706433", "0x7f.1", "0x7f000001", "127.1", "[::ffff:127.0.0.1]", "0.0.0.0", "0"],
)
async def test_loopback_in_any_spelling_is_refused_before_connecting(
    listen: Callable[..., Listener], spelling: str
) -> None:
    target = listen()
    async with egress.http_client() as client:
        with pytest.raises(EgressDenied, match="egress policy refused"):
            await client.get(f"http://{spelling}:{target.port}/metrics")
    assert target.requests == []


@pytest.mark.usefixtures("default_policy")
async def test_octal_dotted_loopback_never_leaves(listen: Callable[..., Listener]) -> None:
    """httpx rejects dotted forms with octal parts itself (``parse_ip`` would read them as loopback too)."""
    target = listen()
    async with egress.http_client() as client:
        with pytest.raises(httpx.InvalidURL):
            await client.get(f"http://0177.0.0.1:{target.port}/")
    assert target.requests == []


async def test_redirect_to_a_denied_address_is_refused_at_that_hop(listen: Callable[..., Listener]) -> None:
    denied = listen("127.0.0.1")
    allowed = listen("127.0.0.2", redirect_to=f"http://127.0.0.1:{denied.port}/secret")
    policy = EgressPolicy.from_allow(["127.0.0.2"])
    async with egress.http_client(policy=policy, follow_redirects=True) as client:
        with pytest.raises(EgressDenied, match=r"refused 127.0.0.1: 127.0.0.1, a loopback address"):
            await client.get(f"http://127.0.0.2:{allowed.port}/start")
    assert [r["path"] for r in allowed.requests] == ["/start"]
    assert denied.requests == []


async def test_redirect_through_a_name_that_resolves_to_a_denied_address(listen: Callable[..., Listener]) -> None:
    denied = listen("127.0.0.1")
    allowed = listen("127.0.0.2", redirect_to=f"http://localhost:{denied.port}/")
    async with egress.http_client(policy=EgressPolicy.from_allow(["127.0.0.2"]), follow_redirects=True) as client:
        with pytest.raises(EgressDenied, match="refused localhost: it resolves to"):
            await client.get(f"http://127.0.0.2:{allowed.port}/")
    assert denied.requests == []


async def test_the_checked_address_is_the_one_dialled(
    listen: Callable[..., Listener], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the first answer is allowed, later ones point at loopback; the connection uses the first."""
    allowed, denied = listen("127.0.0.2"), listen("127.0.0.1")
    asked = resolve_as(monkeypatch, {"rebind.example": ["127.0.0.2", "127.0.0.1"]})
    policy = EgressPolicy.from_allow(["127.0.0.2"])
    async with egress.http_client(policy=policy) as client:
        response = await client.get(f"http://rebind.example:{allowed.port}/first")
        assert response.text == "ok"
        # The same origin again: the pooled connection to the checked address serves it.
        await client.get(f"http://rebind.example:{allowed.port}/again")
    async with egress.http_client(policy=policy) as client:  # a new connection resolves again: now refused
        with pytest.raises(EgressDenied, match=r"rebind.example: it resolves to 127.0.0.1, a loopback"):
            await client.get(f"http://rebind.example:{denied.port}/rebound")
    assert asked == ["rebind.example", "rebind.example"]
    assert [r["host"] for r in allowed.requests] == [f"rebind.example:{allowed.port}"] * 2  # Host header kept
    assert denied.requests == []


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the name ``egress.test`` (and nothing else), and its key."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=egress.test",
         "-addext", "subjectAltName=DNS:egress.test", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_verifies_the_name_while_connecting_to_the_checked_address(
    listen: Callable[..., Listener], monkeypatch: pytest.MonkeyPatch, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    server = listen("127.0.0.2", tls=server_tls)
    resolve_as(monkeypatch, {"egress.test": ["127.0.0.2"], "wrong.test": ["127.0.0.2"]})
    trust = ssl.create_default_context(cafile=str(cert))
    async with egress.http_client(policy=EgressPolicy.from_allow(["127.0.0.2"]), verify=trust) as client:
        assert (await client.get(f"https://egress.test:{server.port}/")).text == "ok"
        with pytest.raises(httpx.ConnectError, match="certificate"):  # the name is still what TLS checks
            await client.get(f"https://wrong.test:{server.port}/")
    assert [r["host"] for r in server.requests] == [f"egress.test:{server.port}"]


async def test_allowed_host_names_skip_the_address_check(listen: Callable[..., Listener]) -> None:
    target = listen("127.0.0.1")
    async with egress.http_client(policy=EgressPolicy.from_allow(["localhost"])) as client:
        assert (await client.get(f"http://localhost:{target.port}/")).status_code == 200
    assert len(target.requests) == 1


async def test_the_process_policy_is_read_at_each_connection(
    listen: Callable[..., Listener], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = listen("127.0.0.1")
    monkeypatch.setattr(egress, "_policy", EgressPolicy())
    client = egress.http_client()
    async with client:
        with pytest.raises(EgressDenied):
            await client.get(f"http://127.0.0.1:{target.port}/")
        egress.configure(EgressPolicy.from_allow(["127.0.0.1"]))
        assert (await client.get(f"http://127.0.0.1:{target.port}/")).status_code == 200
    assert len(target.requests) == 1


@pytest.mark.parametrize("kwargs", [{"proxy": "http://127.0.0.1:3128"}, {"mounts": {}}, {"transport": None}])
def test_options_that_would_bypass_the_policy_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="around the egress policy"):
        egress.http_client(**kwargs)


@pytest.mark.usefixtures("default_policy")
async def test_environment_proxies_are_not_used(
    listen: Callable[..., Listener], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy on an allowed address must not carry requests to a refused one."""
    proxy = listen("127.0.0.2")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.2:{proxy.port}")
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.2:{proxy.port}")
    egress.configure(EgressPolicy.from_allow(["127.0.0.2"]))
    async with egress.http_client() as client:
        with pytest.raises(EgressDenied):
            await client.get("http://127.0.0.1:9/")
    assert proxy.requests == []


@pytest.mark.usefixtures("default_policy")
async def test_a_name_that_does_not_resolve_is_a_connect_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")  # no DNS queries leave the machine

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    async with egress.http_client() as client:
        with pytest.raises(httpx.ConnectError, match=r"cannot resolve no-such-host\.invalid: gaierror"):
            await client.get("http://no-such-host.invalid/")
