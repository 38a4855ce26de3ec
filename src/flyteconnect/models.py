"""Light, read-only views of the protos handed to connectors.

They carry the attribute names of flytekit's models (``flytekit.models.task.TaskTemplate`` and friends) so ported
connectors read them unchanged, but they are built lazily from the proto: GetTask pays only for what a connector
actually touches. ``container`` and ``k8s_pod`` are views with flytekit's dicts and lists (``template_parts``); nested
messages without a flytekit-specific shape (``sql``, ``metadata``, ``id``, ``security_context``) are returned as the
protos themselves, whose field names match flytekit's models.

The server builds them ``from_bytes``: the nested messages of a request arrive serialized (``server.shallow``) and
each view parses its bytes on first use, into its own proto; bytes that do not parse raise ``InvalidRequest``
(INVALID_ARGUMENT) then. A TaskTemplate's type, version, ``config`` and ``custom`` come from a memo by template
bytes: every execution of a task sends the same template, so a connector reading ``custom`` gets a fresh dict
without the template being parsed again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, overload

from flyteidl.admin import agent_pb2
from flyteidl.core import interface_pb2, literals_pb2, tasks_pb2
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from flyteconnect.errors import InvalidRequest
from flyteconnect.memo import remember
from flyteconnect.protostruct import config_copier, config_to_dict
from flyteconnect.template_parts import Container, K8sPod
from flyteconnect.wire import field_bytes

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["LiteralMap", "TaskExecutionMetadata", "TaskTemplate", "TypedInterface"]

V = TypeVar("V")


class _cached(Generic[V]):
    """``functools.cached_property`` without the lock Python 3.11 takes on every first access (3.12 dropped it).

    The value is computed on first access and kept in the instance's ``__dict__``, which later lookups find first.
    Two threads reading a view at once may both compute it: each gets a correct value.
    """

    def __init__(self, func: Callable[[Any], V]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _cached[V]: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> V: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> V | _cached[V]:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value


def _as_v1(pb: Message, cls: type[Message]) -> Any:
    """Return ``pb`` as the Flyte 1 message ``cls``; a wire-compatible message of another package is re-parsed."""
    if isinstance(pb, cls):
        return pb
    out = cls()
    out.ParseFromString(pb.SerializeToString())
    return out


def _parse(cls: type[Message], raw: bytes) -> Any:
    """``cls`` parsed from a request's bytes; InvalidRequest (INVALID_ARGUMENT) when they are not one."""
    try:
        return cls.FromString(raw)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise InvalidRequest(f"malformed {cls.DESCRIPTOR.full_name} in the request: {e}") from None


class _FromBytes:
    """What the views share for ``from_bytes``: the ``_pb`` slot filled from ``_raw`` on first use."""

    __slots__ = ("_pb", "_raw")
    _PROTO: ClassVar[type[Message]]
    _raw: bytes  # the serialized message of a view built from_bytes, until parsed

    @classmethod
    def from_bytes(cls, raw: bytes) -> Self:
        """A view of the serialized message ``raw``, parsed on first use (InvalidRequest if it is not one)."""
        self = cls.__new__(cls)
        self._raw = raw
        return self

    def __getattr__(self, name: str) -> Any:  # only for attributes not found: here, an unset ``_pb`` slot
        if name != "_pb":
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        pb = _parse(self._PROTO, self._raw)
        self._pb = pb
        return pb


