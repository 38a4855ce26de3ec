"""Bounded memory under slow, stuck or hostile clients, on real servers on loopback: raw HTTP/2 readers that never
read (``h2``), the call and reply-byte limits answering RESOURCE_EXHAUSTED while health answers SERVING, keepalive
closing dead peers, and the connection options grpc enforces (streams per connection, ping rate, idle)."""

from __future__ import annotations

import dataclasses
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from benchmarks.big_replies import BigReplyConnector
from benchmarks.proc import rss_bytes
from benchmarks.slow_readers import SlowReaders, check_health, start_server
from flyteidl.service import agent_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from flyteconnect import ConnectorRegistry, Phase
from flyteconnect.server.app import BackgroundServer, ConnectorServer, serve_in_thread
from flyteconnect.server.limits import Limits
from support import free_port

from . import connectors
from .conftest import make_config
from .test_rpcs import get_request

MiB = 1024 * 1024
BIG = get_request("big_reply", b'{"job_id": "big-1"}')


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if not line.startswith("#")
    }


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


REJECTED_BYTES = 'flyte_connector_limit_rejections_total{limit="reply_bytes"}'


def test_readers_that_never_read_keep_memory_bounded_and_health_serving() -> None:
    port, metrics_port = free_port(), free_port()
    proc = start_server(port, ["--metrics-port", str(metrics_port), "--metrics-host", "127.0.0.1"])
    try:
        address = f"127.0.0.1:{port}"
        rest = rss_bytes(proc.pid)
        with SlowReaders(port, connections=100, streams=5):  # 500 GetTasks for ~1 MiB each, never read
            wait_until(lambda: scrape(metrics_port).get(REJECTED_BYTES, 0) > 0, "the reply budget never filled")
            for _ in range(5):
                assert check_health(address)[0] == "SERVING"
            metrics = scrape(metrics_port)
            assert metrics["flyte_connector_reply_bytes_in_flight"] <= 64 * MiB + 2 * MiB
            assert rss_bytes(proc.pid) - rest < 400 * MiB
        # The readers left: their replies are freed, and the heap they came from goes back to the system.
        wait_until(lambda: scrape(metrics_port)["flyte_connector_reply_bytes_in_flight"] == 0, "replies still held")
        wait_until(lambda: scrape(metrics_port)["flyte_connector_calls_in_flight"] == 0, "calls still in flight")
        wait_until(lambda: rss_bytes(proc.pid) - rest < 64 * MiB, "RSS stayed high after the readers left")
        with grpc.insecure_channel(address) as channel:  # and a reader that reads is served again
            reply = agent_pb2_grpc.AsyncAgentServiceStub(channel).GetTask(BIG, timeout=10)
        assert len(reply.resource.outputs.literals["blob"].scalar.primitive.string_value) == MiB
    finally:
        proc.terminate()
        proc.wait(60)


def test_keepalive_closes_the_connections_of_readers_that_never_read() -> None:
    port, metrics_port = free_port(), free_port()
    metrics = ["--metrics-port", str(metrics_port), "--metrics-host", "127.0.0.1"]
    proc = start_server(port, [*metrics, "--keepalive-time", "0.5", "--keepalive-timeout", "0.5"])
    try:
        with SlowReaders(port, connections=3, streams=2) as readers:
            wait_until(lambda: scrape(metrics_port)["flyte_connector_reply_bytes_in_flight"] > 0, "no reply held")
            # The clients still hold their sockets open; the server's unanswered pings close the connections.
            wait_until(lambda: scrape(metrics_port)["flyte_connector_reply_bytes_in_flight"] == 0, "never reaped")
            assert len(readers.sockets) == 3
    finally:
        proc.terminate()
        proc.wait(60)


@pytest.fixture
def limited() -> Iterator[Callable[..., BackgroundServer]]:
    handles: list[BackgroundServer] = []

    def serve(*connector_list: Any, **limits: Any) -> BackgroundServer:
        config = dataclasses.replace(make_config(), limits=Limits(**limits), max_message_size=8 * MiB)
        handle = serve_in_thread(ConnectorRegistry(list(connector_list)), config)
        handles.append(handle)
        return handle

    yield serve
    for handle in handles:
        handle.stop()


