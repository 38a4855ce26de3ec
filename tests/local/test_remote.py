"""``--server`` mode: the runner drives a real flyteconnect server over gRPC, as Propeller would."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cli_tasks
import pytest
from click.testing import CliRunner
from local_helpers import LOG, EchoConnector, JobConnector, ProcessConnector, echo_task, job_task, proc_task

from flyteconnect import ConnectorError, ConnectorNotFound, ConnectorRegistry, Phase
from flyteconnect.cli.main import cli
from flyteconnect.local import ConnectorTask, LocalRunner, PollSchedule, TaskFailed, TaskTimeout
from flyteconnect.local.remote import FlyteIdlV1Client, connect
from flyteconnect.server.app import BackgroundServer, ServerConfig, serve_in_thread
from support import free_port

FAST = PollSchedule(0.02, 1.5, 0.1)


class Explodes(EchoConnector):
    task_type_name = "explodes"
    name = "Explodes"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[BackgroundServer, dict[str, Any]]]:
    connectors = {"job": JobConnector(), "echo": EchoConnector(), "proc": ProcessConnector(), "boom": Explodes()}
    config = ServerConfig(host="127.0.0.1", port=0, metrics_port=None, protocols=["v1"], grace=1)
    server = serve_in_thread(ConnectorRegistry(connectors.values()), config)
    yield server, connectors
    server.stop()


def remote_runner(server: BackgroundServer, **kwargs: Any) -> LocalRunner:
    return LocalRunner(backend=connect(server.address), poll=FAST, progress="none", **kwargs)


def test_async_task_through_create_and_get(served: Any) -> None:
    server, connectors = served
    result = remote_runner(server).run_result(job_task("remote_job"), x=8, seconds=0.05, outcome="SUCCEEDED")
    assert result.value == 16
    assert [(link.name, link.uri) for link in result.log_links] == [(LOG.name, LOG.uri)]
    created = connectors["job"].calls.create[-1]
    assert created["output_prefix"] == result.output_prefix
    assert created["template"].id.name == "remote_job"
    assert created["metadata"].task_execution_id.node_execution_id.execution_id.name == result.execution_id


def test_sync_task_through_execute_task_sync(served: Any) -> None:
    server, connectors = served
    out = remote_runner(server).run(echo_task(), who="grace", outcome="SUCCEEDED")
    assert (out.greeting, out.n) == ("hello grace", 5)
    assert connectors["echo"].calls[-1]["values"] == {"who": "grace", "outcome": "SUCCEEDED"}


def test_failure_phase_from_the_server(served: Any) -> None:
    server, _ = served
    with pytest.raises(TaskFailed) as info:
        remote_runner(server).run(job_task(), x=1, seconds=0, outcome="FAILED")
    assert info.value.phase == Phase.FAILED and info.value.message == "job ended failed"
    assert info.value.log_links[0].uri == LOG.uri


def test_timeout_sends_delete_task_once(served: Any) -> None:
    server, connectors = served
    before = list(connectors["job"].calls.delete)
    with pytest.raises(TaskTimeout):
        remote_runner(server, timeout=0.3).run(job_task(), x=1, seconds=60, outcome="SUCCEEDED")
    new = connectors["job"].calls.delete[len(before) :]
    assert new == [f"j{len(connectors['job'].calls.create)}"]


def test_outputs_pb_written_by_a_served_connector(served: Any, tmp_path: Any) -> None:
    server, _ = served
    out = remote_runner(server, raw_prefix=str(tmp_path)).run(proc_task(), x=3, seconds=0)
    assert out == (6, "x=3")


def test_unknown_task_type_names_the_server(served: Any) -> None:
    server, _ = served
    with pytest.raises(ConnectorNotFound, match=rf"server at {server.address} serves no connector for nope_v0"):
        remote_runner(server).run(ConnectorTask("n", "nope"))


def test_connector_error_on_the_server_becomes_connector_error(served: Any) -> None:
    server, _ = served
    task = ConnectorTask("b", "explodes", inputs={"who": str, "outcome": str}, outputs={"greeting": str})
    with pytest.raises(ConnectorError, match="echo exploded") as info:
        remote_runner(server).run(task, who="x", outcome="RAISE")
    assert info.value.code  # the gRPC status name


def test_one_backend_serves_several_sync_runs(served: Any) -> None:
    server, _ = served
    backend = connect(server.address)
    assert isinstance(backend, FlyteIdlV1Client)
    runner = LocalRunner(backend=backend, poll=FAST, progress="none")
    assert [runner.run(job_task(), x=i, seconds=0, outcome="SUCCEEDED") for i in range(3)] == [0, 2, 4]


def test_unreachable_server_is_a_transient_error() -> None:
    from flyteconnect import TransientError

    runner = LocalRunner(backend=FlyteIdlV1Client(f"127.0.0.1:{free_port()}", rpc_timeout=2), progress="none")
    with pytest.raises(TransientError, match="ListAgents"):
        runner.run(job_task(), x=1, seconds=0, outcome="SUCCEEDED")


def test_unknown_protocol_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown protocol 'v9'"):
        connect("127.0.0.1:1", protocol="v9")


def test_cli_over_mutual_tls(tmp_path: Any) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    req = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert)]
    subject = ["-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    subprocess.run(
        [*req, *subject],
        check=True,
        capture_output=True,
    )
    config = ServerConfig(
        host="127.0.0.1",
        port=0,
        metrics_port=None,
        protocols=["v1"],
        grace=1,
        tls_cert=str(cert),
        tls_key=str(key),
        tls_client_ca=str(cert),  # the same self-signed certificate is the client's identity
    )
    tasks = str(Path(__file__).parent / "cli_tasks.py")
    server = serve_in_thread(ConnectorRegistry([cli_tasks.Describe()]), config)
    try:
        args = ["run", f"{tasks}:describe", "--server", server.address, "--progress", "none"]
        inputs = ["--x", "2", "--ratio", "1", "--tags", "[]", "--flag", "no"]
        tls = ["--tls-ca", str(cert), "--tls-cert", str(cert), "--tls-key", str(key)]
        ok = CliRunner().invoke(cli, [*args, *tls, *inputs])
        assert ok.exit_code == 0, ok.output
        assert json.loads(ok.stdout) == {"y": 4, "summary": "1.0||False"}
        # Without a client certificate the server refuses the handshake: a clear error, exit 1.
        refused = CliRunner().invoke(cli, [*args, "--tls-ca", str(cert), *inputs])
        assert refused.exit_code == 4 and "UNAVAILABLE" in refused.stderr  # a server error
    finally:
        server.stop()
