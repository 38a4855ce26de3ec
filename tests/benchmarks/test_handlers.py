"""The in-process handler counter: both servers' servicers answer each scenario with the same message (so the counts
compare like with like), and the callgrind counting works."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from flyteidl.admin import agent_pb2
from flyteidl2.connector import connector_pb2

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # see test_instructions.py: the suite is not an installed package
    sys.path.append(str(ROOT))

from benchmarks import handlers  # noqa: E402

REPLY_TYPES = {
    "list_agents": agent_pb2.ListAgentsResponse,
    "create": agent_pb2.CreateTaskResponse,
    "get_outputs": agent_pb2.GetTaskResponse,
    "get_outputs_v2": connector_pb2.GetTaskResponse,
    "get_running": agent_pb2.GetTaskResponse,
    "delete": agent_pb2.DeleteTaskResponse,
    "execute_sync": agent_pb2.ExecuteTaskSyncResponse,
}


def _normalized(message: object) -> object:
    """Flyte 2 outputs are a repeated field: compare them by name."""
    if isinstance(message, connector_pb2.GetTaskResponse):
        named = sorted(message.resource.outputs.literals, key=lambda n: n.name)
        del message.resource.outputs.literals[:]
        message.resource.outputs.literals.extend(named)
    return message


@pytest.mark.parametrize("scenario", handlers.SCENARIOS)
def test_both_servers_answer_the_same_message(scenario: str) -> None:
    got = handlers.replies(scenario)
    cls = REPLY_TYPES[scenario]
    bare, ours = (_normalized(cls.FromString(got[server])) for server in ("bare", "flyteconnect"))
    if scenario == "list_agents":  # bare's list is precomputed from payloads.CONNECTORS: names and sync flags match
        assert [(a.name, a.is_sync) for a in ours.agents] == [(a.name, a.is_sync) for a in bare.agents]  # type: ignore[attr-defined]
    else:
        assert ours == bare


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(ValueError, match="no in-process driver for 'get_blocking_50ms'"):
        handlers.driver("flyteconnect", "get_blocking_50ms")


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed (scripts/test.sh installs it)")
def test_counts_instructions_per_call() -> None:
    few, more = handlers.count("flyteconnect", "get_running", 5), handlers.count("flyteconnect", "get_running", 55)
    per_call = (more - few) / 50
    assert 5_000 < per_call < 5_000_000  # a GetTask in Python: thousands of instructions, far from millions
