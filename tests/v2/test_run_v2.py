"""``flyteconnect run --server --protocol v2``: the local runner driving a server through flyteidl2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flyteconnect.cli.main import cli
from flyteconnect.errors import ConnectorNotFound
from flyteconnect.local import ConnectorTask
from flyteconnect.local.remote import connect
from flyteconnect.local.remote_v2 import FlyteIdlV2Client
from flyteconnect.local.runner import LocalRunner, PollSchedule
from flyteconnect.server.app import BackgroundServer, ConnectorServer, ServerConfig

from .conftest import SEEN, make_registry

ECHO = ConnectorTask("echo_task", "echo", inputs={"x": int}, outputs={"n": int, "s": str, "f": float, "ok": bool})
SYNC = ConnectorTask("sync_task", "sync_echo", inputs={"size": int}, outputs={"blob": str, "size": int})


def _runner(served: ConnectorServer, tmp_path: Path, **client: Any) -> LocalRunner:
    backend = (
        FlyteIdlV2Client(f"127.0.0.1:{served.port}", **client)
        if client
        else connect(f"127.0.0.1:{served.port}", protocol="v2")
    )
    return LocalRunner(backend=backend, raw_prefix=str(tmp_path), poll=PollSchedule(0.01, 1.0, 0.01), progress="none")


async def test_async_connector_through_flyte2(served: ConnectorServer, tmp_path: Path) -> None:
    result = await _runner(served, tmp_path).arun(ECHO, x=5)
    assert tuple(result) == (10, "x=5", 1.25, True)


async def test_sync_connector_through_flyte2(served: ConnectorServer, tmp_path: Path) -> None:
    result = await _runner(served, tmp_path).arun(SYNC, size=3)
    assert tuple(result) == ("yyy", 3)


async def test_connection_secrets_from_the_client(served: ConnectorServer, tmp_path: Path) -> None:
    await _runner(served, tmp_path, secrets={"token": "from-cli"}).arun(ECHO, x=1)
    assert SEEN[0]["token"] == "from-cli" and SEEN[0]["kwargs"] == {"token": "from-cli"}


async def test_unknown_task_type_is_connector_not_found(served: ConnectorServer, tmp_path: Path) -> None:
    task = ConnectorTask("nope", "nope", inputs={}, outputs={})
    with pytest.raises(ConnectorNotFound, match="serves no connector for nope_v0"):
        await _runner(served, tmp_path).arun(task)


def test_cli_run_with_protocol_v2(tmp_path: Path) -> None:
    module = tmp_path / "v2_tasks.py"
    module.write_text(
        "from flyteconnect.local import ConnectorTask\n"
        "echo = ConnectorTask('echo_task', 'echo', inputs={'x': int},\n"
        "                     outputs={'n': int, 's': str, 'f': float, 'ok': bool})\n"
    )
    config = ServerConfig(host="127.0.0.1", port=0, metrics_port=None, protocols=["v2"])
    with BackgroundServer(make_registry(), config) as server:
        out = CliRunner().invoke(
            cli,
            [
                "run",
                f"{module}:echo",
                "--x",
                "2",
                "--server",
                server.address,
                "--protocol",
                "v2",
                "--raw-prefix",
                str(tmp_path / "raw"),
                "--progress",
                "none",
                "--json",
                "--poll-interval",
                "0.01",
            ],
        )
    assert out.exit_code == 0, out.output
    assert '"n": 4' in out.output and '"s": "x=2"' in out.output
