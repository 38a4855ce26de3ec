"""Honest readiness and lifecycle edges of ``flyteconnect serve`` as real processes on loopback: what failed to load
stops the server (or, with --keep-going, shows in health), a stop signal during start-up exits 0, a busy metrics port
is an error naming it, workers die with their supervisor, and --workers serves one metrics endpoint."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.service import agent_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from support import free_port

from .test_serve import CLI, HERE, MODULE, Proc, serve

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def run_serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``flyteconnect serve ARGS`` expected to exit on its own: exit code and everything it printed."""
    argv = [*CLI, "serve", "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0", *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, cwd=str(HERE), env={**os.environ, **(env or {})}
    )


def health(port: int, service: str = "") -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(reply.status)


def listed(port: int) -> set[str]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = agent_pb2_grpc.AgentMetadataServiceStub(channel).ListAgents(agent_pb2.ListAgentsRequest(), timeout=5)
    return {a.name for a in reply.agents}


def test_a_module_that_fails_to_import_stops_the_server_saying_what_to_fix() -> None:
    done = run_serve("-m", MODULE, "-m", "sleep_conector.py", "--no-entry-points")
    assert done.returncode == 1
    assert (
        "error: module sleep_conector.py failed to load (ImportError: no such file: sleep_conector.py)" in done.stderr
    )
    assert "fix the module or the -m value" in done.stderr
    assert "--keep-going" in done.stderr
    assert "listening" not in done.stdout


def test_an_allow_list_entry_matching_nothing_stops_the_server_and_lists_what_exists() -> None:
    done = run_serve("-m", MODULE, "--no-entry-points", "--connector", "echo", "--connector", "nosuch")
    assert done.returncode == 1
    assert "--connector nosuch matches no connector" in done.stderr
    assert "(adder_v0, echo_v0, slow_v0)" in done.stderr
    assert "--connector echo" not in done.stderr  # the entry that matched is fine


def test_no_connector_at_all_stops_the_server() -> None:
    done = run_serve("--no-entry-points")
    assert done.returncode == 1
    assert "no connector to serve: name a module with -m" in done.stderr


def test_strict_and_keep_going_together_are_a_usage_error() -> None:
    done = run_serve("-m", MODULE, "--no-entry-points", "--strict", "--keep-going")
    assert done.returncode == 2
    assert "contradict" in done.stderr


def test_keep_going_serves_the_rest_and_health_reports_what_failed() -> None:
    proc, port = serve("-m", "sleep_conector.py", "--keep-going", "--metrics-port", "0")
    try:
        assert listed(port) == {"Slow Connector", "Echo Connector", "Adder"}
        assert health(port) == SERVING
        assert health(port, "flyteidl.service.AsyncAgentService") == SERVING
        assert health(port, "flyteconnect.Connectors") == NOT_SERVING
    finally:
        assert proc.stop() == 0


def test_keep_going_with_nothing_left_to_serve_is_not_ready() -> None:
    proc, port = serve("--connector", "nosuch", "--keep-going", "--metrics-port", "0")
    try:
        assert listed(port) == set()
        assert health(port) == NOT_SERVING
        assert health(port, "flyteconnect.Connectors") == NOT_SERVING
    finally:
        assert proc.stop() == 0


def test_everything_loaded_reports_the_connectors_service_serving() -> None:
    proc, port = serve("--metrics-port", "0")
    try:
        assert health(port, "flyteconnect.Connectors") == SERVING
    finally:
        assert proc.stop() == 0


@pytest.fixture
def broken_plugin(tmp_path: Path) -> dict[str, str]:
    """An installed distribution (a .dist-info on PYTHONPATH) whose connector entry point cannot import."""
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[flyteconnect.connectors]\nbroken = no_such_plugin_xyz:Connector\n")
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}


