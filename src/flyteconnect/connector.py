"""The connector SDK: task categories, resource metadata, resources and the connector base classes.

Names and meaning follow flytekit's ``flytekit.extend.backend.base_connector`` so a flytekit connector ports by
changing its imports. Differences are improvements: ``ResourceMeta.decode`` fails with a clear error, resource outputs
convert lists and literals properly, and whether each method is ``def`` or ``async def`` is decided once per connector.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import importlib
import inspect
import json
import operator
import sys
import types
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar, Union

from flyteidl.admin import agent_pb2
from google.protobuf import struct_pb2

from flyteconnect.errors import ResourceMetaError
from flyteconnect.memo import remember

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

    def encode(self) -> bytes:
        """Serialize to the bytes Propeller stores and echoes back."""
        encoding = _encoding_fields(type(self))  # type: ignore[arg-type]
        if encoding is None:
            raise TypeError(f"{type(self).__name__} must be a @dataclass or override encode()")
        if encoding.flat is not None:  # CreateTask's hot path: see _flat_encoder
            encoded = encoding.flat(self)
            if encoded is not None:
                return encoded
        values = encoding.values_of(self)
        # The usual handle is flat: str, int, bool and None fields. Write those as json.dumps would (same escaping,
        # separators and number forms) without asdict's deep copy and json's encoder set-up; anything else (floats,
        # containers, nested dataclasses) takes the general path.
        items = []
        for prefix, value in zip(encoding.prefixes, values, strict=True):
            kind = type(value)
            if kind is str:
                items.append(prefix + _json_string(value))
            elif kind is int:
                items.append(prefix + int.__repr__(value))
            elif kind is bool:
                items.append(prefix + ("true" if value else "false"))
            elif value is None:
                items.append(prefix + "null")
            else:
                return json.dumps(dataclasses.asdict(self)).encode("utf-8")  # type: ignore[call-overload]
        return ("{" + ", ".join(items) + "}").encode("utf-8")

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Rebuild from ``encode``'s bytes; ``ResourceMetaError`` names what is wrong."""
        flat = _FLAT.get(cls, _UNSET)  # _flat_handle(cls), without a call on the hot path
        if flat is _UNSET:
            flat = _flat_handle(cls)  # type: ignore[arg-type]
        memo = flat.memo if flat is not None and flat.positional and type(data) is bytes else None
        if memo is not None:
            args = memo.get(data)
            if args is not None:  # seen before (GetTask polls a job with the same bytes): no decoding
                try:
                    return cls(*args)
                except Exception:
                    pass  # a __post_init__ that changed its mind: decode and report as usual
        try:
            text = (data if type(data) is bytes else bytes(data)).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ResourceMetaError(f"resource_meta for {cls.__name__} is not UTF-8 text: {e}") from None
        try:
            # json's C scanner directly (GetTask's hot path): json.loads adds two regex matches and three Python
            # frames. Anything unusual (surrounding whitespace, trailing data, errors) goes through json.loads.
            raw, end = _scan_json(text, 0)
            if end != len(text):
                raw = json.loads(text)
        except (StopIteration, ValueError):
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as e:
                shown = text if len(text) <= 60 else text[:57] + "..."
                raise ResourceMetaError(
                    f"resource_meta for {cls.__name__} is not JSON ({e.msg} at {e.pos}): {shown!r}"
                ) from None
        if memo is not None:
            args = flat.args(raw)
            if args is not None:
                try:
                    decoded: Self = cls(*args)
                except Exception:
                    pass  # the general decoder below says what is wrong
                else:
                    flat.remember(data, args)
                    return decoded
        try:
            decoded = _decoder(cls)(raw)  # type: ignore[arg-type]
        except _DecodeError as e:
            raise ResourceMetaError(f"{cls.__name__}{''.join(reversed(e.path))}: {e.message}") from None
        return decoded


_FLAT: dict[type, Any] = {}
"""``_flat_handle`` of each class seen (None for a class that is not a flat handle)."""
_UNSET: Any = object()
_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_json_string: Callable[[str], str] = json.encoder.encode_basestring_ascii  # json.dumps' own (C) string escaping


