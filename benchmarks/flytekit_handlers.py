"""Python function calls per servicer-method call, in-process: flyteconnect serving flytekit connectors vs flytekit.

Runs inside the compat virtualenv (``benchmarks.flytekit_compat --function-calls`` starts it there): the benchmark
connectors written against flytekit (``flytekit_connectors.py``) behind flyteconnect's Flyte 1 servicer (each
wrapped by ``flyteconnect.flytekit_compat``) and behind flytekit's own ``AsyncConnectorService``; each scenario's
request handled N times under cProfile. The count of Python calls (coroutine resumptions included) repeats exactly
run to run, where time on a shared machine does not; it is a proxy for interpreter work, not for time.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import pstats
import sys
from typing import Any

from benchmarks.handlers import _Context, _serialized
from benchmarks.scenarios import by_name

SCENARIOS = ("create", "get_outputs", "get_running", "delete")


class _FlytekitContext(_Context):
    """What flytekit's servicer uses of the context on an error (never, when the calls succeed)."""

    def set_code(self, code: Any) -> None:
        raise RuntimeError(f"flytekit's servicer failed: {code}")

    def set_details(self, details: str) -> None:
        raise RuntimeError(details)


def _methods(scenario: str) -> dict[str, Any]:
    from flytekit.extend.backend.connector_service import AsyncConnectorService as FlytekitService

    import benchmarks.flytekit_connectors  # noqa: F401  (registers into flytekit's registry)
    from flyteconnect.flytekit_compat import FlytekitConnectors
    from flyteconnect.registry import ConnectorRegistry
    from flyteconnect.server import flyteidl_v1
    from flyteconnect.server.dispatch import DispatchConfig, Dispatcher

    registry = ConnectorRegistry(FlytekitConnectors().registered_by("benchmarks.flytekit_connectors"))
    ours = flyteidl_v1.AsyncConnectorService(Dispatcher(registry, DispatchConfig(threads=2, stall_threshold=None)))
    sc = by_name(scenario)
    name = sc.path.rsplit("/", 1)[1]
    raw = sc.messages()[0].SerializeToString()
    parse = type(sc.messages()[0]).FromString
    ours_method, theirs_method = getattr(ours, name), getattr(FlytekitService(), name)

    async def flyteconnect() -> bytes:
        return _serialized(await ours_method(raw, _Context()))  # flyteconnect's handlers take raw bytes

    async def flytekit() -> bytes:
        return _serialized(await theirs_method(parse(raw), _FlytekitContext()))

    return {"flyteconnect": flyteconnect, "flytekit": flytekit}


def count(scenario: str, calls: int) -> dict[str, float]:
    """Python function calls per handled request, by server."""
    out: dict[str, float] = {}
    for server, method in _methods(scenario).items():

        async def run(n: int, method: Any = method) -> None:
            for _ in range(n):
                await method()

        asyncio.run(run(50))  # warm: first-use imports and memos
        profile = cProfile.Profile()
        profile.enable()
        asyncio.run(run(calls))
        profile.disable()
        out[server] = round(pstats.Stats(profile).total_calls / calls, 1)  # type: ignore[attr-defined]
    return out


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    print(json.dumps({sc: count(sc, n) for sc in SCENARIOS}))
