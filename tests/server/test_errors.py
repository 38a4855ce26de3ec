# ruff: noqa: E501 - the case table reads best one case per line
"""The bad-input matrix: every case gets the right status code and a useful one-line message, and the server keeps
answering afterwards. Nothing answers UNKNOWN and no traceback reaches the caller."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import grpc
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.core import literals_pb2

from flyteconnect.literals import to_literal_map

from .conftest import Stubs
from .test_rpcs import create_request, get_request, template

Code = grpc.StatusCode


def faulty(mode: str, **extra: object) -> bytes:
    return json.dumps({"mode": mode, **extra}).encode()


def sync_messages(*parts: agent_pb2.ExecuteTaskSyncRequest) -> list[agent_pb2.ExecuteTaskSyncRequest]:
    return list(parts)


HEADER = agent_pb2.ExecuteTaskSyncRequest(header=agent_pb2.CreateRequestHeader(template=template("adder")))
INPUTS = agent_pb2.ExecuteTaskSyncRequest(inputs=to_literal_map({"a": 1, "b": 2}))


@dataclass
class Case:
    id: str
    call: Callable[[Stubs], Awaitable[object]]
    code: grpc.StatusCode
    message: str


async def _sync(stubs: Stubs, requests: list[agent_pb2.ExecuteTaskSyncRequest], timeout: float = 5) -> list[object]:
    return [r async for r in stubs.sync.ExecuteTaskSync(iter(requests), timeout=timeout)]


async def _sync_header_then_silence(stubs: Stubs) -> list[object]:
    async def requests() -> AsyncIterator[agent_pb2.ExecuteTaskSyncRequest]:
        yield HEADER
        await asyncio.sleep(30)

    return [r async for r in stubs.sync.ExecuteTaskSync(requests(), timeout=1)]


async def _raw_get_task(stubs: Stubs) -> object:
    call = stubs.channel.unary_unary("/flyteidl.service.AsyncAgentService/GetTask")
    return await call(b"\xff\xff\xff\xff garbage", timeout=5)


def _raw_create(raw: bytes) -> Callable[[Stubs], Awaitable[object]]:
    return lambda s: s.channel.unary_unary("/flyteidl.service.AsyncAgentService/CreateTask")(raw, timeout=5)


def _with_field(request: agent_pb2.CreateTaskRequest, field: str, payload: bytes) -> bytes:
    """``request`` serialized with ``field`` (a nested message) replaced by ``payload`` bytes."""
    number = request.DESCRIPTOR.fields_by_name[field].number
    rest = agent_pb2.CreateTaskRequest()
    rest.CopyFrom(request)
    rest.ClearField(field)
    return rest.SerializeToString() + bytes([number << 3 | 2, len(payload)]) + payload


BAD_BYTES = b"\xff\xff\xff"  # a truncated varint: no message parses from it


async def _raw_sync(stubs: Stubs, parts: list[bytes]) -> list[object]:
    call = stubs.channel.stream_stream("/flyteidl.service.SyncAgentService/ExecuteTaskSync")
    return [r async for r in call(iter(parts), timeout=5)]


def _sync_part(field: int, payload: bytes) -> bytes:
    """An ExecuteTaskSyncRequest holding ``payload`` bytes as its header (1) or inputs (2)."""
    return bytes([field << 3 | 2, len(payload)]) + payload


def _get(task_type: str, meta: bytes, version: int = 0, timeout: float = 5) -> Callable[[Stubs], Awaitable[object]]:
    return lambda s: s.async_.GetTask(get_request(task_type, meta, version), timeout=timeout)


def _delete(task_type: str, meta: bytes) -> Callable[[Stubs], Awaitable[object]]:
    request = agent_pb2.DeleteTaskRequest(task_category=agent_pb2.TaskCategory(name=task_type), resource_meta=meta)
    return lambda s: s.async_.DeleteTask(request, timeout=5)


def _create(task_type: str, inputs: dict | None = None, timeout: float = 5, **custom: object):
    return lambda s: s.async_.CreateTask(create_request(task_type, inputs=inputs, **custom), timeout=timeout)


def _logs(task_type: str, meta: bytes):
    async def call(s: Stubs) -> list[object]:
        request = agent_pb2.GetTaskLogsRequest(task_category=agent_pb2.TaskCategory(name=task_type), resource_meta=meta)
        return [p async for p in s.async_.GetTaskLogs(request, timeout=5)]

    return call


def _metrics(task_type: str, meta: bytes):
    request = agent_pb2.GetTaskMetricsRequest(task_category=agent_pb2.TaskCategory(name=task_type), resource_meta=meta)
    return lambda s: s.async_.GetTaskMetrics(request, timeout=5)


ECHO_META = b'{"job_id": "j"}'

CASES = [
    # routing
    Case("unknown-category", _get("nope", ECHO_META), Code.NOT_FOUND, "Cannot find connector for task category: nope_v0"),
    Case("unknown-version", _get("echo", ECHO_META, version=7), Code.NOT_FOUND, "echo_v7"),
    Case("empty-request", lambda s: s.async_.GetTask(agent_pb2.GetTaskRequest(), timeout=5), Code.NOT_FOUND, "_v0"),
    Case("create-unknown-type", _create("nope"), Code.NOT_FOUND, "nope_v0"),
    Case("create-on-sync-connector", _create("adder"), Code.FAILED_PRECONDITION, "sync connector"),
    Case("get-on-sync-connector", _get("adder", ECHO_META), Code.FAILED_PRECONDITION, "sync connector"),
    Case("get-agent-unknown", lambda s: s.meta.GetAgent(agent_pb2.GetAgentRequest(name="Nope"), timeout=5),
         Code.NOT_FOUND, "Cannot find connector for name: 'Nope'"),
    # malformed resource_meta and messages
    Case("empty-resource-meta", _get("echo", b""), Code.INVALID_ARGUMENT, "resource_meta for EchoMeta is not JSON"),
    Case("non-utf8-resource-meta", _get("echo", b"\xff\xfe"), Code.INVALID_ARGUMENT, "not UTF-8"),
    Case("unknown-field", _get("echo", b'{"job_id": "j", "x": 1}'), Code.INVALID_ARGUMENT, "unknown field(s) x"),
    Case("missing-field", _get("echo", b'{"kind": "k"}'), Code.INVALID_ARGUMENT, "missing field(s) job_id"),
    Case("wrong-field-type", _get("echo", b'{"job_id": 5}'), Code.INVALID_ARGUMENT, "expected str, got int"),
    Case("oversized-resource-meta", _get("echo", b"x" * (2 * 1024 * 1024)), Code.RESOURCE_EXHAUSTED, "larger than max"),
    Case("garbage-protobuf", _raw_get_task, Code.INVALID_ARGUMENT, "malformed GetTaskRequest"),
    Case("create-garbage-protobuf", _raw_create(b"\xff\xff\xff\xff garbage"), Code.INVALID_ARGUMENT, "malformed CreateTaskRequest"),
    Case("create-malformed-template", _raw_create(_with_field(create_request("echo"), "template", BAD_BYTES)),
         Code.INVALID_ARGUMENT, "malformed flyteidl.core.TaskTemplate in the request"),
    Case("create-malformed-inputs", _raw_create(_with_field(create_request("faulty", mode="bad_inputs"), "inputs", BAD_BYTES)),
         Code.INVALID_ARGUMENT, "create faulty_v0 (Faulty Connector): malformed flyteidl.core.LiteralMap in the request"),
    Case("wrong-literal-type", _create("faulty", {"x": "abc"}, mode="bad_inputs"), Code.INVALID_ARGUMENT,
         "input 'x': expected a literal of int"),
    # connectors that raise, hang or return the wrong thing
    Case("create-raises", _create("faulty", mode="raise"), Code.INTERNAL, "RuntimeError: create exploded"),
    Case("create-wrong-type", _create("faulty", mode="wrong_type"), Code.INTERNAL, "returned dict, expected a ResourceMeta"),
    Case("create-hangs", _create("faulty", timeout=1, mode="hang"), Code.DEADLINE_EXCEEDED, "did not finish within"),
    Case("get-raises", _get("faulty", faulty("raise")), Code.INTERNAL, "get faulty_v0 (Faulty Connector): RuntimeError"),
    Case("get-connector-error", _get("faulty", faulty("connector_error")), Code.INTERNAL, "the warehouse said no"),
    Case("get-wrong-type", _get("faulty", faulty("wrong_type")), Code.INTERNAL, "get() returned dict, expected"),
    Case("get-phase-undefined", _get("faulty", faulty("undefined")), Code.INTERNAL, "phase UNDEFINED"),
    Case("get-phase-unknown", _get("faulty", faulty("bad_phase")), Code.INTERNAL, "unknown phase 99"),
    Case("get-bad-outputs", _get("faulty", faulty("bad_outputs")), Code.INTERNAL, "cannot be sent"),
    Case("get-bad-custom-info", _get("faulty", faulty("bad_custom_info")), Code.INTERNAL, "JSON-serialisable"),
    Case("get-not-implemented", _get("faulty", faulty("not_implemented")), Code.UNIMPLEMENTED, "does not implement get"),
    Case("delete-raises", _delete("faulty", faulty("raise")), Code.INTERNAL, "delete exploded"),
    Case("delete-bad-meta", _delete("faulty", b"[]"), Code.INVALID_ARGUMENT, "expected an object for FaultyMeta"),
    Case("metrics-absent", _metrics("echo", ECHO_META), Code.UNIMPLEMENTED, "does not implement get_metrics"),
    Case("logs-absent", _logs("echo", ECHO_META), Code.UNIMPLEMENTED, "does not implement get_logs"),
    Case("logs-unknown", _logs("nope", ECHO_META), Code.NOT_FOUND, "nope_v0"),
    Case("logs-bad-meta", _logs("logs", b"nope"), Code.INVALID_ARGUMENT, "not JSON"),
    # ExecuteTaskSync stream misuse and sync connector failures
    Case("sync-no-messages", lambda s: _sync(s, []), Code.INVALID_ARGUMENT, "stream ended without a message"),
    Case("sync-inputs-first", lambda s: _sync(s, [INPUTS, HEADER]), Code.INVALID_ARGUMENT, "must be the header, got inputs"),
    Case("sync-empty-first", lambda s: _sync(s, [agent_pb2.ExecuteTaskSyncRequest()]), Code.INVALID_ARGUMENT,
         "got an empty message"),
    Case("sync-header-only", lambda s: _sync(s, [HEADER]), Code.INVALID_ARGUMENT, "ended after the header"),
    Case("sync-two-headers", lambda s: _sync(s, [HEADER, HEADER]), Code.INVALID_ARGUMENT, "second message must be"),
    Case("sync-header-then-silence", _sync_header_then_silence, Code.DEADLINE_EXCEEDED, ""),
    Case("sync-malformed-header", lambda s: _raw_sync(s, [_sync_part(1, BAD_BYTES), INPUTS.SerializeToString()]),
         Code.INVALID_ARGUMENT, "malformed CreateRequestHeader"),
    Case("sync-malformed-template", lambda s: _raw_sync(s, [_sync_part(1, _sync_part(1, BAD_BYTES)), INPUTS.SerializeToString()]),
         Code.INVALID_ARGUMENT, "malformed flyteidl.core.TaskTemplate in the request"),
    Case("sync-malformed-inputs", lambda s: _raw_sync(s, [HEADER.SerializeToString(), _sync_part(2, BAD_BYTES)]),
         Code.INVALID_ARGUMENT, "do adder_v0 (Adder): malformed flyteidl.core.LiteralMap in the request"),
    Case("sync-on-async-connector", lambda s: _sync(s, [
        agent_pb2.ExecuteTaskSyncRequest(header=agent_pb2.CreateRequestHeader(template=template("echo"))), INPUTS,
    ]), Code.FAILED_PRECONDITION, "Echo Connector is an async connector"),
    Case("sync-unknown-type", lambda s: _sync(s, [
        agent_pb2.ExecuteTaskSyncRequest(header=agent_pb2.CreateRequestHeader(template=template("nope"))), INPUTS,
    ]), Code.NOT_FOUND, "nope_v0"),
    Case("sync-non-terminal-phase", lambda s: _sync(s, [
        agent_pb2.ExecuteTaskSyncRequest(header=agent_pb2.CreateRequestHeader(template=template("bad_sync"))),
        agent_pb2.ExecuteTaskSyncRequest(inputs=literals_pb2.LiteralMap()),
    ]), Code.INTERNAL, "must return a terminal phase"),
    Case("sync-connector-error", lambda s: _sync(s, [
        HEADER, agent_pb2.ExecuteTaskSyncRequest(inputs=to_literal_map({"fail": 1})),
    ]), Code.INTERNAL, "do adder_v0 (Adder): adder refuses"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_bad_input(stubs: Stubs, case: Case) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await case.call(stubs)
    error = info.value
    assert error.code() == case.code, error.details()
    details = error.details() or ""
    assert case.message in details
    assert "Traceback" not in details
    assert "\n" not in details
    assert len(details) <= 1024 or case.code == Code.RESOURCE_EXHAUSTED
    # ...and the server still answers.
    listed = await stubs.meta.ListAgents(agent_pb2.ListAgentsRequest(), timeout=5)
    assert any(a.name == "Echo Connector" for a in listed.agents)


async def test_huge_error_messages_are_truncated(stubs: Stubs) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _create("faulty", mode="huge_error")(stubs)
    assert info.value.code() == Code.INTERNAL
    details = info.value.details() or ""
    assert details.startswith("create faulty_v0 (Faulty Connector): RuntimeError: xxx")
    assert details.endswith("...")
    assert len(details) == 1024


def test_the_matrix_is_big_enough() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("client_deadline", [None, 30.0], ids=["no-client-deadline", "later-client-deadline"])
async def test_a_silent_sync_client_is_cut_off_by_the_server_bound(client_deadline: float | None) -> None:
    """No client deadline, or a later one: the server's own read bound ends the call, naming how many messages came."""
    from flyteconnect.registry import ConnectorRegistry
    from flyteconnect.server.app import serve_in_thread

    from . import connectors
    from .conftest import make_config, open_stubs

    with serve_in_thread(ConnectorRegistry(connectors.ALL), make_config(timeout=0.3)) as handle:
        stubs = await open_stubs(handle.address)
        try:

            async def header_then_silence() -> AsyncIterator[agent_pb2.ExecuteTaskSyncRequest]:
                yield HEADER
                await asyncio.sleep(30)

            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for _ in stubs.sync.ExecuteTaskSync(header_then_silence(), timeout=client_deadline):
                    pass
            assert info.value.code() == Code.DEADLINE_EXCEEDED
            assert "the client sent 1 of 2 messages (header, inputs) within 0.3s" in (info.value.details() or "")
            # and the server still answers
            assert [r async for r in stubs.sync.ExecuteTaskSync(iter([HEADER, INPUTS]), timeout=5)]
        finally:
            await stubs.channel.close()


async def test_a_log_stream_that_stops_producing_pages_is_cut_off_per_page() -> None:
    """Each page of an async-generator get_logs is bounded by the connector timeout; pages sent before stay sent."""
    from flyteconnect.registry import ConnectorRegistry
    from flyteconnect.server.app import serve_in_thread

    from . import connectors
    from .conftest import make_config, open_stubs

    with serve_in_thread(ConnectorRegistry(connectors.ALL), make_config(timeout=0.3)) as handle:
        stubs = await open_stubs(handle.address)
        try:
            meta = connectors.LogMeta(job_id="stall").encode()
            request = agent_pb2.GetTaskLogsRequest(
                task_category=agent_pb2.TaskCategory(name="logs"), resource_meta=meta
            )
            pages = []
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for page in stubs.async_.GetTaskLogs(request, timeout=10):
                    pages.append(page)
            assert [p.header.token for p in pages] == ["t1"]
            assert info.value.code() == Code.DEADLINE_EXCEEDED
            assert "Logs Connector get_logs produced no page within 0.3s" in (info.value.details() or "")
        finally:
            await stubs.channel.close()
