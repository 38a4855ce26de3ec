"""The file sensor on http(s) URLs, when the operator allows them: every fetch passes the egress policy.

A real server holds a sensor whose reach allows ``http``; real HTTP listeners on loopback answer. 127.0.0.1 stands
for what the default egress policy refuses (it never receives a request); 127.0.0.2 for a host the operator allowed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.service import agent_pb2_grpc

from flyteconnect import egress
from flyteconnect.connector import Phase
from flyteconnect.connectors.file_sensor import FileSensorConnector
from flyteconnect.connectors.sensor_reach import SensorReach
from flyteconnect.egress import EgressPolicy
from flyteconnect.local.task import ConnectorTask
from flyteconnect.testing import ConnectorServer, FakePropeller

SENSOR_CUSTOM = {"sensor_module": "flytekit.sensor.file_sensor", "sensor_name": "FileSensor", "sensor_config": None}


class Site:
    """An HTTP server on ``host``: ``/ready`` 200, ``/missing`` 404, ``/get-only`` 405 to HEAD and 200 to GET,
    ``/broken`` 500, ``/moved`` 302 to ``redirect_to``. Every request is recorded as (method, path)."""

    def __init__(self, host: str, redirect_to: str = "") -> None:
        self.requests: list[tuple[str, str]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                site.requests.append((self.command, self.path))
                status = {"/ready": 200, "/missing": 404, "/broken": 500, "/moved": 302}.get(self.path, 404)
                if self.path == "/get-only":
                    status = 405 if self.command == "HEAD" else 200
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_HEAD = do_GET = _answer

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def denied() -> Iterator[Site]:
    site = Site("127.0.0.1")
    yield site
    site.close()


@pytest.fixture(scope="module")
def allowed(denied: Site) -> Iterator[Site]:
    site = Site("127.0.0.2", redirect_to=f"{denied.url}/ready")
    yield site
    site.close()


@pytest.fixture(scope="module")
def connector_server() -> Iterator[ConnectorServer]:
    """A sensor the operator let use http (``--sensor-allow-protocol http``), nothing else."""
    with ConnectorServer(FileSensorConnector(reach=SensorReach(protocols=frozenset({"http"})))) as server:
        yield server


@pytest.fixture(autouse=True)
def egress_allows_127_0_0_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process's egress policy is ``--egress-allow 127.0.0.2`` for these tests, whatever the environment says."""
    monkeypatch.setattr(egress, "_policy", EgressPolicy.from_allow(["127.0.0.2"]))


def sensor_task() -> ConnectorTask:
    return ConnectorTask("wait", "sensor", inputs={"path": str}, custom=SENSOR_CUSTOM)


async def forged_get(fp: FakePropeller, path: str) -> Any:
    """GetTask with a resource_meta written by the caller, no CreateTask first."""
    meta = json.dumps({**SENSOR_CUSTOM, "inputs": {"path": path}}).encode()
    async with grpc.aio.insecure_channel(fp.address) as channel:
        stub = agent_pb2_grpc.AsyncAgentServiceStub(channel)
        category = agent_pb2.TaskCategory(name="sensor", version=0)
        reply = await stub.GetTask(agent_pb2.GetTaskRequest(task_category=category, resource_meta=meta), timeout=20)
    return reply.resource


@pytest.mark.both_protocols
async def test_allowed_host_is_sensed(fake_propeller: FakePropeller, allowed: Site) -> None:
    result = await fake_propeller.run(sensor_task(), {"path": f"{allowed.url}/ready"})
    result.assert_succeeded()
    assert result.message == f"{allowed.url}/ready exists"
    assert ("HEAD", "/ready") in allowed.requests


async def test_not_found_is_running_and_head_refused_falls_back_to_get(
    fake_propeller: FakePropeller, allowed: Site
) -> None:
    missing = await forged_get(fake_propeller, f"{allowed.url}/missing")
    assert (missing.phase, missing.message) == (Phase.RUNNING, f"waiting for {allowed.url}/missing")
    get_only = await forged_get(fake_propeller, f"{allowed.url}/get-only")
    assert get_only.phase == Phase.SUCCEEDED
    assert allowed.requests[-2:] == [("HEAD", "/get-only"), ("GET", "/get-only")]


async def test_server_errors_are_transient(fake_propeller: FakePropeller, allowed: Site) -> None:
    before = len(allowed.requests)
    resource = await forged_get(fake_propeller, f"{allowed.url}/broken")
    # A TransientError: the server retried the poll and answers RUNNING with the reason instead of an error.
    assert resource.phase == Phase.RUNNING
    assert f"cannot check {allowed.url}/broken: HTTP 500" in resource.message
    assert set(allowed.requests[before:]) == {("HEAD", "/broken")} and len(allowed.requests) - before > 1


@pytest.mark.both_protocols
async def test_a_host_the_egress_policy_refuses_is_never_contacted(
    fake_propeller: FakePropeller, denied: Site
) -> None:
    before = list(denied.requests)
    for url in (f"{denied.url}/ready", f"http://localhost:{denied.url.rsplit(':', 1)[1]}/ready"):
        result = await fake_propeller.run(sensor_task(), {"path": url})
        (create,) = result.calls_to("CreateTask")
        assert create.code == "INVALID_ARGUMENT"
        assert f"cannot watch {url}: egress policy refused" in create.details
    resource = await forged_get(fake_propeller, f"{denied.url}/ready")
    assert resource.phase == Phase.FAILED
    assert resource.message.startswith(f"cannot watch {denied.url}/ready: egress policy refused 127.0.0.1")
    assert denied.requests == before


async def test_a_redirect_to_a_refused_host_fails_at_that_hop(
    fake_propeller: FakePropeller, allowed: Site, denied: Site
) -> None:
    before = list(denied.requests)
    resource = await forged_get(fake_propeller, f"{allowed.url}/moved")
    assert resource.phase == Phase.FAILED
    assert resource.message.startswith(f"cannot watch {allowed.url}/moved: egress policy refused 127.0.0.1")
    assert allowed.requests[-1] == ("HEAD", "/moved")
    assert denied.requests == before
