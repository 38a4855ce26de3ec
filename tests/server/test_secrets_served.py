"""Secrets against a real ``flyteconnect serve`` process, as a hostile caller would try them (issue 16 items 1, 4).

The server runs with the default entry points (the built-in webhook), ``secret_connectors.py`` (a connector that
mishandles secrets and paths), a real secret file, a real secret variable and a real variable that is not a secret,
in a working directory of its own, logging to a file. ``FLYTE_SECRETS_ENV_PREFIX`` is set empty, which must not
open the whole environment to ``{secrets.X}``. A real HTTP listener on loopback (allowed by the egress policy,
so only the secret rules stand between a template and it) records everything it receives.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.service import agent_pb2_grpc
from flyteidl2.connector import connector_pb2, service_pb2_grpc
from flyteidl2.core import security_pb2, tasks_pb2
from google.protobuf import json_format, struct_pb2

from flyteconnect import Phase

HERE = Path(__file__).parent
MODULE = str(HERE / "secret_connectors.py")
SERVE = [sys.executable, "-m", "flyteconnect", "serve"]  # entry points on: the built-in webhook is served
FILE_SECRET = "file-secret-Zq81xKv"  # /<secrets dir>/api_token
ENV_SECRET = "env-secret-Pw29aaT"  # $_FSEC_ENV_TOKEN
NOT_A_SECRET = "db-password-Hh62nQ"  # $DB_PASSWORD: the server's environment, not one of its secrets
CONNECTION_SECRET = "connection-secret-Mm55rY"
PASSWD_MARKER = "root:"  # the first line of every /etc/passwd


@dataclass
class Listener:
    """A real HTTP server on loopback that records each request's path and body."""

    url: str = ""
    received: list[str] = field(default_factory=list)


