"""flyteconnect check drives one job the way the server does (issue 21 item 2): what the server would answer INTERNAL
fails the check, naming the author's file and line; inputs come from the module's task or from --input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

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
            return Job(str(inputs.to_python()))

        async def get(self, resource_meta, **kwargs):
            return Resource(phase=Phase.SUCCEEDED, outputs={"echo": resource_meta.job_id})

        async def delete(self, resource_meta, **kwargs):
            pass


    class DictCreate(Base):
        name = "DictCreate"
        task_type_name = "dict_create"

        async def create(self, task_template, output_prefix, inputs=None, **kwargs):
            return {"job_id": "1"}


    class SetOutputs(Base):
        name = "SetOutputs"
        task_type_name = "set_outputs"

        async def get(self, resource_meta, **kwargs):
            return Resource(phase=Phase.SUCCEEDED, outputs={"tags": {"a", "b"}})


    class Blocking(Base):
        name = "Blocking"
        task_type_name = "blocking"

        async def get(self, resource_meta, **kwargs):
            time.sleep(0.3)
            return Resource(phase=Phase.SUCCEEDED)


    class Echo(Base):
        name = "Echo"
        task_type_name = "echo"


    class Forgets(Base):
        name = "Forgets"
        task_type_name = "forgets"

        async def get(self, resource_meta, **kwargs):
            return Resource(phase=Phase.SUCCEEDED, outputs={})


    for connector in (DictCreate(), SetOutputs(), Blocking(), Echo(), Forgets()):
        ConnectorRegistry.register(connector)

    echo = ConnectorTask("echo", task_type="echo", inputs={"n": int, "word": str}, outputs={"echo": str})
    forgets = ConnectorTask("forgets", task_type="forgets", outputs={"total": int})
    """
)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict[str, str]]]:
    """The JSON results of one `flyteconnect check -m mistakes.py --input word=hello`, by connector and check."""
    tmp = tmp_path_factory.mktemp("check")
    (tmp / "mistakes.py").write_text(MODULE)
    proc = subprocess.run(
        [FLYTECONNECT, "check", "-m", "mistakes.py", "--input", "word=hello", "--json"],
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "FLYTECONNECT_RAW_PREFIX": str(tmp / "raw")},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out: dict[str, dict[str, dict[str, str]]] = {}
    for row in json.loads(proc.stdout):
        out.setdefault(row["connector"].split(" ")[0], {})[row["check"]] = row
    return out


def test_a_create_returning_a_dict_fails_naming_the_file_and_line(results: dict) -> None:
    run = results["DictCreate"]["run"]
    assert run["status"] == "fail"
    assert "DictCreate.create() (mistakes.py:" in run["detail"] and "returned dict, not its Job" in run["detail"]
    assert "INTERNAL" in run["detail"]


def test_outputs_that_cannot_become_literals_fail(results: dict) -> None:
    run = results["SetOutputs"]["run"]
    assert run["status"] == "fail"
    assert "SetOutputs.get() (mistakes.py:" in run["detail"] and "output 'tags'" in run["detail"]


def test_a_blocking_call_is_reported_under_its_own_heading_with_the_line(results: dict) -> None:
    loop = results["Blocking"]["loop not blocked"]
    assert loop["status"] == "fail"
    assert "get (run) held the loop" in loop["detail"] and "mistakes.py:" in loop["detail"]
    assert results["Blocking"]["run"]["status"] == "pass"  # the run itself worked


def test_inputs_come_from_the_task_and_the_author(results: dict) -> None:
    run = results["Echo"]["run"]
    assert run["status"] == "pass", run
    assert "inputs: task 'echo', example values for n" in run["detail"]
    outputs = results["Echo"]["outputs"]
    assert outputs["status"] == "pass" and "'word': 'hello'" in outputs["detail"]  # --input word=hello reached create
    assert results["Echo"]["delete created job twice"]["status"] == "pass"


def test_a_declared_output_the_job_does_not_return_fails(results: dict) -> None:
    outputs = results["Forgets"]["outputs"]
    assert outputs["status"] == "fail" and "total" in outputs["detail"]


def test_check_takes_modules_as_arguments_or_with_m(tmp_path: Path) -> None:
    (tmp_path / "mistakes.py").write_text(MODULE)
    (tmp_path / "empty.py").write_text("x = 1\n")

    def check(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "FLYTECONNECT_RAW_PREFIX": str(tmp_path / "raw")}
        return subprocess.run([FLYTECONNECT, "check", *args], cwd=tmp_path, capture_output=True, text=True, env=env)

    by_argument, by_option = check("mistakes.py", "--json"), check("-m", "mistakes.py", "--json")
    assert by_argument.returncode == by_option.returncode == 1
    assert len(json.loads(by_argument.stdout)) == len(json.loads(by_option.stdout)) > 20
    assert check("empty.py").stdout.splitlines()[-1] == "1 check, 1 failed"
    nothing = check()
    assert nothing.returncode == 2 and "name a module to check" in nothing.stderr
