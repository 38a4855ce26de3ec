"""Both state stores against one contract: the in-memory store and a real redis-server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from flyteconnect.state import MemoryStore, StateStore, open_store
from flyteconnect.state.redis import RedisStore


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        yield open_store("memory://")
        return
    redis_server = request.getfixturevalue("redis_server")
    redis_server.flush()
    made = open_store(redis_server.url)
    yield made
    await made.close()


async def test_get_set_delete(store: StateStore) -> None:
    assert await store.get("a") is None
    await store.set("a", b"one", ttl=60)
    assert await store.get("a") == b"one"
    await store.set("a", b"two", ttl=60)
    assert await store.get("a") == b"two"
    await store.delete("a")
    await store.delete("a")  # absent: no error
    assert await store.get("a") is None


async def test_set_if_absent_keeps_the_first(store: StateStore) -> None:
    assert await store.set_if_absent("k", b"first", ttl=60)
    assert not await store.set_if_absent("k", b"second", ttl=60)
    assert await store.get("k") == b"first"


async def test_get_or_set_claims_once_and_reads_after(store: StateStore) -> None:
    assert await store.get_or_set("g", b"mine", ttl=60) is None
    assert await store.get_or_set("g", b"theirs", ttl=60) == b"mine"
    assert await store.get("g") == b"mine"
    claims = await asyncio.gather(*(store.get_or_set("race2", str(i).encode(), ttl=60) for i in range(20)))
    assert claims.count(None) == 1
    assert {c for c in claims if c is not None} == {await store.get("race2")}


async def test_concurrent_set_if_absent_has_one_winner(store: StateStore) -> None:
    wins = await asyncio.gather(*(store.set_if_absent("race", str(i).encode(), ttl=60) for i in range(20)))
    assert wins.count(True) == 1
    winner = wins.index(True)
    assert await store.get("race") == str(winner).encode()


async def test_compare_and_set(store: StateStore) -> None:
    assert not await store.compare_and_set("c", b"x", b"y", ttl=60)  # absent is not "x"
    assert await store.get("c") is None
    await store.set("c", b"pending", ttl=60)
    assert not await store.compare_and_set("c", b"other", b"done", ttl=60)
    assert await store.compare_and_set("c", b"pending", b"done", ttl=60)
    assert await store.get("c") == b"done"


async def test_entries_expire(store: StateStore) -> None:
    await store.set("short", b"v", ttl=0.05)
    await store.set("long", b"v", ttl=60)
    for _ in range(200):  # bounded wait for the expiry, not a timing assertion
        if await store.get("short") is None:
            break
        await asyncio.sleep(0.02)
    assert await store.get("short") is None
    assert await store.get("long") == b"v"
    assert await store.set_if_absent("short", b"again", ttl=60)  # an expired entry is absent


@pytest.mark.parametrize("ttl", [0, -1.0])
async def test_ttl_must_be_positive(store: StateStore, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await store.set("k", b"v", ttl=ttl)


def test_memory_store_is_bounded_and_drops_the_oldest() -> None:
    store = MemoryStore(limit=3)

    async def run() -> None:
        for key in "abc":
            await store.set(key, key.encode(), ttl=60)
        await store.set("a", b"a2", ttl=60)  # rewritten: now the newest
        await store.set("d", b"d", ttl=60)  # full: "b", the oldest, goes
        assert len(store) == 3
        assert await store.get("b") is None
        assert [await store.get(k) for k in "acd"] == [b"a2", b"c", b"d"]

    asyncio.run(run())


def test_memory_store_drops_an_expired_oldest_entry_first() -> None:
    now = [0.0]
    store = MemoryStore(limit=10, clock=lambda: now[0])

    async def run() -> None:
        await store.set("old", b"v", ttl=1)
        await store.set("live", b"v", ttl=100)
        now[0] = 5.0
        await store.set("new", b"v", ttl=100)
        assert len(store) == 2  # "old" expired and was dropped by the write, before the limit asked for it
        assert await store.get("live") == b"v"

    asyncio.run(run())


def test_open_store_urls() -> None:
    assert isinstance(open_store(None), MemoryStore)
    limited = open_store("memory://?limit=7")
    assert isinstance(limited, MemoryStore) and limited.limit == 7
    redis_store = open_store("redis://user:s3cret@127.0.0.1:6390/2?prefix=app:")
    assert isinstance(redis_store, RedisStore)
    assert redis_store.prefix == "app:"
    assert "s3cret" not in redis_store.describe() and "6390/2" in redis_store.describe()
    with pytest.raises(ValueError, match="unknown state store URL scheme 'postgres'"):
        open_store("postgres://x")
    with pytest.raises(ValueError, match="limit must be an integer"):
        open_store("memory://?limit=lots")
    with pytest.raises(ValueError, match=">= 1"):
        open_store("memory://?limit=0")


async def test_redis_prefix_isolates_stores(redis_server: object) -> None:
    url = redis_server.url  # type: ignore[attr-defined]
    one, two = RedisStore(url, prefix="one:"), RedisStore(url, prefix="two:")
    try:
        await one.set("k", b"1", ttl=60)
        assert await two.get("k") is None
        assert await one.get("k") == b"1"
    finally:
        await one.close()
        await two.close()


async def test_redis_unreachable_is_a_clear_error() -> None:
    from support import free_port

    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(Exception, match=r"(?i)connect"):
            await store.ping()
    finally:
        await store.close()
