"""Completion by callback through a real server: ``callback_url()`` in create (async and def), the posted result
answered by GetTask without calling the connector, on both state stores; without callbacks, create falls back."""

from __future__ import annotations

import asyncio

import httpx

from flyteconnect import Phase
from flyteconnect.server.callback_server import CallbackConfig

from .connectors import Counted, DefCreate
from .helpers import counter, serving

KEY = b"economics-tests-signing-key-0123456789"


def callbacks() -> CallbackConfig:
    return CallbackConfig(port=0, host="127.0.0.1", keys=(KEY,))


async def test_a_callback_completes_the_job_without_polling(state_url: str | None) -> None:
    connector = Counted()
    async with serving(connector, state_url=state_url, callback=callbacks()) as (handle, client):
        meta = await client.create("cb")
        url = connector.callback_urls[-1]
        assert url is not None and url.startswith(f"http://127.0.0.1:{handle.server.callback_port}/callback/")
        assert (await client.get(meta)).phase == Phase.RUNNING  # nothing reported yet: the connector is asked
        assert connector.gets == 1
        async with httpx.AsyncClient() as http:
            reply = await http.post(url, json={"phase": "SUCCEEDED", "message": "finished", "outputs": {"rows": 3}})
        assert reply.json() == {"recorded": True}
        done = await client.get(meta)
        assert done.phase == Phase.SUCCEEDED and done.message == "finished"
        assert done.outputs.literals["rows"].scalar.primitive.integer == 3
        assert connector.gets == 1  # answered from the callback
        assert counter(handle, "flyte_connector_calls_saved_total", task_type="counted", operation="get",
                       reason="callback") == 1  # fmt: skip


async def test_a_callback_that_beats_create_is_filed_when_create_returns() -> None:
    connector = Counted()
    connector.create_pause = 0.5  # the external system reports while create is still talking to it
    async with serving(connector, callback=callbacks()) as (_, client):
        creating = asyncio.ensure_future(client.create("early"))
        assert await asyncio.to_thread(connector.url_issued.wait, 10)
        url = connector.callback_urls[0]
        assert url is not None
        async with httpx.AsyncClient() as http:
            await http.post(url, json={"phase": "FAILED", "message": "quota exceeded"})
        meta = await creating
        answer = await client.get(meta)
        assert answer.phase == Phase.FAILED and answer.message == "quota exceeded"
        assert connector.gets == 0


async def test_a_def_create_gets_a_callback_url_too() -> None:
    connector = DefCreate()
    async with serving(connector, task_type="def_create", callback=callbacks()) as (_, client):
        meta = await client.create("def")
        assert connector.urls and "/callback/" in connector.urls[0]
        async with httpx.AsyncClient() as http:
            await http.post(connector.urls[0], json={"phase": "SUCCEEDED"})
        assert (await client.get(meta)).phase == Phase.SUCCEEDED


async def test_duplicate_creates_share_one_callback() -> None:
    connector = Counted()
    async with serving(connector, callback=callbacks()) as (_, client):
        first = await client.create("dup")
        second = await client.create("dup")
        assert first == second and connector.callback_urls == connector.callback_urls[:1]


async def test_without_callbacks_callback_url_is_unavailable_and_gets_poll() -> None:
    connector = Counted()
    async with serving(connector) as (_, client):
        meta = await client.create("plain")
        assert connector.callback_urls == [None]  # CallbacksUnavailable: the connector fell back to polling
        await client.get(meta)
        await client.get(meta)
        assert connector.gets == 2


async def test_a_replica_answers_a_callback_another_one_received(redis_server: object) -> None:
    url = redis_server.url  # type: ignore[attr-defined]
    redis_server.flush()  # type: ignore[attr-defined]
    a, b = Counted(), Counted()
    async with serving(a, state_url=url, callback=callbacks()) as (_, client_a), serving(
        b, state_url=url, callback=callbacks()
    ) as (handle_b, client_b):
        meta = await client_a.create("across")
        token_path = a.callback_urls[0].split("/callback/", 1)[1]  # type: ignore[union-attr]
        async with httpx.AsyncClient() as http:  # the external system reaches replica B
            await http.post(f"http://127.0.0.1:{handle_b.server.callback_port}/callback/{token_path}",
                            json={"phase": "SUCCEEDED"})  # fmt: skip
        assert (await client_b.get(meta)).phase == Phase.SUCCEEDED
        assert (await client_a.get(meta)).phase == Phase.SUCCEEDED
        assert a.gets == b.gets == 0
