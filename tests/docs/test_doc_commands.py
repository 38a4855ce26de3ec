"""Shell commands in the docs stay true.

Every ``flyteconnect ...`` line in a shell block names a real subcommand and only options it has; the quickstart's
shell session (run locally, serve, list the services by reflection, run through the server) is executed for real.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import click
import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from test_docs import DOCS, code_blocks, pages

from flyteconnect.cli.main import cli
from support import free_port, wait_for_port

SHELL = {"bash", "sh", "shell", "console"}
FLYTECONNECT = Path(sys.executable).with_name("flyteconnect")


def doc_commands() -> list[tuple[str, list[str]]]:
    out = []
    for page in [*pages(), DOCS.parent / "README.md"]:
        for block in code_blocks(page.read_text()):
            if block.lang not in SHELL:
                continue
            for line in block.code.splitlines():
                line = line.split(" #", 1)[0].strip().rstrip("&").strip()
                if line.startswith("flyteconnect "):
                    out.append((f"{page.relative_to(DOCS.parent)}: {line}", shlex.split(line)[1:]))
    return out


def known_options(command: click.Command) -> set[str]:
    names = {"--help", "-h"}
    for param in command.params:
        if isinstance(param, click.Option):
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


@pytest.mark.parametrize(("where", "args"), doc_commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_documented_command_lines_use_real_options(where: str, args: list[str]) -> None:
    ctx = click.Context(cli)
    command = cli.get_command(ctx, args[0])
    assert command is not None, f"{where}: no subcommand {args[0]!r}"
    if command.name == "run":
        # `run` also takes the task's own inputs as --name value: only check the options before the target.
        target = next((i for i, a in enumerate(args[1:], 1) if ":" in a and not a.startswith("-")), len(args))
        args = args[:target]
    unknown = [a.split("=")[0] for a in args[1:] if a.startswith("-") and a.split("=")[0] not in known_options(command)]
    assert not unknown, f"{where}: unknown option(s) {unknown}"


def test_doc_commands_were_found() -> None:
    assert len(doc_commands()) >= 5  # the parser above must not silently find nothing


def _quickstart() -> tuple[str, list[str]]:
    blocks = code_blocks((DOCS / "quickstart.md").read_text())
    connector = next(b.code for b in blocks if b.lang == "python" and "class SleepConnector" in b.code)
    shell = [line for b in blocks if b.lang in SHELL for line in b.code.splitlines() if line.strip()]
    return connector, [line.split(" #", 1)[0].strip() for line in shell]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLYTECONNECT), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "FLYTECONNECT_RAW_PREFIX": str(cwd / "raw"), "COLUMNS": "200"},
    )


def _reflection_services(port: int) -> list[str]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        (reply,) = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        return sorted(s.name for s in reply.list_services_response.service)


def test_quickstart_shell_session_runs(tmp_path: Path) -> None:
    connector, commands = _quickstart()
    (tmp_path / "sleep_connector.py").write_text(connector)
    local_run = next(c for c in commands if c.startswith("flyteconnect run ") and "--server" not in c)
    serve = next(c for c in commands if c.startswith("flyteconnect serve"))
    remote_run = next(c for c in commands if c.startswith("flyteconnect run --server"))
    assert any(c.startswith("grpcurl -plaintext localhost:8000 list") for c in commands)

    proc = _run(shlex.split(local_run)[1:], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r'"slept":\s*true', proc.stdout), proc.stdout

    port = free_port()
    server = subprocess.Popen(
        [str(FLYTECONNECT), *shlex.split(serve)[1:], "--port", str(port), "--metrics-port", "0", "--no-entry-points"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        wait_for_port(port, timeout=30)
        services = _reflection_services(port)  # what `grpcurl ... list` prints
        assert "flyteidl.service.AsyncAgentService" in services
        assert "flyteidl2.connector.AsyncConnectorService" in services
        args = shlex.split(remote_run.replace("localhost:8000", f"127.0.0.1:{port}"))[1:]
        proc = _run(args, tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert re.search(r'"slept":\s*true', proc.stdout), proc.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=30)
    assert server.returncode == 0, out
    assert "Sleep Connector" in out


def _readme_use_it() -> tuple[str, list[str]]:
    text = (DOCS.parent / "README.md").read_text()
    connector = next(b.code for b in code_blocks(text) if b.lang == "python" and "class SleepConnector" in b.code)
    use_it = text.split("## Use it", 1)[1].split("\n## ", 1)[0]
    shell = [line for b in code_blocks(use_it) if b.lang in SHELL for line in b.code.splitlines() if line.strip()]
    return connector, [line.split(" #", 1)[0].strip() for line in shell]


def test_readme_use_it_session_runs_as_written(tmp_path: Path) -> None:
    """The README's complete example saved as sleep_connector.py, then every command of "Use it", in order."""
    connector, commands = _readme_use_it()
    (tmp_path / "sleep_connector.py").write_text(connector)
    port = free_port()
    server = None
    ran = []
    try:
        for command in commands:
            args = shlex.split(command.rstrip("&").strip().replace("localhost:8000", f"127.0.0.1:{port}"))[1:]
            if args[0] == "serve":
                args += ["--port", str(port), "--metrics-port", "0"]
                server = subprocess.Popen(
                    [str(FLYTECONNECT), *args],
                    cwd=tmp_path,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                wait_for_port(port, timeout=30)
            else:
                proc = _run(args, tmp_path)
                assert proc.returncode == 0, f"{command}:\n{proc.stdout}\n{proc.stderr}"
                if args[0] == "run":
                    assert re.search(r'"slept":\s*true', proc.stdout), proc.stdout
                if args[0] == "list":
                    assert "Sleep Connector" in proc.stdout and "module sleep_connector.py" in proc.stdout
                if args[0] == "check":
                    assert " 0 failed" in proc.stdout and "run" in proc.stdout, proc.stdout
            ran.append(args[0])
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.communicate(timeout=30)
    assert ran.count("run") == 2 and {"check", "list", "serve"} <= set(ran), ran
