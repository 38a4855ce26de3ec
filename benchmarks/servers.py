"""Start the servers under test as subprocesses, time their startup, read their CPU and memory, stop them."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from flyteidl.service import agent_pb2_grpc

from benchmarks import payloads
from benchmarks.proc import cpu_seconds, pinned_to, rss_bytes

__all__ = [
    "ROOT",
    "RunningServer",
    "ServerSpec",
    "bare_spec",
    "flyteconnect_default_spec",
    "flyteconnect_spec",
    "flytekit_spec",
    "start",
]

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024


@dataclass(frozen=True)
class ServerSpec:
    """How to launch one server: a label and the command line for a given port."""

    label: str
    argv: Callable[[int], list[str]]
    env: dict[str, str] = field(default_factory=dict)
    description: str = ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bare_spec(pool_size: int) -> ServerSpec:
    """The bare grpc.aio servicer (benchmarks/bare_server.py)."""
    return ServerSpec(
        "bare",
        lambda port: [
            sys.executable,
            "-m",
            "benchmarks.bare_server",
            "--port",
            str(port),
            "--pool-size",
            str(pool_size),
        ],
        description="bare grpc.aio servicer, constant replies",
    )


def _launcher(src: Path | None) -> tuple[list[str], dict[str, str]]:
    """The command that runs ``flyteconnect`` (installed, or the sources under ``src``) and its environment."""
    if src is None:
        return [shutil.which("flyteconnect", path=str(Path(sys.executable).parent)) or "flyteconnect"], {}
    launcher = [sys.executable, "-c", "from flyteconnect.cli.main import main; main()"]
    return launcher, {"PYTHONPATH": os.pathsep.join([str(src), str(ROOT)])}


def flyteconnect_spec(
    workers: int = 1, label: str = "flyteconnect", extra: tuple[str, ...] = (), src: Path | None = None
) -> ServerSpec:
    """``flyteconnect serve`` with the benchmark connectors (benchmarks/connectors.py) and nothing else.

    ``src``: serve the flyteconnect sources under that folder instead of the installed package (``benchmarks.ab``).
    """
    launcher, env = _launcher(src)

    def argv(port: int) -> list[str]:
        return [
            *launcher,
            "serve",
            "--port",
            str(port),
            "--metrics-port",
            "0",
            "-m",
            str(ROOT / "benchmarks" / "connectors.py"),
            "--no-entry-points",
            "--workers",
            str(workers),
            "--log-level",
            "WARNING",
            *extra,
        ]

    origin = "" if src is None else f" from {src}"
    return ServerSpec(label, argv, env=env, description=f"flyteconnect serve --workers {workers}{origin}")


def flyteconnect_default_spec(label: str = "flyteconnect-default", src: Path | None = None) -> ServerSpec:
    """``flyteconnect serve`` as installed, with its defaults: entry points on, so the built-in connectors load.

    Measured for start-up and idle memory only (what loading the built-ins costs); ``--metrics-port 0`` only
    because several servers run side by side, ``--log-level WARNING`` as the other flyteconnect servers.
    """
    launcher, env = _launcher(src)

    def argv(port: int) -> list[str]:
        return [*launcher, "serve", "--port", str(port), "--metrics-port", "0", "--log-level", "WARNING"]

    return ServerSpec(label, argv, env=env, description="flyteconnect serve, default entry points (built-ins)")


def flytekit_spec(venv: Path) -> ServerSpec:
    """flytekit's ``pyflyte serve connector`` from ``venv`` with benchmarks/flytekit_connectors.py."""

    def argv(port: int) -> list[str]:
        return [
            str(venv / "bin" / "pyflyte"),
            "serve",
            "connector",
            "--port",
            str(port),
            "--prometheus_port",
            str(_free_port()),
            "--modules",
            "benchmarks.flytekit_connectors",
        ]

    # flytekit imports modules by name: the repository root must be the working directory and on the path.
    return ServerSpec(
        "flytekit",
        argv,
        env={"PYTHONPATH": str(ROOT), "FLYTE_SDK_LOGGING_LEVEL": "40"},
        description="flytekit pyflyte serve connector",
    )


@dataclass
class RunningServer:
    """A started server process."""

    spec: ServerSpec
    proc: subprocess.Popen[bytes]
    port: int
    startup_s: float
    log_path: Path

    @property
    def pid(self) -> int:
        """The server's (supervisor's) process id."""
        return self.proc.pid

    def url(self, path: str) -> str:
        """The h2load URL of a gRPC method path on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def cpu_seconds(self) -> float:
        """CPU seconds used by the server and its workers so far."""
        return cpu_seconds(self.pid)

    def rss_mib(self) -> float:
        """Resident memory of the server and its workers, MiB."""
        return rss_bytes(self.pid) / MiB

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class ServerStartError(RuntimeError):
    """The server exited or did not answer ListAgents in time."""


def _wait_for_list_agents(proc: subprocess.Popen[bytes], port: int, deadline: float, log_path: Path) -> None:
    # Poll the TCP port cheaply first: a gRPC channel to a closed port backs off for up to a second between retries.
    while True:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise ServerStartError(f"server exited with {proc.returncode} before answering:\n{tail}")
        if time.monotonic() > deadline:
            raise ServerStartError(f"no ListAgents answer on port {port} in time")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.002)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = agent_pb2_grpc.AgentMetadataServiceStub(channel)
        while True:
            try:
                stub.ListAgents(payloads.list_agents_request(), timeout=max(0.1, deadline - time.monotonic()))
                return
            except grpc.RpcError as e:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise ServerStartError(f"ListAgents on port {port} failed: {e.code()} {e.details()}") from None
                time.sleep(0.005)


_COMPILED = False


def _compile_sources() -> None:
    """Write the bytecode of this checkout's sources once, as a wheel or image install has it.

    An editable install run with PYTHONDONTWRITEBYTECODE=1 (as here) would otherwise compile flyteconnect on every
    server start and charge that to start-up; installed dependencies already ship their bytecode.
    """
    global _COMPILED
    if not _COMPILED:
        import compileall

        for folder in ("src", "benchmarks", "examples"):
            if (ROOT / folder).is_dir():
                compileall.compile_dir(str(ROOT / folder), quiet=1)
        _COMPILED = True


def start(spec: ServerSpec, log_dir: Path, timeout: float = 60.0, cpus: tuple[int, ...] | None = None) -> RunningServer:
    """Launch ``spec`` on a free port and return once it answered ListAgents; startup_s is spawn to first answer.

    ``cpus`` pins the server process to those CPUs (``--pin``).
    """
    _compile_sources()
    port = _free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{spec.label}-{port}.log"
    env = {**os.environ, **spec.env}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    with log_path.open("wb") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            spec.argv(port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=pinned_to(cpus)
        )
    try:
        _wait_for_list_agents(proc, port, time.monotonic() + timeout, log_path)
    except BaseException:
        proc.kill()
        proc.wait(5)
        raise
    return RunningServer(spec, proc, port, time.perf_counter() - t0, log_path)