@dataclass
class Served:
    port: int
    cwd: Path
    log: Path
    listener: Listener

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            content = self.log_text()
            if text in content:
                return content
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not in the server log:\n{self.log_text()}")


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    state = Listener()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            state.received.append(self.path + " " + self.rfile.read(length).decode(errors="replace"))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, listener: Listener) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("secrets-served")
    cwd, secrets = root / "server-cwd", root / "mounted-secrets"
    cwd.mkdir()
    secrets.mkdir()
    (secrets / "api_token").write_text(FILE_SECRET + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("_FSEC_", "FLYTE_SECRETS_"))}
    env.update(
        PYTHONUNBUFFERED="1",
        FLYTE_SECRETS_DEFAULT_DIR=str(secrets),
        _FSEC_ENV_TOKEN=ENV_SECRET,
        DB_PASSWORD=NOT_A_SECRET,
        FLYTE_SECRETS_ENV_PREFIX="",  # empty: must not make every variable a secret
        FLYTECONNECT_EGRESS_ALLOW="127.0.0.1/32",
    )
    log = root / "server.log"
    with log.open("w") as stderr:
        popen = subprocess.Popen(
            [*SERVE, "-m", MODULE, "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0", "--protocol", "v1,v2"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
            cwd=str(cwd),
        )
    assert popen.stdout is not None
    port = 0
    for line in popen.stdout:  # blocks until the server prints its address (or exits)
        if line.startswith("listening on 127.0.0.1:"):
            port = int(line.rsplit(":", 1)[1])
            break
    assert port, f"server did not start:\n{log.read_text()}"
    drain = threading.Thread(target=popen.stdout.read, daemon=True)
    drain.start()
    try:
        yield Served(port, cwd, log, listener)
    finally:
        popen.terminate()
        code = popen.wait(30)
        drain.join(5)
        popen.stdout.close()
    assert code == 0


@pytest.fixture
def v1(served: Served) -> Iterator[agent_pb2_grpc.AsyncAgentServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        yield agent_pb2_grpc.AsyncAgentServiceStub(channel)


@pytest.fixture
def v2(served: Served) -> Iterator[service_pb2_grpc.AsyncConnectorServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        yield service_pb2_grpc.AsyncConnectorServiceStub(channel)


def webhook_create(url: str, data: dict[str, Any]) -> connector_pb2.CreateTaskRequest:
    """A Flyte 2 CreateTask for the built-in webhook, ``custom`` as flytekit's WebhookTask writes it."""
    custom = {"url": url, "method": "POST", "headers": {}, "data": data, "show_data": False, "show_url": False}
    return connector_pb2.CreateTaskRequest(
        template=tasks_pb2.TaskTemplate(type="webhook", custom=json_format.ParseDict(custom, struct_pb2.Struct())),
        output_prefix="s3://bucket/out",
    )


def webhook_result(v2: service_pb2_grpc.AsyncConnectorServiceStub, created: Any) -> connector_pb2.Resource:
    """The sync webhook's Resource, read back through GetTask from the CreateTask envelope."""
    category = connector_pb2.TaskCategory(name="webhook", version=0)
    reply = v2.GetTask(connector_pb2.GetTaskRequest(resource_meta=created.resource_meta, task_category=category))
    return reply.resource


def leaky_get_v1(v1: agent_pb2_grpc.AsyncAgentServiceStub, how: str) -> grpc.RpcError | agent_pb2.GetTaskResponse:
    request = agent_pb2.GetTaskRequest(
        task_category=agent_pb2.TaskCategory(name="leaky", version=0), resource_meta=json.dumps({"how": how}).encode()
    )
    try:
        return v1.GetTask(request, timeout=10)
    except grpc.RpcError as e:
        return e


# ------------------------------------------------------------------------------------------------ secret names


@pytest.mark.parametrize(
    "key",
    [
        "/etc/passwd",
        "../../../../etc/passwd",
        "api_token/../../../../etc/passwd",
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
        "..\\..\\etc\\passwd",
        "..",
    ],
)
def test_webhook_secret_that_is_a_path_is_invalid_argument_and_nothing_is_sent(
    served: Served, v2: service_pb2_grpc.AsyncConnectorServiceStub, key: str
) -> None:
    before = len(served.listener.received)
    with pytest.raises(grpc.RpcError) as info:
        v2.CreateTask(webhook_create(served.listener.url + "/hook", {"leak": f"{{secrets.{key}}}"}), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = info.value.details()
    assert f"invalid secret key {key!r}" in details
    assert PASSWD_MARKER not in details and str(served.cwd) not in details
    assert served.listener.received[before:] == []  # never contacted


def test_webhook_secret_reaches_the_listener_only_by_its_name(
    served: Served, v2: service_pb2_grpc.AsyncConnectorServiceStub
) -> None:
    """The control for the refusals above: a secret named properly is sent, and the listener is reachable."""
    created = v2.CreateTask(
        webhook_create(served.listener.url + "/named", {"file": "{secrets.api_token}", "env": "{secrets.env_token}"}),
        timeout=10,
    )
    resource = webhook_result(v2, created)
    assert resource.phase == Phase.SUCCEEDED, resource.message
    sent = [r for r in served.listener.received if r.startswith("/named ")]
    assert len(sent) == 1 and FILE_SECRET in sent[0] and ENV_SECRET in sent[0]
    assert FILE_SECRET not in str(resource) and ENV_SECRET not in str(resource)


def test_webhook_template_cannot_read_an_environment_variable_that_is_not_a_secret(
    served: Served, v2: service_pb2_grpc.AsyncConnectorServiceStub
) -> None:
    created = v2.CreateTask(webhook_create(served.listener.url + "/env", {"x": "{secrets.DB_PASSWORD}"}), timeout=10)
    resource = webhook_result(v2, created)
    assert resource.phase == Phase.FAILED
    assert "secret 'DB_PASSWORD' not found" in resource.message and "$_FSEC_DB_PASSWORD" in resource.message
    assert NOT_A_SECRET not in resource.message
    assert str(served.cwd.parent) not in resource.message  # nor where the server looked on disk
    assert not [r for r in served.listener.received if r.startswith("/env ")]


def test_connection_secret_key_that_is_a_path_is_invalid_argument(
    v2: service_pb2_grpc.AsyncConnectorServiceStub,
) -> None:
    request = connector_pb2.GetTaskRequest(
        task_category=connector_pb2.TaskCategory(name="leaky", version=0),
        resource_meta=b'{"how": "message"}',
        connection=security_pb2.Connection(secrets={"../api_token": "x"}),
    )
    with pytest.raises(grpc.RpcError) as info:
        v2.GetTask(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "invalid secret key '../api_token'" in info.value.details()


# --------------------------------------------------------------------------------------------------- redaction


@pytest.mark.parametrize(("how", "secret"), [("raise_file", FILE_SECRET), ("raise_env", ENV_SECRET)])
def test_error_carrying_a_secret_shows_stars_to_the_caller_and_in_the_log(
    served: Served, v1: agent_pb2_grpc.AsyncAgentServiceStub, how: str, secret: str
) -> None:
    error = leaky_get_v1(v1, how)
    assert isinstance(error, grpc.RpcError)
    assert error.code() == grpc.StatusCode.INTERNAL
    assert "RuntimeError: token=***" in error.details() and secret not in error.details()
    log = served.wait_for_log("RuntimeError: token=***")
    assert secret not in log
    assert 'raise RuntimeError(f"token={token}")' in log  # the traceback is there, only the value is masked


def test_resource_message_carrying_a_secret_shows_stars(v1: agent_pb2_grpc.AsyncAgentServiceStub) -> None:
    reply = leaky_get_v1(v1, "message")
    assert isinstance(reply, agent_pb2.GetTaskResponse)
    assert reply.resource.phase == Phase.RUNNING
    assert reply.resource.message == "polling with ***"


def test_a_connector_logging_a_secret_leaves_stars_in_the_log(
    served: Served, v1: agent_pb2_grpc.AsyncAgentServiceStub
) -> None:
    reply = leaky_get_v1(v1, "log")
    assert isinstance(reply, agent_pb2.GetTaskResponse) and reply.resource.phase == Phase.SUCCEEDED
    log = served.wait_for_log("calling the API with token ***")
    assert FILE_SECRET not in log


def test_flyte2_connection_secret_is_masked_in_error_details(
    served: Served, v2: service_pb2_grpc.AsyncConnectorServiceStub
) -> None:
    request = connector_pb2.GetTaskRequest(
        task_category=connector_pb2.TaskCategory(name="leaky", version=0),
        resource_meta=b'{"how": "connection"}',
        connection=security_pb2.Connection(secrets={"conn_key": CONNECTION_SECRET}),
    )
    with pytest.raises(grpc.RpcError) as info:
        v2.GetTask(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "key=***" in info.value.details() and CONNECTION_SECRET not in info.value.details()
    assert CONNECTION_SECRET not in served.wait_for_log("RuntimeError: key=***")


# ---------------------------------------------------------------------------------------------- server paths


def test_error_carrying_the_working_directory_does_not_leak_it(
    served: Served, v1: agent_pb2_grpc.AsyncAgentServiceStub
) -> None:
    error = leaky_get_v1(v1, "cwd")
    assert isinstance(error, grpc.RpcError)
    details = error.details()
    assert "<cwd>/inputs/missing.csv" in details
    assert str(served.cwd) not in details and str(served.cwd.parent) not in details
    # The server log keeps the path: the operator needs it.
    assert str(served.cwd / "inputs" / "missing.csv") in served.wait_for_log("missing.csv")


def test_error_carrying_a_path_of_the_servers_own_files_does_not_leak_it(
    served: Served, v1: agent_pb2_grpc.AsyncAgentServiceStub
) -> None:
    error = leaky_get_v1(v1, "own_file")
    assert isinstance(error, grpc.RpcError)
    details = error.details()
    assert "no-such-settings.toml" in details
    assert str(HERE) not in details and str(HERE.parent.parent) not in details
