"""Python -> Literal -> Python gives back the value, typed and untyped, for generated values."""

from __future__ import annotations

import dataclasses
import datetime
import enum
from typing import Any, Optional, Union

from hypothesis import given, settings
from hypothesis import strategies as st

from flyteconnect.literals import (
    FlyteDirectory,
    FlyteFile,
    StructuredDataset,
    to_literal,
    to_literal_type,
    to_python,
    to_python_type,
)

SETTINGS = settings(max_examples=60, deadline=None, database=None)
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FLOATS = st.floats(allow_nan=False)
TEXT = st.text(max_size=20)
AWARE = st.datetimes(
    min_value=datetime.datetime(1900, 1, 1),
    max_value=datetime.datetime(2200, 1, 1),
    timezones=st.just(datetime.timezone.utc),
)


class Shape(enum.Enum):
    CIRCLE = "circle"
    SQUARE = "square"


@dataclasses.dataclass
class Item:
    name: str
    count: int
    at: datetime.datetime
    shape: Shape
    weights: dict[str, float]
    children: list[str] = dataclasses.field(default_factory=list)
    parent: Optional[str] = None


def _roundtrip(value: Any, tp: Any) -> Any:
    lit = to_literal(value, tp)
    return to_python(lit, tp)


@SETTINGS
@given(INT64, FLOATS, TEXT, st.booleans(), st.binary(max_size=20))
def test_scalars_roundtrip(i: int, f: float, s: str, b: bool, raw: bytes) -> None:
    assert _roundtrip(i, int) == i
    assert _roundtrip(f, float) == f
    assert _roundtrip(s, str) == s
    assert _roundtrip(b, bool) is b
    assert _roundtrip(raw, bytes) == raw
    for v in (i, f, s, b, raw):
        assert to_python(to_literal(v)) == v  # untyped, by runtime type


@SETTINGS
@given(AWARE, st.timedeltas(min_value=datetime.timedelta(days=-9999), max_value=datetime.timedelta(days=9999)))
def test_times_roundtrip(dt: datetime.datetime, td: datetime.timedelta) -> None:
    assert _roundtrip(dt, datetime.datetime) == dt
    assert _roundtrip(dt.date(), datetime.date) == dt.date()
    assert _roundtrip(td, datetime.timedelta) == td
    assert to_python(to_literal(dt)) == dt


@SETTINGS
@given(st.lists(st.one_of(st.none(), INT64)), st.dictionaries(TEXT, st.lists(FLOATS, max_size=3), max_size=4))
def test_containers_roundtrip(xs: list[Optional[int]], m: dict[str, list[float]]) -> None:
    assert _roundtrip(xs, list[Optional[int]]) == xs
    assert _roundtrip(m, dict[str, list[float]]) == m
    assert _roundtrip(m, Optional[dict[str, list[float]]]) == m
    assert to_python(to_literal(m)) == m  # untyped dict: msgpack


JSONISH = st.recursive(
    st.none() | st.booleans() | INT64 | FLOATS | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=10,
)


@SETTINGS
@given(st.lists(JSONISH, max_size=5))
def test_untyped_lists_roundtrip(xs: list[Any]) -> None:
    assert to_python(to_literal(xs)) == xs


@SETTINGS
@given(
    st.builds(
        Item,
        name=TEXT,
        count=INT64,
        at=AWARE,
        shape=st.sampled_from(Shape),
        weights=st.dictionaries(TEXT, FLOATS, max_size=3),
        children=st.lists(TEXT, max_size=3),
        parent=st.none() | TEXT,
    )
)
def test_dataclass_roundtrip(item: Item) -> None:
    assert _roundtrip(item, Item) == item
    assert _roundtrip([item], list[Item]) == [item]
    assert to_python(to_literal(item), Item) == item  # untyped: the dataclass type is inferred from the value


@SETTINGS
@given(st.one_of(INT64, TEXT, st.sampled_from(Shape), st.none()))
def test_union_roundtrip(v: Any) -> None:
    tp = Union[int, str, Shape, None]
    back = _roundtrip(v, tp)
    assert back == v and type(back) is type(v)


def test_files_and_datasets_roundtrip() -> None:
    f, d, sd = FlyteFile("s3://b/k.csv"), FlyteDirectory("s3://b/d/"), StructuredDataset("s3://b/t/", "parquet")
    assert _roundtrip(f, FlyteFile) == f
    assert _roundtrip(d, FlyteDirectory) == d
    assert _roundtrip(sd, StructuredDataset) == sd
    assert to_python(to_literal(FlyteFile["csv"]("s3://x"))).format == "csv"
    assert type(to_python(to_literal(d))) is FlyteDirectory
    assert to_python(to_literal(sd)) == sd
    assert _roundtrip("s3://b/plain", FlyteFile) == FlyteFile("s3://b/plain")  # a str path is accepted


@SETTINGS
@given(st.lists(INT64, max_size=4), st.dictionaries(TEXT, TEXT, max_size=3), st.sampled_from(Shape))
def test_reading_by_literal_type_roundtrip(xs: list[int], m: dict[str, str], shape: Shape) -> None:
    for value, tp in ((xs, list[int]), (m, dict[str, str]), ([m], list[dict[str, str]]), (xs, Optional[list[int]])):
        lt = to_literal_type(tp)
        assert to_python(to_literal(value, tp), lt) == value
        assert to_python_type(lt) == tp
    enum_type = to_python_type(to_literal_type(Shape))
    assert to_python(to_literal(shape), to_literal_type(Shape)) == enum_type(shape.value)
