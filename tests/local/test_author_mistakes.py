"""The first hour of a connector author (issue 21): local runs fail where the server fails, say so with the author's
file and line, exit with documented codes, and name what is registered when nothing serves a task."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from support import free_port, wait_for_port

FLYTECONNECT = str(Path(sys.executable).with_name("flyteconnect"))

MODULE = textwrap.dedent(
    """
    import asyncio
    import time
    from dataclasses import dataclass

    from flyteconnect import AsyncConnectorBase, ConnectorRegistry, ConnectorTask, Phase, Resource, ResourceMeta


    @dataclass
    class Job(ResourceMeta):
        job_id: str


    class Base(AsyncConnectorBase[Job]):
        metadata_type = Job

        async def create(self, task_template, output_prefix, inputs=None, **kwargs):
            return Job("1")

        async def delete(self, resource_meta, **kwargs):
            pass


    class ObjectOutputs(Base):
        name = "ObjectOutputs"
        task_type_name = "object_outputs"

        async def get(self, resource_meta, **kwargs):
            return Resource(phase=Phase.SUCCEEDED, outputs={"x": object()})


    class Raises(Base):
        name = "Raises"
        task_type_name = "raises"

        async def get(self, resource_meta, **kwargs):
            raise ValueError("the author's bug")


    class Blocks(Base):
        name = "Blocks"
        task_type_name = "blocks"

        async def get(self, resource_meta, **kwargs):
            time.sleep(1.5)  # well past the 0.5 s threshold: reported even when the machine is loaded
            return Resource(phase=Phase.SUCCEEDED)


    class Fails(Base):
        name = "Fails"
        task_type_name = "fails"

        async def get(self, resource_meta, **kwargs):
            return Resource(phase=Phase.FAILED, message="the job said no")


    class Slow(Base):
        name = "Slow"
        task_type_name = "slow"

        async def get(self, resource_meta, **kwargs):
            return Resource(phase=Phase.RUNNING)


    class WrongType(Base):
        name = "WrongType"
        task_type_name = "wrong_type"

        async def get(self, resource_meta, **kwargs):
            return Resource(phase=Phase.SUCCEEDED, outputs={"n": "text"})


    for connector in (ObjectOutputs(), Raises(), Blocks(), Fails(), Slow(), WrongType()):
        ConnectorRegistry.register(connector)

    no_outputs = ConnectorTask("no_outputs", task_type="object_outputs")  # declares no outputs
    raises = ConnectorTask("raises", task_type="raises")
    blocks = ConnectorTask("blocks", task_type="blocks")
    fails = ConnectorTask("fails", task_type="fails")
    slow = ConnectorTask("slow", task_type="slow")
    wrong_type = ConnectorTask("wrong_type", task_type="wrong_type", outputs={"n": int})
    nobody = ConnectorTask("nobody", task_type="unserved", outputs={"n": int})
    """
)


@pytest.fixture
def module(tmp_path: Path) -> Path:
    path = tmp_path / "mistakes.py"
    path.write_text(MODULE)
    return path


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FLYTECONNECT, "run", *args, "--poll-interval", "0.05", "--progress", "plain"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "FLYTECONNECT_RAW_PREFIX": str(cwd / "raw")},
    )


def test_outputs_the_server_refuses_fail_locally_too_even_when_the_task_declares_none(module: Path) -> None:
    proc = run(module.parent, "mistakes.py:no_outputs")
    assert proc.returncode == 4, proc.stdout + proc.stderr  # was: prints {} and exits 0
    assert "ObjectOutputs.get() (mistakes.py:" in proc.stderr and "cannot be sent" in proc.stderr
    assert "output 'x'" in proc.stderr


def test_and_the_served_run_of_the_same_task_fails_the_same_way(module: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [FLYTECONNECT, "serve", "-m", "mistakes.py", "--no-entry-points", "--port", str(port), "--metrics-port", "0"],
        cwd=module.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(port, timeout=30)
        proc = run(module.parent, "--server", f"127.0.0.1:{port}", "mistakes.py:no_outputs")
        wrong = run(module.parent, "--server", f"127.0.0.1:{port}", "mistakes.py:wrong_type")
    finally:
        server.send_signal(signal.SIGTERM)
        _, log = server.communicate(timeout=30)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "INTERNAL" in proc.stderr and "cannot be sent" in proc.stderr
    assert "output 'x'" in log
    # An output the task declares as int, sent as a string: called an output (it was called an input).
    assert wrong.returncode != 0 and "output 'n'" in wrong.stderr and "input 'n'" not in wrong.stderr, wrong.stderr


def test_a_connector_exception_traceback_ends_in_the_authors_code(module: Path) -> None:
    proc = run(module.parent, "mistakes.py:raises")
    assert proc.returncode == 4
    frames = [line for line in proc.stderr.splitlines() if line.startswith('  File "')]
    assert frames[-1].endswith(", in get") and "mistakes.py" in frames[-1], proc.stderr
    assert "ValueError: the author's bug" in proc.stderr


def test_a_blocking_async_def_is_reported_locally_as_the_server_reports_it(module: Path) -> None:
    proc = run(module.parent, "mistakes.py:blocks")
    assert proc.returncode == 0, proc.stderr
    blocked = r"event loop blocked for over \d+\.\d\ds by Blocks \(task type blocks_v0\), async method get\(\) at "
    assert re.search(blocked, proc.stderr), proc.stderr
    assert "mistakes.py:" in proc.stderr and "make it a plain def" in proc.stderr


def test_failed_timeout_and_error_have_distinct_exit_codes(module: Path) -> None:
    failed = run(module.parent, "mistakes.py:fails")
    timed_out = run(module.parent, "mistakes.py:slow", "--timeout", "0.3")
    error = run(module.parent, "mistakes.py:raises")
    assert (failed.returncode, timed_out.returncode, error.returncode) == (1, 3, 4)
    assert "the job said no" in failed.stderr
    assert "timed out after 0.3s" in timed_out.stderr and "timed out while RUNNING; job deleted" in timed_out.stderr
    help_text = subprocess.run([FLYTECONNECT, "run", "--help"], capture_output=True, text=True, check=True).stdout
    for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "130", "143"):
        assert f"\n    {code}" in help_text, help_text


def test_a_wrongly_typed_output_is_called_an_output_in_process_too(module: Path) -> None:
    proc = run(module.parent, "mistakes.py:wrong_type")
    assert proc.returncode == 4 and "output 'n'" in proc.stderr, proc.stderr


def test_no_connector_in_process_names_what_is_registered_and_suggests_m(module: Path) -> None:
    proc = run(module.parent, "mistakes.py:nobody")
    assert proc.returncode == 4
    assert "Cannot find connector for task category: unserved_v0. None is registered in this process" in proc.stderr
    assert "registered: blocks_v0, fails_v0, object_outputs_v0, raises_v0, slow_v0, wrong_type_v0" in proc.stderr
    assert "-m my_connector.py" in proc.stderr


async def test_the_resume_line_gives_the_stalls_whole_length(caplog: pytest.LogCaptureFixture) -> None:
    import asyncio
    import logging
    import time

    from flyteconnect.server.watchdog import LoopWatchdog

    stalls = []
    watchdog = LoopWatchdog(0.2, stalls.append, forgive_starvation=False)
    watchdog.start()
    try:
        with caplog.at_level(logging.WARNING, logger="flyteconnect.server.watchdog"):
            await asyncio.sleep(0.1)
            time.sleep(0.6)  # noqa: ASYNC251 - the blocking call on the loop under test
            while not any("resumed" in r.getMessage() for r in caplog.records):  # noqa: ASYNC110 - a log line
                await asyncio.sleep(0.05)
    finally:
        watchdog.stop()
    assert len(stalls) == 1 and stalls[0].seconds < 0.6  # reported while still blocked: "for over ..."
    (line,) = [r.getMessage() for r in caplog.records if "resumed" in r.getMessage()]
    lasted = float(re.search(r"the stall lasted about (\d+\.\d+)s", line).group(1))  # type: ignore[union-attr]
    assert lasted >= 0.6  # from the last beat before the block to the first after it: at least the block


def test_shell_completion_as_documented() -> None:
    env = {**os.environ, "_FLYTECONNECT_COMPLETE": "bash_complete", "COMP_WORDS": "flyteconnect ne", "COMP_CWORD": "1"}
    proc = subprocess.run([FLYTECONNECT], capture_output=True, text=True, env=env, timeout=60)
    assert "plain,new" in proc.stdout.splitlines(), proc.stdout
    source = subprocess.run(
        [FLYTECONNECT],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "_FLYTECONNECT_COMPLETE": "bash_source"},
    )
    assert "complete -o nosort -F _flyteconnect_completion flyteconnect" in source.stdout


def test_run_help_describes_every_option() -> None:
    from click import Context

    from flyteconnect.cli.run import run

    undescribed = [p.opts[0] for p in run.params if hasattr(p, "help") and p.param_type_name == "option" and not p.help]
    assert undescribed == [], undescribed
    assert run.get_help(Context(run)).count("Seconds before the first get") == 1
