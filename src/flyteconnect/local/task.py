"""ConnectorTask: a task served by a connector, declared in Python, run locally or exported as a TaskTemplate."""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any, Union

from flyteidl.core import identifier_pb2, interface_pb2, literals_pb2, security_pb2, tasks_pb2
from google.protobuf import duration_pb2, struct_pb2

from flyteconnect import __version__
from flyteconnect.connector import TaskCategory
from flyteconnect.literals import to_literal_type
from flyteconnect.local.mixins import AsyncConnectorExecutorMixin

__all__ = ["ConnectorTask", "SecretRequest"]

SecretRequest = Union[security_pb2.Secret, str, Any]
"""A ``flyteidl.core.Secret`` proto, an object with ``to_flyte_idl()`` (flytekit's ``Secret``), or ``"group/key"``."""

_DEFAULT_PROJECT = "flyteconnect"
_DEFAULT_DOMAIN = "development"
_DEFAULT_VERSION = "local"


def _variable_map(types: Mapping[str, Any]) -> interface_pb2.VariableMap:
    # flytekit uses the variable name as its description when the docstring gives none; we do the same.
    return interface_pb2.VariableMap(
        variables={
            name: interface_pb2.Variable(type=to_literal_type(tp), description=name) for name, tp in types.items()
        }
    )


def _secret(obj: SecretRequest) -> security_pb2.Secret:
    if isinstance(obj, security_pb2.Secret):
        return obj
    if hasattr(obj, "to_flyte_idl"):
        pb = obj.to_flyte_idl()
        out = security_pb2.Secret()
        out.ParseFromString(pb.SerializeToString())
        return out
    if isinstance(obj, str):
        group, _, key = obj.rpartition("/")
        return security_pb2.Secret(group=group, key=key)
    raise TypeError(f"secret request must be a flyteidl Secret, a flytekit Secret or 'group/key', got {obj!r}")


def _container(obj: Any) -> tasks_pb2.Container:
    if isinstance(obj, tasks_pb2.Container):
        return obj
    if isinstance(obj, Mapping):
        fields = dict(obj)
        env = fields.pop("env", None) or {}
        if isinstance(env, Mapping):
            fields["env"] = [literals_pb2.KeyValuePair(key=k, value=str(v)) for k, v in env.items()]
        else:
            fields["env"] = env
        return tasks_pb2.Container(**fields)
    raise TypeError(f"container must be a flyteidl Container or a dict of its fields, got {type(obj).__name__}")


def _sql(obj: Any) -> tasks_pb2.Sql:
    if isinstance(obj, tasks_pb2.Sql):
        return obj
    if isinstance(obj, str):
        return tasks_pb2.Sql(statement=obj, dialect=tasks_pb2.Sql.ANSI)
    raise TypeError(f"sql must be a statement string or a flyteidl Sql, got {type(obj).__name__}")


def _seconds(timeout: datetime.timedelta | float | None) -> float | None:
    if timeout is None:
        return None
    seconds = timeout.total_seconds() if isinstance(timeout, datetime.timedelta) else float(timeout)
    if seconds <= 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    return seconds


