"""Connectors written against flytekit (the way its plugins are), registered into flytekit's ConnectorRegistry:
served by ``flyteconnect serve -m`` of this file unchanged.

``echo`` (``async def``) and ``echo_def`` (plain ``def``) read their inputs with flytekit's TypeEngine, remember them in
their resource_meta and return them as outputs from ``get``; the input ``mode`` picks a failure: ``recoverable``
(flytekit's FlyteRecoverableException in get), ``boom``
(ValueError in get). ``echo_sync`` is a sync connector (ExecuteTaskSync).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flytekit import FlyteContextManager
from flytekit.core.type_engine import TypeEngine
from flytekit.exceptions.user import FlyteRecoverableException
from flytekit.extend.backend.base_connector import (
    AsyncConnectorBase,
    ConnectorRegistry,
    Resource,
    ResourceMeta,
    SyncConnectorBase,
)
from flytekit.models.core.execution import TaskExecutionPhase
from flytekit.models.task import TaskExecutionMetadata, TaskTemplate

DELETED: list[str] = []


@dataclass
class EchoMeta(ResourceMeta):
    """What create saw."""

    text: str
    mode: str
    namespace: str
    prefix: str
    greeting: str


def _start(task_template: TaskTemplate, inputs: Any, output_prefix: str, metadata: TaskExecutionMetadata) -> EchoMeta:
    assert isinstance(task_template, TaskTemplate), type(task_template)  # flytekit's own models, as in pyflyte
    ctx = FlyteContextManager.current_context()
    values = TypeEngine.literal_map_to_kwargs(ctx, inputs, {"text": str, "mode": str})
    return EchoMeta(
        text=values["text"],
        mode=values["mode"],
        namespace=metadata.namespace,
        prefix=output_prefix,
        greeting=task_template.custom["greeting"],
    )


def _status(meta: EchoMeta) -> Resource:
    if meta.mode == "recoverable":
        raise FlyteRecoverableException("the echo service is busy")
    if meta.mode == "boom":
        raise ValueError("echo exploded")
    return Resource(
        phase=TaskExecutionPhase.SUCCEEDED,
        message=f"echoed {meta.text}",
        outputs={"echo": f"{meta.greeting} {meta.text}", "namespace": meta.namespace, "length": len(meta.text)},
        custom_info={"prefix": meta.prefix},
    )


class EchoConnector(AsyncConnectorBase):
    """async def methods."""

    name = "Echo Connector"

    def __init__(self, task_type_name: str = "echo") -> None:
        super().__init__(task_type_name=task_type_name, metadata_type=EchoMeta)

    async def create(
        self,
        task_template: TaskTemplate,
        output_prefix: str,
        inputs: Any = None,
        task_execution_metadata: Any = None,
        **kwargs: Any,
    ) -> EchoMeta:
        return _start(task_template, inputs, output_prefix, task_execution_metadata)

    async def get(self, resource_meta: EchoMeta, **kwargs: Any) -> Resource:
        return _status(resource_meta)

    async def delete(self, resource_meta: EchoMeta, **kwargs: Any) -> None:
        DELETED.append(resource_meta.text)


class EchoDefConnector(AsyncConnectorBase):
    """Plain def methods: run on a worker thread."""

    name = "Echo Def Connector"

    def __init__(self) -> None:
        super().__init__(task_type_name="echo_def", task_type_version=2, metadata_type=EchoMeta)

    def create(
        self,
        task_template: TaskTemplate,
        output_prefix: str,
        inputs: Any = None,
        task_execution_metadata: Any = None,
        **kwargs: Any,
    ) -> EchoMeta:
        return _start(task_template, inputs, output_prefix, task_execution_metadata)

    def get(self, resource_meta: EchoMeta, **kwargs: Any) -> Resource:
        return _status(resource_meta)

    def delete(self, resource_meta: EchoMeta, **kwargs: Any) -> None:
        DELETED.append(resource_meta.text)


class EchoSyncConnector(SyncConnectorBase):
    """A sync connector: one do call."""

    name = "Echo Sync Connector"

    def __init__(self) -> None:
        super().__init__(task_type_name="echo_sync")

    async def do(self, task_template: TaskTemplate, output_prefix: str, inputs: Any = None, **kwargs: Any) -> Resource:
        ctx = FlyteContextManager.current_context()
        text = TypeEngine.literal_map_to_kwargs(ctx, inputs, {"text": str, "mode": str})["text"]
        return Resource(phase=TaskExecutionPhase.SUCCEEDED, outputs={"echo": text.upper()})


for _connector in (EchoConnector(), EchoDefConnector(), EchoSyncConnector()):
    ConnectorRegistry.register(_connector)
