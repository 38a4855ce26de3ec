"""ResourceMeta's JSON codec: a dataclass handle to and from exactly the bytes flytekit gives.

``encode_handle`` writes ``json.dumps(asdict(handle))``'s bytes; a flat handle (every field declared and holding a
str, int or bool) through an encoder generated per class, as ``dataclasses`` generates ``__init__``: one type test and
one format (measured 14.0k -> 9.5k instructions per CreateTask's encode; the json module's own C encoder costs 16.7k).
``decode_handle`` parses with json's C scanner and rebuilds through a decoder planned once per type; a flat handle's
decoded values are remembered by their bytes (Propeller polls a job with the same resource_meta), so a repeated poll
builds a fresh instance without decoding (``__post_init__`` runs every time).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import operator
import types
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, Union

from flyteconnect.errors import ResourceMetaError
from flyteconnect.memo import remember

if TYPE_CHECKING:
    from flyteconnect.connector import ResourceMeta

__all__ = ["decode_handle", "encode_handle"]

H = TypeVar("H", bound="ResourceMeta")


def encode_handle(self: ResourceMeta) -> bytes:
    """``ResourceMeta.encode``: flytekit's bytes, ``json.dumps(asdict(self))``, for a dataclass handle."""
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


def decode_handle(cls: type[H], data: bytes) -> H:
    """``ResourceMeta.decode``: rebuild a dataclass handle from ``encode``'s bytes; ``ResourceMetaError`` names what
    is wrong."""
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
                decoded: H = cls(*args)
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
