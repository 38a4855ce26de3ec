"""The economics of polling: external calls saved by poll pacing, what the Redis store costs, memory per job.

    python -m benchmarks.polling                      # all three parts (~2 min on 2 cores)
    python -m benchmarks.polling --jobs 1000 --seconds 60 --requests 3000      # a smoke run

1. **External get calls**: ``--jobs`` jobs (10,000) polled Propeller-style: every job's GetTask every ``--period``
   seconds (10, Propeller's workflow re-evaluation period), start times spread over one period, for ``--seconds``
   simulated seconds, through the server's dispatcher and pipeline (in process, on a simulated clock). The
   connector counts the calls that reach it: external get calls per second without pacing and with
   ``poll_interval`` = ``--interval`` (60 s), and their ratio.
2. **GetTask req/s, Redis store / in-memory store**: ``flyteconnect serve`` with pacing on for the benchmark
   connector, driven by h2load with a running job's GetTask (answered from the job's record after the first poll),
   once with the default in-memory store and once with ``--state-url`` pointing at a ``redis-server`` on loopback
   started here; interleaved rounds, the median ratio. The same server without pacing (every poll reaches the
   connector) is shown for reference.
3. **Memory per tracked job**: the bytes one job's records take (a RUNNING job's pacing record plus its idempotency
   record), in the in-memory store (tracemalloc) and in Redis (``INFO memory``), over ``--jobs`` jobs.

Prints a markdown table; writes nothing else. Ratios, not absolute numbers, are what carry to other machines.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import payloads
from benchmarks.frames import write_body
from benchmarks.h2load import run_h2load
from benchmarks.servers import _free_port, flyteconnect_spec, start

__all__ = ["external_calls", "main", "memory_per_job", "store_req_per_s"]

BENCH_CATEGORY = f"{payloads.ASYNC_TYPE}_v0"


# ------------------------------------------------------------------------------------------- 1. external calls


@dataclass
class CallCounts:
    """External get calls per simulated second, without and with pacing."""

    polls: int
    without: float
    paced: float

    @property
    def ratio(self) -> float:
        """paced / without."""
        return self.paced / self.without


def external_calls(jobs: int, period: float, interval: float, seconds: float) -> CallCounts:
    """Part 1: drive ``jobs`` jobs' polls through a dispatcher on a simulated clock, with and without pacing."""
    return CallCounts(
        polls=int(jobs * seconds / period),
        without=asyncio.run(_poll_all(jobs, period, 0.0, seconds)) / seconds,
        paced=asyncio.run(_poll_all(jobs, period, interval, seconds)) / seconds,
    )


async def _poll_all(jobs: int, period: float, interval: float, seconds: float) -> int:
    """Simulated Propeller: job i is polled at i/jobs*period + k*period; returns the calls that reached ``get``."""
    from flyteconnect import AsyncConnectorBase, ConnectorRegistry, Phase, Resource, ResourceMeta
    from flyteconnect.server.dispatch import DispatchConfig, Dispatcher
    from flyteconnect.server.pipeline import JobState

    calls = 0

    @dataclass
    class Job(ResourceMeta):
        job_id: str

    class Remote(AsyncConnectorBase[Job]):
        """The external system: counts the polls that reach it."""

        name = "Remote"
        task_type_name = "remote"
        metadata_type = Job

        async def create(self, task_template: Any, output_prefix: str, inputs: Any = None, **kw: Any) -> Job:
            raise NotImplementedError

        async def get(self, resource_meta: Job, **kwargs: Any) -> Resource:
            nonlocal calls
            calls += 1
            return Resource(phase=Phase.RUNNING, message="running")

        async def delete(self, resource_meta: Job, **kwargs: Any) -> None:
            return None

    settings = {"Remote": {"poll_interval": interval}} if interval else {}
    dispatcher = Dispatcher(ConnectorRegistry([Remote()]), DispatchConfig(stall_threshold=None, connectors=settings))
    now = [0.0]
    for policy in dispatcher.lookup(("remote", 0)).pipelines["get"].policies:
        if isinstance(policy, JobState):
            policy.clock = lambda: now[0]
    metas = [Job(job_id=f"job-{i:05d}").encode() for i in range(jobs)]
    ticks = int(seconds / period)
    try:
        for tick in range(ticks):
            for i, meta in enumerate(metas):
                now[0] = tick * period + i * period / jobs
                await dispatcher.get(("remote", 0), meta)
    finally:
        dispatcher.close()
    return calls


# --------------------------------------------------------------------------------------- 2. Redis vs in-memory


