"""The connector SDK: task categories, resource metadata, resources and the connector base classes.

Names and meaning follow flytekit's ``flytekit.extend.backend.base_connector`` so a flytekit connector ports by
changing its imports. Differences are improvements: ``ResourceMeta.decode`` fails with a clear error, resource outputs
convert lists and literals properly, and whether each method is ``def`` or ``async def`` is decided once per connector.
"""

from __future__ import annotations

import enum
import inspect
import json
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar, Union

from flyteidl.admin import agent_pb2
from google.protobuf import struct_pb2

from flyteconnect.handles import decode_handle, encode_handle

if typing.TYPE_CHECKING:
    from typing_extensions import Self

    from flyteconnect.models import LiteralMap, TaskExecutionMetadata, TaskTemplate

__all__ = [
    "AsyncConnectorBase",
    "ConnectorBase",
    "ConnectorMethod",
    "Phase",
    "Resource",
    "ResourceMeta",
    "SyncConnectorBase",
    "TaskCategory",
    "convert_to_flyte_phase",
    "is_terminal_phase",
]


class Phase(enum.IntEnum):
    """The phases of a task execution: the same integers as ``flyteidl.core.TaskExecution.Phase``."""

    UNDEFINED = 0
    QUEUED = 1
    RUNNING = 2
    SUCCEEDED = 3
    ABORTED = 4
    FAILED = 5
    INITIALIZING = 6
    WAITING_FOR_RESOURCES = 7
    RETRYABLE_FAILED = 8

    @property
    def is_terminal(self) -> bool:
        """True for the phases after which nothing more happens (RETRYABLE_FAILED included, as flytekit 1.16.31)."""
        return self in _TERMINAL


_TERMINAL = frozenset({Phase.SUCCEEDED, Phase.ABORTED, Phase.FAILED, Phase.RETRYABLE_FAILED})


def is_terminal_phase(phase: int) -> bool:
    """True when ``phase`` (a Phase or a TaskExecution.Phase int) is terminal."""
    return phase in _TERMINAL


_STATE_TO_PHASE = {
    **dict.fromkeys(("failed", "timeout", "timedout", "canceled", "cancelled", "skipped"), Phase.FAILED),
    "internal_error": Phase.RETRYABLE_FAILED,
    **dict.fromkeys(("done", "succeeded", "success", "completed"), Phase.SUCCEEDED),
    **dict.fromkeys(("running", "terminating"), Phase.RUNNING),
    "pending": Phase.INITIALIZING,
    # Common states of external systems that flytekit rejects with ValueError (a poll that then fails the task).
    **dict.fromkeys(("queued", "submitted", "blocked", "waiting", "scheduled"), Phase.QUEUED),
    **dict.fromkeys(("completing", "updating", "creating", "starting", "in_progress"), Phase.RUNNING),
    **dict.fromkeys(("aborted",), Phase.ABORTED),
}


def convert_to_flyte_phase(state: str) -> Phase:
    """Map an external system's state name (case-insensitive) to a Phase, as flytekit's helper does.

    Also understands a few more common states (queued, blocked, completing...) that flytekit rejects.
    """
    key = state.lower()
    try:
        return _STATE_TO_PHASE[key]
    except KeyError:
        raise ValueError(f"Unrecognized state: {key}") from None


@dataclass(frozen=True)
class TaskCategory:
    """A task type name and version: the key under which a connector is registered."""

    name: str
    version: int = 0

    def __str__(self) -> str:
        return f"{self.name}_v{self.version}"

    def to_flyte_idl(self) -> agent_pb2.TaskCategory:
        """The ``flyteidl.admin.TaskCategory`` proto."""
        return agent_pb2.TaskCategory(name=self.name, version=self.version)

    @classmethod
    def from_flyte_idl(cls, pb: Any) -> TaskCategory:
        """Build from a Flyte 1 or Flyte 2 TaskCategory proto."""
        return cls(pb.name, pb.version)


# --------------------------------------------------------------------------------------------------------- ResourceMeta


