"""JSON schema of a dataclass, as mashumaro's ``build_json_schema`` writes it (flytekit puts it in the dataclass
LiteralType's ``metadata``). Covers the field types flyteconnect supports; others get an empty schema."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import typing
from typing import Any

from flyteconnect.literals.builtin import dumper

__all__ = ["dataclass_schema"]

_SIMPLE: dict[Any, dict[str, Any]] = {
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    bytes: {"type": "string", "format": "base64"},
    datetime.datetime: {"type": "string", "format": "date-time"},
    datetime.date: {"type": "string", "format": "date"},
    datetime.timedelta: {"type": "number", "format": "time-delta"},
    list: {"type": "array"},
    dict: {"type": "object"},
}


def dataclass_schema(cls: type) -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        prop = dict(_schema(hints.get(f.name, f.type)))
        if f.default is not dataclasses.MISSING:
            try:
                prop["default"] = dumper(hints.get(f.name, f.type))(f.default)
            except Exception:  # a default that does not dump is left out of the schema, not an error
                pass
        elif f.default_factory is dataclasses.MISSING:
            required.append(f.name)
        properties[f.name] = prop
    out: dict[str, Any] = {"type": "object", "title": cls.__name__, "properties": properties}
    out["additionalProperties"] = False
    if required:
        out["required"] = required
    return out


def _schema(tp: Any) -> dict[str, Any]:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if tp is None:
        tp = type(None)
    simple = _SIMPLE.get(tp)
    if simple is not None:
        return simple
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return dataclass_schema(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return {"anyOf": [_schema(a) for a in args]}
    if origin is list:
        return {"type": "array", "items": _schema(args[0])} if args else {"type": "array"}
    if origin is dict:
        if not args:
            return {"type": "object"}
        return {"type": "object", "additionalProperties": _schema(args[1]), "propertyNames": _schema(args[0])}
    return {}