class RedisProcess:
    """A throwaway ``redis-server`` on a free loopback port (no persistence)."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian: apt-get install redis-server)")
        self.dir = tempfile.mkdtemp(prefix="bench-redis-")
        self.port = _free_port()
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir, "--save", ""]
        self.proc = subprocess.Popen([*args, "--appendonly", "no"], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while self.cli("PING") != "PONG":
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def cli(self, *args: str) -> str:
        """``redis-cli`` output (stripped)."""
        out = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True)
        return out.stdout.strip()

    def used_memory(self) -> int:
        """``used_memory`` from ``INFO memory``."""
        for line in self.cli("INFO", "memory").splitlines():
            if line.startswith("used_memory:"):
                return int(line.split(":", 1)[1])
        raise RuntimeError("no used_memory in INFO memory")

    def stop(self) -> None:
        """Terminate and remove its directory."""
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def store_req_per_s(redis: RedisProcess, requests: int, rounds: int, log_dir: Path) -> dict[str, list[float]]:
    """Part 2: GetTask req/s per configuration, ``rounds`` interleaved rounds each."""
    pacing = ("--connector-setting", f"{BENCH_CATEGORY}:poll_interval=3600")
    specs = {
        "memory": flyteconnect_spec(label="paced-memory", extra=pacing),
        "redis": flyteconnect_spec(label="paced-redis", extra=(*pacing, "--state-url", redis.url)),
        "unpaced": flyteconnect_spec(label="unpaced"),
    }
    body = write_body(log_dir / "get.bin", [payloads.get_request(done=False)])
    results: dict[str, list[float]] = {name: [] for name in specs}
    servers = {name: start(spec, log_dir) for name, spec in specs.items()}
    try:
        for _ in range(rounds):
            for name, server in servers.items():
                run = run_h2load(server.url("/flyteidl.service.AsyncAgentService/GetTask"), body, requests, 4, 16)
                if run.succeeded != requests:
                    raise RuntimeError(f"{name}: {run.requests - run.succeeded} GetTask calls failed")
                results[name].append(run.req_per_s)
    finally:
        for server in servers.values():
            server.stop()
    return results


# --------------------------------------------------------------------------------------------- 3. memory per job


def memory_per_job(jobs: int, redis: RedisProcess) -> dict[str, float]:
    """Part 3: bytes per job of a RUNNING job's pacing record plus its idempotency record, in each store."""
    from flyteconnect import Phase, Resource
    from flyteconnect.server.pipeline.idempotent import DONE, create_key
    from flyteconnect.state import MemoryStore, StateStore, open_store
    from flyteconnect.state.jobs import JobRecord, job_key

    record = JobRecord.of(Resource(phase=Phase.RUNNING, message="running"), time.time(), "get", time.time() + 60)
    encoded = record.encode()

    async def fill(store: StateStore) -> None:
        for i in range(jobs):
            meta = f'{{"job_id": "job-{i:05d}", "region": "us-east-1"}}'.encode()
            await store.set(job_key(meta), encoded, ttl=600)
            await store.set(create_key(BENCH_CATEGORY, b"execution-%d" % i), DONE + meta, ttl=86_400)

    memory = MemoryStore(limit=4 * jobs)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    asyncio.run(fill(memory))
    in_memory = (tracemalloc.get_traced_memory()[0] - before) / jobs
    tracemalloc.stop()
    assert len(memory) == 2 * jobs

    async def fill_redis() -> None:
        store = open_store(redis.url)
        try:
            await fill(store)
        finally:
            await store.close()

    redis.cli("FLUSHALL")
    base = redis.used_memory()
    asyncio.run(fill_redis())
    in_redis = (redis.used_memory() - base) / jobs
    return {"memory": in_memory, "redis": in_redis, "record bytes": float(len(encoded))}


# ------------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Run the three parts and print a markdown report."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.polling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--period", type=float, default=10.0, help="Propeller's poll period per job, s")
    parser.add_argument("--interval", type=float, default=60.0, help="the connector's poll_interval, s")
    parser.add_argument("--seconds", type=float, default=300.0, help="simulated seconds of polling")
    parser.add_argument("--requests", type=int, default=20_000, help="GetTask calls per h2load round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    counts = external_calls(args.jobs, args.period, args.interval, args.seconds)
    simulated = time.perf_counter() - t0
    redis = RedisProcess()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-polling-") as tmp:
            rates = store_req_per_s(redis, args.requests, args.rounds, Path(tmp))
        per_job = memory_per_job(args.jobs, redis)
    finally:
        redis.stop()

    ratios = [r / m for r, m in zip(rates["redis"], rates["memory"], strict=True)]
    print(f"# Polling economics ({args.jobs} jobs, polled every {args.period:g} s, poll_interval {args.interval:g} s)")
    print()
    print("| measure | without pacing | with pacing | ratio |")
    print("|---|--:|--:|--:|")
    print(
        f"| external get calls/s ({counts.polls} polls over {args.seconds:g} simulated s, {simulated:.1f} s wall) "
        f"| {counts.without:.1f} | {counts.paced:.1f} | {counts.ratio:.3f} |"
    )
    print()
    print("| GetTask req/s (h2load, running job, answered from state) | rounds | median |")
    print("|---|---|--:|")
    for name in ("memory", "redis", "unpaced"):
        print(f"| {name} | {' / '.join(f'{r:.0f}' for r in rates[name])} | {statistics.median(rates[name]):.0f} |")
    print(f"| **Redis / in-memory** | {' / '.join(f'{r:.2f}' for r in ratios)} | {statistics.median(ratios):.2f} |")
    print()
    print("| memory per tracked job (pacing record + idempotency record) | bytes |")
    print("|---|--:|")
    print(f"| in-memory store (tracemalloc) | {per_job['memory']:.0f} |")
    print(f"| Redis (INFO used_memory) | {per_job['redis']:.0f} |")
    print(f"| the encoded pacing record alone | {per_job['record bytes']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
