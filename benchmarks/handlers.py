"""In-process handler cost: instructions per call of one servicer method, flyteconnect vs bare, without gRPC.

    python -m benchmarks.handlers                          # every scenario that has an in-process driver
    python -m benchmarks.handlers get_outputs create       # some of them
    python -m benchmarks.handlers --calls 500 4000         # the two call counts (default 1000 and 5000)

The server-level counts (``python -m benchmarks --instructions``) include grpc's C-core and asyncio's accept and
task machinery, the same work in both servers; this counts only what differs: the servicer method called on raw
request bytes with a stub context, awaited on a running loop, its reply serialized as grpc would. Each (server,
scenario) runs in a fresh interpreter under ``valgrind --tool=callgrind`` twice, with N1 and N2 calls, and
(I2 - I1) / (N2 - N1) cancels start-up and imports. Counts repeat to about 0.1 %: the tool for weighing a change
to the hot path before a req/s run. Requests and connectors are the req/s suite's (``payloads``, ``connectors``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.scenarios import by_name

__all__ = ["SCENARIOS", "count", "driver", "per_call", "replies"]

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("list_agents", "create", "get_outputs", "get_outputs_v2", "get_running", "delete", "execute_sync")
SERVERS = ("bare", "flyteconnect")

Call = Callable[[], Awaitable[Any]]


class _Context:
    """What the servicers use of ``grpc.aio.ServicerContext`` on a successful call (no deadline, as h2load sends)."""

    def time_remaining(self) -> float | None:
        return None

    async def abort(self, code: Any, details: str = "") -> None:
        raise RuntimeError(f"{code}: {details}")


def _serialized(reply: Any) -> bytes:
    """The reply as grpc sends it: bytes as they are (flyteconnect's SERIALIZED handlers), messages serialized."""
    return reply if type(reply) is bytes else reply.SerializeToString()  # type: ignore[no-any-return]


def _servicers(server: str) -> dict[str, Any]:
    if server == "bare":
        from benchmarks import bare_server

        pool = ThreadPoolExecutor(1)
        return {
            "async": bare_server.AsyncService(pool),
            "sync": bare_server.SyncService(),
            "metadata": bare_server.MetadataService(),
            "v2": bare_server.V2AsyncService(),
        }
    from benchmarks.connectors import CONNECTORS
    from flyteconnect import ConnectorRegistry
    from flyteconnect.server import flyteidl_v1, flyteidl_v2
    from flyteconnect.server.dispatch import DispatchConfig, Dispatcher

    # Exactly what `serve -m benchmarks/connectors.py` serves (not the process default, which others may fill).
    registry = ConnectorRegistry([cls() for cls in CONNECTORS])
    d = Dispatcher(registry, DispatchConfig(threads=2, stall_threshold=None))
    return {
        "async": flyteidl_v1.AsyncConnectorService(d),
        "sync": flyteidl_v1.SyncConnectorService(d),
        "metadata": flyteidl_v1.ConnectorMetadataService(d),
        "v2": flyteidl_v2.AsyncConnectorService(d),
    }


def driver(server: str, scenario: str) -> Call:
    """One call of ``scenario``'s method on ``server``'s servicer, giving the serialized reply."""
    if scenario not in SCENARIOS:
        raise ValueError(f"no in-process driver for {scenario!r}; known: {', '.join(SCENARIOS)}")
    s = _servicers(server)
    ctx = _Context()
    raw = [m.SerializeToString() for m in by_name(scenario).messages()]
    method_name = by_name(scenario).path.rsplit("/", 1)[1]
    service = {"list_agents": "metadata", "execute_sync": "sync", "get_outputs_v2": "v2"}.get(scenario, "async")
    method = getattr(s[service], method_name)
    # bare is registered with the generated deserializers: it is handed parsed requests, parsed here per call.
    request_type = type(by_name(scenario).messages()[0])
    parse = request_type.FromString if server == "bare" else (lambda b: b)

    if scenario == "execute_sync":

        async def stream() -> Any:
            async def requests() -> Any:
                for part in raw:
                    yield parse(part)

            replies = [r async for r in method(requests(), ctx)]
            (reply,) = replies
            return _serialized(reply)

        return stream

    async def unary() -> Any:
        return _serialized(await method(parse(raw[0]), ctx))

    return unary


def replies(scenario: str) -> dict[str, bytes]:
    """One serialized reply of ``scenario`` from each server (they should hold the same message)."""

    async def both() -> dict[str, bytes]:
        return {server: await driver(server, scenario)() for server in SERVERS}

    return asyncio.run(both())


def _child(server: str, scenario: str, calls: int) -> None:
    call = driver(server, scenario)

    async def loop() -> None:
        for _ in range(calls):
            await call()

    asyncio.run(loop())


_COLLECTED = re.compile(r"Collected : (\d+)")


def count(server: str, scenario: str, calls: int) -> int:
    """Instructions of a fresh interpreter making ``calls`` calls under callgrind (start-up included)."""
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "benchmarks.handlers",
        "--child",
        server,
        scenario,
        str(calls),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    found = _COLLECTED.search(proc.stderr)
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
    return int(found.group(1))


def per_call(server: str, scenario: str, calls: tuple[int, int] = (1000, 5000)) -> float:
    """Instructions per call of ``scenario`` on ``server``, start-up cancelled by two runs."""
    low, high = calls
    return (count(server, scenario, high) - count(server, scenario, low)) / (high - low)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("scenarios", nargs="*", help=f"default: {' '.join(SCENARIOS)}")
    parser.add_argument("--calls", type=int, nargs=2, default=(1000, 5000), metavar=("N1", "N2"))
    parser.add_argument("--child", nargs=3, metavar=("SERVER", "SCENARIO", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        server, scenario, n = args.child
        _child(server, scenario, int(n))
        return
    names = args.scenarios or list(SCENARIOS)
    print("| scenario | bare k instr/call | flyteconnect k instr/call | extra k |")
    print("|---|--:|--:|--:|")
    for name in names:
        bare, ours = (per_call(server, name, tuple(args.calls)) for server in SERVERS)
        print(f"| {name} | {bare / 1000:.1f} | {ours / 1000:.1f} | {(ours - bare) / 1000:.1f} |", flush=True)


if __name__ == "__main__":
    main()
