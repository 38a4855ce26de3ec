"""Turning what a test passes (a ConnectorTask, a TaskTemplate, a dict of inputs) into the protos Propeller sends."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flyteidl.admin import agent_pb2
from flyteidl.core import identifier_pb2, interface_pb2, literals_pb2, tasks_pb2

from flyteconnect.connector import TaskCategory

if TYPE_CHECKING:
    from flyteconnect.local.backend import Job

__all__ = ["PreparedTask", "execution_metadata", "prepare_task"]


@dataclass(frozen=True)
class PreparedTask:
    """A task template, its converted inputs, and the Python types known for its outputs."""

    name: str
    template: tasks_pb2.TaskTemplate
    inputs: literals_pb2.LiteralMap
    output_types: Mapping[str, Any]

    @property
    def category(self) -> TaskCategory:
        """The (task type, version) the template asks for."""
        return TaskCategory(self.template.type, self.template.task_type_version)

    @property
    def declares_outputs(self) -> bool:
        """True when the template's interface declares output variables."""
        return bool(self.template.interface.outputs.variables)

    def job(self, output_prefix: str) -> Job:
        """A local job for this task writing under ``output_prefix``, with the metadata Propeller would send."""
        from flyteconnect.local.backend import Job

        return Job(
            task_name=self.name,
            template=self.template,
            inputs=self.inputs,
            output_prefix=output_prefix,
            execution_metadata=execution_metadata(self.template),
            execution_id=uuid.uuid4().hex,
        )


def _template_of(task: Any) -> tasks_pb2.TaskTemplate:
    if isinstance(task, tasks_pb2.TaskTemplate):
        return task
    if hasattr(task, "task_template") and callable(task.task_template):  # ConnectorTask and the executor mixins
        return task.task_template()  # type: ignore[no-any-return]
    if hasattr(task, "to_flyte_idl"):  # the TaskTemplate view handed to connectors
        pb = task.to_flyte_idl()
        if isinstance(pb, tasks_pb2.TaskTemplate):
            return pb
    raise TypeError(
        f"expected a ConnectorTask, a flyteidl.core.TaskTemplate or a TaskTemplate view, got {type(task).__name__}"
    )


def minimal_template(category: TaskCategory, name: str = "test-task") -> tasks_pb2.TaskTemplate:
    """A TaskTemplate for ``category`` with no interface: what a test uses when the task itself does not matter."""
    return tasks_pb2.TaskTemplate(
        id=identifier_pb2.Identifier(
            resource_type=identifier_pb2.TASK, project="flyteconnect", domain="development", name=name, version="test"
        ),
        type=category.name,
        task_type_version=category.version,
        interface=interface_pb2.TypedInterface(),
    )


def prepare_task(task: Any, inputs: Mapping[str, Any] | Any | None) -> PreparedTask:
    """Resolve ``task`` to a TaskTemplate and convert ``inputs`` (Python values, or a LiteralMap) to literals.

    Python values are converted with the task's declared input types when it has them (a ConnectorTask does), else
    by their runtime types.
    """
    template = _template_of(task)
    name = getattr(task, "name", None) or template.id.name or template.type
    input_types: Mapping[str, Any] = getattr(task, "input_types", None) or {}
    output_types: Mapping[str, Any] = getattr(task, "output_types", None) or {}
    return PreparedTask(str(name), template, to_literal_map(inputs, input_types), dict(output_types))


def to_literal_map(inputs: Mapping[str, Any] | Any | None, types: Mapping[str, Any]) -> literals_pb2.LiteralMap:
    """Inputs as a ``flyteidl.core.LiteralMap``: protos and views pass through, dicts are converted."""
    if inputs is None:
        return literals_pb2.LiteralMap()
    if isinstance(inputs, literals_pb2.LiteralMap):
        return inputs
    if hasattr(inputs, "to_flyte_idl"):
        return inputs.to_flyte_idl()  # type: ignore[no-any-return]
    from flyteconnect import literals

    values = dict(inputs)
    hints = {k: types[k] for k in values if k in types}
    return literals.to_literal_map(values, hints or None)


def execution_metadata(
    template: tasks_pb2.TaskTemplate, execution_name: str | None = None
) -> agent_pb2.TaskExecutionMetadata:
    """The TaskExecutionMetadata Propeller sends: only the fields v1.16.8 fills (not max_attempts, interruptible...)."""
    project = template.id.project or "flyteconnect"
    domain = template.id.domain or "development"
    workflow = identifier_pb2.WorkflowExecutionIdentifier(
        project=project, domain=domain, name=execution_name or "t" + uuid.uuid4().hex[:19]
    )
    return agent_pb2.TaskExecutionMetadata(
        task_execution_id=identifier_pb2.TaskExecutionIdentifier(
            task_id=template.id,
            node_execution_id=identifier_pb2.NodeExecutionIdentifier(node_id="n0", execution_id=workflow),
            retry_attempt=0,
        ),
        namespace=f"{project}-{domain}",
        k8s_service_account="default",
    )
