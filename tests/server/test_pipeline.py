"""The call pipeline: policies built once per (connector, operation), their hooks in order, short-circuits and
recoveries, per-connector settings from one place, and what a policy sees of a call. Driven through a real server
and through the dispatcher."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from flyteconnect import AsyncConnectorBase, ConnectorRegistry, InvalidRequest, Phase, Resource, ResourceMeta
from flyteconnect.server.app import BackgroundServer, serve_in_thread
from flyteconnect.server.dispatch import DispatchConfig, Dispatcher
from flyteconnect.server.errors import CallFailed
from flyteconnect.server.pipeline import DEFAULT_POLICIES, Call, Policy, PolicyContext, Proceed

from . import connectors
from .conftest import Stubs, make_config
from .test_rpcs import create_request, get_request


@dataclass
class JobMeta(ResourceMeta):
    job_id: str


class CountingConnector(AsyncConnectorBase[JobMeta]):
    """Counts its gets; answers the number of gets so far as the message."""

    name = "Counting Connector"
    task_type_name = "counting"
    metadata_type = JobMeta
    server_settings = {"min_poll_interval": 60.0}

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    async def create(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> JobMeta:
        return JobMeta(job_id="j")

    async def get(self, resource_meta: JobMeta, **kwargs: Any) -> Resource:
        self.gets += 1
        if resource_meta.job_id == "refuse-me":
            raise AssertionError("an enter hook refused this call; the connector must not run")
        return Resource(phase=Phase.RUNNING, message=f"get {self.gets}")

    async def delete(self, resource_meta: JobMeta, **kwargs: Any) -> None:
        return None


class MinPollInterval(Policy):
    """Answers a job's repeated polls from its last Resource for ``seconds`` (the docs' worked example)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.last: dict[bytes, tuple[float, Resource]] = {}

    async def around(self, call: Call, proceed: Proceed) -> Any:
        assert call.resource_meta is not None
        seen = self.last.get(call.resource_meta)
        if seen is not None and time.monotonic() - seen[0] < self.seconds:
            return call.answer(seen[1])
        reply = await proceed(call)
        self.last[call.resource_meta] = (time.monotonic(), call.outcome)
        return reply


def min_poll_interval(ctx: PolicyContext) -> MinPollInterval | None:
    seconds = ctx.settings.get("min_poll_interval")
    return MinPollInterval(seconds) if ctx.operation == "get" and seconds else None


journal: list[tuple[str, str, Any]] = []


