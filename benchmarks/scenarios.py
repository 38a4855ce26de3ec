"""The benchmark scenarios: which gRPC method, which request, how much concurrency, which target.

Adding a scenario is one ``Scenario(...)`` entry in SCENARIOS: a name, the method path, a function returning the
request message(s) and, if it has one, the target ratio to the bare servicer. A scenario for another protocol (Flyte 2)
also needs its service in benchmarks/bare_server.py (SERVICES) so the ceiling is measured the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from google.protobuf.message import Message

from benchmarks import payloads

__all__ = ["SCENARIOS", "Scenario", "by_name", "select"]

ASYNC = "/flyteidl.service.AsyncAgentService/"
SYNC = "/flyteidl.service.SyncAgentService/"
METADATA = "/flyteidl.service.AgentMetadataService/"
V2_ASYNC = "/flyteidl2.connector.AsyncConnectorService/"


@dataclass(frozen=True)
class Scenario:
    """One load pattern, run against the bare servicer and the server under test in the same run."""

    name: str
    title: str
    path: str
    messages: Callable[[], Sequence[Message]]
    """The request message(s) of one call; several for a stream the client sends and then half-closes."""
    streaming: bool = False
    """Client-streaming or bidi (verified with a stream call; h2load sends all frames then end-of-stream)."""
    in_flight: int = 128
    """Concurrent calls: h2load clients x streams per client."""
    clients: int = 4
    target: float | None = None
    """Required req/s ratio of the server under test to the baseline (reported pass/fail, never asserted)."""
    subject: str = "flyteconnect"
    """Which server variant is measured: a key of the runner's servers ("flyteconnect", "flyteconnect-w2")."""
    pool_bound: bool = False
    """Throughput is bounded by the thread pool: also compare with pool_size / SLEEP_SECONDS."""
    flytekit: bool = True
    """Also run against flytekit with --against-flytekit."""
    note: str = ""
    versus: str | None = None
    """Another scenario's name: its request also runs on the subject server, back to back with this one in every
    round, and the report gives this scenario's req/s over that one's (same server, same run)."""
    versus_target: float | None = None
    """Required ratio to ``versus`` (reported pass/fail, never asserted)."""

    @property
    def versus_label(self) -> str | None:
        """The runner's label for the ``versus`` runs: ``<subject>:<versus>``."""
        return f"{self.subject}:{self.versus}" if self.versus else None

    @property
    def streams(self) -> int:
        """Max concurrent streams per h2load client."""
        return max(1, -(-self.in_flight // self.clients))


SCENARIOS: list[Scenario] = [
    Scenario("list_agents", "ListAgents", METADATA + "ListAgents", lambda: [payloads.list_agents_request()]),
    Scenario(
        "create",
        "CreateTask (template + inputs)",
        ASYNC + "CreateTask",
        lambda: [payloads.create_request()],
        target=0.9,
    ),
    Scenario(
        "get_outputs",
        "GetTask, succeeded with outputs",
        ASYNC + "GetTask",
        lambda: [payloads.get_request(done=True)],
        target=0.9,
    ),
    Scenario(
        "get_outputs_v2",
        "Flyte 2 GetTask, succeeded with outputs",
        V2_ASYNC + "GetTask",
        lambda: [payloads.v2_get_request(done=True)],
        flytekit=False,
        versus="get_outputs",
        versus_target=0.9,
        note="flyteidl2.connector; same connector and outputs as get_outputs",
    ),
    Scenario(
        "get_running",
        "GetTask, running (no outputs)",
        ASYNC + "GetTask",
        lambda: [payloads.get_request(done=False)],
        target=0.9,
    ),
    Scenario("delete", "DeleteTask", ASYNC + "DeleteTask", lambda: [payloads.delete_request()], target=0.9),
    Scenario(
        "execute_sync",
        "ExecuteTaskSync (header + inputs)",
        SYNC + "ExecuteTaskSync",
        payloads.execute_sync_requests,
        streaming=True,
        target=0.85,
    ),
    Scenario(
        "get_await_50ms",
        "GetTask, async connector awaits 50 ms, 1000 in flight",
        ASYNC + "GetTask",
        lambda: [payloads.get_request(payloads.SLEEP_TYPE, done=False)],
        in_flight=1000,
        clients=10,
        target=0.9,
        note="baseline also awaits 50 ms",
    ),
    Scenario(
        "get_blocking_50ms",
        "GetTask, def connector sleeps 50 ms (thread pool)",
        ASYNC + "GetTask",
        lambda: [payloads.get_request(payloads.BLOCKING_TYPE, done=False)],
        in_flight=200,
        pool_bound=True,
        target=0.9,
        note="baseline sleeps on a pool of the same size; bound = pool size / 50 ms",
    ),
    Scenario(
        "get_outputs_workers2",
        "GetTask with outputs, --workers 2 vs one bare process",
        ASYNC + "GetTask",
        lambda: [payloads.get_request(done=True)],
        clients=8,
        target=1.3,
        subject="flyteconnect-w2",
        flytekit=False,
    ),
]


def by_name(name: str) -> Scenario:
    """The scenario called ``name`` (KeyError when there is none)."""
    for sc in SCENARIOS:
        if sc.name == name:
            return sc
    raise KeyError(name)


def select(names: Sequence[str] | None) -> list[Scenario]:
    """The scenarios named (all when ``names`` is empty); unknown names raise ValueError listing the known ones."""
    if not names:
        return list(SCENARIOS)
    by_name = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
    return [by_name[n] for n in names]
