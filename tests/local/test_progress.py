"""Progress output: plain lines on phase changes (no TTY), a rich live table on a terminal."""

from __future__ import annotations

import io

import pytest
from local_helpers import JobConnector, job_task
from rich.console import Console

from flyteconnect import ConnectorRegistry
from flyteconnect.local import LocalRunner, PlainProgress, PollSchedule, RichProgress, TaskFailed
from flyteconnect.local.progress import NullProgress, make_progress

FAST = PollSchedule(0.01, 1.2, 0.02)


def test_plain_progress_prints_one_line_per_change() -> None:
    stream = io.StringIO()
    runner = LocalRunner(ConnectorRegistry([JobConnector()]), poll=FAST, progress=PlainProgress(stream))
    result = runner.run_result(job_task("p"), x=1, seconds=0.1, outcome="SUCCEEDED")
    lines = stream.getvalue().splitlines()
    assert all(line.startswith(f"[p {result.execution_id}] ") for line in lines)
    assert "started on in-process" in lines[0]
    running = [line for line in lines if "RUNNING: working" in line]
    assert len(running) == 1  # repeated polls in the same phase print nothing new
    assert "logs: console: http://logs.example/job" in running[0]
    assert "SUCCEEDED, done" in lines[-1]


def test_plain_progress_reports_failures() -> None:
    stream = io.StringIO()
    runner = LocalRunner(ConnectorRegistry([JobConnector()]), poll=FAST, progress=PlainProgress(stream))
    with pytest.raises(TaskFailed):
        runner.run(job_task("p"), x=1, seconds=0, outcome="FAILED")
    assert "] FAILED: job ended failed (" in stream.getvalue().splitlines()[-1]  # phase and message, no class name


def test_rich_progress_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=150, color_system=None)
    runner = LocalRunner(ConnectorRegistry([JobConnector()]), poll=FAST, progress=RichProgress(console))
    assert runner.run(job_task("richly"), x=2, seconds=0.3, outcome="SUCCEEDED") == 4
    text = out.getvalue()
    assert "RUNNING" in text and "http://logs.example/job" in text  # the live table was drawn
    assert "✓ richly SUCCEEDED in" in text


def test_make_progress_choices() -> None:
    assert isinstance(make_progress("none"), NullProgress) and isinstance(make_progress(None), NullProgress)
    assert isinstance(make_progress("plain"), PlainProgress)
    assert isinstance(make_progress("auto"), PlainProgress)  # pytest's stderr is not a terminal
    with pytest.raises(ValueError, match="progress must be"):
        make_progress("fancy")
