"""What serve, list and check tell a connector author (issue 21): a connector defined but never registered, a class
registered instead of an instance, a port already in use, output for tools (pipes, --json, JSON logs)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flyteconnect.server.loading import load_connectors

FLYTECONNECT = str(Path(sys.executable).with_name("flyteconnect"))

NOREG = textwrap.dedent(
    """
    from dataclasses import dataclass

    from flyteconnect import AsyncConnectorBase, Phase, Resource, ResourceMeta


    @dataclass
    class Job(ResourceMeta):
        job_id: str


    class Forgotten(AsyncConnectorBase[Job]):
        name = "Forgotten"
        task_type_name = "forgotten"
        metadata_type = Job

        async def create(self, task_template, output_prefix, inputs=None, **kwargs):
            return Job("1")

        async def get(self, resource_meta, **kwargs):
            return Resource(phase=Phase.SUCCEEDED)

        async def delete(self, resource_meta, **kwargs):
            pass
    """
)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "noreg.py").write_text(NOREG)
    (tmp_path / "classreg.py").write_text(
        "from flyteconnect import ConnectorRegistry\n"
        "from noreg import Forgotten\n"
        "ConnectorRegistry.register(Forgotten)\n"
    )
    return tmp_path


def cli(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FLYTECONNECT, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ}
    )


def serve_briefly(cwd: Path, *args: str) -> tuple[str, str]:
    """Start serve, wait for its readiness line, stop it; (stdout, stderr)."""
    proc = subprocess.Popen(
        [FLYTECONNECT, "serve", "--port", "0", "--metrics-port", "0", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    announced = proc.stderr if "json" in args else proc.stdout  # JSON logs announce on stderr
    lines = []
    with proc.stdout, proc.stderr:
        while not lines or "listening on" not in lines[-1]:
            lines.append(announced.readline())
            assert lines[-1], "serve exited before listening"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        out, err = proc.stdout.read(), proc.stderr.read()  # the rest (readline buffered some of it)
    if "json" in args:
        return out, "".join(lines) + err
    return "".join(lines) + out, err


def test_a_module_defining_connectors_but_registering_none_is_reported(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)
    result = load_connectors(["noreg.py"], entry_points=False, include_default=False)
    (warning,) = result.warnings.values()
    assert "defines Forgotten but registers no instance" in warning
    assert "ConnectorRegistry.register(Forgotten())" in warning

    _, err = serve_briefly(workdir, "-m", "noreg.py")  # serving the built-ins, and saying what was left out
    assert "warning: module noreg.py defines Forgotten but registers no instance" in err
    alone = cli(workdir, "serve", "-m", "noreg.py", "--no-entry-points", "--port", "0", "--metrics-port", "0")
    assert alone.returncode == 1
    assert "error: no connector to serve: module noreg.py defines Forgotten but registers no instance" in alone.stderr

    listed = cli(workdir, "list", "-m", "noreg.py", "--no-entry-points", "--json")
    assert json.loads(listed.stdout)["warnings"] == {"module noreg.py": warning}
    plain = cli(workdir, "list", "-m", "noreg.py", "--no-entry-points")
    assert "ConnectorRegistry.register(Forgotten())" in plain.stderr

    checked = cli(workdir, "check", "noreg.py", "--json")
    assert checked.returncode == 1, checked.stdout
    (registered,) = [r for r in json.loads(checked.stdout) if r["check"] == "registered"]
    assert registered["status"] == "fail" and "ConnectorRegistry.register(Forgotten())" in registered["detail"]


def test_registering_the_class_says_to_pass_an_instance(workdir: Path) -> None:
    listed = cli(workdir, "list", "-m", "classreg.py", "--no-entry-points", "--json")
    failure = json.loads(listed.stdout)["failures"]["module classreg.py"]
    assert failure == "TypeError: register an instance, not the class: ConnectorRegistry.register(Forgotten())"


def test_a_port_in_use_says_address_already_in_use(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = cli(tmp_path, "serve", "--host", "127.0.0.1", "--port", str(port), "--metrics-port", "0")
    assert proc.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in proc.stderr, proc.stderr
    assert "Error: Failed to bind" not in proc.stderr


def test_listening_line_says_when_bound_to_all_addresses(tmp_path: Path) -> None:
    out, _ = serve_briefly(tmp_path, "--no-entry-points", "--keep-going")
    line = next(line for line in out.splitlines() if "listening on" in line)
    assert line.startswith("listening on [::]:") and "(all addresses; locally 127.0.0.1:" in line


def test_json_log_format_prints_only_json(workdir: Path) -> None:
    out, err = serve_briefly(workdir, "-m", "noreg.py", "--log-format", "json")
    assert out == ""
    records = [json.loads(line) for line in err.splitlines() if line.strip()]  # every line is JSON
    messages = [r["message"] for r in records]
    assert any(m.startswith("listening on [::]:") for m in messages)
    assert "stopped" in messages
    assert any("defines Forgotten but registers no instance" in m for m in messages)


def test_list_in_a_pipe_prints_full_values() -> None:
    proc = subprocess.run(
        [FLYTECONNECT, "list"], capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "80"}
    )
    postgres = next(line for line in proc.stdout.splitlines() if "postgres_query" in line)
    assert "entry point postgres = flyteconnect.connectors.postgres:PostgresConnector" in postgres
    assert "┃" not in proc.stdout  # not the terminal table


def test_json_log_format_refusal_is_json_too(workdir: Path) -> None:
    proc = cli(workdir, "serve", "-m", "noreg.py", "--no-entry-points", "--log-format", "json", "--port", "0")
    assert proc.returncode == 1
    *records, last = proc.stderr.strip().splitlines()
    assert last.startswith("Error: not serving")  # click's own exit line
    levels = [json.loads(line)["level"] for line in records]  # everything before it is a JSON record
    assert "ERROR" in levels
