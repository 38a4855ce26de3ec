"""``RedisStore``: the state store replicas share, on redis-py's asyncio client (imported on first use)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from flyteconnect.state.base import StateStore, _check_ttl

__all__ = ["RedisStore"]

# Atomic in Redis: a script runs alone. KEYS[1] the key; ARGV expected, new value, ttl in milliseconds.
_COMPARE_AND_SET = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""


def _ms(ttl: float) -> int:
    _check_ttl(ttl)
    return max(1, round(ttl * 1000))


def _split_prefix(url: str) -> tuple[str, str]:
    """(the URL without our ``prefix`` query parameter, the prefix); redis-py would reject the parameter."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    prefix = query.pop("prefix", ["flyteconnect:"])[0]
    rest = urlencode({k: v[0] for k, v in query.items()})
    return urlunsplit(parts._replace(query=rest)), prefix


class RedisStore(StateStore):
    """Entries in Redis under ``prefix`` (default ``flyteconnect:``), each with a Redis expiry (``PX``).

    Bounded by those expiries; size Redis with ``maxmemory`` and ``maxmemory-policy volatile-ttl`` so a full Redis
    drops the entries closest to expiry rather than refusing writes. One connection pool per store, used from the
    event loop that first used it (the server's).
    """

    def __init__(self, url: str, *, prefix: str | None = None, client: Any = None) -> None:
        self._url, url_prefix = _split_prefix(url)
        self.prefix = url_prefix if prefix is None else prefix
        self._client = client
        self._cas: Any = None

    @property
    def client(self) -> Any:
        """The ``redis.asyncio.Redis`` client (created on first use)."""
        if self._client is None:
            try:
                import redis.asyncio
            except ImportError:
                raise RuntimeError(
                    "a Redis state store needs the 'redis' package: pip install 'flyteconnect[redis]'"
                ) from None
            self._client = redis.asyncio.Redis.from_url(self._url, socket_connect_timeout=5, health_check_interval=30)
        return self._client

    async def get(self, key: str) -> bytes | None:
        """The value under ``key``, or None."""
        value = await self.client.get(self.prefix + key)
        return None if value is None else bytes(value)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Keep ``value`` under ``key`` for ``ttl`` seconds."""
        await self.client.set(self.prefix + key, value, px=_ms(ttl))

    async def set_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        """``SET NX PX``: True when kept."""
        return bool(await self.client.set(self.prefix + key, value, px=_ms(ttl), nx=True))

    async def get_or_set(self, key: str, value: bytes, ttl: float) -> bytes | None:
        """``SET NX GET PX`` (Redis >= 7.0): the old value, or None when this one was kept."""
        old = await self.client.set(self.prefix + key, value, px=_ms(ttl), nx=True, get=True)
        return None if old is None else bytes(old)

    async def compare_and_set(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool:
        """A server-side script compares and sets in one step."""
        if self._cas is None:
            self._cas = self.client.register_script(_COMPARE_AND_SET)
        return bool(await self._cas(keys=[self.prefix + key], args=[expected, value, _ms(ttl)]))

    async def delete(self, key: str) -> None:
        """Forget ``key``."""
        await self.client.delete(self.prefix + key)

    async def ping(self) -> None:
        """Raise when Redis cannot be reached (``serve`` checks this at start)."""
        await self.client.ping()

    @property
    def shared(self) -> bool:
        """Always: other replicas read the same Redis."""
        return True

    async def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
            self._cas = None

    def describe(self) -> str:
        """``redis HOST:PORT/DB`` without credentials."""
        parts = urlsplit(self._url)
        if parts.scheme == "unix":
            return f"redis unix:{parts.path}"
        return f"redis {parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"
