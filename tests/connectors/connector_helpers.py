"""Helpers for the connector tests (a module of its own: conftest files are not importable by name)."""

from __future__ import annotations

import socket
import time
from typing import Any

from flyteidl.core import literals_pb2, tasks_pb2
from google.protobuf import json_format

from flyteconnect.literals import to_literal_map
from flyteconnect.models import LiteralMap, TaskTemplate


def free_port() -> int:
    """A TCP port that is free on loopback right now (as tests/conftest.py, which is not importable by name)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    """Block until something accepts connections on loopback ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


# ------------------------------------------------------------------------------------------------------ templates


def make_template(task_type: str, custom: dict[str, Any] | None = None, **fields: Any) -> TaskTemplate:
    """A TaskTemplate view of a proto with ``custom`` set as Propeller would send it."""
    pb = tasks_pb2.TaskTemplate(type=task_type, **fields)
    if custom is not None:
        json_format.ParseDict(custom, pb.custom)
    return TaskTemplate(pb)


def make_inputs(**values: Any) -> LiteralMap:
    """Primitive inputs as a LiteralMap view."""
    return LiteralMap.from_flyte_idl(to_literal_map(values))


def string_literal(s: str) -> literals_pb2.Literal:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(string_value=s)))
