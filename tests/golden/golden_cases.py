"""The (value, type) corpus of the golden literal tests, shared by the generator (flytekit, run in the reference
venv) and the tests (flyteconnect). Library-specific classes (files, directories, datasets) come from ``kit``,
an object with ``FlyteFile``, ``FlyteDirectory`` and ``StructuredDataset`` attributes.

``describe(value)`` turns a Python value read back by either library into JSON-able data, so the Python values
flytekit reads can be compared with the ones flyteconnect reads.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import typing
from typing import Any, Dict, List, Optional, Union

import pydantic

UTC = datetime.timezone.utc
NOW = datetime.datetime(2024, 3, 9, 12, 30, 15, 123456, tzinfo=UTC)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


@dataclasses.dataclass
class Point:
    x: int
    y: float
    label: str


@dataclasses.dataclass
class Job:
    name: str
    started: datetime.datetime
    day: datetime.date
    timeout: datetime.timedelta
    color: Color
    tags: List[str]
    scores: Dict[str, float]
    origin: Point
    parent: Optional[Point] = None
    retries: int = 3
    note: Optional[str] = None
    extra: List[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class WithUnion:
    value: Union[int, str]
    maybe: Optional[List[Point]] = None


class Query(pydantic.BaseModel):
    sql: str
    limit: int = 10
    columns: List[str] = []
    when: datetime.datetime
    color: Color
    point: Optional[Dict[str, float]] = None


@dataclasses.dataclass
class Case:
    name: str
    value: Any
    type: Any
    compare_type: bool = True  # compare to_literal_type with flytekit's
    note: str = ""


def make_cases(kit: Any) -> list[Case]:
    """The corpus, with files, directories and datasets built from ``kit``'s classes."""
    point = Point(1, 2.5, "a")
    job = Job(
        name="etl",
        started=NOW,
        day=datetime.date(2024, 3, 9),
        timeout=datetime.timedelta(minutes=5, microseconds=250),
        color=Color.GREEN,
        tags=["x", "y"],
        scores={"a": 1.0, "b": 0.5},
        origin=point,
        parent=Point(-3, 0.0, ""),
        note="ok",
        extra=[7, 8],
    )
    c = Case
    return [
        c("int", 42, int),
        c("int_negative", -7, int),
        c("int_large", 2**62 + 5, int),
        c("float", 3.25, float),
        c("float_negative_small", -1.5e-300, float),
        c("str", "hello", str),
        c("str_unicode", "h\u00e9llo \u2713 \U0001f680", str),
        c("str_empty", "", str),
        c("bool_true", True, bool),
        c("bool_false", False, bool),
        c("datetime_utc", NOW, datetime.datetime),
        c("datetime_naive", datetime.datetime(2021, 1, 2, 3, 4, 5), datetime.datetime),
        c("datetime_plus2", datetime.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone(datetime.timedelta(hours=2))), datetime.datetime),
        c("datetime_minus0530", datetime.datetime(1999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone(-datetime.timedelta(hours=5, minutes=30))), datetime.datetime),
        c("datetime_before_epoch", datetime.datetime(1960, 6, 1, 0, 0, 0, 500000, tzinfo=UTC), datetime.datetime),
        c("date", datetime.date(2024, 2, 29), datetime.date),
        c("timedelta", datetime.timedelta(seconds=3.5), datetime.timedelta),
        c("timedelta_negative", datetime.timedelta(days=-1, seconds=5, microseconds=7), datetime.timedelta),
        c("none", None, type(None)),
        c("optional_int_none", None, Optional[int]),
        c("optional_int_value", 3, Optional[int]),
        c("optional_str", "x", Optional[str]),
        c("enum", Color.RED, Color),
        c("list_int", [1, 2, 3], List[int]),
        c("list_str_empty", [], List[str]),
        c("list_list_int", [[1], [], [2, 3]], List[List[int]]),
        c("list_builtin_generic", [1.5, 2.0], list[float]),
        c("dict_str_int", {"a": 1, "b": 2}, Dict[str, int]),
        c("dict_str_float_empty", {}, Dict[str, float]),
        c("list_of_dict", [{"a": 1}, {"b": 2, "c": 3}], List[Dict[str, int]]),
        c("optional_list_float", [1.0, 2.5], Optional[List[float]]),
        c("optional_list_float_none", None, Optional[List[float]]),
        c("dict_of_list", {"a": [1, 2], "b": []}, Dict[str, List[int]]),
        c("list_optional_int", [None, 1, None], List[Optional[int]]),
        c("dict_str_datetime", {"t": NOW}, Dict[str, datetime.datetime]),
        c("list_enum", [Color.BLUE, Color.RED], List[Color]),
        c("untyped_dict", {"a": 1, "b": [1, 2, {"c": "d"}], "e": None, "f": 1.5, "g": True}, dict),
        c("untyped_dict_bytes_tuple", {"raw": b"\x00\xff", "pair": (1, 2), "nested": {"k": []}}, dict),
        c("untyped_dict_large_ints", {"big": 2**40, "neg": -(2**33), "small": -3, "u8": 200}, dict),
        c("dict_int_keys", {1: "a", 2: "b"}, Dict[int, str]),
        c("dataclass_simple", point, Point),
        c("dataclass_nested", job, Job),
        c("dataclass_union_field", WithUnion("s", [point]), WithUnion),
        c("dict_of_dataclass", {"p": point, "q": Point(0, 0.0, "q")}, Dict[str, Point]),
        c("list_of_dataclass", [point, Point(2, 3.0, "b")], List[Point]),
        c("optional_dataclass", point, Optional[Point]),
        c("pydantic_model", Query(sql="select 1", when=NOW, color=Color.BLUE, columns=["a"], point={"x": 1.0}), Query),
        c("union_int_str_int", 5, Union[int, str]),
        c("union_int_str_str", "five", Union[int, str]),
        c("union_int_float_float", 2.5, Union[int, float]),
        c("union_str_enum_enum", Color.GREEN, Union[str, Color]),
        c("union_list_dict", {"a": 1}, Union[List[int], Dict[str, int]]),
        c("file_s3", kit.FlyteFile("s3://bucket/path/data.txt"), kit.FlyteFile),
        c("file_csv", kit.FlyteFile("s3://bucket/path/data.csv"), kit.FlyteFile["csv"]),
        c("directory_s3", kit.FlyteDirectory("s3://bucket/dir/"), kit.FlyteDirectory),
        c("structured_dataset_parquet", kit.StructuredDataset(uri="s3://bucket/ds/", file_format="parquet"), kit.StructuredDataset),
        c("list_of_files", [kit.FlyteFile("s3://b/1"), kit.FlyteFile("gs://b/2")], List[kit.FlyteFile]),
        c("optional_file", kit.FlyteFile("s3://b/opt"), Optional[kit.FlyteFile]),
    ]


