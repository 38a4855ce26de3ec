"""Pure translation between Flyte 2 (``flyteidl2``) messages and what connectors see.

Wire facts this module relies on (checked field by field against flyteidl 1.16 and flyteidl2, see tests/v2):

- ``flyteidl2.core.TaskTemplate`` uses the same field numbers and types as ``flyteidl.core.TaskTemplate`` for every
  field Flyte 1 has; Flyte 2 adds ``reuse_policy`` (19), ``worker_kind`` (20) and more ``TaskMetadata`` fields
  (``timeouts``, ``debuggable``...). Re-parsing the bytes as the Flyte 1 message is exact for the shared fields; the
  additions survive as unknown fields, so ``template_view(pb).to_flyte_idl()`` re-serialises them losslessly.
  Connectors that need them read the flyteidl2 proto (Flyte 2 style connectors receive it directly). Flyte 2 declares
  ``VariableMap.variables`` as ``repeated VariableEntry {key = 1; value = 2}`` instead of a map: the same bytes.
- ``flyteidl2.task.Inputs``/``Outputs`` (``repeated NamedLiteral {name = 1; value = 2}``) encode exactly like
  ``flyteidl.core.LiteralMap`` (``map<string, Literal> literals = 1``, whose entries are ``{key = 1; value = 2}``), and
  ``Literal`` is shared. So inputs become a LiteralMap, and outputs an ``Outputs``, by re-parsing bytes (one C-level
  parse instead of a Python loop). ``Inputs.context`` (2) and ``Outputs.produced_artifacts`` (3) have no Flyte 1
  counterpart and are dropped.
- ``TaskLog`` and ``TaskExecutionMetadata`` are wire-compatible too (Flyte 2 adds TaskLog fields 7-9 and drops the
  metadata's ``overrides``).

The sync envelope: Flyte 2 has no sync service, so a sync connector's ``do`` runs inside CreateTask and its Resource
travels in ``resource_meta`` as ``MAGIC + version byte + flyteidl2 Resource bytes``. Any replica answers the first
GetTask from those bytes alone. The executor keeps resource_meta in its persisted state, so the envelope is capped at
``MAX_ENVELOPE_BYTES``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flyteidl.core import execution_pb2 as execution_v1
from flyteidl.core import literals_pb2
from flyteidl2.connector import connector_pb2
from flyteidl2.core import execution_pb2 as execution_v2
from flyteidl2.core import tasks_pb2 as tasks_v2
from flyteidl2.task import common_pb2

from flyteconnect.connector import Resource, TaskCategory
from flyteconnect.encoding import resource_v2
from flyteconnect.errors import InvalidRequest
from flyteconnect.models import LiteralMap, TaskExecutionMetadata, TaskTemplate
from flyteconnect.secrets import check_secret_names

__all__ = [
    "ENVELOPE_MAGIC",
    "ENVELOPE_VERSION",
    "MAX_ENVELOPE_BYTES",
    "EnvelopeTooLarge",
    "category_of",
    "connection_kwargs",
    "connection_secrets",
    "connector_to_v2",
    "decode_envelope",
    "encode_envelope",
    "inputs_view",
    "is_envelope",
    "log_links_to_v2",
    "metadata_to_v2",
    "metadata_view",
    "native_inputs",
    "outputs_to_v2",
    "resource_from_v2",
    "resource_to_v2",
    "template_to_v2",
    "template_view",
]

ENVELOPE_MAGIC = b"\x00FCSYNC"
"""Starts every sync envelope: a NUL byte so it can never be mistaken for JSON or UTF-8 text resource_meta."""

ENVELOPE_VERSION = 1
MAX_ENVELOPE_BYTES = 1024 * 1024
"""Largest resource_meta a sync envelope may be (1 MiB): it is stored in the executor's state (etcd objects are
limited to 1.5 MiB in total). Larger outputs are written to ``<output_prefix>/outputs.pb`` instead."""

_HEADER = ENVELOPE_MAGIC + bytes([ENVELOPE_VERSION])


class EnvelopeTooLarge(ValueError):
    """The serialised Resource does not fit in ``MAX_ENVELOPE_BYTES``."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"sync connector result is {size} bytes, above the {limit}-byte resource_meta limit")
        self.size = size
        self.limit = limit


