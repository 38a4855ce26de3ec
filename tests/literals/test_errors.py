"""Bad values and literals raise LiteralError naming the field and the expected type."""

from __future__ import annotations

import dataclasses
import datetime
import enum
from typing import Any, Optional, Union

import pytest
from flyteidl.core import literals_pb2

from flyteconnect.errors import InvalidRequest, LiteralError
from flyteconnect.literals import (
    FlyteFile,
    literal_map_to_python,
    to_literal,
    to_literal_map,
    to_literal_map_proto,
    to_literal_type,
)


class Mode(enum.Enum):
    FAST = "fast"


class Level(enum.Enum):
    ONE = 1


@dataclasses.dataclass
class Cfg:
    n: int
    when: datetime.datetime


class Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


BAD_VALUES = [
    ("abc", int, "input 'x': expected int, got str ('abc')"),
    (True, int, "input 'x': expected int, got bool (True)"),
    (1.5, int, "input 'x': expected int, got float (1.5)"),
    (2**63, int, "input 'x': expected int, got an integer out of the int64 range (9223372036854775808)"),
    ("1.5", float, "input 'x': expected float, got str ('1.5')"),
    (1, str, "input 'x': expected str, got int (1)"),
    (1, bool, "input 'x': expected bool, got int (1)"),
    ("2024-01-01", datetime.datetime, "input 'x': expected datetime, got str ('2024-01-01')"),
    (datetime.datetime(2024, 1, 1), datetime.date, "input 'x': expected date, got datetime"),
    (5, datetime.timedelta, "input 'x': expected timedelta, got int (5)"),
    (0, type(None), "input 'x': expected None, got int (0)"),
    ("slow", Mode, "input 'x': expected Mode (one of ['fast']), got str ('slow')"),
    ([1, "a"], list[int], "input 'x'[1]: expected int, got str ('a')"),
    ("ab", list[int], "input 'x': expected list[int], got str ('ab')"),
    ({"a": [1, None]}, dict[str, list[int]], "input 'x'['a'][1]: expected int, got NoneType (None)"),
    ({1: 2}, dict[str, int], "input 'x': expected str keys for dict[str, int], got 1"),
    ([1.5], Optional[list[int]], "input 'x': expected Optional[list[int]], got list ([1.5])"),
    ("x", Union[int, float], "input 'x': expected Union[int, float], got str ('x')"),
    ({"a": datetime.datetime(2024, 1, 1)}, dict, "input 'x': dict value cannot be encoded as msgpack"),
    (Cfg(n="1", when=datetime.datetime(2024, 1, 1)), Cfg, "input 'x'.n: expected int, got str ('1')"),
    ({1, 2}, None, "input 'x': cannot convert a value of type set ({1, 2})"),
    (Opaque(), None, "input 'x': cannot convert a value of type Opaque (<opaque>)"),
    ([Opaque()], None, "input 'x': cannot convert a value of type Opaque (<opaque>)"),
    (42, FlyteFile, "input 'x': expected FlyteFile, got int (42)"),
    (1, Level, "input 'x': Enum Level has non-string values; only string-valued Enums are supported"),
    (1, complex, "input 'x': type complex is not supported"),
]


@pytest.mark.parametrize(("value", "tp", "message"), BAD_VALUES, ids=[m.split(": ", 1)[1][:40] for *_, m in BAD_VALUES])
def test_bad_values_name_field_and_expected_type(value: Any, tp: Any, message: str) -> None:
    hints = {} if tp is None else {"x": tp}
    with pytest.raises(LiteralError) as info:
        to_literal_map({"ok": 1, "x": value}, hints)
    assert str(info.value).startswith(message), str(info.value)
    assert isinstance(info.value, InvalidRequest)  # maps to INVALID_ARGUMENT on the wire


def test_to_literal_without_field_name() -> None:
    with pytest.raises(LiteralError, match=r"^\[2\]: expected int, got str \('c'\)$"):
        to_literal([1, 2, "c"], list[int])
    with pytest.raises(LiteralError, match=r"^expected float, got str"):
        to_literal("x", float)


def test_outputs_are_named_outputs() -> None:
    with pytest.raises(LiteralError, match=r"^output 'y': expected int"):
        to_literal_map_proto({"y": "no"}, {"y": int})
    with pytest.raises(LiteralError, match="outputs must be a dict or a LiteralMap, got list"):
        to_literal_map_proto([1, 2])


def _int(v: int) -> literals_pb2.Literal:
    return to_literal(v)


BAD_LITERALS = [
    (_int(1), str, "input 'x': expected a literal of str, got integer literal"),
    (to_literal("a"), int, "input 'x': expected a literal of int, got string_value literal"),
    (to_literal([1, 2]), dict[str, int], "input 'x': expected a literal of dict[str, int], got collection literal"),
    (to_literal(["a"]), list[int], "input 'x'[0]: expected a literal of int, got string_value literal"),
    (to_literal("purple"), Mode, "input 'x': expected one of ['fast'] for Mode, got 'purple'"),
    (to_literal("s"), Optional[int], "input 'x': expected a literal of Optional[int], got string_value literal"),
    (to_literal({"n": "x"}), Cfg, "input 'x'.n: expected int, got str ('x')"),
    (
        literals_pb2.Literal(scalar=literals_pb2.Scalar(binary=literals_pb2.Binary(value=b"\xc1", tag="msgpack"))),
        dict,
        "input 'x': msgpack binary literal does not decode",
    ),
]


@pytest.mark.parametrize(("lit", "tp", "message"), BAD_LITERALS, ids=[m[11:50] for *_, m in BAD_LITERALS])
def test_bad_literals_name_field_and_expected_type(lit: literals_pb2.Literal, tp: Any, message: str) -> None:
    lm = literals_pb2.LiteralMap(literals={"x": lit})
    with pytest.raises(LiteralError) as info:
        literal_map_to_python(lm, {"x": tp})
    assert str(info.value).startswith(message), str(info.value)


def test_literal_type_errors() -> None:
    with pytest.raises(LiteralError, match=r"typing\.Any has no LiteralType"):
        to_literal_type(Any)
    with pytest.raises(LiteralError, match="type complex is not supported"):
        to_literal_type(complex)


def test_ambiguous_union_is_refused() -> None:
    with pytest.raises(LiteralError, match=r"ambiguous value for Union\[list\[int\], list\[str\]\]"):
        to_literal([], Union[list[int], list[str]])


def test_long_values_are_cut_in_messages() -> None:
    with pytest.raises(LiteralError) as info:
        to_literal("x" * 10_000, int)
    assert len(str(info.value)) < 120
