"""The webhook under the egress policy, on a real server on loopback, as a hostile caller would drive it.

A real HTTP listener on loopback stands for everything the server can reach and the caller must not: it is never
contacted, whatever spelling of its address a request uses, and every refusal is a terminal FAILED naming the egress
policy (a sync connector's create is its whole run, and Propeller would retry an error status). The webhook's HTTP
library loads only when a webhook is sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import pytest
from connector_helpers import free_port
from flyteidl.admin import agent_pb2
from flyteidl.service import agent_pb2_grpc

from flyteconnect import egress
from flyteconnect.connector import Phase
from flyteconnect.connectors.webhook import WebhookConnector
from flyteconnect.egress import EgressPolicy
from flyteconnect.local.task import ConnectorTask
from flyteconnect.testing import ConnectorServer, FakePropeller


class Listener:
    """A real HTTP server that must never be contacted; records whatever reaches it."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[str] = []
        requests = self.requests

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "6")
                self.end_headers()
                self.wfile.write(b"leaked")

            do_POST = do_GET

        self._httpd = ThreadingHTTPServer((host, 0), Handler)
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


@pytest.fixture(scope="module")
def connector_server() -> Iterator[ConnectorServer]:
    """The webhook on a real server with its metrics endpoint (the classic SSRF target) on loopback."""
    with ConnectorServer(WebhookConnector(), metrics=True) as server:
        yield server


@pytest.fixture(scope="module")
def never() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()


@pytest.fixture(autouse=True)
def default_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy a default ``flyteconnect serve`` runs with, whatever the environment says."""
    monkeypatch.setattr(egress, "_policy", EgressPolicy())


def webhook(url: str, **custom: Any) -> ConnectorTask:
    return ConnectorTask("ssrf", "webhook", outputs={"info": dict}, custom={"url": url, "method": "GET", **custom})


def refusal(result: Any, protocol: str) -> str:
    """The message of a webhook run checked to be refused: answered at once, terminal FAILED, nothing retried."""
    expected = ["ExecuteTaskSync"] if protocol == "v1" else ["CreateTask", "GetTask"]
    assert [c.method for c in result.calls if c.method not in ("ListAgents", "ListConnectors")] == expected
    assert all(c.ok for c in result.calls), result.calls
    assert result.phase == Phase.FAILED and not result.retryable, result
    assert result.message.startswith("failed to run the job: Webhook not sent: egress policy refused ")
    return str(result.message)


@pytest.mark.both_protocols
async def test_webhook_to_the_metrics_endpoint_is_refused(
    fake_propeller: FakePropeller, connector_server: ConnectorServer
) -> None:
    result = await fake_propeller.run(webhook(f"http://127.0.0.1:{connector_server.metrics_port}/metrics"))
    message = refusal(result, fake_propeller.protocol)
    assert "egress policy refused 127.0.0.1: 127.0.0.1, a loopback address" in message
    assert "--egress-allow" in message
    assert "flyteconnect_" not in message and not result.outputs  # none of the metrics page came back


@pytest.mark.both_protocols
@pytest.mark.parametrize(
    "host",
    [
        *("127.0.0.1", "localhost", "2130706433", "0x7f.1", "0x7f000001", "127.1", "[::ffff:127.0.0.1]"),
        *("[::ffff:7f00:1]", "0.0.0.0", "0", "[::]"),  # unspecified: Linux connects those to the local host
    ],
)
async def test_every_spelling_of_loopback_is_refused_and_never_contacted(
    fake_propeller: FakePropeller, never: Listener, host: str
) -> None:
    for method in ("GET", "POST"):
        result = await fake_propeller.run(webhook(f"http://{host}:{never.port}/x?token=t0k3n", method=method))
        assert "t0k3n" not in refusal(result, fake_propeller.protocol)
    assert never.requests == []


@pytest.mark.both_protocols
@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://10.0.0.1/", "http://[::1]/"]
)
async def test_metadata_and_private_addresses_are_refused_without_a_connection(
    fake_propeller: FakePropeller, url: str
) -> None:
    # Nothing listens there: a connection attempt would hang until its timeout; the refusal comes first, at once.
    refusal(await fake_propeller.run(webhook(url, retries=0, timeout_sec=30)), fake_propeller.protocol)


@pytest.mark.both_protocols
async def test_a_host_made_of_a_secret_is_refused_without_showing_it(
    fake_propeller: FakePropeller, never: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("_FSEC_INTERNAL_HOST", "127.0.0.1")  # a server secret, from the environment
    result = await fake_propeller.run(webhook(f"http://{{secrets.internal_host}}:{never.port}/"))
    message = refusal(result, fake_propeller.protocol)
    assert "egress policy refused ***: ***, a loopback address" in message
    assert "127.0.0.1" not in message and "127.0.0.1" not in str(result.calls)
    assert never.requests == []


async def test_forged_resource_meta_on_get_task_makes_no_request(
    connector_server: ConnectorServer, never: Listener
) -> None:
    """A sync connector's GetTask only reads back the envelope it was given: no URL in it is ever fetched."""
    from flyteidl2.connector import connector_pb2, service_pb2_grpc

    from flyteconnect.server.v2_convert import encode_envelope

    url = f"http://127.0.0.1:{never.port}/forged"
    category = connector_pb2.TaskCategory(name="webhook", version=0)
    forged = [
        json.dumps({"url": url, "method": "GET"}).encode(),  # what a create would have rendered
        encode_envelope(connector_pb2.Resource(phase=1, message=url)),  # a well-formed envelope naming the URL
    ]
    async with grpc.aio.insecure_channel(connector_server.address) as channel:
        v2 = service_pb2_grpc.AsyncConnectorServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await v2.GetTask(connector_pb2.GetTaskRequest(task_category=category, resource_meta=forged[0]), timeout=5)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        echoed = await v2.GetTask(connector_pb2.GetTaskRequest(task_category=category, resource_meta=forged[1]))
        assert echoed.resource.message == url  # the caller's own bytes, read back; nothing was fetched
        v1 = agent_pb2_grpc.AsyncAgentServiceStub(channel)
        for meta in forged:
            request = agent_pb2.GetTaskRequest(task_category=agent_pb2.TaskCategory(name="webhook"), resource_meta=meta)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await v1.GetTask(request, timeout=5)
            assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # sync: ExecuteTaskSync only
    assert never.requests == []


