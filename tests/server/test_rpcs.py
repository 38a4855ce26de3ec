"""Every Flyte 1 RPC's happy path, through flyteidl's generated stubs against a real server on loopback."""

from __future__ import annotations

import json

from flyteidl.admin import agent_pb2
from flyteidl.core import identifier_pb2, literals_pb2, tasks_pb2
from google.protobuf import struct_pb2

from flyteconnect import Phase
from flyteconnect.literals import literal_map_to_python, to_literal_map

from . import connectors
from .conftest import Stubs


def template(task_type: str, version: int = 0, **custom: object) -> tasks_pb2.TaskTemplate:
    s = struct_pb2.Struct()
    s.update(custom)
    return tasks_pb2.TaskTemplate(
        id=identifier_pb2.Identifier(name="my.task"), type=task_type, task_type_version=version, custom=s
    )


def create_request(task_type: str, version: int = 0, inputs: dict | None = None, **custom: object):
    return agent_pb2.CreateTaskRequest(
        template=template(task_type, version, **custom),
        inputs=to_literal_map(inputs or {}),
        output_prefix="s3://bucket/out",
        task_execution_metadata=agent_pb2.TaskExecutionMetadata(namespace="ns"),
    )


def get_request(task_type: str, meta: bytes, version: int = 0) -> agent_pb2.GetTaskRequest:
    return agent_pb2.GetTaskRequest(
        task_type=task_type, task_category=agent_pb2.TaskCategory(name=task_type, version=version), resource_meta=meta
    )


async def test_create_get_delete_with_scalar_outputs(stubs: Stubs) -> None:
    created = await stubs.async_.CreateTask(create_request("echo", inputs={"x": 5}), timeout=5)
    assert json.loads(created.resource_meta) == {"job_id": "5-ns", "kind": "scalars"}  # flytekit's JSON bytes

    first = await stubs.async_.GetTask(get_request("echo", created.resource_meta), timeout=5)
    assert first.resource.phase == Phase.RUNNING
    assert first.resource.state == agent_pb2.RUNNING
    assert first.resource.message == "working"
    assert not first.resource.HasField("outputs")

    done = await stubs.async_.GetTask(get_request("echo", created.resource_meta), timeout=5)
    assert done.resource.phase == Phase.SUCCEEDED
    assert done.resource.state == agent_pb2.SUCCEEDED
    assert literal_map_to_python(done.resource.outputs) == {"i": 42, "f": 2.5, "s": "done 5-ns", "b": True}
    assert [(log.name, log.uri) for log in done.resource.log_links] == [("console", "https://logs/1")]
    assert dict(done.resource.custom_info) == {"job": "5-ns"}

    await stubs.async_.DeleteTask(
        agent_pb2.DeleteTaskRequest(
            task_category=agent_pb2.TaskCategory(name="echo"), resource_meta=created.resource_meta
        ),
        timeout=5,
    )
    assert "5-ns" in connectors.deleted


async def test_collection_outputs(stubs: Stubs) -> None:
    meta = connectors.EchoMeta(job_id="coll", kind="collections").encode()
    await stubs.async_.GetTask(get_request("echo", meta), timeout=5)
    done = await stubs.async_.GetTask(get_request("echo", meta), timeout=5)
    assert literal_map_to_python(done.resource.outputs, {"l": list[int], "names": list[str], "d": dict}) == {
        "l": [1, 2, 3],
        "names": ["a", "b"],
        "d": {"k": 1.5},
    }


async def test_outputs_given_as_literal_map_proto_and_absent(stubs: Stubs) -> None:
    meta = connectors.EchoMeta(job_id="lm", kind="literal_map").encode()
    await stubs.async_.GetTask(get_request("echo", meta), timeout=5)
    done = await stubs.async_.GetTask(get_request("echo", meta), timeout=5)
    assert done.resource.outputs.literals["x"].scalar.primitive.integer == 7

    meta = connectors.EchoMeta(job_id="no-out", kind="none").encode()
    await stubs.async_.GetTask(get_request("echo", meta), timeout=5)
    done = await stubs.async_.GetTask(get_request("echo", meta), timeout=5)
    assert done.resource.phase == Phase.SUCCEEDED
    # Absent outputs (not an empty map): Propeller then reads <output_prefix>/outputs.pb.
    assert not done.resource.HasField("outputs")


