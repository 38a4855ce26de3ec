"""Test connectors the way Flyte will call them, without a cluster.

- ``run_connector(connector, task, inputs)``: in-process, no gRPC; for plain unit tests.
- ``ConnectorServer(connector, ...)``: the real server on a free loopback port (``with`` or ``async with``).
- ``FakePropeller(address)``: a gRPC client that behaves like Flyte Propeller (discovery, routing, create/poll/delete,
  ExecuteTaskSync, give-up after repeated GetTask failures, timeouts) and records every call.
- A pytest plugin (fixtures ``connectors``, ``connector_server``, ``fake_propeller``; marker ``both_protocols``)
  and ``flyteconnect check MODULE``, the conformance checklist.

Imports are lazy: ``import flyteconnect.testing`` does not import grpc.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flyteconnect.testing.check import CheckReport, CheckResult, check_connector, check_module
    from flyteconnect.testing.propeller import FakePropeller, NotRouted, Route
    from flyteconnect.testing.results import Call, TaskResult
    from flyteconnect.testing.run import arun_connector, run_connector
    from flyteconnect.testing.server import ConnectorServer

__all__ = [  # noqa: RUF022 - grouped by topic
    "ConnectorServer",
    "FakePropeller",
    "run_connector",
    "arun_connector",
    # results
    "Call",
    "NotRouted",
    "Route",
    "TaskResult",
    # conformance
    "CheckReport",
    "CheckResult",
    "check_connector",
    "check_module",
]

_WHERE = {
    "ConnectorServer": "server",
    "FakePropeller": "propeller",
    "NotRouted": "propeller",
    "Route": "propeller",
    "run_connector": "run",
    "arun_connector": "run",
    "Call": "results",
    "TaskResult": "results",
    "CheckReport": "check",
    "CheckResult": "check",
    "check_connector": "check",
    "check_module": "check",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'flyteconnect.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"flyteconnect.testing.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