def _health(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return int(reply.status)


def test_a_call_over_max_concurrent_rpcs_is_resource_exhausted_while_health_answers(
    limited: Callable[..., BackgroundServer],
) -> None:
    handle = limited(connectors.SlowConnector(), max_concurrent_rpcs=2)
    slow = get_request("slow", connectors.SlowMeta(seconds=3.0).encode())
    with grpc.insecure_channel(handle.address) as channel, ThreadPoolExecutor(2) as pool:
        stub = agent_pb2_grpc.AsyncAgentServiceStub(channel)
        held = [pool.submit(stub.GetTask, slow, timeout=30) for _ in range(2)]
        wait_until(lambda: handle.server.admission.calls == 2, "the two calls never got in flight")
        with pytest.raises(grpc.RpcError) as info:
            stub.GetTask(slow, timeout=10)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert info.value.details() == "server busy: 2 calls in flight (--max-concurrent-rpcs); retry"
        assert _health(handle.address) == health_pb2.HealthCheckResponse.SERVING
        assert [f.result().resource.phase for f in held] == [Phase.SUCCEEDED] * 2
        fast = get_request("slow", connectors.SlowMeta(seconds=0.0).encode())
        assert stub.GetTask(fast, timeout=10).resource.phase == Phase.SUCCEEDED  # slots are given back
    assert handle.server.admission.rejected == {"rpcs": 1, "reply_bytes": 0}


def test_replies_over_the_byte_budget_are_resource_exhausted_until_the_held_one_is_read(
    limited: Callable[..., BackgroundServer],
) -> None:
    handle = limited(BigReplyConnector(), max_reply_bytes=MiB // 2)
    admission = handle.server.admission
    with grpc.insecure_channel(handle.address) as channel:
        stub = agent_pb2_grpc.AsyncAgentServiceStub(channel)
        with SlowReaders(handle.port, connections=1, streams=1):
            # One reply larger than the whole budget still goes when nothing else is held: a stalled one here.
            wait_until(lambda: admission.reply_bytes > MiB, "the stalled reply was never charged")
            for _ in range(2):  # the first is built and refused; the second is refused before any work
                with pytest.raises(grpc.RpcError) as info:
                    stub.GetTask(BIG, timeout=10)
                assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert "0 MiB of replies not yet read by their callers (--max-reply-bytes-in-flight)" in str(
                    info.value.details()
                )
            assert admission.rejected["reply_bytes"] == 2
        wait_until(lambda: admission.reply_bytes == 0, "the stalled reply was never freed")
        assert stub.GetTask(BIG, timeout=10).resource.phase == Phase.SUCCEEDED


def test_small_replies_are_not_charged(limited: Callable[..., BackgroundServer]) -> None:
    handle = limited(connectors.EchoConnector(), max_reply_bytes=1)
    meta = connectors.EchoMeta(job_id="j").encode()
    with grpc.insecure_channel(handle.address) as channel:
        stub = agent_pb2_grpc.AsyncAgentServiceStub(channel)
        for _ in range(3):
            stub.GetTask(get_request("echo", meta), timeout=10)
    assert handle.server.admission.rejected == {"rpcs": 0, "reply_bytes": 0}
    wait_until(lambda: handle.server.admission.calls == 0, "call slots never given back")


class RawConnection:
    """A raw HTTP/2 client connection (h2) that reads what the server sends."""

    def __init__(self, port: int) -> None:
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.sock.sendall(self.conn.data_to_send())
        self.events: list[Any] = []
        self.closed = False

    def pump(self) -> None:
        """Read what has arrived and answer what h2 answers by itself (settings and ping acknowledgements)."""
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return
        self.events += self.conn.receive_data(data)
        pending = self.conn.data_to_send()
        if pending:
            self.sock.sendall(pending)

    def wait_for(self, kind: type, timeout: float = 30, between: Callable[[], None] | None = None) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.closed:
            found = [e for e in self.events if isinstance(e, kind)]
            if found:
                return found[0]
            if between is not None:
                between()
            self.pump()
        found = [e for e in self.events if isinstance(e, kind)]
        assert found, f"no {kind.__name__} in {self.events}"
        return found[0]

    def close(self) -> None:
        self.sock.close()


def test_the_server_advertises_its_streams_per_connection_limit(limited: Callable[..., BackgroundServer]) -> None:
    handle = limited(connectors.EchoConnector(), max_concurrent_streams=7)
    raw = RawConnection(handle.port)
    try:
        settings = raw.wait_for(h2.events.RemoteSettingsChanged)
        assert settings.changed_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS].new_value == 7
    finally:
        raw.close()


def test_a_client_pinging_too_often_is_disconnected(limited: Callable[..., BackgroundServer]) -> None:
    handle = limited(connectors.EchoConnector(), min_ping_interval=60)
    raw = RawConnection(handle.port)
    count = iter(range(10**6))

    def ping() -> None:
        raw.conn.ping(next(count).to_bytes(8, "big"))
        raw.sock.sendall(raw.conn.data_to_send())

    try:
        goaway = raw.wait_for(h2.events.ConnectionTerminated, between=ping)
        assert goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
        assert goaway.additional_data == b"too_many_pings"
    finally:
        raw.close()


def test_an_idle_connection_is_closed(limited: Callable[..., BackgroundServer]) -> None:
    handle = limited(connectors.EchoConnector(), max_connection_idle=0.5)
    raw = RawConnection(handle.port)
    try:
        goaway = raw.wait_for(h2.events.ConnectionTerminated)
        assert goaway.additional_data == b"connection idle"
    finally:
        raw.close()


def test_connections_over_the_limit_are_closed(limited: Callable[..., BackgroundServer]) -> None:
    handle = limited(connectors.EchoConnector(), max_connections=2)
    raws = [RawConnection(handle.port) for _ in range(2)]
    try:
        for raw in raws:
            raw.wait_for(h2.events.RemoteSettingsChanged)  # both served
        extra = RawConnection(handle.port)
        try:
            deadline = time.monotonic() + 30
            while not extra.closed and time.monotonic() < deadline:
                extra.pump()
            assert extra.closed
            assert not any(isinstance(e, h2.events.RemoteSettingsChanged) for e in extra.events)
        finally:
            extra.close()
    finally:
        for raw in raws:
            raw.close()


async def test_a_server_started_again_exports_its_limit_metrics_once() -> None:
    config = dataclasses.replace(make_config(), grace=0)
    server = ConnectorServer(ConnectorRegistry([connectors.EchoConnector()]), config)
    for _ in range(2):
        await server.start()
        assert server.metrics_port is not None
        assert scrape(server.metrics_port)["flyte_connector_calls_in_flight"] == 0
        await server.stop()
