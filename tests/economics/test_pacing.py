"""Poll pacing: GetTask answers a job's last Resource between real polls, honours the connector's hint, keeps
terminal results until DeleteTask, and costs nothing for connectors without it."""

from __future__ import annotations

from flyteconnect import Phase, Resource
from flyteconnect.server.pipeline import JobState

from .connectors import Counted
from .helpers import counter, serving

SAVED = "flyte_connector_calls_saved_total"


async def test_polls_within_the_interval_are_answered_from_state(state_url: str | None) -> None:
    connector = Counted(poll_interval=3600)
    async with serving(connector, state_url=state_url) as (handle, client):
        first, second = await client.create("a"), await client.create("b")
        answers = [await client.get(first) for _ in range(5)] + [await client.get(second) for _ in range(3)]
        assert connector.gets == 2  # one real poll per job
        assert {(a.phase, a.message) for a in answers} == {(Phase.RUNNING, "running")}
        assert counter(handle, SAVED, task_type="counted", operation="get", reason="pacing") == 6
        assert counter(handle, "flyte_connector_external_calls_total", task_type="counted", operation="get") == 2


async def test_the_operator_overrides_the_connector_interval() -> None:
    connector = Counted(poll_interval=3600)
    async with serving(connector, dispatch={"connectors": {"Counted": {"poll_interval": 0}}}) as (handle, client):
        meta = await client.create()
        for _ in range(3):
            await client.get(meta)
        assert connector.gets == 3
        pipeline = handle.server.dispatcher.lookup(("counted", 0)).pipelines["get"]
        assert not any(isinstance(p, JobState) for p in pipeline.policies)  # pacing off: GetTask pays nothing


async def test_a_get_hint_defers_the_next_poll() -> None:
    connector = Counted()  # no interval: only the hint paces
    connector.answers = [Resource(phase=Phase.QUEUED, message="in line", poll_after=3600)]
    async with serving(connector, dispatch={"connectors": {"counted_v0": {"poll_interval": 0.000001}}}) as (
        _,
        client,
    ):
        meta = await client.create()
        answers = [await client.get(meta) for _ in range(4)]
        assert connector.gets == 1
        assert all(a.phase == Phase.QUEUED and a.message == "in line" for a in answers)


async def test_without_a_hint_the_connector_is_polled_again_once_the_interval_passed() -> None:
    connector = Counted(poll_interval=0.000001)  # passes before the next call arrives
    async with serving(connector) as (_, client):
        meta = await client.create()
        for _ in range(3):
            await client.get(meta)
        assert connector.gets == 3


async def test_terminal_results_are_kept_until_delete(state_url: str | None) -> None:
    connector = Counted(poll_interval=0.000001)
    connector.answers = [Resource(phase=Phase.SUCCEEDED, message="done", outputs={"n": 7})]
    async with serving(connector, state_url=state_url) as (handle, client):
        meta = await client.create()
        answers = [await client.get(meta) for _ in range(3)]
        assert connector.gets == 1
        assert all(a.phase == Phase.SUCCEEDED for a in answers)
        assert answers[2].outputs.literals["n"].scalar.primitive.integer == 7  # outputs kept with the result
        assert counter(handle, SAVED, task_type="counted", operation="get", reason="terminal") == 2
        await client.delete(meta)
        await client.get(meta)
        assert connector.gets == 2  # the record went with the job


async def test_servers_sharing_redis_share_the_pacing(redis_server: object) -> None:
    url = redis_server.url  # type: ignore[attr-defined]
    redis_server.flush()  # type: ignore[attr-defined]
    one, two = Counted(poll_interval=3600), Counted(poll_interval=3600)
    async with serving(one, state_url=url) as (_, a), serving(two, state_url=url) as (_, b):
        meta = await a.create()
        await a.get(meta)
        await b.get(meta)
        await b.get(meta)
        assert (one.gets, two.gets) == (1, 0)  # the second replica answered from the first one's poll


async def test_flyte2_polls_are_paced_too() -> None:
    import grpc
    from flyteidl2.connector import connector_pb2, service_pb2_grpc
    from flyteidl2.core import tasks_pb2 as v2_tasks

    connector = Counted(poll_interval=3600)
    async with serving(connector, protocols=["v1", "v2"]) as (handle, _):
        async with grpc.aio.insecure_channel(handle.address) as channel:
            stub = service_pb2_grpc.AsyncConnectorServiceStub(channel)
            created = await stub.CreateTask(
                connector_pb2.CreateTaskRequest(template=v2_tasks.TaskTemplate(type="counted"), output_prefix="/o"),
                timeout=10,
            )
            category = connector_pb2.TaskCategory(name="counted", version=0)
            request = connector_pb2.GetTaskRequest(task_category=category, resource_meta=created.resource_meta)
            answers = [(await stub.GetTask(request, timeout=10)).resource for _ in range(3)]
        assert connector.gets == 1
        assert {(a.phase, a.message) for a in answers} == {(Phase.RUNNING, "running")}
