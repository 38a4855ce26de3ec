"""Resource → flyteidl.admin.Resource: flytekit's encoding, plus the deprecated state filled from phase."""

from __future__ import annotations

import pytest
from flyteidl.admin import agent_pb2
from flyteidl.core import execution_pb2, literals_pb2

from flyteconnect import LiteralMap, Phase, Resource, convert_to_flyte_phase, is_terminal_phase

# flytekit 1.16.31: Resource(phase=SUCCEEDED, message="ok", outputs={"o0": 1, "s": "x", "f": 1.5, "b": True},
# custom_info={"custom": "info", "num": 1}).to_flyte_idl(), serialised deterministically.
FLYTEKIT_RESOURCE_HEX = (
    "123d0a0b0a016212060a040a0220010a120a0166120d0a0b0a0911000000000000f83f0a0c0a026f3012060a040a0208010a0c0a017312"
    "070a050a031a01781a026f6b280332240a100a06637573746f6d12061a04696e666f0a100a036e756d120911000000000000f03f"
)


def test_to_flyte_idl_matches_flytekit_apart_from_the_state_it_adds() -> None:
    resource = Resource(
        phase=Phase.SUCCEEDED,
        message="ok",
        outputs={"o0": 1, "s": "x", "f": 1.5, "b": True},
        custom_info={"custom": "info", "num": 1},
    )
    pb = resource.to_flyte_idl()
    assert pb.state == agent_pb2.SUCCEEDED
    pb.ClearField("state")
    expected = agent_pb2.Resource.FromString(bytes.fromhex(FLYTEKIT_RESOURCE_HEX))
    assert pb == expected


@pytest.mark.parametrize(
    ("phase", "state"),
    [
        (Phase.QUEUED, agent_pb2.PENDING),
        (Phase.INITIALIZING, agent_pb2.PENDING),
        (Phase.WAITING_FOR_RESOURCES, agent_pb2.PENDING),
        (Phase.RUNNING, agent_pb2.RUNNING),
        (Phase.SUCCEEDED, agent_pb2.SUCCEEDED),
        (Phase.FAILED, agent_pb2.PERMANENT_FAILURE),
        (Phase.ABORTED, agent_pb2.PERMANENT_FAILURE),
        (Phase.RETRYABLE_FAILED, agent_pb2.RETRYABLE_FAILURE),
    ],
)
def test_deprecated_state_follows_phase(phase: Phase, state: int) -> None:
    assert Resource(phase=phase).to_flyte_idl().state == state


def test_flyteidl_phase_values_are_accepted_and_equal_to_ours() -> None:
    assert Resource(phase=execution_pb2.TaskExecution.RUNNING).to_flyte_idl().phase == Phase.RUNNING
    assert [p.value for p in Phase] == list(execution_pb2.TaskExecution.Phase.values())


def test_empty_resource_leaves_optional_fields_unset() -> None:
    pb = Resource(phase=Phase.RUNNING).to_flyte_idl()
    assert not pb.HasField("outputs")
    assert not pb.HasField("custom_info")
    assert pb.message == ""
    assert list(pb.log_links) == []


def test_outputs_may_be_a_literal_map_view_or_proto() -> None:
    lit = literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=7)))
    proto = literals_pb2.LiteralMap(literals={"x": lit})
    assert Resource(phase=Phase.SUCCEEDED, outputs=proto).to_flyte_idl().outputs == proto
    assert Resource(phase=Phase.SUCCEEDED, outputs=LiteralMap({"x": lit})).to_flyte_idl().outputs == proto


def test_log_links_accept_protos_and_models() -> None:
    class Model:
        def to_flyte_idl(self) -> execution_pb2.TaskLog:
            return execution_pb2.TaskLog(name="m", uri="http://m")

    pb = Resource(phase=Phase.RUNNING, log_links=[execution_pb2.TaskLog(name="a", uri="http://a"), Model()])
    assert [(link.name, link.uri) for link in pb.to_flyte_idl().log_links] == [("a", "http://a"), ("m", "http://m")]


def test_custom_info_that_json_cannot_hold_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="custom_info must be JSON-serialisable"):
        Resource(phase=Phase.RUNNING, custom_info={"when": object()}).to_flyte_idl()


def test_from_flyte_idl_round_trip() -> None:
    original = Resource(
        phase=Phase.FAILED,
        message="boom",
        outputs={"o0": 1},
        custom_info={"a": "b"},
        log_links=[execution_pb2.TaskLog(name="a", uri="u")],
    )
    back = Resource.from_flyte_idl(original.to_flyte_idl())
    assert back.phase is Phase.FAILED
    assert back.message == "boom"
    assert back.custom_info == {"a": "b"}
    assert back.outputs is not None and back.outputs.to_python() == {"o0": 1}
    assert Resource.from_flyte_idl(Resource(phase=Phase.RUNNING).to_flyte_idl()).outputs is None


@pytest.mark.parametrize(
    ("state", "phase"),
    [
        ("FAILED", Phase.FAILED),
        ("timeout", Phase.FAILED),
        ("CANCELLED", Phase.FAILED),
        ("INTERNAL_ERROR", Phase.RETRYABLE_FAILED),
        ("Done", Phase.SUCCEEDED),
        ("completed", Phase.SUCCEEDED),
        ("running", Phase.RUNNING),
        ("terminating", Phase.RUNNING),
        ("PENDING", Phase.INITIALIZING),
        ("QUEUED", Phase.QUEUED),
        ("completing", Phase.RUNNING),
    ],
)
def test_convert_to_flyte_phase(state: str, phase: Phase) -> None:
    assert convert_to_flyte_phase(state) is phase


def test_convert_to_flyte_phase_rejects_unknown_states() -> None:
    with pytest.raises(ValueError, match="Unrecognized state: invalid_state"):
        convert_to_flyte_phase("INVALID_STATE")


def test_terminal_phases() -> None:
    terminal = {p for p in Phase if is_terminal_phase(p)}
    assert terminal == {Phase.SUCCEEDED, Phase.ABORTED, Phase.FAILED, Phase.RETRYABLE_FAILED}
    assert Phase.RUNNING.is_terminal is False
    assert is_terminal_phase(execution_pb2.TaskExecution.SUCCEEDED)