class _Encoding:
    """How ``encode`` writes a dataclass: its field values in declaration order (what ``asdict`` emits), each
    field's ``"name": `` as json.dumps writes it, and the flat encoder when there is one (``_flat_encoder``)."""

    __slots__ = ("flat", "prefixes", "values_of")

    def __init__(self, cls: type) -> None:
        names = tuple(f.name for f in dataclasses.fields(cls))
        self.values_of: Callable[[Any], tuple[Any, ...]]
        if len(names) > 1:
            self.values_of = operator.attrgetter(*names)
        elif names:  # attrgetter of one name gives the value itself, not a 1-tuple
            name = names[0]
            self.values_of = lambda obj: (getattr(obj, name),)
        else:
            self.values_of = lambda obj: ()
        self.prefixes = tuple(f"{_json_string(name)}: " for name in names)
        hints = _field_types(cls)  # init fields only: a field with init=False keeps the general path
        declared = tuple(hints.get(name) for name in names)
        flat = bool(names) and all(hint in _JSON_OF for hint in declared)
        self.flat = _flat_encoder(self.values_of, self.prefixes, declared) if flat else None


# How json.dumps writes a value of exactly this type, as an expression over ``v`` (C functions only).
_JSON_OF = {str: "_string(v)", int: "_int(v)", bool: "_bool[v]"}


def _flat_encoder(
    values_of: Callable[[Any], tuple[Any, ...]], prefixes: tuple[str, ...], declared: tuple[Any, ...]
) -> Callable[[Any], bytes | None]:
    """A function giving ``encode``'s bytes for an instance whose values have exactly the declared types (str, int,
    bool), else None. Generated, as ``dataclasses`` generates ``__init__``: one type test and one format for the
    whole object is several times faster than a loop over the fields. The source holds no name of the user's: the
    values come from ``values_of`` and the JSON field names sit in the format string, passed in as a constant."""
    n = len(declared)
    variables = [f"v{i}" for i in range(n)]
    checks = " and ".join(f"type(v{i}) is t{i}" for i in range(n))
    texts = ", ".join(_JSON_OF[hint].replace("v", f"v{i}") for i, hint in enumerate(declared))
    source = (
        "def encode_flat(obj):\n"
        f"    {', '.join(variables)}, = values_of(obj)\n"
        f"    if {checks}:\n"
        f"        return (template % ({texts},)).encode('utf-8')\n"
        "    return None\n"
    )
    namespace: dict[str, Any] = {
        "values_of": values_of,
        "template": "{" + ", ".join(p.replace("%", "%%") + "%s" for p in prefixes) + "}",
        "_string": _json_string,
        "_int": int.__repr__,
        "_bool": ("false", "true"),
        **{f"t{i}": hint for i, hint in enumerate(declared)},
    }
    exec(source, namespace)  # our own source: generated variable names, constants passed in the namespace
    return namespace["encode_flat"]  # type: ignore[no-any-return]


@functools.cache
def _encoding_fields(cls: type) -> _Encoding | None:
    """``encode``'s plan for dataclass ``cls``; None if ``cls`` is not a dataclass."""
    return _Encoding(cls) if dataclasses.is_dataclass(cls) else None


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # unresolved forward references: fall back to accepting anything
        hints = {}
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}


@functools.cache
def _required_fields(cls: type) -> frozenset[str]:
    missing = dataclasses.MISSING
    return frozenset(
        f.name for f in dataclasses.fields(cls) if f.init and f.default is missing and f.default_factory is missing
    )


_UNION_TYPES: tuple[Any, ...] = (Union, types.UnionType)


class _DecodeError(Exception):
    """A decoding problem; parents prepend their field names to ``path`` on the way up (only paid on error)."""

    def __init__(self, message: str) -> None:
        self.message = message
        self.path: list[str] = []


Decoder = Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


