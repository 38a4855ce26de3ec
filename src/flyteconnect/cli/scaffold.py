"""The files ``flyteconnect new NAME`` writes: a connector package that passes its own tests and ``check``.

Each template is the file's text with ``__DIST__`` (the distribution name, e.g. ``my-connector``), ``__PACKAGE__``
(``my_connector``), ``__CLASS__`` (``MyConnector``) and ``__TASK_TYPE__`` (``my_connector``) filled in.
"""

from __future__ import annotations

__all__ = ["FILES", "render"]

PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "__DIST__"
version = "0.1.0"
description = "A flyteconnect connector: __CLASS__ serves tasks of type '__TASK_TYPE__'."
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["flyteconnect>=0.1"]

[project.optional-dependencies]
test = ["flyteconnect[server,cli]>=0.1", "pytest>=8", "pytest-asyncio>=0.23"]

# The registration: `flyteconnect serve`, `list`, `run` and `check` find the connector through this entry point.
[project.entry-points."flyteconnect.connectors"]
__TASK_TYPE__ = "__PACKAGE__.connector:__CLASS__"

[tool.setuptools.packages.find]
where = ["src"]

[tool.pytest.ini_options]
testpaths = ["tests"]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
"""

INIT = '''\
"""__DIST__: the __CLASS__ connector and the task that uses it."""

from __PACKAGE__.connector import __CLASS__, __CLASS__Job, run_job

__all__ = ["__CLASS__", "__CLASS__Job", "run_job"]
'''

CONNECTOR = '''\
"""__CLASS__: starts a job on an external system in ``create``, reports it in ``get``, cancels it in ``delete``.

The "external system" here is a timer, so the package works anywhere: replace the bodies with calls to your
service. Keep what the server relies on:

- everything needed to find the job again is in the metadata (Propeller stores it and sends it back with each poll);
- ``create`` returns at once; ``get`` reports progress; ``delete`` succeeds on a job that is gone;
- bad input raises ``InvalidRequest``, a briefly unavailable service ``TransientError``;
- blocking client libraries go in plain ``def`` methods (the server runs them on worker threads), ``async def`` only
  for code that awaits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from flyteconnect import AsyncConnectorBase, ConnectorTask, Phase, Resource, ResourceMeta
from flyteconnect.errors import InvalidRequest

TASK_TYPE = "__TASK_TYPE__"


@dataclass
class __CLASS__Job(ResourceMeta):
    """The job handle: JSON on the wire, decoded again for every poll."""

    started_at: float
    seconds: float


class __CLASS__(AsyncConnectorBase[__CLASS__Job]):
    """Runs jobs that finish ``seconds`` after they start."""

    name = "__CLASS__"
    task_type_name = TASK_TYPE
    metadata_type = __CLASS__Job

    async def create(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> __CLASS__Job:
        """Start the job (here: note the time) and return its handle."""
        values = inputs.to_python() if inputs is not None else {}
        seconds = values.get("seconds", 0.0)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise InvalidRequest(f"seconds must be a number >= 0, got {seconds!r}")
        return __CLASS__Job(started_at=time.time(), seconds=float(seconds))

    async def get(self, resource_meta: __CLASS__Job, **kwargs: Any) -> Resource:
        """RUNNING until the job is done, then SUCCEEDED with the task's outputs."""
        elapsed = time.time() - resource_meta.started_at
        if elapsed < resource_meta.seconds:
            return Resource(phase=Phase.RUNNING, message=f"{resource_meta.seconds - elapsed:.1f}s left")
        return Resource(phase=Phase.SUCCEEDED, outputs={"elapsed": round(elapsed, 3)})

    async def delete(self, resource_meta: __CLASS__Job, **kwargs: Any) -> None:
        """Cancel the job (nothing to do for a timer); deleting a finished or unknown job must succeed."""


# The task workflows call (a flytekit task with task_type="__TASK_TYPE__" works the same):
#   flyteconnect run __PACKAGE__.connector:run_job --seconds 2
run_job = ConnectorTask("run_job", task_type=TASK_TYPE, inputs={"seconds": float}, outputs={"elapsed": float})
'''

TESTS = '''\
"""Tests of __CLASS__ with flyteconnect's testing kit: in-process, the conformance checklist, a real server."""

from __future__ import annotations

from typing import Any

import pytest

from flyteconnect.errors import InvalidRequest
from flyteconnect.registry import discover_connectors
from flyteconnect.testing import check_connector, run_connector
from __PACKAGE__ import __CLASS__, __CLASS__Job, run_job


def test_runs_to_completion_in_process() -> None:
    result = run_connector(__CLASS__(), run_job, {"seconds": 0.05}, poll_interval=0.02)
    result.assert_succeeded()
    assert result.outputs["elapsed"] >= 0.05
    assert result.count("get") >= 1  # polled: not finished at create


def test_metadata_round_trips() -> None:
    job = __CLASS__Job(started_at=1.5, seconds=2.0)
    assert __CLASS__Job.decode(job.encode()) == job


def test_bad_input_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest, match="seconds must be a number"):
        run_connector(__CLASS__(), run_job, {"seconds": -1.0})