def test_a_failing_entry_point_plugin_is_reported_and_skipped(broken_plugin: dict[str, str]) -> None:
    argv = [*CLI, "serve", "-m", MODULE, "--connector", "echo", "--host", "127.0.0.1", "--port", "0"]
    popen = subprocess.Popen(
        [*argv, "--metrics-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=str(HERE),
        env={**os.environ, "PYTHONUNBUFFERED": "1", **broken_plugin},
    )
    proc = Proc(popen)
    try:
        port = int(proc.wait_for_line(r"^listening on 127\.0\.0\.1:(\d+)").group(1))
        assert any("failed to load entry point broken" in line for line in proc.lines)
        assert listed(port) == {"Echo Connector"}
        assert health(port) == SERVING
        assert health(port, "flyteconnect.Connectors") == NOT_SERVING
    finally:
        assert proc.stop() == 0


def test_strict_refuses_a_failing_entry_point_plugin(broken_plugin: dict[str, str]) -> None:
    done = run_serve("-m", MODULE, "--connector", "echo", "--strict", env=broken_plugin)
    assert done.returncode == 1
    assert "error: entry point broken = no_such_plugin_xyz:Connector failed to load" in done.stderr
    assert "serve without --strict" in done.stderr


def test_a_stop_signal_during_start_up_exits_0(tmp_path: Path) -> None:
    marker = tmp_path / "importing"
    module = tmp_path / "slow_to_import.py"
    module.write_text(
        "import os, time\n"
        f"open({str(marker)!r}, 'w').close()\n"
        "time.sleep(30)\n"  # a connector module that takes long to import (a big SDK)
    )
    argv = [*CLI, "serve", "-m", str(module), "--no-entry-points", "--port", "0", "--metrics-port", "0"]
    popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(tmp_path))
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert popen.poll() is None and time.monotonic() < deadline, "the module was never imported"
        time.sleep(0.02)
    popen.send_signal(signal.SIGTERM)
    out, err = popen.communicate(timeout=30)
    assert popen.returncode == 0, err
    assert "stopped before serving" in err
    assert "listening" not in out


def test_a_busy_metrics_port_stops_the_server_naming_the_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_serve("-m", MODULE, "--no-entry-points", "--metrics-port", str(port), "--metrics-host", "127.0.0.1")
        workers = run_serve(
            "-m", MODULE, "--no-entry-points", "--workers", "2", "--metrics-port", str(port), "--metrics-host",
            "127.0.0.1",
        )  # fmt: skip
    for result in (done, workers):
        assert result.returncode == 1
        assert f"cannot serve metrics on 127.0.0.1:{port} (--metrics-port {port})" in result.stderr
        assert "listening" not in result.stdout


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_workers_exit_when_their_supervisor_is_killed() -> None:
    proc, _port = serve("--workers", "2", "--metrics-port", "0")
    proc.wait_for_line(r"^worker 0 listening on")
    proc.wait_for_line(r"^worker 1 listening on")
    workers = _children(proc.popen.pid)
    assert len(workers) == 2
    proc.popen.kill()  # -9: the supervisor cannot forward anything
    proc.wait()
    deadline = time.monotonic() + 60
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)


def _scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if not line.startswith("#")
    }


def _metrics_dir(worker: int) -> Path:
    args = Path(f"/proc/{worker}/cmdline").read_text().split("\0")
    return Path(args[args.index("--metrics-dir") + 1])


def test_workers_share_one_metrics_endpoint_whose_counts_survive_a_replaced_worker() -> None:
    metrics_port = free_port()
    proc, port = serve("--workers", "2", "--metrics-port", str(metrics_port), "--metrics-host", "127.0.0.1")
    calls = 'flyte_connector_requests_success_total{operation="list_connectors",task_type=""}'
    try:
        proc.wait_for_line(r"^worker 1 listening on")
        assert not any(re_line.startswith("worker") and "metrics on" in re_line for re_line in proc.lines)
        workers = _children(proc.popen.pid)
        folder = _metrics_dir(workers[0])
        for _ in range(20):  # a new connection each: the kernel spreads them over both workers
            listed(port)
        deadline = time.monotonic() + 30
        while _scrape(metrics_port).get(calls) != 20.0:
            assert time.monotonic() < deadline, _scrape(metrics_port).get(calls)
            time.sleep(0.2)
        os.kill(workers[0], signal.SIGTERM)  # drains, writes its last snapshot, and is replaced
        proc.wait_for_line(r"^worker \d listening on", count=3)
        listed(port)
        deadline = time.monotonic() + 30
        while _scrape(metrics_port).get(calls) != 21.0:
            assert time.monotonic() < deadline, _scrape(metrics_port).get(calls)
            time.sleep(0.2)
        assert _scrape(metrics_port)['flyte_connector_requests_in_flight{task_type="echo"}'] == 0.0
        assert folder.is_dir()
    finally:
        assert proc.stop() == 0
    assert not folder.exists()  # the supervisor removes its folder on exit


def test_list_reports_an_allow_list_entry_that_matches_nothing() -> None:
    argv = [*CLI, "list", "-m", MODULE, "--no-entry-points", "--connector", "echo", "--connector", "nosuch"]
    shown = subprocess.run([*argv, "--json"], capture_output=True, text=True, timeout=60, cwd=str(HERE))
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["unmatched"] == ["nosuch"]
    strict = subprocess.run([*argv, "--strict"], capture_output=True, text=True, timeout=60, cwd=str(HERE))
    assert strict.returncode == 1
    assert "--connector nosuch matches no connector" in strict.stderr
