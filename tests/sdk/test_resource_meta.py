"""ResourceMeta: flytekit's exact bytes on encode, strict and clear decode."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Optional

import pytest

from flyteconnect import InvalidRequest, ResourceMeta, ResourceMetaError


@dataclass
class Inner:
    a: int
    b: Optional[str] = None


@dataclass
class Meta(ResourceMeta):
    job_id: str
    n: int = 0
    inner: Inner = field(default_factory=lambda: Inner(1))
    tags: list[str] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)
    opt: Optional[Inner] = None


class Color(enum.Enum):
    RED = "red"


@dataclass
class Nested(ResourceMeta):
    items: list[Inner]
    by_name: dict[str, Inner]
    color: Color = Color.RED
    pair: tuple[int, str] = (0, "")


# Produced by flytekit 1.16.31: ResourceMeta.encode() of the same dataclass and values.
FLYTEKIT_BYTES = (
    b'{"job_id": "j\\u00e9\\u2603", "n": 3, "inner": {"a": 2, "b": "x"}, "tags": ["a"], '
    b'"extra": {"k": 1.5}, "opt": {"a": 5, "b": null}}'
)


def test_encode_is_byte_identical_to_flytekit() -> None:
    meta = Meta("jé☃", 3, Inner(2, "x"), ["a"], {"k": 1.5}, Inner(5))
    assert meta.encode() == FLYTEKIT_BYTES


def test_decode_rebuilds_nested_optional_list_and_dict_fields() -> None:
    meta = Meta.decode(FLYTEKIT_BYTES)
    assert meta == Meta("jé☃", 3, Inner(2, "x"), ["a"], {"k": 1.5}, Inner(5))
    assert isinstance(meta.opt, Inner)  # Optional[dataclass] is rebuilt (flytekit leaves a dict here)


def test_decode_round_trips_containers_of_dataclasses_and_enums() -> None:
    meta = Nested([Inner(1), Inner(2, "b")], {"x": Inner(3)}, Color.RED, (4, "four"))
    # asdict keeps the Enum member, which json cannot encode: such metas must override encode; use its value here.
    data = Nested.__new__(Nested)
    data.__dict__.update(items=meta.items, by_name=meta.by_name, color="red", pair=(4, "four"))
    assert Nested.decode(data.encode()) == meta


def test_missing_defaulted_field_takes_its_default() -> None:
    assert Meta.decode(b'{"job_id": "j"}') == Meta("j")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"", "not JSON"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "expected an object for Meta"),
        (b'{"job_id": "j", "surprise": 1}', "unknown field(s) surprise for Meta"),
        (b'{"n": 1}', "missing field(s) job_id for Meta"),
        (b'{"job_id": 5}', "Meta.job_id: expected str, got int"),
        (b'{"job_id": "j", "n": "3"}', "Meta.n: expected int, got str"),
        (b'{"job_id": "j", "n": true}', "Meta.n: expected int, got bool"),
        (b'{"job_id": "j", "inner": {"a": 1, "c": 2}}', "Meta.inner: unknown field(s) c for Inner"),
        (b'{"job_id": "j", "tags": "a"}', "Meta.tags: expected a list"),
        (b'{"job_id": "j", "tags": [1]}', "Meta.tags[0]: expected str, got int"),
        (b'{"job_id": "j", "extra": {"k": "x"}}', "Meta.extra.k: expected a number"),
        (b'{"job_id": "j", "opt": 3}', "Meta.opt: expected an object for Inner"),
    ],
)
def test_malformed_bytes_raise_a_clear_resource_meta_error(data: bytes, message: str) -> None:
    with pytest.raises(ResourceMetaError) as info:
        Meta.decode(data)
    assert message in str(info.value)
    assert isinstance(info.value, InvalidRequest)  # the server maps it to INVALID_ARGUMENT


def test_subclasses_may_override_encode_and_decode() -> None:
    @dataclass
    class Versioned(ResourceMeta):
        job_id: str

        def encode(self) -> bytes:
            return b"v2:" + self.job_id.encode()

        @classmethod
        def decode(cls, data: bytes) -> Versioned:
            tag, _, job = data.partition(b":")
            if tag != b"v2":
                raise ResourceMetaError(f"unknown version {tag!r}")
            return cls(job.decode())

    assert Versioned.decode(Versioned("abc").encode()) == Versioned("abc")


def test_encode_of_a_non_dataclass_meta_explains_itself() -> None:
    class NotADataclass(ResourceMeta):
        pass

    with pytest.raises(TypeError, match="must be a @dataclass"):
        NotADataclass().encode()


@dataclass
class Flat(ResourceMeta):
    job_id: str
    region: str
    attempt: int = 0
    done: bool = False


@dataclass
class FlatWithFloat(ResourceMeta):
    job_id: str
    ratio: float = 0.5
    note: Optional[str] = None


@dataclass
class FlatOptional(ResourceMeta):
    job_id: str
    note: Optional[str] = None
    big: int = 2**70


@dataclass
class OneField(ResourceMeta):
    job_id: str


@pytest.mark.parametrize(
    "meta",
    [
        Flat("j-1", "eu", 2, True),
        Flat(5, None, True, 1),  # type: ignore[arg-type]  # values not of the declared types: the general path
        OneField("solo"),
        OneField(7),  # type: ignore[arg-type]
        FlatOptional("j\u0000\t\u2028"),
        FlatOptional("j", "n", -(2**80)),
        Flat('jé☃\n"q"', "", -7),
        FlatWithFloat("j", 1e300, None),
        FlatWithFloat("j", float("nan"), "x"),  # json.dumps writes NaN; both paths must agree
        Meta("j", 1, Inner(2), ["t"], {"k": 2.0}),  # nested values: the asdict path
    ],
)
def test_encode_equals_json_dumps_of_asdict(meta: ResourceMeta) -> None:
    import dataclasses
    import json

    assert meta.encode() == json.dumps(dataclasses.asdict(meta)).encode("utf-8")  # type: ignore[call-overload]


def test_flat_decode_fast_path_keeps_every_check() -> None:
    assert Flat.decode(Flat("j", "us", 1, True).encode()) == Flat("j", "us", 1, True)
    assert Flat.decode(b' {"job_id": "j", "region": "r"} ') == Flat("j", "r")  # whitespace, omitted defaults
    cases = {
        b'{"job_id": "j", "region": "r", "attempt": true, "done": false}': "Flat.attempt: expected int, got bool",
        b'{"job_id": "j", "region": "r", "attempt": 1, "zone": "z"}': "unknown field(s) zone",
        b'{"job_id": "j", "attempt": 1, "done": false, "x": 1}': "unknown field(s) x",
        b'{"region": "r"}': "missing field(s) job_id",
        b'["j", "r"]': "expected an object for Flat, got list",
        b'{"job_id": "j", "region": "r"} trailing': "is not JSON (Extra data",
        b'{"job_id": "j", "region": ': "is not JSON",
    }
    for data, message in cases.items():
        with pytest.raises(ResourceMetaError, match=re.escape(message)):
            Flat.decode(data)


@dataclass
class OneField(ResourceMeta):
    job_id: str


@dataclass(kw_only=True)
class KeywordOnly(ResourceMeta):
    region: str
    job_id: str


@dataclass
class Checked(ResourceMeta):
    job_id: str

    def __post_init__(self) -> None:
        if not self.job_id.startswith("j-"):
            raise ValueError("job ids start with j-")


def test_flat_decode_handles_one_field_keyword_only_and_post_init() -> None:
    assert OneField.decode(OneField("j").encode()) == OneField("j")
    with pytest.raises(ResourceMetaError, match="unknown field"):
        OneField.decode(b'{"other": "j"}')
    meta = KeywordOnly(region="eu", job_id="j")
    assert KeywordOnly.decode(meta.encode()) == meta
    # JSON order different from the field order: values still land on the right fields
    assert KeywordOnly.decode(b'{"job_id": "j", "region": "eu"}') == meta
    assert Flat.decode(b'{"region": "r", "done": true, "job_id": "j", "attempt": 3}') == Flat("j", "r", 3, True)
    assert Checked.decode(b'{"job_id": "j-1"}') == Checked("j-1")
    with pytest.raises(ResourceMetaError, match="Checked rejected the values: job ids start with j-"):
        Checked.decode(b'{"job_id": "x"}')


COUNTED = {"built": 0, "refusing": 0}


@dataclass
class Counted(ResourceMeta):
    job_id: str
    attempt: int = 0

    def __post_init__(self) -> None:
        COUNTED["built"] += 1
        if COUNTED["refusing"]:
            raise ValueError("no longer accepted")


def test_handles_seen_before_give_fresh_instances_and_run_post_init() -> None:
    data = b'{"job_id": "j-9", "attempt": 2}'
    first = Counted.decode(data)
    first.attempt = 99  # a connector may change its handle: the next decode must not see it
    COUNTED["built"] = 0
    second = Counted.decode(data)
    assert second == Counted("j-9", 2) and second is not first
    assert COUNTED["built"] == 2  # __post_init__ ran for the decode (memo hit) and for the comparison value
    COUNTED["refusing"] = 1
    try:
        with pytest.raises(ResourceMetaError, match="Counted rejected the values: no longer accepted"):
            Counted.decode(data)  # a memo hit still reports what __post_init__ says
    finally:
        COUNTED["refusing"] = 0


def test_the_handle_memo_is_bounded_and_only_for_flat_positional_handles() -> None:
    from flyteconnect.handles import _flat_handle

    flat = _flat_handle(OneField)
    assert flat is not None
    for i in range(flat.MEMO_ENTRIES + 50):
        assert OneField.decode(b'{"job_id": "j-%d"}' % i) == OneField(f"j-{i}")
    assert len(flat.memo) == flat.MEMO_ENTRIES
    assert b'{"job_id": "j-0"}' not in flat.memo  # the oldest went first
    assert OneField.decode(b'{"job_id": "j-0"}') == OneField("j-0")
    # Handles with containers or nested dataclasses (mutable values) and keyword-only ones are decoded every time.
    assert _flat_handle(Meta) is None
    keyword = _flat_handle(KeywordOnly)
    assert keyword is not None and not keyword.positional
    KeywordOnly.decode(KeywordOnly(region="eu", job_id="j").encode())
    assert not keyword.memo
    # Bytes that failed to decode are not remembered.
    with pytest.raises(ResourceMetaError):
        Checked.decode(b'{"job_id": "x"}')
    checked = _flat_handle(Checked)
    assert checked is not None and b'{"job_id": "x"}' not in checked.memo
