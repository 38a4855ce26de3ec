"""Outputs written by the external job to <output_prefix>/outputs.pb, on local disk and on an S3-compatible server."""

from __future__ import annotations

from typing import Any

import pytest
from local_helpers import ProcessConnector, proc_task

from flyteconnect import ConnectorRegistry, Phase, Resource, SyncConnectorBase
from flyteconnect.local import ConnectorTask, LocalRunner, OutputsNotFound, PollSchedule
from flyteconnect.local.outputs import RAW_PREFIX_ENV, default_raw_prefix, shape_outputs

FAST = PollSchedule(0.05, 1.5, 0.2)


def test_outputs_pb_on_local_disk(tmp_path: Any) -> None:
    connector = ProcessConnector()
    runner = LocalRunner(ConnectorRegistry([connector]), raw_prefix=str(tmp_path), poll=FAST, progress="none")
    result = runner.run_result(proc_task(), x=5, seconds=0.1)
    assert result.value == (10, "x=5") and result.value.label == "x=5"
    assert result.output_prefix.startswith(str(tmp_path))
    assert (tmp_path / result.execution_id / "outputs.pb").is_file()
    assert connector.deleted == []


@pytest.mark.s3
def test_outputs_pb_on_s3(s3_server: Any) -> None:
    s3_server.create_bucket("raw")
    connector = ProcessConnector()
    runner = LocalRunner(
        ConnectorRegistry([connector]),
        raw_prefix="s3://raw/runs",
        storage_options=s3_server.storage_options,
        poll=FAST,
        progress="none",
    )
    result = runner.run_result(proc_task(), x=7, seconds=0)
    assert result.output_prefix == f"s3://raw/runs/{result.execution_id}"
    assert result.outputs == {"y": 14, "label": "x=7"}


class _Silent(SyncConnectorBase):
    """Succeeds without outputs and writes nothing: the declared outputs cannot be found."""

    name = "silent"
    task_type_name = "silent"

    def do(self, task_template: Any, output_prefix: str, inputs: Any = None, **kw: Any) -> Resource:
        if inputs.to_python().get("garbage"):
            with open(f"{output_prefix}/outputs.pb", "wb") as f:
                f.write(b"\xff\xff\xff not a proto")
        return Resource(phase=Phase.SUCCEEDED)


@pytest.mark.parametrize(("garbage", "match"), [(False, "does not exist"), (True, "not a serialized")])
def test_missing_or_corrupt_outputs_pb_is_a_clear_error(tmp_path: Any, garbage: bool, match: str) -> None:
    runner = LocalRunner(ConnectorRegistry([_Silent()]), raw_prefix=str(tmp_path), progress="none")
    task = ConnectorTask("s", "silent", inputs={"garbage": bool}, outputs={"y": int})
    with pytest.raises(OutputsNotFound, match=match):
        runner.run(task, garbage=garbage)


def test_raw_prefix_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv(RAW_PREFIX_ENV, str(tmp_path / "env"))
    assert default_raw_prefix() == str(tmp_path / "env")
    monkeypatch.delenv(RAW_PREFIX_ENV)
    assert default_raw_prefix() == default_raw_prefix() != str(tmp_path / "env")  # one temp dir per process


def test_shape_outputs() -> None:
    assert shape_outputs([], {}) is None
    assert shape_outputs(["a"], {"a": 1}) == 1
    both = shape_outputs(["b", "a"], {"a": 1, "b": 2})
    assert both == (2, 1) and both.a == 1 and both.b == 2