def _uri(v: Any) -> str:
    for attr in ("remote_source", "_remote_source", "uri", "path"):
        got = getattr(v, attr, None)
        if got:
            return str(got)
    lit = getattr(v, "_literal_sd", None)  # flytekit's StructuredDataset read back keeps the URI on its literal
    return str(lit.uri) if lit is not None else ""


def describe(v: Any) -> Any:
    """JSON-able, library-independent description of a Python value."""
    if v is None or isinstance(v, (bool, int, str)) and not isinstance(v, enum.Enum):
        return v
    if isinstance(v, float):
        return {"float": repr(v)}
    if isinstance(v, (bytes, bytearray)):
        return {"bytes": base64.b64encode(bytes(v)).decode()}
    if isinstance(v, datetime.datetime):
        return {"datetime": (v.astimezone(UTC) if v.tzinfo else v).isoformat()}
    if isinstance(v, datetime.date):
        return {"date": v.isoformat()}
    if isinstance(v, datetime.timedelta):
        return {"timedelta": [v.days, v.seconds, v.microseconds]}
    if isinstance(v, enum.Enum):
        return {"enum": v.value}
    if isinstance(v, (list, tuple)):
        return [describe(x) for x in v]
    if isinstance(v, dict):
        return {"dict": sorted(([describe(k), describe(x)] for k, x in v.items()), key=repr)}
    mro = {k.__name__ for k in type(v).__mro__}  # checked before dataclasses: flytekit's file types are ones
    if "FlyteDirectory" in mro:
        return {"directory": _uri(v)}
    if "FlyteFile" in mro:
        return {"file": _uri(v)}
    if "StructuredDataset" in mro:
        return {"structured_dataset": _uri(v), "format": getattr(v, "file_format", "")}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {"dataclass": type(v).__name__, "fields": {f.name: describe(getattr(v, f.name)) for f in dataclasses.fields(v)}}
    if isinstance(v, pydantic.BaseModel):
        return {"model": type(v).__name__, "fields": {k: describe(getattr(v, k)) for k in type(v).model_fields}}
    raise TypeError(f"cannot describe {type(v)}")


def type_label(tp: Any) -> str:
    """A readable name of a type for the golden file."""
    return repr(tp).replace("typing.", "").replace("golden_cases.", "")