class ResourceMeta:
    """Base class of a connector's job handle: everything needed to find the external job again.

    Subclasses are dataclasses. ``encode`` gives exactly the bytes flytekit gives (``json.dumps(asdict(self))``);
    ``decode`` rebuilds nested dataclasses, Optional, list and dict fields and raises ``ResourceMetaError`` on bytes
    that are not valid for the class. Subclasses may override both (for example to add a version tag).
    """

    # The codec lives in ``flyteconnect.handles`` (it is runtime, not what an author reads): ``encode`` writes
    # exactly flytekit's bytes, ``json.dumps(asdict(self))``; ``decode`` rebuilds the dataclass, nested dataclasses,
    # Optional, list and dict fields included, or raises ``ResourceMetaError`` naming the field.
    if typing.TYPE_CHECKING:

        def encode(self) -> bytes:
            """Serialize to the bytes Propeller stores and echoes back."""

        @classmethod
        def decode(cls, data: bytes) -> Self:
            """Rebuild from ``encode``'s bytes; ``ResourceMetaError`` names what is wrong."""

    else:  # the functions themselves, not methods calling them: decode runs on every GetTask
        encode = encode_handle
        decode = classmethod(decode_handle)


# ------------------------------------------------------------------------------------------------------------ Resource


_PHASE_TO_STATE = {
    Phase.QUEUED: agent_pb2.PENDING,
    Phase.INITIALIZING: agent_pb2.PENDING,
    Phase.WAITING_FOR_RESOURCES: agent_pb2.PENDING,
    Phase.RUNNING: agent_pb2.RUNNING,
    Phase.SUCCEEDED: agent_pb2.SUCCEEDED,
    Phase.FAILED: agent_pb2.PERMANENT_FAILURE,
    Phase.ABORTED: agent_pb2.PERMANENT_FAILURE,
    Phase.RETRYABLE_FAILED: agent_pb2.RETRYABLE_FAILURE,
}


def state_for_phase(phase: int) -> int:
    """Flyte 1's deprecated ``Resource.state`` consistent with ``phase`` (older Propellers read it); its zero value,
    RETRYABLE_FAILURE, for a phase it has no state for."""
    return _PHASE_TO_STATE.get(phase, agent_pb2.RETRYABLE_FAILURE)  # type: ignore[call-overload,no-any-return]


@dataclass
class Resource:
    """The status of an external job as a connector reports it.

    ``outputs`` may be a dict of Python values (converted to literals by their runtime types), a ``LiteralMap``
    view, or a ``flyteidl.core.literals_pb2.LiteralMap``; ``None`` means "no outputs here" (Propeller then reads
    ``<output_prefix>/outputs.pb``). ``log_links`` are ``flyteidl.core.TaskLog`` protos (or flytekit-style models
    with ``to_flyte_idl``). ``custom_info`` must be JSON-serialisable.
    """

    phase: int
    message: str | None = None
    log_links: list[Any] | None = None
    outputs: Any = None
    custom_info: dict[str, Any] | None = None
    poll_after: float | None = None
    """A hint from ``get``: seconds before this job is worth polling again (like Argo's ``Requeue``). Until then
    the server answers GetTask with this Resource without calling ``get`` (docs/polling.md). Not sent on the wire."""

    def outputs_to_flyte_idl(self) -> Any:
        """The outputs as a ``flyteidl.core.literals_pb2.LiteralMap`` proto, or None when there are none."""
        from flyteconnect.literals import to_literal_map_proto

        return None if self.outputs is None else to_literal_map_proto(self.outputs)

    def log_links_to_flyte_idl(self) -> list[Any]:
        """The log links as ``flyteidl.core.TaskLog`` protos."""
        if not self.log_links:
            return []
        links = [link.to_flyte_idl() if hasattr(link, "to_flyte_idl") else link for link in self.log_links]
        # A Flyte 2 style connector may return flyteidl2 TaskLogs: wire-compatible, so re-parse them.
        return [_v1_task_log(link) if type(link).__module__.startswith("flyteidl2.") else link for link in links]

    def custom_info_to_flyte_idl(self) -> struct_pb2.Struct | None:
        """custom_info as a ``google.protobuf.Struct`` (numbers become doubles, as on the wire), or None if empty."""
        if not self.custom_info:
            return None
        try:
            # A JSON round trip gives exactly flytekit's Struct and a clear error on values JSON cannot hold.
            plain = json.loads(json.dumps(self.custom_info))
        except (TypeError, ValueError) as e:
            raise TypeError(f"Resource.custom_info must be JSON-serialisable: {e}") from None
        struct = struct_pb2.Struct()
        struct.update(plain)
        return struct

    def to_flyte_idl(self) -> agent_pb2.Resource:
        """The Flyte 1 ``flyteidl.admin.Resource``, with the deprecated ``state`` filled consistently with phase."""
        from flyteconnect.encoding import resource_v1  # the one encoder the server's replies use too

        return agent_pb2.Resource.FromString(resource_v1(self))

    @classmethod
    def from_flyte_idl(cls, pb: Any) -> Resource:
        """Build from a Flyte 1 (or Flyte 2) Resource proto; outputs become a ``LiteralMap`` view when present."""
        from flyteconnect.models import LiteralMap
        from flyteconnect.protostruct import struct_to_dict

        outputs = None
        if pb.HasField("outputs"):
            outputs = LiteralMap.from_flyte_idl(pb.outputs)
        return cls(
            phase=Phase(pb.phase) if pb.phase in Phase._value2member_map_ else pb.phase,
            message=pb.message or None,
            log_links=list(pb.log_links) or None,
            outputs=outputs,
            custom_info=struct_to_dict(pb.custom_info) if pb.HasField("custom_info") else None,
        )