class Recorder(Policy):
    """Writes every hook call to ``journal``; refuses job ``refuse-me`` in ``enter``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def enter(self, call: Call) -> None:
        journal.append((self.name, "enter", call.operation))
        if call.resource_meta == JobMeta("refuse-me").encode():
            raise InvalidRequest("refused by the recorder")

    def exit(self, call: Call, error: BaseException | None) -> None:
        code = error.code.name if isinstance(error, CallFailed) else error
        journal.append((self.name, "exit", code))


built: list[tuple[str, str]] = []


def recorder(name: str) -> Any:
    def factory(ctx: PolicyContext) -> Recorder | None:
        built.append((ctx.entry.label, ctx.operation))
        return Recorder(name) if ctx.connector.task_type_name == "counting" else None

    return factory


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    policies = (*DEFAULT_POLICIES, recorder("outer"), min_poll_interval, recorder("inner"))
    handle = serve_in_thread(ConnectorRegistry([CountingConnector(), *connectors.ALL]), make_config(policies=policies))
    yield handle
    handle.stop()


def counting(server: BackgroundServer) -> CountingConnector:
    entry = server.server.dispatcher.lookup(("counting", 0))
    assert isinstance(entry.connector, CountingConnector)
    return entry.connector


async def test_an_around_policy_answers_repeated_polls_from_state(stubs: Stubs, server: BackgroundServer) -> None:
    connector = counting(server)
    before = connector.gets
    request = get_request("counting", JobMeta("poll").encode())
    answers = [await stubs.async_.GetTask(request, timeout=5) for _ in range(3)]
    assert connector.gets == before + 1  # the class's min_poll_interval (60 s): one real get
    assert {a.resource.message for a in answers} == {f"get {before + 1}"}
    assert {a.resource.phase for a in answers} == {Phase.RUNNING}
    other = await stubs.async_.GetTask(get_request("counting", JobMeta("other").encode()), timeout=5)
    assert other.resource.message == f"get {before + 2}"  # another job is polled for real


async def test_hooks_run_in_order_and_exit_sees_the_outcome(stubs: Stubs) -> None:
    journal.clear()
    await stubs.async_.GetTask(get_request("counting", JobMeta("order").encode()), timeout=5)
    assert journal == [
        ("outer", "enter", "get"),
        ("inner", "enter", "get"),
        ("inner", "exit", None),
        ("outer", "exit", None),
    ]


async def test_an_enter_hook_refuses_with_a_status_and_every_exit_hears_of_it(stubs: Stubs) -> None:
    journal.clear()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.async_.GetTask(get_request("counting", JobMeta("refuse-me").encode()), timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "refused by the recorder" in (info.value.details() or "")
    # The outer policy refused: the inner one never entered, but both exits run (innermost first).
    assert journal == [
        ("outer", "enter", "get"),
        ("inner", "exit", "INVALID_ARGUMENT"),
        ("outer", "exit", "INVALID_ARGUMENT"),
    ]


async def test_policies_apply_only_where_their_factory_says(stubs: Stubs) -> None:
    journal.clear()
    meta = connectors.EchoMeta(job_id="plain").encode()
    got = await stubs.async_.GetTask(get_request("echo", meta), timeout=5)
    assert got.resource.phase == Phase.RUNNING
    assert journal == []  # the recorders declined every connector but "counting"
    created = await stubs.async_.CreateTask(create_request("counting"), timeout=5)
    assert created.resource_meta == JobMeta("j").encode()
    assert [(name, hook) for name, hook, _ in journal] == [
        ("outer", "enter"),
        ("inner", "enter"),
        ("inner", "exit"),
        ("outer", "exit"),
    ]


def test_pipelines_are_built_once_per_connector_and_operation_and_again_on_refresh() -> None:
    built.clear()
    registry = ConnectorRegistry([CountingConnector(), connectors.EchoConnector()])
    dispatcher = Dispatcher(registry, DispatchConfig(stall_threshold=None, policies=(recorder("only"),)))
    try:
        operations = ("create", "get", "delete", "do", "get_metrics", "get_logs")
        assert sorted(built) == sorted((label, op) for label in ("counting_v0", "echo_v0") for op in operations)
        pipeline = dispatcher.lookup(("counting", 0)).pipelines["get"]
        assert [type(p).__name__ for p in pipeline.policies] == ["Recorder"]
        assert dispatcher.lookup(("echo", 0)).pipelines["get"].policies == ()
        dispatcher.refresh()
        assert len(built) == 2 * 2 * len(operations)
        assert dispatcher.lookup(("counting", 0)).pipelines["get"] is not pipeline
    finally:
        dispatcher.close()


async def test_settings_come_from_the_class_then_the_operators_override() -> None:
    def dispatcher(**connectors_settings: Any) -> Dispatcher:
        config = DispatchConfig(
            stall_threshold=None, policies=(*DEFAULT_POLICIES, min_poll_interval), connectors=connectors_settings
        )
        return Dispatcher(ConnectorRegistry([CountingConnector()]), config)

    def policies(d: Dispatcher) -> list[str]:
        return [type(p).__name__ for p in d.lookup(("counting", 0)).pipelines["get"].policies]

    by_class, off_by_name, off_by_category = (
        dispatcher(),
        dispatcher(**{"Counting Connector": {"min_poll_interval": 0}}),
        dispatcher(**{"Counting Connector": {"min_poll_interval": 5}, "counting_v0": {"min_poll_interval": 0}}),
    )
    try:
        assert "MinPollInterval" in policies(by_class)
        assert "MinPollInterval" not in policies(off_by_name)
        assert "MinPollInterval" not in policies(off_by_category)  # the category is more specific than the name
        meta = JobMeta("s").encode()
        await off_by_name.get(("counting", 0), meta)
        second = await off_by_name.get(("counting", 0), meta)
        assert second.message == "get 2"
    finally:
        for d in (by_class, off_by_name, off_by_category):
            d.close()


class AnswerOnFailure(Policy):
    """A recover hook answering FAILED with the error's text (and recording what it saw of the call)."""

    seen: list[Any] = []
    bad = False

    async def recover(self, call: Call, error: Exception, proceed: Proceed) -> Any:
        self.seen.append((call.operation, call.task_category, call.resource_meta, call.deadline is not None))
        phase = Phase.UNDEFINED if self.bad else Phase.FAILED
        return call.answer(Resource(phase=phase, message=f"answered: {error}"))


