"""Task inputs from text (command-line flags) and JSON (an inputs file), converted by their declared Python types."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, Union

__all__ = ["InputParseError", "parse_inputs", "parse_text", "to_jsonable", "value_from_json"]

_UNIONS: tuple[Any, ...] = (Union, types.UnionType)
_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


class InputParseError(ValueError):
    """A task input that cannot be read as its declared type; names the input and the type."""


def _type_name(tp: Any) -> str:
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _optional_arg(tp: Any) -> Any:
    """T for Optional[T] (a two-member union with None), else None."""
    if typing.get_origin(tp) in _UNIONS:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0]
    return None


def value_from_json(value: Any, tp: Any) -> Any:
    """Shape a decoded JSON value for ``tp``: dataclasses, enums, dates and containers are built; the rest passes."""
    if value is None:
        return None
    inner = _optional_arg(tp)
    if inner is not None:
        return value_from_json(value, inner)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return value_from_json(value, args[0])
    if origin in (list, tuple, set, frozenset) and isinstance(value, list):
        item = args[0] if args else Any
        return [value_from_json(v, item) for v in value]
    if origin in (dict, Mapping) and isinstance(value, dict):
        item = args[1] if len(args) == 2 else Any
        return {k: value_from_json(v, item) for k, v in value.items()}
    if not isinstance(tp, type):
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            if isinstance(value, str) and value in tp.__members__:
                return tp[value]
            raise
    if tp is datetime.datetime and isinstance(value, str):
        return datetime.datetime.fromisoformat(value)
    if tp is datetime.date and isinstance(value, str):
        return datetime.date.fromisoformat(value)
    if tp is datetime.timedelta and isinstance(value, (int, float)):
        return datetime.timedelta(seconds=value)
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        hints = typing.get_type_hints(tp)
        return tp(**{k: value_from_json(v, hints.get(k, Any)) for k, v in value.items()})
    if hasattr(tp, "model_validate") and isinstance(value, dict):  # pydantic v2 models
        return tp.model_validate(value)
    return value


def parse_text(text: str, tp: Any) -> Any:
    """Read one command-line value as ``tp``: strings verbatim, numbers and booleans directly, the rest as JSON."""
    inner = _optional_arg(tp)
    if inner is not None:
        return None if text.lower() in ("none", "null") else parse_text(text, inner)
    if tp is str or tp is Any:
        return text
    if tp is bool:
        low = text.lower()
        if low in _TRUE or low in _FALSE:
            return low in _TRUE
        raise ValueError(f"{text!r} is not a boolean (use true/false)")
    if tp is int:
        return int(text)
    if tp is float:
        return float(text)
    if tp is datetime.datetime:
        return datetime.datetime.fromisoformat(text)
    if tp is datetime.date:
        return datetime.date.fromisoformat(text)
    if tp is datetime.timedelta:
        return datetime.timedelta(seconds=float(text))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if text in tp.__members__:
            return tp[text]
        return value_from_json(text, tp)
    try:
        decoded = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{text!r} is not valid JSON ({e.msg})") from None
    return value_from_json(decoded, tp)


def parse_inputs(
    declared: Mapping[str, Any], flags: Mapping[str, str], file_values: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Inputs from an inputs file (JSON values) overridden by flags (text); ``InputParseError`` names the culprit."""
    out: dict[str, Any] = {}
    for source, values, convert in (("inputs file", file_values or {}, value_from_json), ("flag", flags, parse_text)):
        for name, raw in values.items():
            if name not in declared:
                takes = ", ".join(declared) or "no inputs"
                raise InputParseError(f"unknown input {name!r} (from the {source}); the task takes: {takes}")
            tp = declared[name]
            try:
                out[name] = convert(raw, tp)
            except (ValueError, TypeError) as e:
                raise InputParseError(f"input {name!r}: cannot read {raw!r} as {_type_name(tp)}: {e}") from None
    return out


def to_jsonable(value: Any) -> Any:
    """A JSON-friendly form of an output value (dataclasses as objects, dates as ISO text, bytes as latin-1)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "model_dump"):
        return to_jsonable(value.model_dump())
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    uri = getattr(value, "uri", None) or getattr(value, "path", None)
    if isinstance(uri, str):  # files, directories, structured datasets
        return uri
    return str(value)
