"""1000 concurrent local runs (``await runner.arun``) against an in-process async connector.

Each job is a real asyncio task sleeping a different time (up to ``--slowest`` seconds); with a non-blocking runner
the whole batch should take about as long as the slowest job plus one poll interval. Prints wall time, the slowest
job and their ratio; asserts nothing.

    .venv/bin/python benchmarks/bench_local_concurrency.py [--runs 1000] [--slowest 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from flyteconnect import AsyncConnectorBase, ConnectorRegistry, Phase, Resource, ResourceMeta
from flyteconnect.local import ConnectorTask, LocalRunner, PollSchedule


@dataclass
class SleepMeta(ResourceMeta):
    job_id: int


class SleepConnector(AsyncConnectorBase[SleepMeta]):
    """Jobs are asyncio tasks sleeping ``seconds``; output ``y = x + 1``."""

    name = "Sleep"
    task_type_name = "bench_sleep_local"
    metadata_type = SleepMeta

    def __init__(self) -> None:
        super().__init__()
        self.jobs: dict[int, asyncio.Task[int]] = {}

    async def create(self, task_template: Any, output_prefix: str, inputs: Any = None, **kw: Any) -> SleepMeta:
        values = inputs.to_python()

        async def job() -> int:
            await asyncio.sleep(values["seconds"])
            return int(values["x"]) + 1

        job_id = len(self.jobs)
        self.jobs[job_id] = asyncio.ensure_future(job())
        return SleepMeta(job_id)

    async def get(self, resource_meta: SleepMeta, **kw: Any) -> Resource:
        task = self.jobs[resource_meta.job_id]
        if not task.done():
            return Resource(phase=Phase.RUNNING)
        return Resource(phase=Phase.SUCCEEDED, outputs={"y": task.result()})

    async def delete(self, resource_meta: SleepMeta, **kw: Any) -> None:
        self.jobs[resource_meta.job_id].cancel()


async def main(runs: int, slowest: float) -> None:
    task = ConnectorTask("sleep", "bench_sleep_local", inputs={"x": int, "seconds": float}, outputs={"y": int})
    poll = PollSchedule(0.05, 1.5, 0.2)
    runner = LocalRunner(ConnectorRegistry([SleepConnector()]), poll=poll, progress="none")
    rng = random.Random(7)
    durations = [rng.uniform(slowest / 5, slowest) for _ in range(runs - 1)] + [slowest]

    start = time.perf_counter()
    await runner.arun(task, x=0, seconds=slowest)
    alone = time.perf_counter() - start

    start, cpu = time.perf_counter(), time.process_time()
    results = await asyncio.gather(*(runner.arun(task, x=i, seconds=d) for i, d in enumerate(durations)))
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu
    assert results == [i + 1 for i in range(runs)], "wrong outputs"

    print(f"runs                     {runs}")
    print(f"slowest job              {slowest:.3f} s")
    print(f"one run alone            {alone:.3f} s  (slowest job + poll granularity)")
    print(f"{runs} concurrent runs    {wall:.3f} s")
    print(f"ratio wall / slowest     {wall / slowest:.2f}")
    print(f"ratio wall / one alone   {wall / alone:.2f}")
    print(f"CPU per run              {cpu / runs * 1e3:.2f} ms  (create, polls, outputs; a loaded host adds wall time)")
    print(f"serial estimate          {sum(durations):.1f} s  (one task at a time, as flytekit's mixin runs)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--slowest", type=float, default=1.0)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.slowest))