# -------------------------------------------------------------------------------------------------------- requests


_ORIGINAL = "_flyteidl2_original"
"""Attribute under which a view built from a Flyte 2 proto keeps that proto (so converting back is free)."""


def _keep_original(view: Any, pb: Any) -> Any:
    view.__dict__[_ORIGINAL] = pb
    return view


def _to_v2(value: Any, view_type: type, v2_type: Any) -> Any:
    """``value`` (a view, a Flyte 1 proto or a Flyte 2 proto) as the Flyte 2 message ``v2_type``: a view built from
    a Flyte 2 proto gives that proto back; anything else is re-parsed (the shared fields are wire-compatible)."""
    if isinstance(value, v2_type):
        return value
    if isinstance(value, view_type):
        original = value.__dict__.get(_ORIGINAL)
        if original is not None:
            return original
        value = value.to_flyte_idl()  # type: ignore[attr-defined]
    return v2_type.FromString(value.SerializeToString())


def template_view(pb: tasks_v2.TaskTemplate) -> TaskTemplate:
    """The flytekit-style template view of a Flyte 2 template (re-parsed: the shared fields are wire-compatible)."""
    return _keep_original(TaskTemplate.from_flyte_idl(pb), pb)  # type: ignore[no-any-return]


def template_to_v2(template: Any) -> tasks_v2.TaskTemplate:
    """A ``flyteidl2.core.TaskTemplate`` from a view, a Flyte 1 proto or a Flyte 2 proto (returned as is)."""
    return _to_v2(template, TaskTemplate, tasks_v2.TaskTemplate)  # type: ignore[no-any-return]


def metadata_view(pb: connector_pb2.TaskExecutionMetadata) -> TaskExecutionMetadata:
    """The flytekit-style view of a Flyte 2 ``TaskExecutionMetadata``."""
    return _keep_original(TaskExecutionMetadata.from_flyte_idl(pb), pb)  # type: ignore[no-any-return]


def metadata_to_v2(metadata: Any) -> connector_pb2.TaskExecutionMetadata:
    """A ``flyteidl2.connector.TaskExecutionMetadata`` from a view or a Flyte 1/Flyte 2 proto."""
    return _to_v2(metadata, TaskExecutionMetadata, connector_pb2.TaskExecutionMetadata)  # type: ignore[no-any-return]


def inputs_view(pb: common_pb2.Inputs) -> LiteralMap:
    """The ``LiteralMap`` view of Flyte 2 ``Inputs`` (always truthy, empty when the request had none)."""
    return LiteralMap.from_flyte_idl(literals_pb2.LiteralMap.FromString(pb.SerializeToString()))


def native_inputs(inputs: LiteralMap, template: TaskTemplate) -> dict[str, Any]:
    """Inputs as native Python values, read by the template's declared interface (the literal engine takes the
    ``Variable``s as hints; undeclared inputs are inferred from their literals)."""
    return inputs.to_python(template.interface.inputs)


def connection_secrets(connection: Any) -> dict[str, str]:
    """The per-request secrets of a Flyte 2 ``Connection`` (empty when unset); ``InvalidSecretName`` for a key that is
    not a plain secret name (``flyteconnect.secrets.check_secret_name``)."""
    secrets = dict(connection.secrets)
    check_secret_names(secrets)
    return secrets


def connection_kwargs(connection: Any) -> dict[str, str]:
    """Secrets then configs as keyword arguments, as flyte-sdk passes them (a config wins over a secret of the same
    name)."""
    kwargs = dict(connection.secrets)
    kwargs.update(connection.configs)
    return kwargs


