"""The pod's command, run for real: kubelet's gRPC probe gets SERVING, the scrape path answers, SIGTERM drains."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from deploy_helpers import ROOT, Manifest, mebibytes, parse_dockerfile
from grpc_health.v1 import health_pb2, health_pb2_grpc


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Pod:
    """The server process started as the Deployment starts it, on free loopback ports."""

    process: subprocess.Popen[str]
    grpc_port: int
    metrics_port: int


def resident_mib(pid: int) -> float:
    """A process's resident set size (VmRSS) in MiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def with_value(args: list[str], flag: str, value: str) -> list[str]:
    """``args`` with the value after ``flag`` replaced (the flag must be there)."""
    i = args.index(flag)
    return [*args[: i + 1], value, *args[i + 2 :]]


@pytest.fixture
def pod(container: Manifest) -> Iterator[Pod]:
    """ENTRYPOINT (from the Dockerfile) + args (from the Deployment), ports swapped for free ones."""
    entrypoint = parse_dockerfile((ROOT / "Dockerfile").read_text()).stages[-1].all("ENTRYPOINT")[0].exec_form()
    grpc_port, metrics_port = free_port(), free_port()
    args = with_value(with_value(container["args"], "--port", str(grpc_port)), "--metrics-port", str(metrics_port))
    executable = Path(sys.executable).parent / entrypoint[0]  # the console script of this virtualenv
    process = subprocess.Popen(
        [str(executable), *entrypoint[1:], *args, "--host", "127.0.0.1", "--metrics-host", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield Pod(process, grpc_port, metrics_port)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_probe_scrape_memory_and_drain(pod: Pod, container: Manifest) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{pod.grpc_port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=60)
        # what kubelet's `grpc: {port: 8000}` probe sends: Check with an empty service name
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

    with urllib.request.urlopen(f"http://127.0.0.1:{pod.metrics_port}/metrics", timeout=10) as response:
        assert response.status == 200
        assert b"flyte_connector_requests_success_total" in response.read()

    # the memory request covers the idle server's resident set, the limit leaves at least as much again
    rss_mib = resident_mib(pod.process.pid)
    resources = container["resources"]
    assert mebibytes(resources["requests"]["memory"]) >= rss_mib, rss_mib
    assert mebibytes(resources["limits"]["memory"]) >= 2 * rss_mib, rss_mib

    pod.process.send_signal(signal.SIGTERM)  # what Kubernetes sends after the preStop hook
    output, _ = pod.process.communicate(timeout=60)
    assert pod.process.returncode == 0, output
    assert "stopped" in output
