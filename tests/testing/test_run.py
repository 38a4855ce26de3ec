"""run_connector: a connector driven in-process with Propeller's rules, no gRPC."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any

import pytest
from flyteidl.core import literals_pb2

from flyteconnect import AsyncConnectorBase, Phase, Resource, ResourceMeta, SyncConnectorBase
from flyteconnect.errors import ConnectorError, ResourceMetaError
from flyteconnect.literals import to_literal_map
from flyteconnect.local.task import ConnectorTask
from flyteconnect.testing import TaskResult, arun_connector, run_connector

from .connectors import ECHO_TASK, SLEEP_TASK, EchoConnector, SleepConnector


def test_async_connector_runs_to_typed_outputs() -> None:
    result = run_connector(SleepConnector(0.01), SLEEP_TASK, {"x": 21}, poll_interval=0.005)
    assert isinstance(result, TaskResult)
    assert result.phase == Phase.SUCCEEDED and result.succeeded
    assert result.outputs == {"y": 42}
    assert result.calls[0].method == "create" and result.calls[-1].method == "get"
    assert result.count("delete") == 0
    assert result.resource_meta is not None and b"job-" in result.resource_meta


async def test_works_inside_a_running_loop() -> None:
    # run_connector from async code runs on a helper thread; arun_connector awaits directly.
    assert run_connector(EchoConnector(), ECHO_TASK, {"name": "a"}).outputs == {"greeting": "hello a"}
    result = await arun_connector(SleepConnector(0.0), SLEEP_TASK, {"x": 1})
    assert result.outputs == {"y": 2}


def test_sync_connector_calls_do_once() -> None:
    result = run_connector(EchoConnector(), ECHO_TASK, {"name": "flyte"})
    assert [c.method for c in result.calls] == ["do"]
    assert result.outputs == {"greeting": "hello flyte"}


def test_failure_is_reported_like_propeller() -> None:
    result = run_connector(EchoConnector(), ECHO_TASK, {"name": "fail"})
    assert result.phase == Phase.FAILED
    assert result.message == "failed to run the job: asked to fail"
    assert result.error_code == "TaskFailedWithError"
    with pytest.raises(AssertionError, match="FAILED"):
        result.assert_succeeded()


def test_abort_deletes_the_job_once() -> None:
    connector = SleepConnector(seconds=30)
    result = run_connector(connector, SLEEP_TASK, {"x": 1}, abort_after_polls=2)
    assert result.phase == Phase.ABORTED
    assert result.count("get") == 2 and result.count("delete") == 1
    assert connector.deleted == [connector.deleted[0]] and connector.deleted[0].startswith("job-")


def test_stuck_connector_fails_the_test_instead_of_hanging() -> None:
    with pytest.raises(AssertionError, match="still RUNNING after 3 polls"):
        run_connector(SleepConnector(seconds=30), SLEEP_TASK, {"x": 1}, max_polls=3)


@dataclass
class Meta(ResourceMeta):
    n: int


class _Base(AsyncConnectorBase[Meta]):
    metadata_type = Meta

    def create(self, task_template: Any, output_prefix: str, **kwargs: Any) -> Meta:
        return Meta(1)

    def delete(self, resource_meta: Meta, **kwargs: Any) -> None:
        return None


class UndefinedPhase(_Base):
    task_type_name = "undefined"

    def get(self, resource_meta: Meta, **kwargs: Any) -> Resource:
        return Resource(phase=Phase.UNDEFINED, message="forgot the phase")


def test_undefined_phase_is_refused_as_the_server_refuses_it() -> None:
    # The server answers INTERNAL for phase UNDEFINED: in-process runs fail the same way, naming the method.
    with pytest.raises(ConnectorError, match=r"UndefinedPhase|get\(\) \(.*test_run.py:\d+\).*phase UNDEFINED"):
        run_connector(UndefinedPhase())


class WritesOutputsFile(_Base):
    """Succeeds without outputs in the Resource: the 'job' wrote outputs.pb itself."""

    task_type_name = "writes_file"

    def create(self, task_template: Any, output_prefix: str, **kwargs: Any) -> Meta:
        with open(os.path.join(output_prefix, "outputs.pb"), "wb") as f:
            f.write(to_literal_map({"n": 7}).SerializeToString())
        return Meta(1)

    def get(self, resource_meta: Meta, **kwargs: Any) -> Resource:
        return Resource(phase=Phase.SUCCEEDED)


def test_outputs_read_from_outputs_pb(tmp_path: Any) -> None:
    task = ConnectorTask("f", "writes_file", outputs={"n": int})
    result = run_connector(WritesOutputsFile(), task, output_prefix=str(tmp_path))
    assert result.outputs == {"n": 7}
    # Without the file, Propeller's "outputs not found" failure.
    empty = tmp_path / "empty"
    empty.mkdir()

    class NoFile(WritesOutputsFile):
        def create(self, task_template: Any, output_prefix: str, **kwargs: Any) -> Meta:
            return Meta(1)

    missing = run_connector(NoFile(), task, output_prefix=str(empty))
    assert missing.phase == Phase.FAILED and "outputs.pb" in missing.message


@dataclass
class NotJson(ResourceMeta):
    blob: bytes


class BytesMeta(AsyncConnectorBase[NotJson]):
    task_type_name = "bytes_meta"
    metadata_type = NotJson

    def create(self, task_template: Any, output_prefix: str, **kwargs: Any) -> NotJson:
        return NotJson(b"\x00")

    def get(self, resource_meta: NotJson, **kwargs: Any) -> Resource:
        return Resource(phase=Phase.SUCCEEDED)

    def delete(self, resource_meta: NotJson, **kwargs: Any) -> None:
        return None


def test_metadata_that_cannot_be_encoded_fails_here_not_in_production() -> None:
    with pytest.raises(TypeError, match="bytes"):
        run_connector(BytesMeta())


def test_inputs_may_be_a_literal_map_and_task_a_template() -> None:
    literal_map = to_literal_map({"name": "proto"})
    result = run_connector(EchoConnector(), ECHO_TASK.to_task_template(), literal_map)
    assert isinstance(literal_map, literals_pb2.LiteralMap)
    assert result.outputs == {"greeting": "hello proto"}


def test_task_of_another_category_is_refused() -> None:
    with pytest.raises(ValueError, match="serves echo_v0"):
        run_connector(EchoConnector(), SLEEP_TASK, {"x": 1})


def test_connector_exceptions_propagate_with_the_calls_made() -> None:
    class Raises(SyncConnectorBase):
        task_type_name = "raises"

        def do(self, task_template: Any, output_prefix: str, **kwargs: Any) -> Resource:
            raise KeyError("boom")

    with pytest.raises(KeyError) as info:
        run_connector(Raises())
    assert any("do:KeyError" in note for note in getattr(info.value, "__notes__", ["do:KeyError"]))


def test_resource_meta_error_from_bad_decode_propagates() -> None:
    # The in-process backend decodes exactly as the server does: a decode bug shows up in the unit test.
    class BadDecode(_Base):
        task_type_name = "bad_decode"

        def create(self, task_template: Any, output_prefix: str, **kwargs: Any) -> Meta:
            return Meta(1)

        def get(self, resource_meta: Meta, **kwargs: Any) -> Resource:
            return Resource(phase=Phase.SUCCEEDED)

    class Meta2(Meta):
        def encode(self) -> bytes:
            return b"{not json"

    connector = BadDecode()
    connector.create = lambda task_template, output_prefix, **kw: Meta2(1)  # type: ignore[method-assign]
    connector.__dict__.pop("_connector_methods", None)
    with pytest.raises(ResourceMetaError):
        asyncio.run(arun_connector(connector))
