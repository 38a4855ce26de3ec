"""Running flyteconnect and flytekit servers of the compat virtualenv from tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from flyteidl.admin import agent_pb2
from flyteidl.service import agent_pb2_grpc

from support import free_port

ROOT = Path(__file__).resolve().parents[2]
"""This checkout."""

PYTHON = sys.executable
"""The compat virtualenv's interpreter (the suite runs in it)."""

BIN = Path(sys.executable).parent


def compat_env(**extra: str) -> dict[str, str]:
    """The environment of a subprocess: this checkout's sources first, no proxies, quiet flytekit."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    paths = [str(ROOT / "src"), str(ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("FLYTE_SDK_LOGGING_LEVEL", "40")  # flytekit's logger: errors only
    env.update(extra)
    return env


@dataclass
class Served:
    """A server subprocess answering on ``address``; its output goes to ``log``."""

    process: subprocess.Popen[bytes]
    address: str
    log: Path
    metrics_port: int | None = None

    def output(self) -> str:
        """What the server printed so far."""
        return self.log.read_text(errors="replace")

    def list_agents(self) -> list[agent_pb2.Agent]:
        """ListAgents, as Propeller asks it."""
        with grpc.insecure_channel(self.address) as channel:
            stub = agent_pb2_grpc.AgentMetadataServiceStub(channel)
            return list(stub.ListAgents(agent_pb2.ListAgentsRequest(), timeout=30).agents)


@contextmanager
def serving(
    argv: Sequence[str], port: int, log: Path, env: dict[str, str], metrics_port: int | None = None
) -> Iterator[Served]:
    """Run ``argv`` (a server listening on ``port``) until ListAgents answers; stop it on exit."""
    timeout = 90.0  # importing flytekit with every plugin (airflow's among them) takes ~7 s on this machine
    with log.open("wb") as out:
        process = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.parent)
    served = Served(process, f"127.0.0.1:{port}", log, metrics_port)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited with {process.returncode}:\n{served.output()[-4000:]}")
            try:
                served.list_agents()
                break
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{argv[0]} did not answer in {timeout}s:\n{served.output()[-4000:]}") from None
                time.sleep(0.2)
        yield served
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def flyteconnect_serve(log: Path, env: dict[str, str], *args: str) -> AbstractContextManager[Served]:
    """``flyteconnect serve ARGS`` on free loopback ports (gRPC and metrics)."""
    port, metrics = free_port(), free_port()
    argv = [str(BIN / "flyteconnect"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--metrics-host", "127.0.0.1", "--metrics-port", str(metrics)]
    return serving([*argv, *args], port, log, env, metrics)


def pyflyte_serve(log: Path, env: dict[str, str], *modules: str) -> AbstractContextManager[Served]:
    """flytekit's own ``pyflyte serve connector`` on a free port (it listens on every interface)."""
    port = free_port()
    argv = [str(BIN / "pyflyte"), "serve", "connector", "--port", str(port), "--prometheus_port", str(free_port())]
    for module in modules:
        argv += ["--modules", module]
    return serving(argv, port, log, env)


def categories(agents: Sequence[agent_pb2.Agent]) -> set[tuple[str, str, int, bool]]:
    """(connector name, task type, version, is_sync) of every category listed."""
    return {(a.name, c.name, c.version, a.is_sync) for a in agents for c in a.supported_task_categories}