@functools.cache
def _decoder(tp: Any) -> Decoder:
    """A function turning a JSON value into ``tp``, built once per type so GetTask pays only for the checks."""
    if tp is Any or tp is object:
        return _identity
    origin = typing.get_origin(tp)
    if origin in _UNION_TYPES:
        return _union_decoder(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_decoder(tp)
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set, frozenset):
        return _sequence_decoder(tp, origin or tp)
    if origin is dict or tp is dict or origin is Mapping:
        return _mapping_decoder(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_decoder(tp)
    if tp is float:
        return _float_decoder
    if tp in (int, str, bool):
        return _exact_decoder(tp)
    return _identity  # other annotations (NewType, Literal, custom classes): passed through as flytekit does


def _union_decoder(tp: Any) -> Decoder:
    args = typing.get_args(tp)
    optional = type(None) in args
    choices = [_decoder(arg) for arg in args if arg is not type(None)]

    def decode(value: Any) -> Any:
        if value is None and optional:
            return None
        errors = []
        for choice in choices:
            try:
                return choice(value)
            except _DecodeError as e:
                errors.append(e)
        if len(errors) == 1:
            raise errors[0]
        raise _DecodeError(f"{value!r} matches none of {tp}")

    return decode


class _FlatHandle:
    """A dataclass handle whose init fields are all str, int or bool (the common job handle).

    ``args`` fetches the values of a decoded JSON object in field order and compares their types in one step, in C.
    ``memo`` maps handle bytes to those values, for positional classes: a running job is polled with the same
    resource_meta again and again, and the values are immutable, so each call builds a fresh instance from them
    (``__post_init__`` runs every time) without decoding. It is bounded (oldest entry dropped first).
    """

    __slots__ = ("count", "memo", "positional", "types", "values_of")
    MEMO_ENTRIES = 4096

    def __init__(self, names: tuple[str, ...], types_in_order: tuple[type, ...], positional: bool) -> None:
        self.count = len(names)
        self.types = types_in_order
        self.values_of: Callable[[dict[str, Any]], tuple[Any, ...]] = (
            operator.itemgetter(*names) if len(names) > 1 else (lambda d: (d[names[0]],))  # type: ignore[assignment]
        )
        self.positional = positional
        self.memo: dict[bytes, tuple[Any, ...]] = {}

    def args(self, value: Any) -> tuple[Any, ...] | None:
        """The constructor's arguments if ``value`` is exactly an object of these fields and types, else None."""
        if type(value) is dict and len(value) == self.count:
            try:
                args = self.values_of(value)
            except KeyError:  # an unknown key in place of a field
                return None
            if tuple(map(type, args)) == self.types:
                return args
        return None

    def remember(self, data: bytes, args: tuple[Any, ...]) -> None:
        """Keep ``args`` as the decoding of ``data``."""
        remember(self.memo, data, args, self.MEMO_ENTRIES)


def _flat_handle(cls: type) -> _FlatHandle | None:
    """The flat-handle fast path of dataclass ``cls``, or None when a field is not a str, int or bool (kept in
    ``_FLAT``: one per class, shared by ``decode`` and the class's decoder)."""
    found = _FLAT.get(cls, _UNSET)
    if found is not _UNSET:
        return found  # type: ignore[no-any-return]
    flat = None
    hints = _field_types(cls) if dataclasses.is_dataclass(cls) else None
    if hints and all(hint in (str, int, bool) for hint in hints.values()):
        positional = not any(getattr(f, "kw_only", False) for f in dataclasses.fields(cls) if f.init)
        flat = _FlatHandle(tuple(hints), tuple(hints.values()), positional)
    _FLAT[cls] = flat
    return flat


def _dataclass_decoder(cls: type) -> Decoder:
    hints = _field_types(cls)
    fields = {name: _decoder(hint) for name, hint in hints.items()}
    known = frozenset(fields)
    required = _required_fields(cls)
    name = cls.__name__
    flat = _flat_handle(cls)

    def decode_flat(value: Any) -> Any:
        # Every field is a str, int or bool and encode() writes all of them: see _FlatHandle. Anything else (omitted
        # defaults, unknown keys, wrong types) goes through ``decode``, which handles and describes it.
        assert flat is not None
        args = flat.args(value)
        if args is not None:
            try:
                return cls(*args) if flat.positional else cls(**value)
            except Exception:
                return decode(value)
        return decode(value)

    def decode(value: Any) -> Any:
        if not isinstance(value, dict):
            raise _DecodeError(f"expected an object for {name}, got {type(value).__name__}")
        keys = value.keys()
        if not keys <= known:
            raise _DecodeError(f"unknown field(s) {', '.join(sorted(keys - known))} for {name}")
        if not required <= keys:
            raise _DecodeError(f"missing field(s) {', '.join(sorted(required - keys))} for {name}")
        kwargs = {}
        for key, item in value.items():
            try:
                kwargs[key] = fields[key](item)
            except _DecodeError as e:
                e.path.append(f".{key}")
                raise
        try:
            return cls(**kwargs)
        except Exception as e:  # a __post_init__ that validates
            raise _DecodeError(f"{name} rejected the values: {e}") from None

    return decode_flat if flat is not None else decode


def _sequence_decoder(tp: Any, container: Any) -> Decoder:
    args = typing.get_args(tp)
    if container is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        items = [_decoder(a) for a in args]

        def decode_fixed(value: Any) -> Any:
            if not isinstance(value, list):
                raise _DecodeError(f"expected a list, got {type(value).__name__}")
            if len(value) != len(items):
                raise _DecodeError(f"expected {len(items)} items, got {len(value)}")
            return tuple(_each(dec, v, i) for i, (dec, v) in enumerate(zip(items, value, strict=True)))

        return decode_fixed
    item = _decoder(args[0] if args else Any)

    def decode(value: Any) -> Any:
        if not isinstance(value, list):
            raise _DecodeError(f"expected a list, got {type(value).__name__}")
        out = [_each(item, v, i) for i, v in enumerate(value)]
        return out if container is list else container(out)

    return decode


def _each(decode: Decoder, value: Any, index: int) -> Any:
    try:
        return decode(value)
    except _DecodeError as e:
        e.path.append(f"[{index}]")
        raise


def _mapping_decoder(tp: Any) -> Decoder:
    args = typing.get_args(tp)
    item = _decoder(args[1] if len(args) == 2 else Any)

    def decode(value: Any) -> Any:
        if not isinstance(value, dict):
            raise _DecodeError(f"expected an object, got {type(value).__name__}")
        out = {}
        for key, v in value.items():
            try:
                out[key] = item(v)
            except _DecodeError as e:
                e.path.append(f".{key}")
                raise
        return out

    return decode


def _enum_decoder(tp: type[enum.Enum]) -> Decoder:
    def decode(value: Any) -> Any:
        try:
            return tp(value)
        except ValueError:
            raise _DecodeError(f"{value!r} is not a {tp.__name__}") from None

    return decode


def _float_decoder(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise _DecodeError(f"expected a number, got {type(value).__name__}")


def _exact_decoder(tp: type) -> Decoder:
    def decode(value: Any) -> Any:
        if type(value) is tp:
            return value
        raise _DecodeError(f"expected {tp.__name__}, got {type(value).__name__}")

    return decode


# ------------------------------------------------------------------------------------------------------------ Resource


def _literals() -> Any:
    """The literal engine, imported on first use (it is heavy; ``import flyteconnect`` stays light)."""
    return sys.modules.get("flyteconnect.literals") or importlib.import_module("flyteconnect.literals")


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
        return self.fill_flyte_idl(agent_pb2.Resource())

    def fill_flyte_idl(self, pb: agent_pb2.Resource) -> agent_pb2.Resource:
        """Write ``to_flyte_idl``'s fields into the empty ``pb`` (a reply's ``resource``: no copy); returns it."""
        # The server's hot path: fields are set in place and empty parts cost no call.
        phase = int(self.phase) if self.phase is not None else 0
        pb.phase = phase  # type: ignore[assignment]
        pb.state = state_for_phase(phase)  # type: ignore[assignment]
        if self.message:
            pb.message = self.message
        if self.log_links:
            pb.log_links.extend(self.log_links_to_flyte_idl())
        if self.outputs is not None:
            pb.outputs.SetInParent()  # empty outputs are still present, as with CopyFrom
            _literals().to_literal_map_proto(self.outputs, into=pb.outputs)
        if self.custom_info:
            custom_info = self.custom_info_to_flyte_idl()
            if custom_info is not None:
                pb.custom_info.CopyFrom(custom_info)
        return pb

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
