"""The file sensor's reach, tried as a hostile caller would: a real server holding the entry-point connectors.

The server's reach is what ``flyteconnect serve --sensor-root ROOT`` sets (default protocols, one local root). A
listener on loopback stands for every address the sensor must not fetch: it counts TCP connections, and none may
arrive. Refusals must say which policy refused, never whether the path exists.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.service import agent_pb2_grpc
from flyteidl2.connector import connector_pb2, service_pb2_grpc

from flyteconnect.connector import Phase
from flyteconnect.connectors.sensor_reach import SensorReach, set_default_reach
from flyteconnect.local.task import ConnectorTask
from flyteconnect.registry import discover_connectors
from flyteconnect.testing import ConnectorServer, FakePropeller

SENSOR_CUSTOM = {"sensor_module": "flytekit.sensor.file_sensor", "sensor_name": "FileSensor", "sensor_config": None}
POLICY = "the server's file sensor policy"


class Listener:
    """A TCP listener on loopback that only counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    server = Listener()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one local directory the server's sensor may watch."""
    return tmp_path_factory.mktemp("sensor-root")


@pytest.fixture(scope="module")
def connector_server(root: Path) -> Iterator[ConnectorServer]:
    """The entry-point connectors, served with the reach ``serve --sensor-root <root>`` sets."""
    previous = set_default_reach(SensorReach.from_options(None, [str(root)]))
    try:
        found = discover_connectors()
        assert not found.failures, found.failures
        with ConnectorServer(*found.connectors) as server:
            yield server
    finally:
        set_default_reach(previous)


def sensor_task(**config: Any) -> ConnectorTask:
    return ConnectorTask(
        "wait", "sensor", inputs={"path": str}, custom={**SENSOR_CUSTOM, "sensor_config": config or None}
    )


async def refused_at_create(fp: FakePropeller, path: str, **config: Any) -> str:
    """Run the sensor on ``path``: CreateTask must answer INVALID_ARGUMENT (its message returned), nothing else run."""
    result = await fp.run(sensor_task(**config), {"path": path})
    methods = [c.method for c in result.calls if c.method not in ("ListAgents", "ListConnectors")]
    assert methods == ["CreateTask"]
    (create,) = result.calls_to("CreateTask")
    assert create.code == "INVALID_ARGUMENT", create.details
    prefix = "create sensor_v0 (Sensor): "  # the server names the call; the rest is the connector's message
    assert create.details.startswith(prefix)
    return str(create.details)[len(prefix) :]


async def forged_get(fp: FakePropeller, path: str, config: Any = None) -> tuple[int, str]:
    """GetTask with a resource_meta the caller wrote itself (no CreateTask): (phase, message) of the answer."""
    meta = json.dumps({**SENSOR_CUSTOM, "sensor_config": config, "inputs": {"path": path}}).encode()
    async with grpc.aio.insecure_channel(fp.address) as channel:
        if fp.protocol == "v1":
            v1 = agent_pb2_grpc.AsyncAgentServiceStub(channel)
            reply: Any = await v1.GetTask(
                agent_pb2.GetTaskRequest(
                    task_category=agent_pb2.TaskCategory(name="sensor", version=0), resource_meta=meta
                ),
                timeout=10,
            )
        else:
            v2 = service_pb2_grpc.AsyncConnectorServiceStub(channel)
            reply = await v2.GetTask(
                connector_pb2.GetTaskRequest(
                    task_category=connector_pb2.TaskCategory(name="sensor", version=0), resource_meta=meta
                ),
                timeout=10,
            )
    return reply.resource.phase, reply.resource.message


# ------------------------------------------------------------------------------------------ network: never contacted


REMOTE_REFUSALS = [
    ("{url}/", "does not allow http:// paths"),
    ("{url}/metrics", "does not allow http:// paths"),
    ("https://127.0.0.1:{port}/", "does not allow https:// paths"),
    ("simplecache::{url}/", "refuses chained URLs (::)"),
    ("zip://x::{url}/a.zip", "refuses chained URLs (::)"),
    ("memory://x", "does not allow memory:// paths"),
    ("ftp://127.0.0.1:{port}/x", "does not allow ftp:// paths"),
    ("webdav://127.0.0.1:{port}/x", "does not allow webdav:// paths"),
]


@pytest.mark.both_protocols
@pytest.mark.parametrize(("path", "expected"), REMOTE_REFUSALS)
async def test_urls_the_server_does_not_allow_are_never_fetched(
    fake_propeller: FakePropeller, listener: Listener, path: str, expected: str
) -> None:
    path = path.format(url=listener.url, port=listener.port)
    before = listener.accepted
    details = await refused_at_create(fake_propeller, path)
    assert details == f"cannot watch {path}: {POLICY} {expected}" + (
        " (the operator can allow the protocol with --sensor-allow-protocol or a URL prefix with --sensor-root)"
        if "does not allow" in expected
        else ""
    )
    phase, message = await forged_get(fake_propeller, path)
    assert (phase, message) == (Phase.FAILED, details)
    assert listener.accepted == before


