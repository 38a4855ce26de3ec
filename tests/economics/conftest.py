"""State store URLs for the policy tests: in memory and a real redis-server (flushed per test)."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["memory", "redis"])
def state_url(request: pytest.FixtureRequest) -> str | None:
    """None (the in-memory default) or the test Redis's URL."""
    if request.param == "memory":
        return None
    redis_server = request.getfixturevalue("redis_server")
    redis_server.flush()
    return str(redis_server.url)
