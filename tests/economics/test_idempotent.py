"""Idempotent create: one external job per task execution attempt, on both protocols, across servers sharing Redis."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from .connectors import Counted
from .helpers import counter, serving


async def test_a_repeated_create_gets_the_first_resource_meta(state_url: str | None) -> None:
    connector = Counted()
    async with serving(connector, state_url=state_url) as (handle, client):
        first = await client.create("exec", attempt=0)
        again = await client.create("exec", attempt=0)
        retry = await client.create("exec", attempt=1)  # Propeller's next attempt is a new job
        other = await client.create("other", attempt=0)
        assert first == again
        assert len({first, retry, other}) == 3
        assert connector.creates == 3
        saved = counter(handle, "flyte_connector_calls_saved_total", task_type="counted", operation="create",
                        reason="idempotent")  # fmt: skip
        assert saved == 1


async def test_concurrent_duplicates_wait_for_the_first(state_url: str | None) -> None:
    connector = Counted()
    connector.create_pause = 0.3
    async with serving(connector, state_url=state_url) as (_, client):
        metas = await asyncio.gather(*(client.create("same") for _ in range(6)))
        assert len(set(metas)) == 1
        assert connector.creates == 1


async def test_a_failed_create_leaves_the_next_one_free_to_create() -> None:
    connector = Counted()
    connector.fail_creates = 1
    async with serving(connector) as (_, client):
        with pytest.raises(grpc.aio.AioRpcError):
            await client.create("flaky")
        meta = await client.create("flaky")
        assert b"job-2" in meta  # the second create made the job: the failed one's claim was dropped
        assert connector.creates == 2


async def test_creates_without_an_execution_id_pass_through() -> None:
    connector = Counted()
    async with serving(connector) as (_, client):
        await client.create(None)
        await client.create(None)
        assert connector.creates == 2


async def test_a_connector_or_the_operator_can_opt_out() -> None:
    opted_out = Counted(idempotent_create=False)
    async with serving(opted_out) as (_, client):
        assert await client.create("x") != await client.create("x")
        assert opted_out.creates == 2
    overridden = Counted()
    async with serving(overridden, dispatch={"connectors": {"Counted": {"idempotent_create": False}}}) as (_, client):
        await client.create("x")
        await client.create("x")
        assert overridden.creates == 2


async def test_servers_sharing_redis_start_one_job(redis_server: object) -> None:
    url = redis_server.url  # type: ignore[attr-defined]
    redis_server.flush()  # type: ignore[attr-defined]
    one, two = Counted(), Counted()
    one.create_pause = 0.3
    async with serving(one, state_url=url) as (_, a), serving(two, state_url=url) as (_, b):
        metas = await asyncio.gather(a.create("shared"), b.create("shared"), a.create("shared"), b.create("shared"))
        assert len(set(metas)) == 1
        assert one.creates + two.creates == 1


async def test_flyte2_creates_are_idempotent_too() -> None:
    from flyteidl2.connector import connector_pb2, service_pb2_grpc
    from flyteidl2.core import identifier_pb2 as v2_identifier
    from flyteidl2.core import tasks_pb2 as v2_tasks

    connector = Counted()
    async with serving(connector, protocols=["v1", "v2"]) as (handle, _):
        channel = grpc.aio.insecure_channel(handle.address)
        stub = service_pb2_grpc.AsyncConnectorServiceStub(channel)
        execution = v2_identifier.TaskExecutionIdentifier(retry_attempt=2)
        execution.node_execution_id.node_id = "n0"
        request = connector_pb2.CreateTaskRequest(
            template=v2_tasks.TaskTemplate(type="counted"),
            output_prefix="s3://b/o",
            task_execution_metadata=connector_pb2.TaskExecutionMetadata(task_execution_id=execution),
        )
        first = await stub.CreateTask(request, timeout=10)
        second = await stub.CreateTask(request, timeout=10)
        await channel.close()
        assert first.resource_meta == second.resource_meta
        assert connector.creates == 1