class ConnectorTask(AsyncConnectorExecutorMixin):
    """A task executed by the connector registered for ``task_type`` (and ``task_type_version``).

    ``ConnectorTask(name="q", task_type="my_type", inputs={"x": int}, outputs={"y": str}, custom={...},
    timeout=timedelta(minutes=5))``. ``to_task_template()`` gives the ``flyteidl.core.TaskTemplate`` Propeller would
    send; ``task(x=1)`` runs it locally (``await task.arun(x=1)`` in async code) and returns the single output, a
    tuple with attribute access for several, or None.
    """

    def __init__(
        self,
        name: str,
        task_type: str,
        task_type_version: int = 0,
        *,
        inputs: Mapping[str, Any] | None = None,
        outputs: Mapping[str, Any] | None = None,
        custom: Mapping[str, Any] | None = None,
        config: Mapping[str, str] | None = None,
        timeout: datetime.timedelta | float | None = None,
        retries: int = 0,
        interruptible: bool = False,
        secret_requests: Iterable[SecretRequest] = (),
        container: Any = None,
        sql: Any = None,
        project: str = _DEFAULT_PROJECT,
        domain: str = _DEFAULT_DOMAIN,
        version: str = _DEFAULT_VERSION,
    ) -> None:
        if not name or not isinstance(name, str):
            raise ValueError("ConnectorTask needs a non-empty name")
        if not task_type or not isinstance(task_type, str):
            raise ValueError(f"ConnectorTask {name!r} needs a non-empty task_type")
        if container is not None and sql is not None:
            raise ValueError(f"ConnectorTask {name!r}: container and sql are exclusive (one TaskTemplate target)")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.name = name
        self.task_type = task_type
        self.task_type_version = int(task_type_version)
        self.input_types: dict[str, Any] = dict(inputs or {})
        self.output_types: dict[str, Any] = dict(outputs or {})
        self.custom: dict[str, Any] = dict(custom or {})
        self.config: dict[str, str] = {str(k): str(v) for k, v in (config or {}).items()}
        self.timeout: float | None = _seconds(timeout)
        self.retries = retries
        self.interruptible = interruptible
        self.secret_requests = [_secret(s) for s in secret_requests]
        self.container = None if container is None else _container(container)
        self.sql = None if sql is None else _sql(sql)
        self.project, self.domain, self.version = project, domain, version
        # Fail at declaration, not at the first run, when custom cannot become a Struct.
        self._custom_struct()

    @property
    def task_category(self) -> TaskCategory:
        """The (task type, version) whose connector runs this task."""
        return TaskCategory(self.task_type, self.task_type_version)

    def _custom_struct(self) -> struct_pb2.Struct | None:
        if not self.custom:
            return None
        try:
            plain = json.loads(json.dumps(self.custom))
        except (TypeError, ValueError) as e:
            raise TypeError(f"ConnectorTask {self.name!r}: custom must be JSON-serialisable: {e}") from None
        struct = struct_pb2.Struct()
        struct.update(plain)
        return struct

    def to_task_template(self) -> tasks_pb2.TaskTemplate:
        """The ``flyteidl.core.TaskTemplate`` for this task (a fresh copy each call)."""
        out = tasks_pb2.TaskTemplate()
        out.CopyFrom(self._template)
        return out

    def task_template(self) -> tasks_pb2.TaskTemplate:
        """The cached TaskTemplate the runner sends (do not mutate it; ``to_task_template`` gives a copy)."""
        return self._template

    @functools.cached_property
    def _template(self) -> tasks_pb2.TaskTemplate:
        metadata = tasks_pb2.TaskMetadata(
            runtime=tasks_pb2.RuntimeMetadata(
                type=tasks_pb2.RuntimeMetadata.OTHER, version=__version__, flavor="flyteconnect"
            ),
            retries=literals_pb2.RetryStrategy(retries=self.retries),
            interruptible=self.interruptible,
        )
        if self.timeout is not None:
            metadata.timeout.CopyFrom(duration_pb2.Duration(seconds=int(self.timeout), nanos=_nanos(self.timeout)))
        template = tasks_pb2.TaskTemplate(
            id=identifier_pb2.Identifier(
                resource_type=identifier_pb2.TASK,
                project=self.project,
                domain=self.domain,
                name=self.name,
                version=self.version,
            ),
            type=self.task_type,
            task_type_version=self.task_type_version,
            metadata=metadata,
            interface=interface_pb2.TypedInterface(
                inputs=_variable_map(self.input_types), outputs=_variable_map(self.output_types)
            ),
            config=self.config,
        )
        custom = self._custom_struct()
        if custom is not None:
            template.custom.CopyFrom(custom)
        if self.secret_requests:
            template.security_context.CopyFrom(security_pb2.SecurityContext(secrets=self.secret_requests))
        if self.container is not None:
            template.container.CopyFrom(self.container)
        if self.sql is not None:
            template.sql.CopyFrom(self.sql)
        return template

    def __repr__(self) -> str:
        return f"ConnectorTask({self.name!r}, {self.task_category})"


def _nanos(seconds: float) -> int:
    return round((seconds - int(seconds)) * 1e9)
