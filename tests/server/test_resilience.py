"""Transient failures in get, 200 concurrent flows, and a loop-blocking connector that must not stall the others."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from flyteidl.admin import agent_pb2

from flyteconnect import AsyncConnectorBase, ConnectorRegistry, Phase, Resource, ResourceMeta, TransientError
from flyteconnect.server.app import BackgroundServer, serve_in_thread
from flyteconnect.server.dispatch import DispatchConfig, Dispatcher
from flyteconnect.server.errors import CallFailed

from . import connectors
from .conftest import Stubs, make_config, open_stubs
from .test_rpcs import create_request, get_request


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    """A server that gives up after 3 consecutive transiently failed polls."""
    handle = serve_in_thread(ConnectorRegistry(connectors.ALL), make_config(transient_max_consecutive=3))
    yield handle
    handle.stop()


def faulty(mode: str, **extra: object) -> bytes:
    return json.dumps({"mode": mode, **extra}).encode()


async def test_transient_get_answers_running_then_retryable_failed(stubs: Stubs, server: BackgroundServer) -> None:
    request = get_request("faulty", faulty("transient"))
    phases = []
    for _ in range(3):
        got = await stubs.async_.GetTask(request, timeout=5)
        phases.append(got.resource.phase)
    assert phases == [Phase.RUNNING, Phase.RUNNING, Phase.RETRYABLE_FAILED]
    assert "temporarily unavailable" in got.resource.message
    assert "3 consecutive status checks: warehouse throttled us" in got.resource.message
    assert got.resource.state == agent_pb2.RETRYABLE_FAILURE
    metrics = server.server.metrics
    assert metrics.value("flyte_connector_transient_retries_total", {"task_type": "faulty", "operation": "get"}) >= 6
    assert metrics.value("flyte_connector_transient_fallbacks_total", {"task_type": "faulty"}) >= 3


async def test_transient_answers_keep_server_paths_out(stubs: Stubs) -> None:
    got = await stubs.async_.GetTask(get_request("faulty", faulty("transient_path")), timeout=5)
    assert got.resource.phase == Phase.RUNNING
    assert got.resource.message.endswith("will check again: cannot read <cwd>/cache/state.json")
    assert os.getcwd() not in got.resource.message


async def test_transient_get_answers_the_last_phase_seen(stubs: Stubs) -> None:
    # Phases are remembered once a connector has had a transient failure: give it one.
    await stubs.async_.GetTask(get_request("faulty", faulty("transient")), timeout=5)
    request = get_request("faulty", faulty("queued_then_transient"))
    first = await stubs.async_.GetTask(request, timeout=5)
    assert first.resource.phase == Phase.QUEUED
    second = await stubs.async_.GetTask(request, timeout=5)
    assert second.resource.phase == Phase.QUEUED
    assert "lost contact" in second.resource.message


async def test_a_single_blip_is_retried_within_the_call(stubs: Stubs) -> None:
    got = await stubs.async_.GetTask(get_request("faulty", faulty("flaky")), timeout=5)
    assert got.resource.phase == Phase.RUNNING
    assert got.resource.message == "recovered"


async def test_a_hanging_get_answers_before_the_callers_deadline(stubs: Stubs) -> None:
    got = await stubs.async_.GetTask(get_request("faulty", faulty("hang")), timeout=1.5)
    assert got.resource.phase == Phase.RUNNING
    assert "timed out" in got.resource.message


async def test_transient_policy_off_gives_unavailable() -> None:
    dispatcher = Dispatcher(
        ConnectorRegistry([connectors.FaultyConnector()]), DispatchConfig(transient_retries=-1, stall_threshold=None)
    )
    try:
        with pytest.raises(CallFailed) as info:
            await dispatcher.get(("faulty", 0), faulty("transient"))
        assert info.value.code == grpc.StatusCode.UNAVAILABLE
        assert info.value.details == "get faulty_v0 (Faulty Connector): warehouse throttled us"
    finally:
        dispatcher.close()


@dataclass
class PlainMeta(ResourceMeta):
    job_id: str


class PlainDefConnector(AsyncConnectorBase[PlainMeta]):
    """``def`` methods (run on the worker threads): QUEUED on the first poll of a job, then transient failures."""

    name = "Plain Def Connector"
    task_type_name = "plain_def"
    metadata_type = PlainMeta

    def __init__(self) -> None:
        super().__init__()
        self.polls: dict[str, int] = {}

    def create(self, task_template, output_prefix, inputs=None, **kwargs):  # type: ignore[no-untyped-def]
        return PlainMeta("j")

    def get(self, resource_meta: PlainMeta, **kwargs) -> Resource:  # type: ignore[no-untyped-def,override]
        seen = self.polls[resource_meta.job_id] = self.polls.get(resource_meta.job_id, 0) + 1
        if resource_meta.job_id == "first-blip" or seen > 1:
            raise TransientError("the API is down")
        return Resource(phase=Phase.QUEUED, message="waiting for a slot")

    def delete(self, resource_meta: PlainMeta, **kwargs) -> None:  # type: ignore[no-untyped-def]
        return None


async def test_def_connector_transient_answers_repeat_the_phase_seen_on_a_worker_thread() -> None:
    # Its replies are converted (and their phases noted) on the worker threads, not the loop.
    dispatcher = Dispatcher(
        ConnectorRegistry([PlainDefConnector()]),
        DispatchConfig(threads=4, transient_backoff=0.01, transient_max_consecutive=3, stall_threshold=None),
    )
    try:
        await dispatcher.get(("plain_def", 0), PlainMeta("first-blip").encode())  # its first transient failure
        jobs = [PlainMeta(f"job-{i}").encode() for i in range(20)]
        first = await asyncio.gather(*(dispatcher.get(("plain_def", 0), job) for job in jobs))
        assert {r.phase for r in first} == {Phase.QUEUED}
        answers = [await asyncio.gather(*(dispatcher.get(("plain_def", 0), job) for job in jobs)) for _ in range(3)]
        phases = [{r.phase for r in polls} for polls in answers]
        assert phases == [{Phase.QUEUED}, {Phase.QUEUED}, {Phase.RETRYABLE_FAILED}]
        assert "the API is down" in answers[0][0].message
    finally:
        dispatcher.close()


async def test_200_concurrent_create_get_delete_flows(stubs: Stubs) -> None:
    async def flow(i: int) -> tuple[int, int]:
        version = i % 2  # half through async def methods, half through def methods on worker threads
        created = await stubs.async_.CreateTask(create_request("echo", version=version, inputs={"x": i}), timeout=30)
        phase = 0
        for _ in range(3):
            got = await stubs.async_.GetTask(get_request("echo", created.resource_meta, version), timeout=30)
            phase = got.resource.phase
            if phase == Phase.SUCCEEDED:
                break
        await stubs.async_.DeleteTask(
            agent_pb2.DeleteTaskRequest(
                task_category=agent_pb2.TaskCategory(name="echo", version=version), resource_meta=created.resource_meta
            ),
            timeout=30,
        )
        return i, phase

    results = await asyncio.gather(*(flow(i) for i in range(200)))
    assert sorted(i for i, _ in results) == list(range(200))
    assert {phase for _, phase in results} == {Phase.SUCCEEDED}
    assert {f"{i}-ns" for i in range(0, 200, 2)} <= set(connectors.deleted)


async def test_a_loop_blocking_connector_is_reported_and_quarantined(stubs: Stubs, server: BackgroundServer) -> None:
    metrics = server.server.metrics
    # First offence: the async def get sleeps 0.6 s on the loop; the watchdog (threshold 0.2 s) names it.
    first = await stubs.async_.GetTask(get_request("blocker", b'{"seconds": 0.6}'), timeout=10)
    assert first.resource.phase == Phase.SUCCEEDED
    assert metrics.value("flyte_connector_loop_stalls_total", {"task_type": "blocker", "operation": "get"}) == 1

    # From now on its calls run on the quarantine loop: block one indefinitely (until the gate opens)...
    connectors.gate.clear()
    blocked = asyncio.ensure_future(stubs.async_.GetTask(get_request("blocker", b"{}"), timeout=20))
    try:
        # ...and the other connectors keep answering while it is blocked.
        other = await open_stubs(server.address)
        try:
            for i in range(5):
                meta = connectors.EchoMeta(job_id=f"while-blocked-{i}").encode()
                got = await other.async_.GetTask(get_request("echo", meta), timeout=5)
                assert got.resource.phase == Phase.RUNNING
            assert not blocked.done()
        finally:
            await other.channel.close()
    finally:
        connectors.gate.set()
    released = await blocked
    assert released.resource.message == "flyteconnect-quarantine"
    assert metrics.value("flyte_connector_loop_stalls_total", {"task_type": "blocker", "operation": "get"}) == 1