class LiteralMap(_FromBytes):
    """Named Flyte literals (a task's inputs or outputs), like flytekit's ``models.literals.LiteralMap``.

    ``literals`` maps names to ``flyteidl.core.Literal`` protos; ``to_python()`` converts them to Python values.
    Always truthy, as flytekit's model is, so ``if inputs:`` behaves the same after a port.
    """

    __slots__ = ()
    _PROTO = literals_pb2.LiteralMap

    def __init__(self, literals: Mapping[str, literals_pb2.Literal] | None = None) -> None:
        self._pb = literals_pb2.LiteralMap(literals=dict(literals or {}))

    @classmethod
    def from_flyte_idl(cls, pb: Any) -> LiteralMap:
        """Wrap a ``flyteidl.core.LiteralMap`` (no copy), or convert a Flyte 2 ``Inputs``/``Outputs`` message."""
        self = cls.__new__(cls)
        full_name = pb.DESCRIPTOR.full_name
        if full_name == "flyteidl.core.LiteralMap":
            self._pb = pb
        elif full_name.startswith("flyteidl2."):
            # Flyte 2 carries a list of NamedLiteral {name, value}; the literal itself is wire-compatible.
            self._pb = literals_pb2.LiteralMap()
            for named in pb.literals:
                self._pb.literals[named.name].ParseFromString(named.value.SerializeToString())
        else:
            self._pb = _as_v1(pb, literals_pb2.LiteralMap)
        return self

    def to_flyte_idl(self) -> literals_pb2.LiteralMap:
        """The ``flyteidl.core.LiteralMap`` proto."""
        return self._pb

    @property
    def literals(self) -> Mapping[str, literals_pb2.Literal]:
        """Name → ``flyteidl.core.Literal`` proto."""
        return self._pb.literals  # type: ignore[no-any-return]

    def to_python(self, type_hints: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Convert to Python values, by the given types or, without them, inferred from the literals."""
        from flyteconnect.literals import literal_map_to_python

        return literal_map_to_python(self._pb, type_hints)

    def to_json(self) -> str:
        """The proto as JSON text."""
        return str(json_format.MessageToJson(self._pb))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LiteralMap):
            return bool(self._pb == other._pb)
        if isinstance(other, literals_pb2.LiteralMap):
            return bool(self._pb == other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LiteralMap({sorted(self._pb.literals)})"


class TypedInterface:
    """A task's declared inputs and outputs: name → ``flyteidl.core.Variable`` proto, like flytekit's model."""

    __slots__ = ("_pb", "inputs", "outputs")

    def __init__(self, pb: interface_pb2.TypedInterface) -> None:
        self._pb = pb
        self.inputs: dict[str, interface_pb2.Variable] = dict(pb.inputs.variables)
        self.outputs: dict[str, interface_pb2.Variable] = dict(pb.outputs.variables)

    def to_flyte_idl(self) -> interface_pb2.TypedInterface:
        """The proto."""
        return self._pb

    def __repr__(self) -> str:
        return f"TypedInterface(inputs={sorted(self.inputs)}, outputs={sorted(self.outputs)})"


class TaskTemplate(_FromBytes):
    """The task definition Propeller sends with CreateTask, as flytekit's ``models.task.TaskTemplate`` presents it.

    ``custom`` is a dict (numbers are floats, as in flytekit), ``config`` a dict of strings; ``container``, ``sql``
    and ``security_context`` are None when unset. Parsed lazily, once.
    """

    __slots__ = ("__dict__", "_facts")
    _PROTO = tasks_pb2.TaskTemplate

    def __init__(self, pb: tasks_pb2.TaskTemplate) -> None:
        self._pb = pb
        self._facts: _TemplateFacts | None = None

    @classmethod
    def from_flyte_idl(cls, pb: Any) -> TaskTemplate:
        """Wrap a ``flyteidl.core.TaskTemplate`` (a Flyte 2 one is converted; the messages are wire-compatible)."""
        return cls(_as_v1(pb, tasks_pb2.TaskTemplate))

    @classmethod
    def from_bytes(cls, raw: bytes) -> TaskTemplate:
        """A view of a serialized ``flyteidl.core.TaskTemplate`` (InvalidRequest if it is not one).

        Parsed here only the first time these bytes are seen; after that on first use of a proto-valued attribute.
        """
        self = cls.__new__(cls)  # _FromBytes.from_bytes inlined: super() costs ~1.5k instructions per CreateTask
        self._raw = raw
        facts = _TEMPLATES.get(raw)
        if facts is None:
            pb = self._pb = _parse(cls._PROTO, raw)
            facts = _TemplateFacts(pb)
            if len(raw) <= _TEMPLATE_MAX_BYTES:
                remember(_TEMPLATES, raw, facts, _TEMPLATE_ENTRIES)
        self._facts = facts
        return self

    def to_flyte_idl(self) -> tasks_pb2.TaskTemplate:
        """The proto."""
        return self._pb

    @property
    def id(self) -> Any:
        """The task's ``flyteidl.core.Identifier`` (project, domain, name, version)."""
        return self._pb.id

    @property
    def type(self) -> str:
        """The task type name (the connector's ``task_type_name``)."""
        facts = self._facts
        return facts.type if facts is not None else self._pb.type  # type: ignore[no-any-return]

    @property
    def task_type_version(self) -> int:
        """The task type version."""
        facts = self._facts
        return facts.version if facts is not None else self._pb.task_type_version  # type: ignore[no-any-return]

    @property
    def metadata(self) -> Any:
        """The ``flyteidl.core.TaskMetadata`` proto (timeout, retries, ...)."""
        return self._pb.metadata

    @_cached
    def custom(self) -> dict[str, Any]:
        """The task's custom Struct as a dict (``MessageToDict``: every number is a float, as in flytekit)."""
        facts = self._facts
        if facts is not None:
            return facts.custom(self)
        return config_to_dict(self._pb.custom) if self._pb.HasField("custom") else {}

    @_cached
    def interface(self) -> TypedInterface:
        """Declared inputs and outputs."""
        return TypedInterface(self._pb.interface)

    @_cached
    def container(self) -> Container | None:
        """The container, or None: ``env`` and ``config`` are dicts, ``args`` a list, as in flytekit's model."""
        return Container(self._pb.container) if self._pb.HasField("container") else None

    @property
    def sql(self) -> Any:
        """The ``flyteidl.core.Sql`` proto (``statement``, ``dialect``), or None."""
        return self._pb.sql if self._pb.HasField("sql") else None

    @_cached
    def k8s_pod(self) -> K8sPod | None:
        """The pod, or None: ``pod_spec`` a dict and ``metadata`` with label/annotation dicts, as in flytekit."""
        return K8sPod(self._pb.k8s_pod) if self._pb.HasField("k8s_pod") else None

    @property
    def security_context(self) -> Any:
        """The ``flyteidl.core.SecurityContext`` proto, or None when empty."""
        sc = self._pb.security_context
        return sc if self._pb.HasField("security_context") and sc.ByteSize() else None

    @property
    def extended_resources(self) -> Any:
        """The ``flyteidl.core.ExtendedResources`` proto, or None."""
        return self._pb.extended_resources if self._pb.HasField("extended_resources") else None

    @_cached
    def config(self) -> dict[str, str]:
        """The template's string config map as a dict."""
        facts = self._facts
        return dict(facts.config if facts is not None else self._pb.config)

    def __repr__(self) -> str:
        return f"TaskTemplate(type={self.type!r}, version={self.task_type_version}, name={self.id.name!r})"


class _TemplateFacts:
    """What every view of the same template bytes shares: immutable values, and ``custom``'s copier (from the one
    config memo, ``protostruct.config_copier``)."""

    __slots__ = ("_custom", "config", "type", "version")

    def __init__(self, pb: tasks_pb2.TaskTemplate) -> None:
        self.type: str = pb.type
        self.version: int = pb.task_type_version
        self.config: dict[str, str] = dict(pb.config)  # copied for each view that reads it
        self._custom: Callable[[], dict[str, Any]] | None = None

    def custom(self, view: TaskTemplate) -> dict[str, Any]:
        """A new dict of the template's custom config, converted once (from ``view``'s bytes), then copied."""
        copy = self._custom
        if copy is None:
            # From the bytes, not from view._pb: the connector holding this view may have changed its proto.
            pb = _parse(tasks_pb2.TaskTemplate, view._raw)
            copy = self._custom = config_copier(pb.custom) if pb.HasField("custom") else dict
        return copy()


_TEMPLATES: dict[bytes, _TemplateFacts] = {}
_TEMPLATE_ENTRIES = 128
_TEMPLATE_MAX_BYTES = 64 * 1024


class TaskExecutionMetadata(_FromBytes):
    """Who and what is running: Propeller's ``TaskExecutionMetadata``, with flytekit's attribute names.

    Unlike flytekit, the fields flytekit drops (``max_attempts``, ``interruptible``...) stay readable.
    """

    __slots__ = ("__dict__",)
    _PROTO = agent_pb2.TaskExecutionMetadata

    def __init__(self, pb: agent_pb2.TaskExecutionMetadata | None = None, /, **fields: Any) -> None:
        """Wrap ``pb``, or build the proto from flytekit's keywords (``task_execution_id=..., namespace=...``;
        values may be protos, flytekit-style models with ``to_flyte_idl`` or, for the maps, dicts)."""
        if pb is None:
            values = {k: v.to_flyte_idl() if hasattr(v, "to_flyte_idl") else v for k, v in fields.items()}
            try:
                pb = agent_pb2.TaskExecutionMetadata(**values)
            except (TypeError, ValueError) as e:
                raise TypeError(f"TaskExecutionMetadata: {e}") from None
        elif fields:
            raise TypeError("TaskExecutionMetadata takes a proto or keywords, not both")
        self._pb = pb

    @classmethod
    def from_flyte_idl(cls, pb: Any) -> TaskExecutionMetadata:
        """Wrap the Flyte 1 proto (a Flyte 2 one is converted)."""
        return cls(_as_v1(pb, agent_pb2.TaskExecutionMetadata))

    def to_flyte_idl(self) -> agent_pb2.TaskExecutionMetadata:
        """The proto."""
        return self._pb

    @property
    def task_execution_id(self) -> Any:
        """The ``flyteidl.core.TaskExecutionIdentifier``: a stable key for idempotent creates."""
        return self._pb.task_execution_id

    def task_execution_id_bytes(self) -> bytes:
        """The serialized ``task_execution_id`` (b"" when unset), read from the request's bytes without parsing
        the rest of the metadata when it came as bytes (the idempotent-create key); InvalidRequest when malformed."""
        raw: bytes | None = getattr(self, "_raw", None)  # unset unless built from bytes
        if raw is None:
            return bytes(self._pb.task_execution_id.SerializeToString(deterministic=True))
        try:
            return field_bytes(raw, 1) or b""
        except ValueError as e:
            raise InvalidRequest(f"malformed {self._PROTO.DESCRIPTOR.full_name} in the request: {e}") from None

    @property
    def namespace(self) -> str:
        """Kubernetes namespace of the execution."""
        return self._pb.namespace  # type: ignore[no-any-return]

    @_cached
    def labels(self) -> dict[str, str]:
        """Labels of the execution."""
        return dict(self._pb.labels)

    @_cached
    def annotations(self) -> dict[str, str]:
        """Annotations of the execution."""
        return dict(self._pb.annotations)

    @property
    def k8s_service_account(self) -> str:
        """Service account the task runs as."""
        return self._pb.k8s_service_account  # type: ignore[no-any-return]

    @_cached
    def environment_variables(self) -> dict[str, str]:
        """Environment variables of the execution."""
        return dict(self._pb.environment_variables)

    @property
    def identity(self) -> Any:
        """The ``flyteidl.core.Identity`` the task runs as."""
        return self._pb.identity

    @property
    def max_attempts(self) -> int:
        """Retry budget of the task (0 when Propeller does not set it)."""
        return self._pb.max_attempts  # type: ignore[no-any-return]

    @property
    def interruptible(self) -> bool:
        """Whether the task may run on interruptible capacity."""
        return self._pb.interruptible  # type: ignore[no-any-return]

    def idempotency_key(self) -> str:
        """A stable string for this task attempt: use it to make ``create`` idempotent across Propeller retries."""
        tid = self._pb.task_execution_id
        node = tid.node_execution_id
        wf = node.execution_id
        return json.dumps(
            [wf.project, wf.domain, wf.name, node.node_id, tid.task_id.name, tid.retry_attempt], separators=(",", ":")
        )

    def __repr__(self) -> str:
        return f"TaskExecutionMetadata(namespace={self.namespace!r})"
