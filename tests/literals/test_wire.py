"""``to_literal_map_bytes`` writes what ``to_literal_map(...).SerializeToString()`` gives: the same literals (and, for a
single output, the same bytes), the literal engine's errors, and flytekit's golden literals for untyped values."""

from __future__ import annotations

import base64
import datetime
import json
import math
from pathlib import Path
from typing import Any

import pytest
from flyteidl.core import literals_pb2
from hypothesis import given
from hypothesis import strategies as st

from flyteconnect import literals as fl
from flyteconnect.errors import LiteralError
from flyteconnect.models import LiteralMap
from flyteconnect.wire import varint

EDGES: list[Any] = [
    0, 1, 127, 128, 16383, 16384, 2**31, 2**63 - 1, -1, -128, -(2**63),
    0.0, -0.0, 1.5, 1e308, float("inf"), float("-inf"),
    True, False,
    "", "x", "é" * 10, "x" * 114, "x" * 115, "x" * 5000, "\u2603\U0001f600",
    None, [1, 2], [1.0, "a"], {"z": 1}, b"\x00\x01",
    datetime.datetime(2024, 6, 1, 12, 30), datetime.timedelta(seconds=5),
]  # fmt: skip


def _parsed(data: bytes) -> literals_pb2.LiteralMap:
    return literals_pb2.LiteralMap.FromString(data)


@pytest.mark.parametrize("value", EDGES, ids=repr)
@pytest.mark.parametrize("name", ["o", "k" * 99, "k" * 100, "k" * 300, "ключ"])
def test_one_output_gives_the_same_bytes_as_the_proto_path(name: str, value: Any) -> None:
    assert fl.to_literal_map_bytes({name: value}) == fl.to_literal_map({name: value}).SerializeToString()


def test_nan_is_written_as_nan() -> None:
    lit = _parsed(fl.to_literal_map_bytes({"x": math.nan})).literals["x"]
    assert math.isnan(lit.scalar.primitive.float_value)


primitives = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=200),
    st.booleans(),
    st.none(),
    st.lists(st.integers(min_value=0, max_value=10), max_size=3),
)


@given(st.dictionaries(st.text(min_size=1, max_size=130), primitives, max_size=8))
def test_any_dict_gives_the_same_literals(values: dict[str, Any]) -> None:
    assert _parsed(fl.to_literal_map_bytes(values)) == fl.to_literal_map(values, what="output")


def test_entries_keep_the_dict_order() -> None:
    values = {"b": 1, "a": "x", "c": 2.5, "d": [1]}
    data = fl.to_literal_map_bytes(values)
    keys = []
    while data:  # each entry: 0x0a, length, entry { 0x0a, key length, key, ... }
        assert data[0] == 0x0A
        size = data[1]
        entry, data = data[2 : 2 + size], data[2 + size :]
        keys.append(entry[2 : 2 + entry[1]].decode())
    assert keys == list(values)


def test_views_protos_and_mappings_are_serialized_as_given() -> None:
    proto = fl.to_literal_map({"a": 1, "b": "x"})
    assert _parsed(fl.to_literal_map_bytes(proto)) == proto
    assert _parsed(fl.to_literal_map_bytes(LiteralMap.from_flyte_idl(proto))) == proto

    class Frozen(dict):  # a Mapping that is not exactly a dict
        pass

    assert _parsed(fl.to_literal_map_bytes(Frozen(a=1))) == fl.to_literal_map({"a": 1})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (2**63, "output 'x': expected int, got an integer out of the int64 range"),
        (-(2**63) - 1, "output 'x': expected int, got an integer out of the int64 range"),
        (object(), "output 'x': cannot convert a value of type object"),
    ],
)
def test_bad_values_raise_the_engines_error(value: Any, message: str) -> None:
    with pytest.raises(LiteralError, match=message):
        fl.to_literal_map_bytes({"x": value})


def test_names_that_are_not_strings_are_named() -> None:
    with pytest.raises(LiteralError, match=r"output names must be str, got int \(1\)"):
        fl.to_literal_map_bytes({"ok": 1, 1: "x"})


def test_not_a_mapping_is_refused() -> None:
    with pytest.raises(LiteralError, match="outputs must be a dict or a LiteralMap, got list"):
        fl.to_literal_map_bytes([1, 2])


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 16383, 16384, 2**35, 2**64 - 1])
def test_varint_matches_protobuf(n: int) -> None:
    lit = literals_pb2.Literal()
    lit.scalar.primitive.integer = n if n < 2**63 else n - 2**64
    assert lit.scalar.primitive.SerializeToString() == b"\x08" + varint(n)


GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "literals.json"


def test_untyped_primitives_match_flytekit_golden_literals() -> None:
    """flytekit's literals for int, float, str and bool, as the golden corpus holds them, come out of the wire path."""
    checked = 0
    for case in json.loads(GOLDEN.read_text())["cases"]:
        golden = literals_pb2.Literal.FromString(base64.b64decode(case["literal"]))
        if golden.WhichOneof("value") != "scalar" or golden.scalar.WhichOneof("value") != "primitive":
            continue
        value = fl.to_python(golden)
        if type(value) not in (int, float, str, bool):
            continue
        assert _parsed(fl.to_literal_map_bytes({"o": value})).literals["o"] == golden, case["name"]
        checked += 1
    assert checked >= 4


def test_cached_entry_heads_follow_each_value() -> None:
    """A name written before reuses its head: each value still gets its own bytes, of each size and kind."""
    name = "reused_output_name"
    for value in [1, 5, 127, 128, 300, 16383, 16384, -1, 2**40, 0.5, -2.25, True, False, "s", 7, 0.0, 1]:
        assert fl.to_literal_map_bytes({name: value}) == fl.to_literal_map({name: value}).SerializeToString(), value
