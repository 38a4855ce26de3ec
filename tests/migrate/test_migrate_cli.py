"""`flyteconnect migrate` on connector modules written the way flytekit's plugins write them.

The sources below use what the plugin connectors use (facts from the plugins at 1.16.31: logger, lazy_module,
get_connector_secret(secret_key=...), current_context().secrets, TypeEngine conversions through
FlyteContextManager's context, container.env as a dict, FLYTE_FAIL_ON_ERROR, FlyteUserException); the output is run
through flyteconnect's testing kit in a process where flytekit is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from flyteidl.core import execution_pb2, tasks_pb2

from flyteconnect import ConnectorRegistry, ConnectorTask
from flyteconnect.testing import run_connector

pytest.importorskip("libcst")

CONNECTOR = """
import json
from dataclasses import dataclass
from typing import Dict, Optional

from flyteidl.core.execution_pb2 import TaskExecution

import flytekit
from flytekit import FlyteContextManager, lazy_module, logger
from flytekit.core.constants import FLYTE_FAIL_ON_ERROR
from flytekit.core.type_engine import TypeEngine
from flytekit.exceptions.user import FlyteUserException
from flytekit.extend.backend.base_connector import AsyncConnectorBase, ConnectorRegistry, Resource, ResourceMeta
from flytekit.extend.backend.utils import convert_to_flyte_phase, get_connector_secret
from flytekit.models.literals import LiteralMap
from flytekit.models.task import TaskTemplate

json_module = lazy_module("json")


@dataclass
class Meta(ResourceMeta):
    job: str


class ShapeConnector(AsyncConnectorBase):
    name = "Shape Connector"

    def __init__(self):
        super().__init__(task_type_name="shape", metadata_type=Meta)

    def create(self, task_template: TaskTemplate, inputs: Optional[LiteralMap] = None, **kwargs) -> Meta:
        ctx = FlyteContextManager.current_context()
        values = TypeEngine.literal_map_to_kwargs(ctx, inputs, {"n": int})
        env = task_template.container.env  # a dict, updated in place as Databricks does
        env[FLYTE_FAIL_ON_ERROR] = "true"
        if values["n"] < 0:
            raise FlyteUserException("n must not be negative")
        token = get_connector_secret(secret_key="shape_token")
        region = flytekit.current_context().secrets.get("shape_region")
        logger.info("creating")
        job = json_module.dumps({"n": values["n"], "env": env, "token": token, "region": region})
        return Meta(job=job)

    def get(self, resource_meta: Meta, **kwargs) -> Resource:
        job = json.loads(resource_meta.job)
        ctx = FlyteContextManager.current_context()
        lit = TypeEngine.to_literal(ctx, job, Dict, TypeEngine.to_literal_type(Dict))
        return Resource(phase=convert_to_flyte_phase("done"), outputs=LiteralMap({"job": lit}))

    def delete(self, resource_meta: Meta, **kwargs):
        return None


ConnectorRegistry.register(ShapeConnector())
"""


def _migrate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flyteconnect", "migrate", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_a_connector_using_flytekits_runtime_helpers_ports_and_runs(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "shape.py").write_text(CONNECTOR)
    done = _migrate("shape.py", "-o", "out/shape.py", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    ported = (tmp_path / "out" / "shape.py").read_text()
    assert "flytekit" not in ported
    assert "from flyteconnect.compat.runtime import" in ported and "FLYTE_FAIL_ON_ERROR" in ported

    monkeypatch.setenv("_FSEC_SHAPE_TOKEN", "t0k")
    monkeypatch.setenv("_FSEC_SHAPE_REGION", "eu")
    fresh = ConnectorRegistry()  # the module registers into the process default registry: a fresh one here
    monkeypatch.setattr(ConnectorRegistry, "_default", fresh)
    spec = importlib.util.spec_from_file_location("shape_ported", tmp_path / "out" / "shape.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "shape_ported", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    connector = fresh.get_connector("shape")

    task = ConnectorTask(
        "s", "shape", inputs={"n": int}, outputs={"job": dict}, container={"image": "i", "env": {"A": "1"}}
    )
    result = run_connector(connector, task, {"n": 3})
    assert result.phase == execution_pb2.TaskExecution.SUCCEEDED
    assert result.outputs["job"] == {
        "n": 3,
        "env": {"A": "1", "FLYTE_FAIL_ON_ERROR": "true"},
        "token": "t0k",
        "region": "eu",
    }


def test_the_output_imports_nothing_from_flytekit_and_runs_without_it(tmp_path: Path) -> None:
    (tmp_path / "shape.py").write_text(CONNECTOR)
    assert _migrate("shape.py", "-o", "out", cwd=tmp_path).returncode == 0
    # flytekit is not installed in this environment; make sure, then load the output by the CLI.
    check = "import importlib.util as u; assert u.find_spec('flytekit') is None"
    assert subprocess.run([sys.executable, "-c", check]).returncode == 0
    listed = subprocess.run(
        [sys.executable, "-m", "flyteconnect", "list", "--json", "--strict", "--no-entry-points", "-m", "out/shape.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert '"task_type": "shape"' in listed.stdout


TASK_SIDE = """
import flytekit
from flytekit.core.base_task import PythonTask
from flytekit.extend.backend.base_connector import AsyncConnectorBase


