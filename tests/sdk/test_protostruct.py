"""protostruct.struct_to_dict gives exactly json_format.MessageToDict's result (values, types and key order)."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2

from flyteconnect.protostruct import struct_to_dict, value_to_python


def _random_value(rnd: random.Random, depth: int) -> Any:
    choice = rnd.randrange(7 if depth < 3 else 4)
    if choice == 0:
        return None
    if choice == 1:
        return rnd.choice([0, 1, -2.5, 1e300, 3.0, 7, -0.0])
    if choice == 2:
        return rnd.choice(["", "x", "héllo ☃", "a" * 50])
    if choice == 3:
        return rnd.choice([True, False])
    if choice == 5:
        return [_random_value(rnd, depth + 1) for _ in range(rnd.randrange(4))]
    return {f"k{i}": _random_value(rnd, depth + 1) for i in range(rnd.randrange(4))}


def test_matches_message_to_dict_on_random_structs() -> None:
    rnd = random.Random(20261125)
    for _ in range(500):
        struct = struct_pb2.Struct()
        struct.update({f"f{j}": _random_value(rnd, 0) for j in range(rnd.randrange(6))})
        expected = json_format.MessageToDict(struct)
        got = struct_to_dict(struct)
        assert got == expected
        assert repr(got) == repr(expected)  # same types (floats) and the same key order


def test_unset_value_is_none_like_json_format() -> None:
    struct = struct_pb2.Struct()
    struct.fields["empty"].SetInParent()  # a Value with no kind set
    assert struct_to_dict(struct) == json_format.MessageToDict(struct) == {"empty": None}
    assert value_to_python(struct_pb2.Value()) is None


@pytest.mark.parametrize("number", [math.inf, -math.inf, math.nan])
def test_non_finite_numbers_are_refused_like_json_format(number: float) -> None:
    struct = struct_pb2.Struct()
    struct.update({"x": number})
    with pytest.raises(ValueError) as theirs:
        json_format.MessageToDict(struct)
    with pytest.raises(ValueError) as ours:
        struct_to_dict(struct)
    assert str(ours.value) == str(theirs.value)


def test_config_memo_returns_equal_independent_copies() -> None:
    from flyteconnect.protostruct import config_to_dict

    struct = struct_pb2.Struct()
    struct.update({"Location": "us", "n": 3, "nested": {"a": [1, "b", {"c": None}], "ok": True}})
    first = config_to_dict(struct)
    first["nested"]["a"].append("changed by a connector")  # must not leak into the next call's dict
    first["Location"] = "eu"
    for _ in range(2):  # the second call comes from the memo
        again = config_to_dict(struct)
        assert again == json_format.MessageToDict(struct)
        assert repr(again) == repr(json_format.MessageToDict(struct))
        assert again is not first and again["nested"] is not first["nested"]


def test_config_memo_is_bounded() -> None:
    from flyteconnect import protostruct

    for i in range(protostruct._MEMO_ENTRIES + 50):
        struct = struct_pb2.Struct()
        struct.update({"i": i})
        assert protostruct.config_to_dict(struct) == {"i": float(i)}
    assert len(protostruct._MEMO) <= protostruct._MEMO_ENTRIES


def _containers(value: Any) -> list[Any]:
    """Every dict and list inside ``value`` (itself included)."""
    if isinstance(value, dict):
        return [value, *(c for item in value.values() for c in _containers(item))]
    if isinstance(value, list):
        return [value, *(c for item in value for c in _containers(item))]
    return []


def test_a_copier_gives_equal_copies_that_share_no_container() -> None:
    from flyteconnect.protostruct import copier

    rnd = random.Random(20261204)
    for _ in range(300):
        original = {f"f{j}": _random_value(rnd, 0) for j in range(rnd.randrange(6))}
        before = repr(original)
        copy = copier(original)
        first, second = copy(), copy()
        assert repr(first) == repr(second) == before  # equal, same types, same key order
        mine = {id(c) for c in _containers(original)}
        assert not mine & {id(c) for c in _containers(first)}
        assert not {id(c) for c in _containers(first)} & {id(c) for c in _containers(second)}
        for container in _containers(first):  # changing a copy everywhere leaves the next copy as it was
            if isinstance(container, dict):
                container["new"] = 1
            else:
                container.append(1)
        assert repr(copy()) == before == repr(original)
