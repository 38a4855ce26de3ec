"""``flyteconnect run``: input parsing, output printing and exit codes (CliRunner), plus real child processes for
success, Ctrl-C and SIGTERM (the job is deleted exactly once and the process exits non-zero cleanly)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flyteconnect.cli.main import cli

HERE = Path(__file__).parent
TASKS = str(HERE / "cli_tasks.py")
DESCRIBE = ["--x", "4", "--ratio", "0.5", "--tags", '["a", "b"]', "--flag", "yes"]


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, ["run", *args, "--progress", "none"], catch_exceptions=False)


def test_outputs_are_printed_as_json() -> None:
    result = invoke(f"{TASKS}:describe", *DESCRIBE)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"y": 8, "summary": "0.5|a,b|True"}


def test_json_flag_prints_one_machine_readable_document() -> None:
    result = invoke(f"{TASKS}:describe", "--x=3", "--ratio=2", "--tags=[]", "--flag=false", "--json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 0
    assert doc["phase"] == "SUCCEEDED" and doc["outputs"] == {"y": 6, "summary": "2.0||False"}
    assert doc["task"] == "describe" and doc["execution_id"].startswith("l")


def test_inputs_file_with_flag_overrides(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps({"x": 1, "ratio": 1, "tags": ["t"], "flag": True}))
    result = invoke(f"{TASKS}:describe", "--inputs-file", str(inputs), "--x", "10")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"y": 20, "summary": "1.0|t|True"}


def test_failed_task_exits_1_with_the_message() -> None:
    result = invoke(f"{TASKS}:describe", "--x", "-1", "--ratio", "0", "--tags", "[]", "--flag", "no", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["phase"] == "FAILED" and doc["error"]["message"] == "x must not be negative"
    assert "x must not be negative" in result.stderr


def test_timeout_exits_3_after_deleting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FC_CALL_LOG", str(log))
    result = invoke(f"{TASKS}:forever", "--x", "1", "--timeout", "0.2", "--poll-interval", "0.02")
    assert result.exit_code == 3
    assert "timed out after 0.2s in phase RUNNING; the job was deleted" in result.stderr
    assert log.read_text().splitlines() == ["create", "delete"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--x", "four", "--ratio", "0.5", "--tags", "[]", "--flag", "y"], "input 'x': cannot read 'four' as int"),
        (["--x", "4", "--ratio", "half", "--tags", "[]", "--flag", "y"], "input 'ratio': cannot read 'half' as float"),
        (["--x", "4", "--ratio", "1", "--tags", "[a", "--flag", "y"], "input 'tags': cannot read '[a' as list[str]"),
        (["--x", "4", "--ratio", "1", "--tags", "[]", "--flag", "maybe"], "'maybe' is not a boolean"),
        (["--x", "4", "--ratio", "1", "--tags", "[]"], "missing input(s): --flag"),
        ([*DESCRIBE, "--colour", "red"], "no such input --colour"),
        ([*DESCRIBE, "--x", "5"], "input --x given twice"),
        ([*DESCRIBE, "stray"], "unexpected argument 'stray'"),
        (["--x"], "input --x needs a value"),
        (["--x", "4", "--ratio", "1", "--tags", "[1, 2]", "--flag", "y"], "input 'tags'"),
    ],
)
def test_input_errors_are_usage_errors(args: list[str], message: str) -> None:
    result = invoke(f"{TASKS}:describe", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_colon", "expected MODULE:TASK"),
        (f"{TASKS}:missing", "has no attribute 'missing'"),
        (f"{TASKS}:not_a_task", "is a int, not a task"),
        ("surely_not_a_module_xyz:task", "cannot import module 'surely_not_a_module_xyz'"),
        ("nowhere/file.py:task", "no such file"),
    ],
)
def test_bad_targets_are_usage_errors(target: str, message: str) -> None:
    result = invoke(target)
    assert result.exit_code == 2
    assert message in result.stderr


def test_bad_inputs_file_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert "must hold a JSON object" in invoke(f"{TASKS}:describe", "--inputs-file", str(bad)).stderr
    bad.write_text("{nope")
    assert "is not valid JSON" in invoke(f"{TASKS}:describe", "--inputs-file", str(bad)).stderr
    typed = tmp_path / "typed.json"
    typed.write_text(json.dumps({"x": "many"}))
    result = invoke(f"{TASKS}:describe", *DESCRIBE[2:], "--inputs-file", str(typed))
    assert result.exit_code == 2 and "input 'x'" in result.stderr


# ------------------------------------------------------------------------------------------------ real processes


def _spawn(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], Path]:
    log = tmp_path / "calls.log"
    env = {**os.environ, "FC_CALL_LOG": str(log), **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "flyteconnect", "run", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, log


def test_real_process_success_and_bad_input(tmp_path: Path) -> None:
    proc, _ = _spawn(tmp_path, f"{TASKS}:describe", *DESCRIBE, "--progress", "plain")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out) == {"y": 8, "summary": "0.5|a,b|True"}
    assert "SUCCEEDED" in err  # plain progress lines without a TTY
    proc, _ = _spawn(tmp_path, f"{TASKS}:describe", "--x", "nope")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "cannot read 'nope' as int" in err and out == ""


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_deletes_the_job_once_and_exits_cleanly(tmp_path: Path, sig: int, code: int) -> None:
    proc, log = _spawn(tmp_path, f"{TASKS}:forever", "--x", "1", "--poll-interval", "0.05", "--progress", "plain")
    deadline = time.monotonic() + 30
    while not (log.exists() and "create" in log.read_text()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the job was never created"
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert log.read_text().splitlines() == ["create", "delete"]
    assert "Traceback" not in err
    assert "cancelled: job deleted" in err  # the progress line
    assert re.search(r"\] cancelled while (starting|RUNNING); job deleted \(", err), err
    assert "CancelledError" not in err  # the last progress line says what happened, not an exception class


def test_built_in_connector_found_through_its_entry_point(tmp_path: Path) -> None:
    target = tmp_path / "ready.txt"
    target.write_text("here")
    sensor_tasks = str(HERE / "sensor_tasks.py")
    # The sensor watches local files only under roots its operator names: here through the environment.
    roots = {"FLYTECONNECT_SENSOR_ROOTS": str(tmp_path)}
    args = ("--path", str(target), "--poll-interval", "0.05")
    proc, _ = _spawn(tmp_path, f"{sensor_tasks}:wait_for_file", *args, env=roots)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out) == {}  # no outputs
