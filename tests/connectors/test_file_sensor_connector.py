"""The file sensor on local files and on a real S3-compatible server (moto in server mode)."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import s3fs
from connector_helpers import free_port, make_inputs, make_template
from google.protobuf import duration_pb2

from flyteconnect.connector import Phase
from flyteconnect.connectors.file_sensor import FileSensorConnector, FileSensorMetadata
from flyteconnect.connectors.sensor_reach import SensorReach
from flyteconnect.errors import InvalidRequest, TransientError
from flyteconnect.registry import ConnectorRegistry, discover_connectors

# custom exactly as flytekit 1.16's FileSensor serializes it (BaseSensor.get_custom).
FLYTEKIT_CUSTOM: dict[str, Any] = {
    "sensor_module": "flytekit.sensor.file_sensor",
    "sensor_name": "FileSensor",
    "sensor_config": None,
    "inputs": None,
}


def sensor_template(custom: dict[str, Any] | None = None, **fields: Any) -> Any:
    return make_template("sensor", FLYTEKIT_CUSTOM if custom is None else custom, **fields)


def rooted(root: Path | str) -> FileSensorConnector:
    """A sensor that may watch local files under ``root`` (and the default object stores)."""
    return FileSensorConnector(reach=SensorReach(roots=(str(root),)))


def test_local_file_running_until_it_exists(tmp_path: Path) -> None:
    sensor = rooted(tmp_path)
    target = tmp_path / "data" / "ready.flag"
    meta = sensor.create(sensor_template(), "/o", make_inputs(path=str(target)))
    assert meta.inputs == {"path": str(target)} and meta.deadline is None
    # resource_meta travels through Propeller as bytes: poll with what comes back
    meta = FileSensorMetadata.decode(meta.encode())
    first = sensor.get(meta)
    assert first.phase == Phase.RUNNING and first.message == f"waiting for {target}"
    target.parent.mkdir()
    target.write_text("x")
    done = sensor.get(meta)
    assert done.phase == Phase.SUCCEEDED and done.outputs is None
    assert sensor.delete(meta) is None


def test_reads_metadata_written_by_flytekit(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    # flytekit's SensorEngine stores json.dumps(asdict(SensorMetadata(...))) with the native inputs filled in.
    flytekit_bytes = json.dumps({**FLYTEKIT_CUSTOM, "inputs": {"path": str(tmp_path / "f")}}).encode()
    assert rooted(tmp_path).get(FileSensorMetadata.decode(flytekit_bytes)).phase == Phase.SUCCEEDED


def test_timeout_from_sensor_config_or_task_metadata(tmp_path: Path) -> None:
    sensor = rooted(tmp_path)
    custom = {**FLYTEKIT_CUSTOM, "sensor_config": {"timeout_sec": 30}}
    before = time.time()
    meta = sensor.create(sensor_template(custom), "/o", make_inputs(path=str(tmp_path / "never")))
    assert meta.deadline is not None and before + 30 <= meta.deadline <= time.time() + 30
    assert sensor.get(meta).phase == Phase.RUNNING
    expired = dataclasses.replace(meta, deadline=time.time() - 1)
    failed = sensor.get(expired)
    assert failed.phase == Phase.FAILED
    assert failed.message == f"{tmp_path / 'never'} did not appear before the sensor's timeout"

    from flyteidl.core import tasks_pb2

    with_timeout = sensor_template(metadata=tasks_pb2.TaskMetadata(timeout=duration_pb2.Duration(seconds=90)))
    meta = sensor.create(with_timeout, "/o", make_inputs(path=str(tmp_path / "x")))
    assert meta.deadline is not None and meta.deadline >= before + 90


@pytest.mark.parametrize(
    ("custom", "inputs", "expected"),
    [
        ({**FLYTEKIT_CUSTOM, "sensor_name": "MySensor"}, {"path": "/x"}, "only runs FileSensor"),
        (FLYTEKIT_CUSTOM, {}, "needs a non-empty string input 'path'"),
        (FLYTEKIT_CUSTOM, {"path": "nosuchscheme://bucket/x"}, "does not allow nosuchscheme:// paths"),
        (FLYTEKIT_CUSTOM, {"path": "/y/file"}, "refuses local paths outside the server's sensor roots"),
        (FLYTEKIT_CUSTOM, {"path": "gs://bucket/x"}, "gcsfs"),
        (
            {**FLYTEKIT_CUSTOM, "sensor_config": {"timeout_sec": -5}},
            {"path": "/x"},
            "timeout_sec must be a positive number",
        ),
    ],
)
def test_bad_tasks_are_invalid_requests(custom: dict[str, Any], inputs: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidRequest, match=expected.replace("(", r"\(")):
        rooted("/x").create(sensor_template(custom), "/o", make_inputs(**inputs))


@pytest.mark.s3
def test_s3_object_through_the_entry_point(s3_server: Any) -> None:
    bucket = f"sensor-{uuid.uuid4().hex[:8]}"
    s3_server.create_bucket(bucket)
    path = f"s3://{bucket}/incoming/part-0.parquet"
    found = discover_connectors()
    sensor = ConnectorRegistry(found.connectors).get_connector("sensor")
    assert isinstance(sensor, FileSensorConnector)
    assert found.sources["sensor_v0"] == "sensor = flyteconnect.connectors.file_sensor:FileSensorConnector"
    meta = sensor.create(sensor_template(), "s3://b/o", make_inputs(path=path))
    assert sensor.get(meta).phase == Phase.RUNNING
    fs = s3fs.S3FileSystem(**s3_server.storage_options)
    fs.pipe(path, b"data")
    assert sensor.get(meta).phase == Phase.SUCCEEDED


@pytest.mark.s3
def test_storage_errors_are_transient(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # The endpoint is the server's setting (a task may not move it): a dead one, tried once.
    monkeypatch.setenv("FLYTE_AWS_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    sensor = FileSensorConnector()
    meta = sensor.create(sensor_template(), "/o", make_inputs(path="s3://bucket/key"))
    with pytest.raises(TransientError, match="cannot check s3://bucket/key"):
        sensor.get(meta)
