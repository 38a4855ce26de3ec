"""Tests of the example connector with flyteconnect's testing kit: in-process, then through a real server."""

from __future__ import annotations

from typing import Any

import pytest
from flyteconnect_example import TimerConnector, TimerMeta, countdown

from flyteconnect import Phase
from flyteconnect.registry import discover_connectors
from flyteconnect.testing import run_connector


def test_runs_to_completion_in_process() -> None:
    result = run_connector(TimerConnector(), countdown, {"seconds": 0.05, "message": "hello"}, poll_interval=0.02)
    result.assert_succeeded()
    assert result.outputs["message"] == "hello"
    assert result.outputs["elapsed"] >= 0.05
    assert result.count("get") >= 1  # polled, not finished at create


def test_metadata_round_trips_as_json() -> None:
    meta = TimerMeta(started_at=1.5, seconds=2.0, message="m")
    assert TimerMeta.decode(meta.encode()) == meta
    assert meta.encode() == b'{"started_at": 1.5, "seconds": 2.0, "message": "m"}'


def test_bad_seconds_is_an_invalid_request() -> None:
    from flyteconnect.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="seconds must be a number between 0 and 86400"):
        run_connector(TimerConnector(), countdown, {"seconds": -1.0, "message": ""})


def test_abort_deletes_the_job() -> None:
    result = run_connector(
        TimerConnector(), countdown, {"seconds": 60.0, "message": "x"}, poll_interval=0.01, abort_after_polls=2
    )
    assert result.phase == Phase.ABORTED
    assert result.count("delete") == 1


def test_installed_entry_point_is_found() -> None:
    found = discover_connectors()
    assert any(isinstance(c, TimerConnector) for c in found.connectors)
    assert found.sources["example_timer_v0"] == "example_timer = flyteconnect_example.connector:TimerConnector"


@pytest.fixture
def connectors() -> list[Any]:
    """Serve only this package's connector (the plugin's default is every installed one)."""
    return [TimerConnector()]


def test_through_a_real_server_like_propeller(fake_propeller: Any) -> None:
    result = fake_propeller.run_sync(countdown, {"seconds": 0.05, "message": "served"})
    result.assert_succeeded()
    assert result.outputs["message"] == "served"
    methods = [c.method for c in result.calls]
    assert methods[:2] == ["ListAgents", "CreateTask"] and set(methods[2:]) == {"GetTask"}
    assert result.calls_to("GetTask")[0].request.resource_meta == result.resource_meta
    assert result.count("DeleteTask") == 0  # Propeller deletes only on abort