def test_passes_the_conformance_checklist() -> None:
    report = check_connector(__CLASS__(), task=run_job)
    assert report.ok, report.failures()


def test_the_entry_point_registers_it() -> None:
    found = discover_connectors()
    assert any(isinstance(c, __CLASS__) for c in found.connectors), found.failures


@pytest.fixture
def connectors() -> list[Any]:
    """What the connector_server and fake_propeller fixtures serve: this package's connector."""
    return [__CLASS__()]


def test_through_a_real_server_like_propeller(fake_propeller: Any) -> None:
    result = fake_propeller.run_sync(run_job, {"seconds": 0.05})
    result.assert_succeeded()
    assert result.outputs["elapsed"] >= 0.05
'''

DOCKERFILE = """\
# __DIST__ on top of the flyteconnect server image (see flyteconnect's docs/deploying.md):
#   docker build -t __DIST__:0.1.0 --build-arg FLYTECONNECT_IMAGE=flyteconnect:0.1.0 .
# The base image's entry point serves every installed connector: this layer only installs the package.
ARG FLYTECONNECT_IMAGE=flyteconnect:0.1.0
FROM ${FLYTECONNECT_IMAGE}
USER root
COPY pyproject.toml README.md /tmp/__DIST__/
COPY src /tmp/__DIST__/src
RUN pip install --no-cache-dir /tmp/__DIST__ && rm -rf /tmp/__DIST__
USER 10001:10001
"""

README = """\
# __DIST__

A [flyteconnect](https://github.com/flyteorg/flyte) connector: `__CLASS__` serves tasks of type `__TASK_TYPE__`.

```
pyproject.toml                 the entry point in group "flyteconnect.connectors" (the registration)
src/__PACKAGE__/connector.py   __CLASS__ (create / get / delete) and the task run_job
tests/test_connector.py        tests with flyteconnect.testing: in-process, the checklist, a real server
Dockerfile                     a layer on the flyteconnect server image
```

```bash
pip install -e '.[test]'
pytest
flyteconnect check __PACKAGE__.connector
flyteconnect run __PACKAGE__.connector:run_job --seconds 2
flyteconnect serve
```
"""

FILES: dict[str, str] = {
    "pyproject.toml": PYPROJECT,
    "README.md": README,
    "Dockerfile": DOCKERFILE,
    "src/__PACKAGE__/__init__.py": INIT,
    "src/__PACKAGE__/connector.py": CONNECTOR,
    "tests/test_connector.py": TESTS,
}
"""Relative path (with placeholders) -> template."""


def render(text: str, names: dict[str, str]) -> str:
    """``text`` with each placeholder replaced by its value."""
    for placeholder, value in names.items():
        text = text.replace(placeholder, value)
    return text