async def test_a_recover_hook_answers_instead_of_an_error() -> None:
    policies = (lambda ctx: AnswerOnFailure() if ctx.operation == "get" else None,)
    dispatcher = Dispatcher(
        ConnectorRegistry([connectors.FaultyConnector()]), DispatchConfig(stall_threshold=None, policies=policies)
    )
    try:
        meta = b'{"mode": "raise"}'
        resource = await dispatcher.get(("faulty", 0), meta, timeout=10)
        assert resource.phase == Phase.FAILED and resource.message == "answered: get exploded"
        operation, category, seen_meta, has_deadline = AnswerOnFailure.seen[-1]
        assert (operation, str(category), seen_meta, has_deadline) == ("get", "faulty_v0", meta, True)
        # An answer goes through the same checks as the connector's own result.
        AnswerOnFailure.bad = True
        with pytest.raises(CallFailed) as info:
            await dispatcher.get(("faulty", 0), meta)
        assert info.value.code == grpc.StatusCode.INTERNAL and "phase UNDEFINED" in info.value.details
        resource = await dispatcher.get(("faulty", 0), b'{"mode": "queued"}')
        assert resource.phase == Phase.QUEUED
    finally:
        dispatcher.close()


class IdentityProbe(Policy):
    seen: list[Any] = []

    def enter(self, call: Call) -> None:
        self.seen.append((call.operation, call.task_execution_id, call.timeout))


async def test_a_create_policy_sees_the_task_execution_id(stubs: Stubs) -> None:
    registry = ConnectorRegistry([CountingConnector()])
    config = make_config(policies=(lambda ctx: IdentityProbe() if ctx.operation == "create" else None,))
    handle = serve_in_thread(registry, config)
    try:
        from .conftest import open_stubs

        own = await open_stubs(handle.address)
        request = create_request("counting")
        request.task_execution_metadata.task_execution_id.retry_attempt = 3
        request.task_execution_metadata.task_execution_id.node_execution_id.node_id = "n0"
        await own.async_.CreateTask(request, timeout=5)
        await own.channel.close()
    finally:
        handle.stop()
    operation, execution_id, timeout = IdentityProbe.seen[-1]
    assert operation == "create"
    assert execution_id.retry_attempt == 3 and execution_id.node_execution_id.node_id == "n0"
    assert timeout is not None and 0 < timeout < 6  # the client's 5 s, as grpc rounds it


async def test_the_transient_policy_still_wakes_the_phase_memory_only_when_needed() -> None:
    dispatcher = Dispatcher(
        ConnectorRegistry([connectors.FaultyConnector()]), DispatchConfig(stall_threshold=None, transient_backoff=0.01)
    )
    try:
        pipeline = dispatcher.lookup(("faulty", 0)).pipelines["get"]
        memory = pipeline.policies[0]
        assert type(memory).__name__ == "PhaseMemory" and memory.dormant
        await dispatcher.get(("faulty", 0), b'{"mode": "queued"}')
        assert memory.dormant  # a healthy connector pays nothing for it
        answer = await dispatcher.get(("faulty", 0), b'{"mode": "transient"}')
        assert answer.phase == Phase.RUNNING and not memory.dormant
    finally:
        dispatcher.close()
        await asyncio.sleep(0)
