"""The callback HTTP server on loopback, over both state stores: first result wins, replays harmless, limits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from flyteconnect import Phase
from flyteconnect.server.callback_server import CallbackConfig, CallbackServer
from flyteconnect.state import StateStore, open_store
from flyteconnect.state.jobs import JobRecord, job_key

KEY = b"a-test-signing-key-of-32-bytes!!"


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        yield open_store(None)
        return
    redis_server = request.getfixturevalue("redis_server")
    redis_server.flush()
    made = open_store(redis_server.url)
    yield made
    await made.close()


@pytest.fixture
async def callbacks(store: StateStore) -> AsyncIterator[CallbackServer]:
    server = CallbackServer(CallbackConfig(port=0, host="127.0.0.1", keys=(KEY,), max_body=4096), store)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def url_for(server: CallbackServer, job_id: str) -> str:
    assert server.signer is not None
    return server.signer.url(job_id)


async def test_base_url_defaults_to_the_bound_address(callbacks: CallbackServer, http: httpx.AsyncClient) -> None:
    assert url_for(callbacks, "j").startswith(f"http://127.0.0.1:{callbacks.port}/callback/j.")
    assert (await http.get(f"http://127.0.0.1:{callbacks.port}/healthz")).text == "ok"


async def test_result_after_create_lands_in_the_job_record(
    callbacks: CallbackServer, store: StateStore, http: httpx.AsyncClient
) -> None:
    await callbacks.inbox.link("job-1", b"resource-meta-1")
    body = {"phase": "SUCCEEDED", "message": "done", "outputs": {"rows": 3, "name": "x"}}
    reply = await http.post(url_for(callbacks, "job-1"), json=body)
    assert reply.status_code == 200 and reply.json() == {"recorded": True}
    record = JobRecord.decode(await store.get(job_key(b"resource-meta-1")))
    assert record is not None and record.source == "callback"
    resource = record.to_resource()
    assert resource.phase == Phase.SUCCEEDED and resource.message == "done"
    assert resource.outputs.to_python() == {"rows": 3, "name": "x"}


async def test_result_before_create_returned_is_filed_by_the_link(
    callbacks: CallbackServer, store: StateStore, http: httpx.AsyncClient
) -> None:
    reply = await http.post(url_for(callbacks, "job-2"), json={"phase": "failed", "message": "boom"})
    assert reply.json() == {"recorded": True}
    assert await store.get(job_key(b"meta-2")) is None  # not linked yet: nothing to file it under
    await callbacks.inbox.link("job-2", b"meta-2")
    record = JobRecord.decode(await store.get(job_key(b"meta-2")))
    assert record is not None and record.to_resource().phase == Phase.FAILED


async def test_replays_are_harmless_and_a_second_result_conflicts(
    callbacks: CallbackServer, store: StateStore, http: httpx.AsyncClient
) -> None:
    await callbacks.inbox.link("job-3", b"meta-3")
    url = url_for(callbacks, "job-3")
    first = {"phase": "SUCCEEDED", "outputs": {"n": 1}}
    assert (await http.post(url, json=first)).json() == {"recorded": True}
    replay = await http.post(url, json={"outputs": {"n": 1}, "phase": "SUCCEEDED"})  # same result, other key order
    assert replay.status_code == 200 and replay.json() == {"recorded": False}
    conflict = await http.post(url, json={"phase": "FAILED"})
    assert conflict.status_code == 409
    record = JobRecord.decode(await store.get(job_key(b"meta-3")))
    assert record is not None and record.to_resource().phase == Phase.SUCCEEDED


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"not json", 400, "not JSON"),
        (b"[1]", 400, "JSON object"),
        (b'{"phase": "RUNNING"}', 400, "'phase' must be one of"),
        (b'{"phase": "SUCCEEDED", "extra": 1}', 400, "unknown fields: extra"),
        (b'{"phase": "SUCCEEDED", "outputs": [1]}', 400, "'outputs' must be a JSON object"),
        (b'{"phase": "SUCCEEDED", "message": 5}', 400, "'message' must be a string"),
        (b'{"phase": "SUCCEEDED", "outputs": {"x": "' + b"y" * 5000 + b'"}}', 413, ""),
    ],
)
async def test_bad_bodies_are_refused(
    callbacks: CallbackServer, store: StateStore, http: httpx.AsyncClient, body: bytes, status: int, needle: str
) -> None:
    reply = await http.post(url_for(callbacks, "job-bad"), content=body)
    assert reply.status_code == status
    assert needle in reply.text
    assert await store.get("callback:job-bad") is None


async def test_bad_and_expired_tokens_are_refused(
    callbacks: CallbackServer, store: StateStore, http: httpx.AsyncClient
) -> None:
    from flyteconnect.callbacks import CallbackSigner

    base = f"http://127.0.0.1:{callbacks.port}/callback/"
    forged = CallbackSigner([b"another-key-of-enough-length!!"], base).issue("job-4")
    assert (await http.post(base + forged, json={"phase": "SUCCEEDED"})).status_code == 401
    expired = CallbackSigner([KEY], base, ttl=1, clock=lambda: 0.0).issue("job-4")
    reply = await http.post(base + expired, json={"phase": "SUCCEEDED"})
    assert reply.status_code == 410 and "expired" in reply.text
    assert (await http.get(base + forged)).status_code == 405
    assert await store.get("callback:job-4") is None


async def test_shared_store_without_a_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLYTECONNECT_CALLBACK_KEYS", raising=False)
    with pytest.raises(ValueError, match="every replica shares"):
        CallbackServer(CallbackConfig(port=0), open_store(None), shared=True)
    alone = CallbackServer(CallbackConfig(port=0), open_store(None))  # one process: a random key will do
    assert len(alone.keys) == 1 and len(alone.keys[0]) == 32
