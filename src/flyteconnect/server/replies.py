"""The hot RPCs' replies as protobuf wire bytes (GetTask, ExecuteTaskSync, CreateTask; Flyte 1 and 2).

grpc only serializes a reply, so these functions write the bytes ``SerializeToString`` would give for the reply
message around the one Resource encoder's bytes (``flyteconnect.encoding``), and the handlers are registered without
a response serializer.
"""

from __future__ import annotations

from flyteconnect.connector import Resource
from flyteconnect.encoding import resource_bytes, resource_v1, resource_v2
from flyteconnect.wire import delimited

__all__ = ["create_task", "execute_task_sync", "get_task_v1", "get_task_v2", "resource_v1", "resource_v2"]


def get_task_v1(resource: Resource) -> bytes:
    """A serialized ``flyteidl.admin.GetTaskResponse`` carrying ``resource``."""
    return delimited(b"\n", resource_bytes(resource, True))


def execute_task_sync(resource: Resource) -> bytes:
    """A serialized ``flyteidl.admin.ExecuteTaskSyncResponse`` whose header carries ``resource``."""
    return delimited(b"\n", delimited(b"\n", resource_bytes(resource, True)))


def get_task_v2(resource: Resource) -> bytes:
    """A serialized ``flyteidl2.connector.GetTaskResponse`` carrying ``resource``."""
    return delimited(b"\n", resource_bytes(resource, False))


def create_task(resource_meta: bytes) -> bytes:
    """A serialized ``CreateTaskResponse`` (Flyte 1 and 2: ``bytes resource_meta = 1``), empty when it is."""
    return delimited(b"\n", resource_meta) if resource_meta else b""
