"""The idempotency key read from the request's bytes, and per-connector settings from serve's options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmarks import payloads
from flyteconnect.cli.connector_settings import connector_settings
from flyteconnect.cli.main import cli
from flyteconnect.errors import InvalidRequest
from flyteconnect.models import TaskExecutionMetadata
from flyteconnect.wire import field_bytes


def test_the_execution_id_is_read_from_the_bytes_as_a_parser_would() -> None:
    metadata = payloads.task_execution_metadata()
    raw = metadata.SerializeToString()
    expected = metadata.task_execution_id.SerializeToString(deterministic=True)
    assert TaskExecutionMetadata.from_bytes(raw).task_execution_id_bytes() == expected
    assert TaskExecutionMetadata(metadata).task_execution_id_bytes() == expected  # a proto (Flyte 2 path)
    assert TaskExecutionMetadata.from_bytes(b"").task_execution_id_bytes() == b""
    assert field_bytes(raw, 99) is None
    with pytest.raises(InvalidRequest, match=r"malformed flyteidl\.admin\.TaskExecutionMetadata"):
        TaskExecutionMetadata.from_bytes(b"\x0a\x50short").task_execution_id_bytes()
    with pytest.raises(ValueError, match="truncated varint"):
        field_bytes(b"\x08\xff", 1)


def test_settings_file_and_items_merge(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"Counted": {"poll_interval": 30, "rate": 5}}))
    merged = connector_settings(str(path), ["Counted:rate=2", "counted_v0:idempotent_create=false", "A b:x=text"])
    assert merged == {
        "Counted": {"poll_interval": 30, "rate": 2},
        "counted_v0": {"idempotent_create": False},
        "A b": {"x": "text"},
    }
    with pytest.raises(ValueError, match="NAME:KEY=VALUE"):
        connector_settings(None, ["rate=5"])
    path.write_text("[1]")
    with pytest.raises(ValueError, match="expected"):
        connector_settings(str(path), [])


def test_serve_refuses_a_malformed_setting() -> None:
    module = str(Path(__file__).parents[1] / "server" / "serve_module.py")
    result = CliRunner().invoke(
        cli, ["serve", "--no-entry-points", "-m", module, "--port", "0", "--connector-setting", "oops"]
    )
    assert result.exit_code != 0 and "NAME:KEY=VALUE" in result.output
