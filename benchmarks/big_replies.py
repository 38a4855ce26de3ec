"""A connector module for ``flyteconnect serve -m benchmarks/big_replies.py``: GetTask answers ~1 MiB of outputs.

The slow-reader benchmark (``benchmarks.slow_readers``) and its test poll it from clients that never read their
replies, so every answered poll leaves a large reply the server cannot send.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flyteconnect import AsyncConnectorBase, ConnectorRegistry, Phase, Resource, ResourceMeta

TASK_TYPE = "big_reply"
REPLY_BYTES = 1024 * 1024
"""Size of the ``blob`` output every GetTask answers (the reply is a few bytes more)."""

_BLOB = "x" * REPLY_BYTES


@dataclass
class BigMeta(ResourceMeta):
    """The job handle."""

    job_id: str


class BigReplyConnector(AsyncConnectorBase[BigMeta]):
    """``get`` answers SUCCEEDED with a 1 MiB string output."""

    name = "Big Reply Connector"
    task_type_name = TASK_TYPE
    metadata_type = BigMeta

    async def create(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> BigMeta:
        return BigMeta(job_id="big-1")

    async def get(self, resource_meta: BigMeta, **kwargs: Any) -> Resource:
        return Resource(phase=Phase.SUCCEEDED, outputs={"blob": _BLOB})

    async def delete(self, resource_meta: BigMeta, **kwargs: Any) -> None:
        return None


ConnectorRegistry.register(BigReplyConnector(), override=True)
