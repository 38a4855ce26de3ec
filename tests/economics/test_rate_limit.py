"""Rate limit and concurrency cap: GetTask without capacity answers the last known phase (never an error),
create and delete wait within their deadline, metrics count what was saved and delayed."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from flyteconnect import Phase, Resource
from flyteconnect.server.pipeline.rate_limit import TokenBucket

from .connectors import Counted
from .helpers import counter, serving


async def test_get_without_tokens_answers_the_last_known_phase() -> None:
    connector = Counted(rate=0.0001, burst=2)  # two calls, then none for hours
    connector.answers = [Resource(phase=Phase.RUNNING, message="real poll")]
    async with serving(connector, dispatch={"connectors": {"Counted": {"idempotent_create": False}}}) as (
        handle,
        client,
    ):
        meta = await client.create("a")  # token 1
        first = await client.get(meta)  # token 2
        later = [await client.get(meta) for _ in range(3)]  # no token: from the job's record
        assert connector.gets == 1
        assert first.message == "real poll" and all(r.phase == Phase.RUNNING for r in later)
        assert {r.message for r in later} == {"real poll"}
        assert counter(handle, "flyte_connector_calls_saved_total", task_type="counted", operation="get",
                       reason="rate_limited") == 3  # fmt: skip


async def test_get_of_a_job_never_seen_without_tokens_is_running_not_an_error() -> None:
    connector = Counted(rate=0.0001, burst=1)
    async with serving(connector) as (_, client):
        meta = await client.create("a")  # the only token
        answer = await client.get(meta)
        assert answer.phase == Phase.RUNNING and "rate limited" in answer.message
        assert connector.gets == 0


async def test_create_without_capacity_before_its_deadline_is_unavailable() -> None:
    connector = Counted(rate=0.0001, burst=1)
    async with serving(connector) as (_, client):
        await client.create("a")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await client.create("b")
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "rate limit" in (info.value.details() or "")
        assert connector.creates == 1


async def test_creates_wait_for_a_token() -> None:
    connector = Counted(rate=5, burst=1)  # a token every 200 ms: the four creates overlap
    async with serving(connector) as (handle, client):
        metas = await asyncio.gather(*(client.create(f"job-{i}") for i in range(4)))
        assert len(set(metas)) == 4 and connector.creates == 4
        assert counter(handle, "flyte_connector_calls_delayed_total", task_type="counted", operation="create") >= 1
        assert counter(handle, "flyte_connector_external_calls_total", task_type="counted", operation="create") == 4


async def test_the_concurrency_cap_holds_creates_in_line() -> None:
    connector = Counted(max_concurrency=1)
    connector.create_pause = 0.1
    async with serving(connector) as (handle, client):
        await asyncio.gather(*(client.create(f"job-{i}") for i in range(3)))
        assert connector.creates == 3
        assert connector.max_in_flight == 1
        assert counter(handle, "flyte_connector_calls_delayed_total", task_type="counted", operation="create") == 2


def test_token_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_time() == pytest.approx(0.5)
    now[0] = 0.5
    assert bucket.take() and not bucket.take()
    now[0] = 100.0
    assert sum(bucket.take() for _ in range(10)) == 3  # never more than the burst
    with pytest.raises(ValueError, match="rate > 0"):
        TokenBucket(rate=0, burst=1)