@pytest.mark.both_protocols
async def test_the_allow_list_opens_exactly_what_it_names(fake_propeller: FakePropeller, never: Listener) -> None:
    allowed = Listener("127.0.0.2")
    try:
        egress.configure(EgressPolicy.from_allow(["127.0.0.2/32"]))
        ok = await fake_propeller.run(webhook(f"http://127.0.0.2:{allowed.port}/open"))
        ok.assert_succeeded()
        assert ok.outputs["info"]["response_data"] == "leaked" and allowed.requests == ["/open"]
        refused = await fake_propeller.run(webhook(f"http://127.0.0.1:{never.port}/closed"))
        assert "refused 127.0.0.1" in refusal(refused, fake_propeller.protocol)
    finally:
        allowed.close()
    assert never.requests == []


def test_importing_the_webhook_does_not_import_httpx() -> None:
    code = "import sys, flyteconnect.connectors.webhook\nprint(sorted({'httpx', 'httpcore'} & set(sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def serve_process(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``flyteconnect serve`` (entry points on, as by default) on loopback, without any allow-list from the test env."""
    base = {k: v for k, v in os.environ.items() if k != "FLYTECONNECT_EGRESS_ALLOW"}
    return subprocess.Popen(
        [sys.executable, "-m", "flyteconnect", "serve", "--host", "127.0.0.1", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**base, "PYTHONUNBUFFERED": "1", **(env or {})},
    )


async def test_serve_allow_list_option_and_environment(never: Listener) -> None:
    """The default ``serve`` refuses its own metrics page; ``--egress-allow`` and the variable open what they name."""
    allowed, also = Listener("127.0.0.2"), Listener("127.0.0.3")
    metrics_port = free_port()
    proc = serve_process(
        "--metrics-port", str(metrics_port), "--metrics-host", "127.0.0.1", "--egress-allow", "127.0.0.2",
        env={"FLYTECONNECT_EGRESS_ALLOW": "127.0.0.3/32"},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.to_thread(proc.stdout.readline)
        address = re.search(r"listening on (127\.0\.0\.1:\d+)", line)
        assert address, line
        fp = FakePropeller(address.group(1), protocol="v1")
        ssrf = await fp.run(webhook(f"http://127.0.0.1:{metrics_port}/metrics"))
        assert ssrf.phase == Phase.FAILED and "egress policy refused 127.0.0.1" in ssrf.message
        assert (await fp.run(webhook(f"http://localhost:{never.port}/"))).phase == Phase.FAILED
        (await fp.run(webhook(f"http://127.0.0.2:{allowed.port}/by-option"))).assert_succeeded()
        (await fp.run(webhook(f"http://127.0.0.3:{also.port}/by-env"))).assert_succeeded()
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.communicate, timeout=30)
        allowed.close()
        also.close()
    assert allowed.requests == ["/by-option"] and also.requests == ["/by-env"] and never.requests == []


@pytest.mark.parametrize(
    ("option", "env"), [(["--egress-allow", "*bad"], {}), ([], {"FLYTECONNECT_EGRESS_ALLOW": "a b"})]
)
def test_serve_refuses_a_malformed_allow_list(option: list[str], env: dict[str, str]) -> None:
    proc = serve_process("--metrics-port", "0", *option, env=env)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "listening" not in out
    assert "egress allow-list" in err and "is not a host name" in err