def category_of(pb: Any) -> TaskCategory:
    """The task category of a Get/Delete/Metrics/Logs request (Flyte 2 has no deprecated ``task_type`` field)."""
    return TaskCategory(pb.task_category.name, pb.task_category.version)


# ------------------------------------------------------------------------------------------------------- responses


def log_links_to_v2(links: Iterable[Any] | None) -> list[execution_v2.TaskLog]:
    """Log links (Flyte 1 or Flyte 2 ``TaskLog`` protos, or flytekit-style models) as Flyte 2 protos."""
    out = []
    for link in links or ():
        if hasattr(link, "to_flyte_idl"):
            link = link.to_flyte_idl()
        if isinstance(link, execution_v1.TaskLog):  # wire-compatible: re-parse
            link = execution_v2.TaskLog.FromString(link.SerializeToString())
        elif not isinstance(link, execution_v2.TaskLog):
            raise TypeError(f"log link must be a TaskLog proto, got {type(link).__name__}")
        out.append(link)
    return out


def outputs_to_v2(outputs: Any) -> common_pb2.Outputs:
    """Resource outputs (dict, LiteralMap view or proto, or Flyte 2 ``Outputs``) as ``flyteidl2.task.Outputs``."""
    if isinstance(outputs, common_pb2.Outputs):
        return outputs
    from flyteconnect.literals import to_literal_map_bytes

    return common_pb2.Outputs.FromString(to_literal_map_bytes(outputs))


def resource_to_v2(resource: Resource) -> connector_pb2.Resource:
    """Our ``Resource`` as a ``flyteidl2.connector.Resource`` (no ``state``/``agent_error``: Flyte 2 dropped them),
    parsed from the one encoder's bytes (``flyteconnect.encoding``)."""
    return connector_pb2.Resource.FromString(resource_v2(resource))


def resource_from_v2(pb: connector_pb2.Resource) -> Resource:
    """Our ``Resource`` from a Flyte 2 proto (outputs become a ``LiteralMap`` view; log links stay Flyte 2 protos)."""
    return Resource.from_flyte_idl(pb)


def connector_to_v2(name: str, categories: Iterable[TaskCategory]) -> connector_pb2.Connector:
    """The ``flyteidl2.connector.Connector`` metadata message (name and categories only)."""
    return connector_pb2.Connector(
        name=name,
        supported_task_categories=[connector_pb2.TaskCategory(name=c.name, version=c.version) for c in categories],
    )


# --------------------------------------------------------------------------------------------------- sync envelope


def is_envelope(data: bytes) -> bool:
    """True when ``data`` starts with the sync envelope's magic bytes."""
    return data[: len(ENVELOPE_MAGIC)] == ENVELOPE_MAGIC


def encode_envelope(resource: connector_pb2.Resource, limit: int = MAX_ENVELOPE_BYTES) -> bytes:
    """``resource`` wrapped as sync-connector resource_meta; ``EnvelopeTooLarge`` when above ``limit`` bytes."""
    data: bytes = _HEADER + resource.SerializeToString()
    if len(data) > limit:
        raise EnvelopeTooLarge(len(data), limit)
    return data


def decode_envelope(data: bytes) -> connector_pb2.Resource:
    """The Resource inside a sync envelope; ``InvalidRequest`` naming the problem for anything else."""
    data = bytes(data)
    if not is_envelope(data):
        raise InvalidRequest("resource_meta of a sync connector is not a flyteconnect sync envelope")
    if len(data) <= len(ENVELOPE_MAGIC) or data[len(ENVELOPE_MAGIC)] != ENVELOPE_VERSION:
        version = data[len(ENVELOPE_MAGIC)] if len(data) > len(ENVELOPE_MAGIC) else None
        raise InvalidRequest(f"sync envelope version {version} is not supported (expected {ENVELOPE_VERSION})")
    try:
        return connector_pb2.Resource.FromString(data[len(_HEADER) :])
    except Exception as e:  # DecodeError: truncated or corrupted bytes
        raise InvalidRequest(f"sync envelope is corrupted: {e}") from None