async def test_routing_by_version_runs_def_methods_on_worker_threads(stubs: Stubs) -> None:
    created = await stubs.async_.CreateTask(create_request("echo", version=1), timeout=5)
    assert json.loads(created.resource_meta)["job_id"].startswith("v1-flyteconnect-worker")
    got = await stubs.async_.GetTask(get_request("echo", created.resource_meta, version=1), timeout=5)
    assert got.resource.phase == Phase.SUCCEEDED
    assert got.resource.message.startswith("version 1 on flyteconnect-worker")


async def test_deprecated_task_type_routes_to_version_0(stubs: Stubs) -> None:
    meta = connectors.EchoMeta(job_id="legacy").encode()
    got = await stubs.async_.GetTask(agent_pb2.GetTaskRequest(task_type="echo", resource_meta=meta), timeout=5)
    assert got.resource.phase == Phase.RUNNING  # the version-0 connector (version 1 answers SUCCEEDED at once)
    await stubs.async_.DeleteTask(agent_pb2.DeleteTaskRequest(task_type="echo", resource_meta=meta), timeout=5)
    assert "legacy" in connectors.deleted


async def test_execute_task_sync(stubs: Stubs) -> None:
    requests = [
        agent_pb2.ExecuteTaskSyncRequest(
            header=agent_pb2.CreateRequestHeader(template=template("adder"), output_prefix="s3://b/o")
        ),
        agent_pb2.ExecuteTaskSyncRequest(inputs=to_literal_map({"a": 2, "b": 40})),
    ]
    replies = [r async for r in stubs.sync.ExecuteTaskSync(iter(requests), timeout=5)]
    assert len(replies) == 1
    assert replies[0].WhichOneof("res") == "header"
    resource = replies[0].header.resource
    assert resource.phase == Phase.SUCCEEDED
    assert resource.state == agent_pb2.SUCCEEDED
    assert literal_map_to_python(resource.outputs) == {"sum": 42}


async def test_execute_task_sync_with_empty_inputs(stubs: Stubs) -> None:
    requests = [
        agent_pb2.ExecuteTaskSyncRequest(header=agent_pb2.CreateRequestHeader(template=template("adder"))),
        agent_pb2.ExecuteTaskSyncRequest(inputs=literals_pb2.LiteralMap()),
    ]
    replies = [r async for r in stubs.sync.ExecuteTaskSync(iter(requests), timeout=5)]
    assert literal_map_to_python(replies[0].header.resource.outputs) == {"sum": 0}


async def test_get_task_metrics_passes_queries(stubs: Stubs) -> None:
    meta = connectors.LogMeta(job_id="m1").encode()
    got = await stubs.async_.GetTaskMetrics(
        agent_pb2.GetTaskMetricsRequest(
            task_category=agent_pb2.TaskCategory(name="logs"), resource_meta=meta, queries=["cpu", "mem"]
        ),
        timeout=5,
    )
    assert [r.metric for r in got.results] == ["cpu", "mem"]
    assert dict(got.results[0].data) == {"job": "m1"}


async def test_get_task_logs_streams_every_page(stubs: Stubs) -> None:
    meta = connectors.LogMeta(job_id="l1").encode()
    request = agent_pb2.GetTaskLogsRequest(task_category=agent_pb2.TaskCategory(name="logs"), resource_meta=meta)
    pages = [p async for p in stubs.async_.GetTaskLogs(request, timeout=5)]
    assert pages[0].header.token == "t1"
    assert [list(p.body.results) for p in pages[1:]] == [["line 0"], ["line 1"], ["line 2"]]

    request.lines = 5
    pages = [p async for p in stubs.async_.GetTaskLogs(request, timeout=5)]
    assert len(pages) == 6  # the connector honours the request's `lines`


async def test_list_agents_as_the_reference_fills_it(stubs: Stubs) -> None:
    listed = await stubs.meta.ListAgents(agent_pb2.ListAgentsRequest(), timeout=5)
    by_name = {a.name: a for a in listed.agents}
    echo = by_name["Echo Connector"]
    assert list(echo.supported_task_types) == ["echo", "echo"]
    assert [(c.name, c.version) for c in echo.supported_task_categories] == [("echo", 0), ("echo", 1)]
    assert not echo.is_sync
    assert by_name["Adder"].is_sync
    assert list(by_name["Adder"].supported_task_types) == ["adder"]


async def test_get_agent(stubs: Stubs) -> None:
    got = await stubs.meta.GetAgent(agent_pb2.GetAgentRequest(name="Adder"), timeout=5)
    assert got.agent.name == "Adder"
    assert got.agent.is_sync
    assert [c.name for c in got.agent.supported_task_categories] == ["adder"]
