"""What callers read in the built-ins' messages: no server endpoint, no server path (issue 16 item 4)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from connector_helpers import free_port

from flyteconnect.cli.main import cli
from flyteconnect.connectors import postgres_dsn, sensor_reach, storage_reach
from flyteconnect.connectors._common import caller_text, scrub_endpoints
from flyteconnect.connectors.file_sensor import FileSensorConnector, FileSensorMetadata
from flyteconnect.errors import TransientError


def test_endpoints_are_scrubbed_and_the_callers_path_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYTE_AWS_ENDPOINT", "http://minio.internal:9000")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "gcs-emulator:4443")
    text = (
        "cannot check s3://bucket/key: EndpointConnectionError: Could not connect to the endpoint URL: "
        '"http://minio.internal:9000/bucket/key"; Cannot connect to host minio.internal:9000 ssl:default; '
        "gcs-emulator refused; minio.internal.example.org is someone else"
    )
    assert scrub_endpoints(text) == (
        "cannot check s3://bucket/key: EndpointConnectionError: Could not connect to the endpoint URL: "
        '"<endpoint>"; Cannot connect to host <endpoint> ssl:default; '
        "<endpoint> refused; minio.internal.example.org is someone else"
    )
    assert scrub_endpoints('at "db.internal", port 5432', ["db.internal"], "<database>") == 'at "<database>", port 5432'


def test_caller_text_strips_server_paths() -> None:
    here = os.getcwd()
    assert caller_text(f"cannot watch {here}/x") == "cannot watch <cwd>/x"


@pytest.mark.s3
def test_an_unreachable_storage_endpoint_is_transient_and_unnamed(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore names the endpoint it could not reach; the caller learns what failed, not where the server's S3 is."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("FLYTE_AWS_ENDPOINT", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    sensor = FileSensorConnector(reach=sensor_reach.SensorReach())
    meta = FileSensorMetadata("m", "FileSensor", None, {"path": "s3://bucket/key"})
    with pytest.raises(TransientError) as e:
        sensor.get(meta)
    message = str(e.value)
    assert message.startswith("cannot check s3://bucket/key: ")
    assert str(port) not in message and "127.0.0.1" not in message
    assert "<endpoint>" in message


def test_serve_options_set_the_output_reach_and_caller_dsns(tmp_path: Path, monkeypatch: Any) -> None:
    seen: dict[str, Any] = {}

    def stop(*args: Any, **kwargs: Any) -> None:
        seen["output"] = storage_reach.current_output_reach()
        seen["caller_dsn"] = postgres_dsn.caller_dsn_allowed()
        raise SystemExit(0)

    monkeypatch.setattr("flyteconnect.cli.serve._configure_egress", stop)
    previous = storage_reach.set_output_reach(None)
    try:
        args = ["serve", "--no-entry-points", "--output-root", str(tmp_path), "--output-allow-protocol", "gs"]
        result = CliRunner().invoke(cli, [*args, "--postgres-allow-caller-dsn"])
        assert result.exit_code == 0, result.output
        assert seen["output"] == storage_reach.OutputReach(frozenset({"gs"}), (str(tmp_path),))
        assert seen["caller_dsn"] is True
        bad = CliRunner().invoke(cli, ["serve", "--no-entry-points", "--output-root", "relative"])
        assert bad.exit_code == 2 and "output root 'relative' must be an absolute directory" in bad.output
        monkeypatch.setenv("FLYTECONNECT_OUTPUT_ROOTS", str(tmp_path))
        monkeypatch.setenv(postgres_dsn.ENV_ALLOW, "0")
        postgres_dsn.allow_caller_dsn(None)
        assert CliRunner().invoke(cli, ["serve", "--no-entry-points"]).exit_code == 0
        assert seen["output"].roots == (str(tmp_path),) and seen["output"].protocols == storage_reach.DEFAULT_PROTOCOLS
        assert seen["caller_dsn"] is False
    finally:
        storage_reach.set_output_reach(previous)
        postgres_dsn.allow_caller_dsn(None)