@pytest.mark.both_protocols
async def test_template_storage_options_cannot_move_the_endpoint(
    fake_propeller: FakePropeller, listener: Listener
) -> None:
    options = {"client_kwargs": {"endpoint_url": listener.url}, "anon": True}
    before = listener.accepted
    details = await refused_at_create(fake_propeller, "s3://bucket/key", storage_options=options)
    assert details == (
        f"cannot watch s3://bucket/key: {POLICY} refuses storage_options client_kwargs: a task may set only anon; "
        "endpoints and credentials come from the server"
    )
    for forged in ({"endpoint_url": listener.url}, {"key": "k", "secret": "s"}, {"profile": "admin"}):
        config = {"storage_options": forged}
        phase, message = await forged_get(fake_propeller, "s3://bucket/key", config)
        assert phase == Phase.FAILED and f"{POLICY} refuses storage_options" in message
    assert listener.accepted == before


# ---------------------------------------------------------------------------------- local files: no existence oracle


def existing(path: str) -> bool:
    return Path(path).exists()


PROBES = ["/etc/shadow", "/etc/passwd", "/etc/no-such-file-here", "/root", "file:///etc/shadow", "/proc/self/environ"]


@pytest.mark.both_protocols
async def test_paths_outside_the_roots_are_answered_alike_whether_they_exist_or_not(
    fake_propeller: FakePropeller, root: Path
) -> None:
    assert existing("/etc/passwd") and not existing("/etc/no-such-file-here")  # the answers could differ
    answers = set()
    for path in [*PROBES, f"{root}/../../etc/passwd", f"{root}/../{root.name}-sibling/x", "etc/passwd"]:
        created = await refused_at_create(fake_propeller, path)
        phase, message = await forged_get(fake_propeller, path)
        assert phase == Phase.FAILED and message == created
        # Run as root, the probe /root is the server's home, which answers name only as <home>.
        answers.add(created.replace(path, "<path>").replace("cannot watch <home>:", "cannot watch <path>:"))
    assert answers == {
        f"cannot watch <path>: {POLICY} refuses local paths outside the server's sensor roots",
        f"cannot watch <path>: {POLICY} refuses relative local paths",
    }


@pytest.mark.both_protocols
async def test_a_symlink_inside_a_root_cannot_lead_out(fake_propeller: FakePropeller, root: Path) -> None:
    link = root / f"link-{fake_propeller.protocol}"
    link.symlink_to("/etc")
    try:
        details = await refused_at_create(fake_propeller, f"{link}/passwd")
        assert details == f"cannot watch {link}/passwd: {POLICY} refuses local paths outside the server's sensor roots"
    finally:
        link.unlink()


@pytest.mark.both_protocols
async def test_files_under_a_root_are_sensed(fake_propeller: FakePropeller, root: Path) -> None:
    here = root / f"ready-{fake_propeller.protocol}"
    here.write_text("x")
    inside = root / "sub" / ".." / here.name  # normalised, still inside the root
    result = await fake_propeller.run(sensor_task(), {"path": str(inside)})
    result.assert_succeeded()
    assert result.message == f"{inside} exists"
    # A link inside the root to a file inside the root is fine: it is where it resolves that counts.
    link = root / f"alias-{fake_propeller.protocol}"
    link.symlink_to(here)
    try:
        (await fake_propeller.run(sensor_task(), {"path": str(link)})).assert_succeeded()
    finally:
        link.unlink()


@pytest.mark.s3
@pytest.mark.both_protocols
async def test_object_stores_stay_allowed_by_default(s3_server: Any, fake_propeller: FakePropeller) -> None:
    import s3fs

    bucket = f"reach-{fake_propeller.protocol}"
    s3_server.create_bucket(bucket)
    path = f"s3://{bucket}/done/_SUCCESS"
    s3fs.S3FileSystem(**s3_server.storage_options, skip_instance_cache=True).pipe(path, b"ok")
    result = await fake_propeller.run(sensor_task(storage_options={"anon": False}), {"path": path})
    result.assert_succeeded()
    assert result.message == f"{path} exists"


def test_the_listener_counts_connections(listener: Listener) -> None:
    """The 'never contacted' assertions above can fail: a real connection is counted."""
    before = listener.accepted
    with socket.create_connection(("127.0.0.1", listener.port), timeout=5):
        pass
    deadline = 50
    while listener.accepted == before and deadline:
        threading.Event().wait(0.05)
        deadline -= 1
    assert listener.accepted == before + 1
