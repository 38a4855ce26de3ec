"""The pytest plugin, exercised the way a connector author uses it: a separate pytest run on a small package."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

CONNECTOR = """
from dataclasses import dataclass
from flyteconnect import AsyncConnectorBase, Phase, Resource, ResourceMeta, SyncConnectorBase


@dataclass
class Meta(ResourceMeta):
    n: int


class Adder(AsyncConnectorBase[Meta]):
    name = "Adder"
    task_type_name = "adder"
    metadata_type = Meta

    async def create(self, task_template, output_prefix, inputs=None, **kwargs):
        return Meta(inputs.to_python()["a"] + 1)

    async def get(self, resource_meta, **kwargs):
        return Resource(phase=Phase.SUCCEEDED, outputs={"b": resource_meta.n})

    async def delete(self, resource_meta, **kwargs):
        return None


class Hello(SyncConnectorBase):
    name = "Hello"
    task_type_name = "hello"

    def do(self, task_template, output_prefix, inputs=None, **kwargs):
        return Resource(phase=Phase.SUCCEEDED, outputs={"msg": "hi"})
"""

CONFTEST = """
import pytest
from adder_connector import Adder, Hello


@pytest.fixture
def connectors():
    return [Adder(), Hello()]
"""

TESTS = """
import pytest
from flyteconnect.local.task import ConnectorTask

ADD = ConnectorTask("add", "adder", inputs={"a": int}, outputs={"b": int})
HELLO = ConnectorTask("hello", "hello", outputs={"msg": str})


@pytest.mark.both_protocols
def test_add(fake_propeller, flyteconnect_protocol):
    result = fake_propeller.run_sync(ADD, {"a": 41})
    assert result.outputs == {"b": 42}
    assert result.calls[0].method == {"v1": "ListAgents", "v2": "ListConnectors"}[flyteconnect_protocol]


@pytest.mark.asyncio
async def test_sync_connector(fake_propeller, connector_server):
    result = await fake_propeller.run(HELLO)
    assert result.outputs == {"msg": "hi"}
    assert [c.method for c in result.calls] == ["ListAgents", "ExecuteTaskSync"]
    assert connector_server.address.startswith("127.0.0.1:")


def test_default_protocol(flyteconnect_protocol):
    assert flyteconnect_protocol == "v1"


def test_failing_expectation(fake_propeller):
    assert fake_propeller.run_sync(ADD, {"a": 1}).outputs == {"b": 3}
"""


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text))


def test_plugin_fixtures_and_marker_in_a_separate_pytest_run(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "adder_connector.py": CONNECTOR,
            "conftest.py": CONFTEST,
            "test_adder.py": TESTS,
            "pytest.ini": "[pytest]\nasyncio_default_fixture_loop_scope = function\n",
        },
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "--strict-markers", "-W", "error", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
    )
    out = proc.stdout + proc.stderr
    # The plugin was loaded from its entry point: marker accepted, fixtures found, both protocols run.
    assert "PASSED test_adder.py::test_add[v1]" in out, out
    assert "PASSED test_adder.py::test_add[v2]" in out, out
    assert "PASSED test_adder.py::test_sync_connector" in out, out
    assert "PASSED test_adder.py::test_default_protocol" in out, out
    # A real failure is reported as one (the kit does not swallow assertion errors): exit code 1, 4 passed.
    assert "FAILED test_adder.py::test_failing_expectation" in out, out
    assert proc.returncode == 1
    assert "1 failed, 4 passed" in out, out


def test_plugin_does_not_import_grpc_at_startup(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "test_light.py": """
                import sys

                def test_light():
                    assert "grpc" not in sys.modules
                    assert "flyteconnect.server" not in sys.modules
            """,
            "pytest.ini": "[pytest]\n",
        },
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio", "-p", "no:timeout"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
