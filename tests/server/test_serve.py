"""``flyteconnect serve`` and ``list`` as real processes: health, reflection, metrics over HTTP, SIGTERM drain,
--strict, and --workers with a restarted worker."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.service import agent_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from flyteconnect import Phase

from . import connectors
from .test_rpcs import create_request, get_request

HERE = Path(__file__).parent
MODULE = str(HERE / "serve_module.py")
CLI = [sys.executable, "-m", "flyteconnect"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    """A running ``flyteconnect`` process whose stdout lines are collected by a thread."""

    popen: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait(self, timeout: float = 30) -> int:
        """Wait for the exit, collect the last output lines, close the pipe; returns the exit code."""
        code = self.popen.wait(timeout)
        self._reader.join(5)
        assert self.popen.stdout is not None
        self.popen.stdout.close()
        return code

    def wait_for_line(self, pattern: str, count: int = 1, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in (re.search(pattern, line) for line in list(self.lines)) if m]
            if len(found) >= count:
                return found[count - 1]
            if self.popen.poll() is not None and len(found) < count:
                time.sleep(0.1)  # let the reader drain
                found = [m for m in (re.search(pattern, line) for line in list(self.lines)) if m]
                if len(found) >= count:
                    return found[count - 1]
                raise AssertionError(f"process exited ({self.popen.returncode}) before {pattern!r}: {self.lines}")
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} in {self.lines}")

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.wait(30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.wait()


def start(*args: str) -> Proc:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    popen = subprocess.Popen(
        [*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=str(HERE)
    )
    return Proc(popen)


def serve(*extra: str) -> tuple[Proc, int]:
    proc = start("serve", "-m", MODULE, "--no-entry-points", "--host", "127.0.0.1", "--port", "0", *extra)
    port = int(proc.wait_for_line(r"^listening on 127\.0\.0\.1:(\d+)").group(1))
    return proc, port


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[int, int]]:
    """A served process: (gRPC port, metrics port)."""
    metrics_port = free_port()
    proc, port = serve("--metrics-port", str(metrics_port), "--metrics-host", "127.0.0.1")
    yield port, metrics_port
    assert proc.stop() == 0


def test_health_reports_serving_for_every_service(served: tuple[int, int]) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{served[0]}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "flyteidl.service.AsyncAgentService", "flyteidl.service.SyncAgentService",
                        "flyteidl.service.AgentMetadataService"):  # fmt: skip
            got = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert got.status == health_pb2.HealthCheckResponse.SERVING, service
        with pytest.raises(grpc.RpcError) as info:
            stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_services(served: tuple[int, int]) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{served[0]}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
        names = {s.name for s in replies[0].list_services_response.service}
        assert {
            "flyteidl.service.AsyncAgentService",
            "flyteidl.service.SyncAgentService",
            "flyteidl.service.AgentMetadataService",
            "grpc.health.v1.Health",
        } <= names
        # grpcurl also needs the file descriptors behind a service name:
        ask = reflection_pb2.ServerReflectionRequest(file_containing_symbol="flyteidl.service.AsyncAgentService")
        reply = next(iter(stub.ServerReflectionInfo(iter([ask]))))
        assert reply.file_descriptor_response.file_descriptor_proto


def test_metrics_are_scraped_over_http(served: tuple[int, int]) -> None:
    port, metrics_port = served
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = agent_pb2_grpc.AsyncAgentServiceStub(channel)
        created = stub.CreateTask(create_request("echo", inputs={"x": 1}), timeout=5)
        stub.GetTask(get_request("echo", created.resource_meta), timeout=5)
        with pytest.raises(grpc.RpcError):
            stub.GetTask(get_request("nope", b"{}"), timeout=5)
        agent_pb2_grpc.AgentMetadataServiceStub(channel).ListAgents(agent_pb2.ListAgentsRequest(), timeout=5)
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    assert 'flyte_connector_requests_success_total{operation="create",task_type="echo"} 1.0' in text
    assert 'flyte_connector_requests_success_total{operation="get",task_type="echo"} 1.0' in text
    failure = 'flyte_connector_requests_failure_total{error_code="NOT_FOUND",operation="get",task_type="nope"} 1.0'
    assert failure in text
    assert 'flyte_connector_request_latency_seconds_bucket{le="+Inf",operation="get",task_type="echo"} 1.0' in text
    assert 'flyte_connector_input_literal_bytes_count{task_type="echo"} 1.0' in text
    assert 'flyte_connector_requests_success_total{operation="list_connectors",task_type=""} 1.0' in text
    assert 'flyte_connector_requests_in_flight{task_type="echo"} 0.0' in text


def test_sigterm_lets_in_flight_calls_finish_and_exits_0() -> None:
    metrics_port = free_port()
    proc, port = serve("--metrics-port", str(metrics_port), "--metrics-host", "127.0.0.1", "--grace", "20")
    meta = connectors.SlowMeta(seconds=2.0).encode()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, ThreadPoolExecutor(5) as pool:
        stub = agent_pb2_grpc.AsyncAgentServiceStub(channel)
        calls = [pool.submit(stub.GetTask, get_request("slow", meta), timeout=30) for _ in range(5)]
        # Wait until the server has all five in flight, then ask it to stop.
        gauge = 'flyte_connector_requests_in_flight{task_type="slow"} 5.0'
        deadline = time.monotonic() + 20
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        while gauge not in urllib.request.urlopen(url, timeout=5).read().decode():
            assert time.monotonic() < deadline, "calls never got in flight"
            time.sleep(0.05)
        proc.popen.send_signal(signal.SIGTERM)
        results = [c.result() for c in calls]
    assert [r.resource.phase for r in results] == [Phase.SUCCEEDED] * 5
    assert proc.wait(30) == 0
    assert proc.lines[-1] == "stopped"
    # Stopped for real: nothing answers on the port any more.
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, pytest.raises(grpc.RpcError) as info:
        agent_pb2_grpc.AgentMetadataServiceStub(channel).ListAgents(agent_pb2.ListAgentsRequest(), timeout=2)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_strict_refuses_to_start_when_a_module_fails() -> None:
    proc = start("serve", "-m", MODULE, "-m", "no_such_module_xyz", "--no-entry-points", "--port", "0", "--strict")
    assert proc.wait(30) != 0
    assert not any("listening on" in line for line in proc.lines)


def test_list_reports_connectors_and_failures_as_json() -> None:
    proc = start("list", "-m", MODULE, "-m", "no_such_module_xyz", "--no-entry-points", "--json")
    assert proc.wait(30) == 0
    data = json.loads("\n".join(proc.lines))
    assert [(c["name"], c["task_type"], c["is_sync"]) for c in data["connectors"]] == [
        ("Slow Connector", "slow", False),
        ("Echo Connector", "echo", False),
        ("Adder", "adder", True),
    ]
    assert data["connectors"][0]["methods"] == {"create": "async def", "get": "async def", "delete": "async def"}
    assert data["connectors"][0]["source"] == f"module {MODULE}"
    assert "module no_such_module_xyz" in data["failures"]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()]


def test_workers_share_the_port_and_a_crashed_worker_is_restarted() -> None:
    proc, port = serve("--workers", "2", "--metrics-port", "0")
    proc.wait_for_line(r"^worker 0 listening on")
    proc.wait_for_line(r"^worker 1 listening on")
    workers = _children(proc.popen.pid)
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    proc.wait_for_line(r"^worker \d listening on", count=3)  # the replacement
    assert len(_children(proc.popen.pid)) == 2
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        listed = agent_pb2_grpc.AgentMetadataServiceStub(channel).ListAgents(agent_pb2.ListAgentsRequest(), timeout=5)
    assert {a.name for a in listed.agents} == {"Slow Connector", "Echo Connector", "Adder"}
    assert proc.stop() == 0