def _v1_task_log(link: Any) -> Any:
    from flyteidl.core import execution_pb2

    return execution_pb2.TaskLog.FromString(link.SerializeToString())


# ----------------------------------------------------------------------------------------------------------- Connectors


@dataclass(frozen=True)
class ConnectorMethod:
    """One connector method, inspected once: whether it is async, and which keyword arguments it accepts."""

    name: str
    func: Callable[..., Any]
    is_async: bool
    """``async def`` (awaited on the event loop) rather than ``def`` (run on a worker thread)."""
    is_async_gen: bool
    """An ``async def`` with ``yield`` (an async generator, e.g. a paginated ``get_logs``)."""
    accepted: frozenset[str] | None
    """Keyword names it accepts, or None when it takes ``**kwargs``."""

    @classmethod
    def inspect(cls, name: str, func: Callable[..., Any]) -> ConnectorMethod:
        """Inspect a bound method."""
        target = inspect.unwrap(func)
        is_gen = inspect.isasyncgenfunction(target)
        is_async = is_gen or inspect.iscoroutinefunction(target)
        try:
            params = inspect.signature(func).parameters.values()
        except (TypeError, ValueError):
            accepted = None
        else:
            if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
                accepted = None
            else:
                accepted = frozenset(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        return cls(name, func, is_async, is_gen, accepted)

    def keywords(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The subset of ``kwargs`` this method accepts (all of them when it takes ``**kwargs``)."""
        if self.accepted is None:
            return dict(kwargs)
        return {k: v for k, v in kwargs.items() if k in self.accepted}


M = TypeVar("M", bound=ResourceMeta)


class ConnectorBase:
    """Base class of every connector.

    Declare the task type either in the constructor (flytekit style)::

        super().__init__(task_type_name="my_type", task_type_version=0, metadata_type=MyMeta)

    or as class attributes (Flyte 2 style)::

        class MyConnector(AsyncConnectorBase[MyMeta]):
            name = "My Connector"
            task_type_name = "my_type"
            metadata_type = MyMeta
    """

    name: ClassVar[str] = "Base Connector"
    task_type_name: str
    task_type_version: int = 0
    is_sync: ClassVar[bool] = False
    """True for connectors whose single ``do`` call finishes the task (served by ExecuteTaskSync)."""
    server_settings: ClassVar[Mapping[str, Any]] = {}
    """Defaults for the server's per-connector settings (``{"timeout": 30.0}``; policies document theirs). The
    operator's serve settings override them."""
    _method_names: ClassVar[tuple[str, ...]] = ()
    _optional_methods: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        task_type_name: str | None = None,
        task_type_version: int | None = None,
        **kwargs: Any,
    ) -> None:
        if task_type_name is not None:
            self.task_type_name = task_type_name
        if task_type_version is not None:
            self.task_type_version = task_type_version
        self._check_declaration()

    def _check_declaration(self) -> None:
        cls = type(self).__name__
        if not isinstance(getattr(self, "task_type_name", None), str) or not self.task_type_name:
            raise TypeError(f"{cls} needs a task_type_name (a class attribute or a constructor argument)")
        version = getattr(self, "task_type_version", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            raise TypeError(f"{cls}.task_type_version must be an int, got {version!r}")

    @property
    def task_category(self) -> TaskCategory:
        """The (task type name, version) this connector serves."""
        return TaskCategory(self.task_type_name, self.task_type_version)

    def method(self, name: str) -> ConnectorMethod | None:
        """The inspected method ``name``, or None if the connector does not implement it (optional methods)."""
        return self.methods().get(name)

    def methods(self) -> dict[str, ConnectorMethod]:
        """All implemented connector methods, inspected on first use and cached on the instance."""
        cached: dict[str, ConnectorMethod] | None = self.__dict__.get("_connector_methods")
        if cached is None:
            cached = {}
            for name in self._method_names:
                func = getattr(type(self), name, None)
                if func is None:
                    continue
                if name in self._optional_methods and _is_base_default(type(self), name):
                    continue
                cached[name] = ConnectorMethod.inspect(name, getattr(self, name))
            self.__dict__["_connector_methods"] = cached
        return cached

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.task_category}>"


def _is_base_default(cls: type, name: str) -> bool:
    """True when ``cls`` inherits ``name`` unchanged from one of our base classes (i.e. it is not implemented)."""
    impl = getattr(cls, name)
    return any(getattr(base, name, None) is impl for base in (AsyncConnectorBase, SyncConnectorBase))


class AsyncConnectorBase(ConnectorBase, Generic[M]):
    """A connector for long jobs: ``create`` starts one, ``get`` polls it, ``delete`` cancels it.

    Each method may be ``def`` (run on the server's worker threads) or ``async def`` (awaited on the event loop; it
    must not block). ``get_metrics`` and ``get_logs`` are optional; ``get_logs`` may be an async generator yielding
    several ``GetTaskLogsResponse`` pages.
    """

    name: ClassVar[str] = "Base Async Connector"
    metadata_type: type[M]
    _method_names = ("create", "get", "delete", "get_metrics", "get_logs")
    _optional_methods = ("get_metrics", "get_logs")

    def __init__(
        self,
        task_type_name: str | None = None,
        task_type_version: int | None = None,
        metadata_type: type[M] | None = None,
        **kwargs: Any,
    ) -> None:
        if metadata_type is not None:
            self.metadata_type = metadata_type
        super().__init__(task_type_name, task_type_version, **kwargs)
        meta = getattr(self, "metadata_type", None)
        if not (isinstance(meta, type) and issubclass(meta, ResourceMeta)):
            raise TypeError(f"{type(self).__name__} needs a metadata_type: a ResourceMeta subclass, got {meta!r}")
        for name in ("create", "get", "delete"):
            if _is_base_default(type(self), name):
                raise TypeError(f"{type(self).__name__} must implement {name}()")

    def create(
        self,
        task_template: TaskTemplate,
        output_prefix: str,
        inputs: LiteralMap | None = None,
        task_execution_metadata: TaskExecutionMetadata | None = None,
        **kwargs: Any,
    ) -> M | Awaitable[M]:
        """Start the external job and return the metadata that finds it again. Should be idempotent."""
        raise NotImplementedError

    def get(self, resource_meta: M, **kwargs: Any) -> Resource | Awaitable[Resource]:
        """Return the job's current status (and outputs once it succeeded)."""
        raise NotImplementedError

    def delete(self, resource_meta: M, **kwargs: Any) -> Awaitable[None] | None:
        """Cancel the job. Must be idempotent: deleting a finished or unknown job succeeds."""
        raise NotImplementedError

    def get_metrics(self, resource_meta: M, **kwargs: Any) -> Any:
        """Optional: a ``GetTaskMetricsResponse`` for the job."""
        raise NotImplementedError

    def get_logs(self, resource_meta: M, **kwargs: Any) -> Any:
        """Optional: a ``GetTaskLogsResponse``, or an async iterator of them (one per page)."""
        raise NotImplementedError


class SyncConnectorBase(ConnectorBase):
    """A connector for short requests: ``do`` runs the whole task and returns a terminal ``Resource``."""

    name: ClassVar[str] = "Base Sync Connector"
    is_sync: ClassVar[bool] = True
    _method_names = ("do",)

    def __init__(self, task_type_name: str | None = None, task_type_version: int | None = None, **kwargs: Any) -> None:
        super().__init__(task_type_name, task_type_version, **kwargs)
        if _is_base_default(type(self), "do"):
            raise TypeError(f"{type(self).__name__} must implement do()")

    def do(
        self,
        task_template: TaskTemplate,
        output_prefix: str,
        inputs: LiteralMap | None = None,
        **kwargs: Any,
    ) -> Resource | Awaitable[Resource]:
        """Run the task to completion and return its terminal Resource."""
        raise NotImplementedError


LogPages = Union[Any, AsyncIterator[Any]]


def iter_connectors(objs: Iterable[Any]) -> list[ConnectorBase]:
    """Flatten connector instances, connector classes (instantiated without arguments) and iterables of them."""
    out: list[ConnectorBase] = []
    for obj in objs:
        if isinstance(obj, ConnectorBase):
            out.append(obj)
        elif isinstance(obj, type) and issubclass(obj, ConnectorBase):
            out.append(obj())
        elif isinstance(obj, Iterable) and not isinstance(obj, (str, bytes)):
            out.extend(iter_connectors(obj))
        else:
            raise TypeError(f"not a connector: {obj!r}")
    return out
