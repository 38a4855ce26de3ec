"""Python values <-> msgpack-ready builtins, typed by a Python type, with mashumaro's rules (what flytekit uses to
msgpack dataclasses and non-string-keyed dicts): datetimes and dates as ISO strings, timedeltas as float seconds,
Enums by value, dataclasses as dicts in field order, tuples and sets as lists, bytes as bytes."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import functools
import pathlib
import types
import typing
import uuid
from collections.abc import Callable
from typing import Any

from flyteconnect.literals.base import ConversionFailed, show_value, type_name

__all__ = ["dumper", "loader"]

Fn = Callable[[Any], Any]


def _identity(v: Any) -> Any:
    return v


def _strip_annotated(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _checked(tp: Any, fn: Fn) -> Fn:
    def check(v: Any) -> Any:
        if not isinstance(v, tp) or (tp is int and isinstance(v, bool)):
            raise ConversionFailed(f"expected {type_name(tp)}, got {type(v).__name__} ({show_value(v)})")
        return fn(v)

    return check


def _hashable_cache(fn: Callable[[Any], Fn]) -> Callable[[Any], Fn]:
    cached = functools.cache(fn)

    def get(tp: Any) -> Fn:
        try:
            return cached(tp)
        except TypeError:  # unhashable type hint (Annotated with unhashable metadata)
            return fn(tp)

    return get


@_hashable_cache
def dumper(tp: Any) -> Fn:
    """A function turning a value of type ``tp`` into msgpack-ready builtins (raises ConversionFailed)."""
    tp = _strip_annotated(tp)
    if tp is Any or tp is object:
        return _identity
    if tp is type(None) or tp is None:
        return _checked(type(None), _identity)
    if tp is float:
        # Passed through as is (an int stays an int), as mashumaro does.
        return lambda v: v if isinstance(v, (int, float)) and not isinstance(v, bool) else _fail(float, v)
    if tp in (int, str, bool):
        return _checked(tp, _identity)
    if tp in (bytes, bytearray):
        return _checked((bytes, bytearray), _identity)
    if tp is datetime.datetime:
        return _checked(datetime.datetime, lambda v: v.isoformat())
    if tp is datetime.date:
        return _checked(datetime.date, lambda v: v.isoformat())
    if tp is datetime.timedelta:
        return _checked(datetime.timedelta, lambda v: v.total_seconds())
    if tp in (uuid.UUID, decimal.Decimal) or (isinstance(tp, type) and issubclass(tp, pathlib.PurePath)):
        return _checked(tp, str)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _checked(tp, lambda v: v.value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_dumper(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if _is_union(tp):
        return _union_dumper(args)
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set, frozenset):
        items = [dumper(a) for a in args if a is not Ellipsis] or [_identity]
        if origin is tuple and len(args) > 1 and args[1] is not Ellipsis:
            return lambda v: [f(x) for f, x in zip(items, v, strict=False)]
        item = items[0]
        return lambda v: [item(x) for x in v]
    if origin is dict or tp is dict:
        kd, vd = (dumper(args[0]), dumper(args[1])) if args else (_identity, _identity)
        return lambda v: {kd(k): vd(x) for k, x in v.items()}
    raise ConversionFailed(f"type {type_name(tp)} is not supported inside a dataclass or msgpack dict")


def _union_dumper(args: tuple[Any, ...]) -> Fn:
    pairs = [(_runtime_class(a), dumper(a)) for a in args]

    def dump(v: Any) -> Any:
        # Pick the variant the value is an instance of; mashumaro tries variants in order the same way.
        for cls, fn in pairs:
            if cls is not None and isinstance(v, cls) and not (cls is int and isinstance(v, bool)):
                return fn(v)
        for _, fn in pairs:
            try:
                return fn(v)
            except (ConversionFailed, TypeError, ValueError, AttributeError):
                continue
        raise ConversionFailed(f"expected Union{list(map(type_name, args))}, got {type(v).__name__} ({show_value(v)})")

    return dump


def _runtime_class(tp: Any) -> Any:
    tp = _strip_annotated(tp)
    if tp is None:
        return type(None)
    origin = typing.get_origin(tp)
    if origin is not None and isinstance(origin, type):
        return origin
    return tp if isinstance(tp, type) else None


def _dataclass_dumper(cls: type) -> Fn:
    def dump(v: Any) -> Any:
        if not isinstance(v, cls):
            raise ConversionFailed(f"expected {cls.__name__}, got {type(v).__name__} ({show_value(v)})")
        out = {}
        for name, fn in fields:
            try:
                out[name] = fn(getattr(v, name))
            except ConversionFailed as e:
                raise e.at(f".{name}") from None
        return out

    # Resolved lazily so self-referencing and forward-declared dataclasses work.
    fields: list[tuple[str, Fn]] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        fields.append((f.name, _lazy(dumper, hints.get(f.name, f.type))))
    return dump


def _lazy(factory: Callable[[Any], Fn], tp: Any) -> Fn:
    box: list[Fn] = []

    def call(v: Any) -> Any:
        if not box:
            box.append(factory(tp))
        return box[0](v)

    return call


@_hashable_cache
def loader(tp: Any) -> Fn:
    """A function turning msgpack builtins back into a value of type ``tp`` (raises ConversionFailed)."""
    tp = _strip_annotated(tp)
    if tp is Any or tp is object or tp in (str, bool, bytes, int):
        return _identity if tp in (Any, object) else _checked(tp, _identity)
    if tp is type(None) or tp is None:
        return _checked(type(None), _identity)
    if tp is float:
        return lambda v: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else _fail(tp, v)
    if tp is bytearray:
        return bytearray
    if tp is datetime.datetime:
        return lambda v: datetime.datetime.fromisoformat(v) if isinstance(v, str) else _fail(tp, v)
    if tp is datetime.date:
        return lambda v: datetime.date.fromisoformat(v) if isinstance(v, str) else _fail(tp, v)
    if tp is datetime.timedelta:
        return lambda v: datetime.timedelta(seconds=v) if isinstance(v, (int, float)) else _fail(tp, v)
    if tp in (uuid.UUID, decimal.Decimal) or (isinstance(tp, type) and issubclass(tp, pathlib.PurePath)):
        return _guarded(tp, tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _guarded(tp, tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_loader(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if _is_union(tp):
        fns = [loader(a) for a in args]

        def load_union(v: Any) -> Any:
            if v is None and type(None) in args:
                return None
            for fn in fns:
                try:
                    return fn(v)
                except (ConversionFailed, TypeError, ValueError, KeyError):
                    continue
            return _fail(tp, v)

        return load_union
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set, frozenset):
        item = loader(args[0]) if args else _identity
        make = origin or tp
        if make is list:
            return lambda v: [item(x) for x in v] if isinstance(v, list) else _fail(tp, v)
        if make is tuple and len(args) > 1 and args[1] is not Ellipsis:
            items = [loader(a) for a in args]
            return lambda v: tuple(f(x) for f, x in zip(items, v, strict=False))
        return lambda v: make(item(x) for x in v)
    if origin is dict or tp is dict:
        kl, vl = (loader(args[0]), loader(args[1])) if args else (_identity, _identity)
        return lambda v: {kl(k): vl(x) for k, x in v.items()} if isinstance(v, dict) else _fail(tp, v)
    raise ConversionFailed(f"type {type_name(tp)} is not supported inside a dataclass or msgpack dict")


def _fail(tp: Any, v: Any) -> Any:
    raise ConversionFailed(f"expected {type_name(tp)}, got {type(v).__name__} ({show_value(v)})")


def _guarded(tp: Any, fn: Fn) -> Fn:
    def load(v: Any) -> Any:
        try:
            return fn(v)
        except (TypeError, ValueError) as e:
            raise ConversionFailed(f"expected {type_name(tp)}, got {show_value(v)}: {e}") from None

    return load


def _dataclass_loader(cls: type) -> Fn:
    hints = typing.get_type_hints(cls)
    fields = [(f.name, _lazy(loader, hints.get(f.name, f.type))) for f in dataclasses.fields(cls) if f.init]

    def load(v: Any) -> Any:
        if not isinstance(v, dict):
            return _fail(cls, v)
        kwargs = {}
        for name, fn in fields:
            if name in v:
                try:
                    kwargs[name] = fn(v[name])
                except ConversionFailed as e:
                    raise e.at(f".{name}") from None
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise ConversionFailed(f"cannot build {cls.__name__}: {e}") from None

    return load
