"""A connector written for flytekit works on flyteconnect with only its import lines changed."""

from __future__ import annotations

import sys
import types

from flyteidl.core import literals_pb2, tasks_pb2

import flyteconnect
from flyteconnect import ConnectorRegistry, LiteralMap, TaskTemplate
from flyteconnect.literals import to_literal

# Written as in flytekit's connector guide (flytekit 1.16).
FLYTEKIT_SOURCE = """
from dataclasses import dataclass
from typing import Optional

from flyteidl.core.execution_pb2 import TaskExecution

from flytekit.extend.backend.base_connector import AsyncConnectorBase, ConnectorRegistry, Resource, ResourceMeta
from flytekit.extend.backend.utils import convert_to_flyte_phase, get_connector_secret
from flytekit.models.literals import LiteralMap
from flytekit.models.task import TaskTemplate

JOBS = {}


@dataclass
class MyJobMeta(ResourceMeta):
    job_id: str
    attempts: int = 0


class MyAsyncConnector(AsyncConnectorBase):
    name = "My Async Connector"

    def __init__(self):
        super().__init__(task_type_name="my_task", metadata_type=MyJobMeta)

    async def create(
        self, task_template: TaskTemplate, inputs: Optional[LiteralMap] = None, output_prefix: str = "", **kwargs
    ) -> MyJobMeta:
        x = inputs.literals["x"].scalar.primitive.integer
        job_id = f"{task_template.id.name}-{x}"
        JOBS[job_id] = {"state": "RUNNING", "x": x, "token": get_connector_secret("my_token")}
        return MyJobMeta(job_id=job_id)

    async def get(self, resource_meta: MyJobMeta, **kwargs) -> Resource:
        job = JOBS[resource_meta.job_id]
        phase = convert_to_flyte_phase(job["state"])
        outputs = {"y": job["x"] * 2} if phase == TaskExecution.SUCCEEDED else None
        return Resource(phase=phase, message=job["state"], outputs=outputs)

    async def delete(self, resource_meta: MyJobMeta, **kwargs):
        JOBS.pop(resource_meta.job_id, None)


ConnectorRegistry.register(MyAsyncConnector())
"""

IMPORTS = {
    "from flytekit.extend.backend.base_connector import": "from flyteconnect import",
    "from flytekit.extend.backend.utils import convert_to_flyte_phase, get_connector_secret": (
        "from flyteconnect import convert_to_flyte_phase\nfrom flyteconnect.secrets import get_connector_secret"
    ),
    "from flytekit.models.literals import": "from flyteconnect import",
    "from flytekit.models.task import": "from flyteconnect import",
}


def _port(source: str) -> str:
    lines = []
    for line in source.splitlines():
        for old, new in IMPORTS.items():
            if line.startswith(old):
                line = line.replace(old, new)
        lines.append(line)
    return "\n".join(lines)


async def test_flytekit_connector_runs_with_only_imports_changed(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ported = _port(FLYTEKIT_SOURCE)

    def body(source: str) -> list[str]:
        return [line for line in source.splitlines() if not line.startswith(("from ", "import "))]

    assert ported != FLYTEKIT_SOURCE and body(ported) == body(FLYTEKIT_SOURCE)  # only import lines differ

    monkeypatch.setattr(ConnectorRegistry, "_default", None)
    monkeypatch.setenv("_FSEC_MY_TOKEN", "s3cret")
    module = types.ModuleType("ported_connector")
    monkeypatch.setitem(sys.modules, "ported_connector", module)  # dataclasses look their module up
    exec(compile(ported, "ported_connector.py", "exec"), module.__dict__)

    connector = flyteconnect.ConnectorRegistry.get_connector("my_task")
    template = TaskTemplate.from_flyte_idl(tasks_pb2.TaskTemplate(type="my_task", id={"name": "job"}))
    inputs = LiteralMap.from_flyte_idl(literals_pb2.LiteralMap(literals={"x": to_literal(21)}))
    meta = await connector.create(task_template=template, inputs=inputs, output_prefix="/tmp/out")
    assert meta.encode() == b'{"job_id": "job-21", "attempts": 0}'
    assert module.JOBS["job-21"]["token"] == "s3cret"

    decoded = connector.metadata_type.decode(meta.encode())
    running = await connector.get(resource_meta=decoded)
    assert (running.phase, running.outputs) == (flyteconnect.Phase.RUNNING, None)

    module.JOBS["job-21"]["state"] = "SUCCEEDED"
    done = (await connector.get(resource_meta=decoded)).to_flyte_idl()
    assert done.phase == flyteconnect.Phase.SUCCEEDED
    assert done.outputs.literals["y"].scalar.primitive.integer == 42

    await connector.delete(resource_meta=decoded)
    assert module.JOBS == {}
