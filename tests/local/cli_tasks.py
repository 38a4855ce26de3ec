"""Tasks and connectors for the ``flyteconnect run`` tests; imported by the CLI (also in child processes).

Importing registers the connectors in the process default registry, as a user's module would. ``FC_CALL_LOG`` names a
file where the Forever connector appends one line per create and per delete, so a parent process can count them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from flyteconnect import AsyncConnectorBase, ConnectorRegistry, Phase, Resource, ResourceMeta, SyncConnectorBase
from flyteconnect.local import ConnectorTask


def _record(event: str) -> None:
    path = os.environ.get("FC_CALL_LOG")
    if path:
        with open(path, "a") as f:
            f.write(event + "\n")


@dataclass
class ForeverMeta(ResourceMeta):
    job: str


class Forever(AsyncConnectorBase[ForeverMeta]):
    """A job that never ends (until deleted)."""

    name = "Forever"
    task_type_name = "cli_forever"
    metadata_type = ForeverMeta

    async def create(self, task_template: Any, output_prefix: str, inputs: Any = None, **kw: Any) -> ForeverMeta:
        _record("create")
        return ForeverMeta("f1")

    async def get(self, resource_meta: ForeverMeta, **kw: Any) -> Resource:
        return Resource(phase=Phase.RUNNING, message="still going")

    async def delete(self, resource_meta: ForeverMeta, **kw: Any) -> None:
        _record("delete")


class Describe(SyncConnectorBase):
    """Echoes its typed inputs back as outputs; fails when asked to."""

    name = "Describe"
    task_type_name = "cli_describe"

    def do(self, task_template: Any, output_prefix: str, inputs: Any = None, **kw: Any) -> Resource:
        values = inputs.to_python({"x": int, "ratio": float, "tags": list[str], "flag": bool})
        if values["x"] < 0:
            return Resource(phase=Phase.FAILED, message="x must not be negative")
        summary = f"{values['ratio']:.1f}|{','.join(values['tags'])}|{values['flag']}"
        return Resource(phase=Phase.SUCCEEDED, outputs={"y": values["x"] * 2, "summary": summary})


ConnectorRegistry.register(Forever())
ConnectorRegistry.register(Describe())

forever = ConnectorTask("forever", "cli_forever", inputs={"x": int}, outputs={"y": int})
describe = ConnectorTask(
    "describe",
    "cli_describe",
    inputs={"x": int, "ratio": float, "tags": list[str], "flag": bool},
    outputs={"y": int, "summary": str},
)
not_a_task = 42
