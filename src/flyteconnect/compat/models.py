"""flytekit's model classes (``flytekit.models.*``) that connectors and their tests construct, as flyteidl protos.

Most of flytekit's models take the proto's field names as keywords, so the proto itself stands in (``Literal``,
``Scalar``, ``Identity``...). The ones below take positional arguments in flytekit, or are used through
``to_flyte_idl()``; they build the same protos.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flyteidl.core import execution_pb2, identifier_pb2

__all__ = [
    "Identifier",
    "NodeExecutionIdentifier",
    "TaskExecutionIdentifier",
    "TaskLog",
    "WorkflowExecutionIdentifier",
]


def Identifier(
    resource_type: int, project: str, domain: str, name: str, version: str, org: str = ""
) -> identifier_pb2.Identifier:
    """``flyteidl.core.Identifier`` from flytekit's positional arguments."""
    return identifier_pb2.Identifier(
        resource_type=resource_type, project=project, domain=domain, name=name, version=version, org=org
    )


def WorkflowExecutionIdentifier(
    project: str, domain: str, name: str, org: str = ""
) -> identifier_pb2.WorkflowExecutionIdentifier:
    """``flyteidl.core.WorkflowExecutionIdentifier`` from flytekit's positional arguments."""
    return identifier_pb2.WorkflowExecutionIdentifier(project=project, domain=domain, name=name, org=org)


def NodeExecutionIdentifier(node_id: str, execution_id: Any) -> identifier_pb2.NodeExecutionIdentifier:
    """``flyteidl.core.NodeExecutionIdentifier`` from flytekit's positional arguments."""
    return identifier_pb2.NodeExecutionIdentifier(node_id=node_id, execution_id=_pb(execution_id))


def TaskExecutionIdentifier(
    task_id: Any, node_execution_id: Any, retry_attempt: int = 0
) -> identifier_pb2.TaskExecutionIdentifier:
    """``flyteidl.core.TaskExecutionIdentifier`` from flytekit's positional arguments."""
    return identifier_pb2.TaskExecutionIdentifier(
        task_id=_pb(task_id), node_execution_id=_pb(node_execution_id), retry_attempt=retry_attempt
    )


@dataclass
class TaskLog:
    """flytekit's ``models.core.execution.TaskLog``: a log link; ``to_flyte_idl()`` gives the proto."""

    uri: str
    name: str
    message_format: int = execution_pb2.TaskLog.UNKNOWN
    ttl: Any = None
    ShowWhilePending: bool = False
    HideOnceFinished: bool = False

    def to_flyte_idl(self) -> execution_pb2.TaskLog:
        """The ``flyteidl.core.TaskLog`` proto."""
        pb = execution_pb2.TaskLog(
            uri=self.uri,
            name=self.name,
            message_format=self.message_format,
            ShowWhilePending=self.ShowWhilePending,
            HideOnceFinished=self.HideOnceFinished,
        )
        if self.ttl is not None:
            pb.ttl.FromTimedelta(self.ttl)
        return pb


def _pb(value: Any) -> Any:
    return value.to_flyte_idl() if hasattr(value, "to_flyte_idl") else value
