"""The public API: untyped conversion (the server's path for connector outputs), maps, hints given as
LiteralTypes or interface Variables, to_python_type, and the light file and dataset types."""

from __future__ import annotations

import datetime
import subprocess
import sys
import typing

from flyteidl.core import interface_pb2, literals_pb2, types_pb2

from flyteconnect.literals import (
    FlyteDirectory,
    FlyteFile,
    StructuredDataset,
    literal_map_to_python,
    to_literal,
    to_literal_map,
    to_literal_map_proto,
    to_literal_type,
    to_python,
    to_python_type,
)
from flyteconnect.models import LiteralMap


def test_untyped_outputs_dict_becomes_flytekit_like_literals() -> None:
    now = datetime.datetime(2024, 5, 1, tzinfo=datetime.timezone.utc)
    raw = literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=9)))
    lm = to_literal_map_proto(
        {"i": 1, "f": 0.5, "s": "x", "b": False, "t": now, "d": {"k": [1, 2]}, "l": [1, 2], "m": [1, "a"], "lit": raw}
    )
    lits = lm.literals
    assert lits["i"].scalar.primitive.integer == 1
    assert lits["f"].scalar.primitive.float_value == 0.5
    assert lits["s"].scalar.primitive.string_value == "x"
    assert lits["b"].scalar.primitive.HasField("boolean") and not lits["b"].scalar.primitive.boolean
    assert lits["t"].scalar.primitive.datetime.seconds == int(now.timestamp())
    assert lits["d"].scalar.binary.tag == "msgpack" and lits["d"].scalar.binary.value == b"\x81\xa1k\x92\x01\x02"
    assert [x.scalar.primitive.integer for x in lits["l"].collection.literals] == [1, 2]  # a list works
    assert lits["m"].scalar.binary.value == b"\x92\x01\xa1a"  # mixed list: msgpack
    assert lits["lit"] == raw  # a Literal passes through unchanged
    assert literal_map_to_python(lm) == {
        "i": 1, "f": 0.5, "s": "x", "b": False, "t": now, "d": {"k": [1, 2]}, "l": [1, 2], "m": [1, "a"], "lit": 9,
    }  # fmt: skip


def test_empty_list_is_an_empty_collection() -> None:
    lit = to_literal([])
    assert lit.HasField("collection") and len(lit.collection.literals) == 0
    assert to_python(lit) == []


def test_literal_map_proto_and_view_pass_through() -> None:
    proto = to_literal_map({"a": 1})
    assert to_literal_map_proto(proto) is proto
    view = LiteralMap.from_flyte_idl(proto)
    assert to_literal_map_proto(view) is proto
    assert literal_map_to_python(view) == {"a": 1}
    assert to_literal_map_proto({}) == literals_pb2.LiteralMap()  # present but empty


def test_typed_map_and_missing_hints() -> None:
    lm = to_literal_map({"a": 1, "b": 2}, {"a": float, "zzz": int})
    assert lm.literals["a"].scalar.primitive.float_value == 1.0  # an int for a float is written as a float
    assert lm.literals["b"].scalar.primitive.integer == 2  # no hint: runtime type
    assert literal_map_to_python(lm, {"a": float, "b": typing.Optional[int]}) == {"a": 1.0, "b": 2}


def test_hints_as_literal_types_and_interface_variables() -> None:
    values = {"xs": [1, 2], "f": FlyteFile("s3://b/f"), "when": datetime.datetime(2024, 1, 1)}
    hints = {"xs": list[int], "f": FlyteFile, "when": datetime.datetime}
    lm = to_literal_map(values, hints)
    variables = {k: interface_pb2.Variable(type=to_literal_type(t)) for k, t in hints.items()}
    literal_types = {k: v.type for k, v in variables.items()}
    expected = {
        "xs": [1, 2],
        "f": FlyteFile("s3://b/f"),
        "when": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    }
    assert literal_map_to_python(lm, variables) == expected
    assert literal_map_to_python(lm, literal_types) == expected


def test_to_python_type_table() -> None:
    lt = types_pb2.LiteralType
    assert to_python_type(lt(simple=types_pb2.INTEGER)) is int
    assert to_python_type(lt(simple=types_pb2.STRUCT)) is dict
    assert to_python_type(lt(simple=types_pb2.BINARY)) is bytes
    assert to_python_type(to_literal_type(dict[str, list[float]])) == dict[str, list[float]]
    assert to_python_type(to_literal_type(typing.Optional[str])) == typing.Optional[str]
    assert to_python_type(to_literal_type(FlyteDirectory)) is FlyteDirectory
    assert to_python_type(to_literal_type(FlyteFile["csv"])) is FlyteFile["csv"]
    assert to_python_type(to_literal_type(StructuredDataset)) is StructuredDataset
    assert to_python_type(lt()) is typing.Any


def test_value_types() -> None:
    assert FlyteFile["csv"] is FlyteFile["csv"] and FlyteFile["csv"].format == "csv"
    assert FlyteFile["csv"]("s3://a") == FlyteFile("s3://a")
    assert FlyteFile("s3://a") != FlyteDirectory("s3://a")
    assert repr(FlyteFile["csv"]("s3://a")) == "FlyteFile('s3://a', format='csv')"
    assert str(FlyteDirectory("/tmp/d")) == "/tmp/d"
    lit = to_literal(FlyteDirectory["parquet"]("s3://d/"))
    assert lit.scalar.blob.metadata.type.format == "parquet"
    assert lit.scalar.blob.metadata.type.dimensionality == types_pb2.BlobType.MULTIPART


def test_union_wrapped_literal_reads_as_plain_type() -> None:
    wrapped = to_literal(3, typing.Optional[int])
    assert to_python(wrapped, int) == 3
    assert to_python(wrapped) == 3


def test_literal_types_are_copies() -> None:
    lt = to_literal_type(list[int])
    lt.collection_type.simple = types_pb2.STRING
    assert to_literal_type(list[int]).collection_type.simple == types_pb2.INTEGER


def test_import_does_not_pull_pydantic() -> None:
    code = (
        "import sys, flyteconnect.literals as lits\n"
        "lits.to_literal_map({'a': [1], 'b': {}})\n"
        "print('pydantic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_flyte2_literal_value_is_converted_to_flyte1() -> None:
    from flyteidl2.core import literals_pb2 as v2

    v2_lit = v2.Literal(scalar=v2.Scalar(primitive=v2.Primitive(integer=5)))
    lm = to_literal_map_proto({"x": v2_lit})
    assert isinstance(lm.literals["x"], literals_pb2.Literal)
    assert lm.literals["x"].scalar.primitive.integer == 5