class MyTask(PythonTask):
    pass


image = flytekit.ImageSpec(name="x")
"""


def test_task_side_names_are_reported_with_file_line_and_name_and_fail_the_run(tmp_path: Path) -> None:
    (tmp_path / "mixed.py").write_text(TASK_SIDE)
    done = _migrate("mixed.py", "-o", "out", cwd=tmp_path)
    assert done.returncode == 1
    assert "mixed.py:3: cannot port: flytekit.core.base_task.PythonTask: task-side" in done.stdout
    assert "mixed.py:11: cannot port: flytekit.ImageSpec: task-side" in done.stdout
    ported = (tmp_path / "out" / "mixed.py").read_text()
    # What ported is rewritten; what did not keeps its flytekit import, so the module fails loudly at import.
    assert "from flyteconnect import AsyncConnectorBase" in ported
    assert "from flytekit.core.base_task import PythonTask" in ported and "import flytekit\n" in ported


def test_the_package_helpers_a_connector_imports_are_ported_beside_it(tmp_path: Path) -> None:
    pkg = tmp_path / "src" / "nsplugins" / "thing"  # nsplugins: a namespace package, as flytekitplugins is
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .task import ThingTask\nfrom .connector import ThingConnector\n")
    (pkg / "task.py").write_text("from flytekit.core.base_task import PythonTask\nclass ThingTask(PythonTask): ...\n")
    (pkg / "helpers.py").write_text("from flytekit.core.resources import Resources\nLIMIT = Resources(cpu='1')\n")
    (pkg / "sub" / "util.py").write_text("from flytekit import logger\n")
    (pkg / "connector.py").write_text(
        textwrap.dedent(
            """
            from flytekit.extend.backend.base_connector import SyncConnectorBase, ConnectorRegistry, Resource
            from nsplugins.thing.helpers import LIMIT
            from .sub.util import logger

            class ThingConnector(SyncConnectorBase):
                name = "Thing"

                def __init__(self):
                    super().__init__(task_type_name="thing")

                def do(self, task_template, inputs=None, **kwargs):
                    logger.info("cpu %s", LIMIT.cpu)
                    return Resource(phase=4, outputs={"cpu": LIMIT.cpu})

            ConnectorRegistry.register(ThingConnector())
            """
        )
    )
    done = _migrate(str(pkg / "connector.py"), "-o", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = tmp_path / "out" / "nsplugins" / "thing"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.py")) == [
        "__init__.py",
        "connector.py",
        "helpers.py",
        "sub/util.py",
    ]
    assert "Resources" in (out / "helpers.py").read_text() and "flytekit" not in (out / "helpers.py").read_text()
    assert "task" not in (out / "__init__.py").read_text().replace("task-side", "")
    assert "flyteconnect serve -m nsplugins.thing.connector" in done.stderr
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "out"), os.environ.get("PYTHONPATH", "")])}
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "flyteconnect",
            "list",
            "--json",
            "--no-entry-points",
            "-m",
            "nsplugins.thing.connector",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert listed.returncode == 0 and '"task_type": "thing"' in listed.stdout, listed.stderr


def test_source_that_is_not_python_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("def (:\n")
    done = _migrate("bad.py", "-o", "out", cwd=tmp_path)
    assert done.returncode == 1 and "not valid Python" in done.stderr


def test_container_view_has_flytekits_shapes() -> None:
    from flyteconnect import TaskTemplate

    pb = tasks_pb2.TaskTemplate(type="t")
    pb.container.image = "img"
    pb.container.args.extend(["a", "b"])
    pb.container.env.add(key="K", value="v")
    view = TaskTemplate.from_bytes(pb.SerializeToString())
    assert view.container.env == {"K": "v"} and view.container.args == ["a", "b"] and view.container.image == "img"
    view.container.env["X"] = "1"  # Databricks' connector adds to it, then reads it back
    assert view.container.env == {"K": "v", "X": "1"}
    assert [(kv.key, kv.value) for kv in view.container.to_flyte_idl().env] == [("K", "v"), ("X", "1")]


def test_references_through_module_aliases_port_and_missing_attributes_are_reported() -> None:
    from flyteconnect.migrate.codemod import rewrite_source

    source = textwrap.dedent(
        """
        import flytekit as fk
        import flytekit.core.type_engine
        from flytekit.core import context_manager

        def f():
            fk.logger.info("x")
            with context_manager.FlyteContextManager.with_context(None):
                return flytekit.core.type_engine.TypeEngine.to_literal_type(int)
        """
    )
    out = rewrite_source(source)
    assert "logger.info" in out.code and "TypeEngine.to_literal_type(int)" in out.code
    assert "import flytekit as fk" not in out.code and "import flytekit.core.type_engine" not in out.code
    assert [(f.line, f.name) for f in out.findings] == [
        (8, "flytekit.core.context_manager.FlyteContextManager.with_context")
    ]
    assert not out.ported


def test_await_of_to_flyte_idl_becomes_the_plain_call() -> None:
    from flyteconnect.migrate.codemod import rewrite_source

    out = rewrite_source("async def f(r):\n    return (await r.to_flyte_idl()), await r.other()\n")
    assert out.code == "async def f(r):\n    return (r.to_flyte_idl()), await r.other()\n"
