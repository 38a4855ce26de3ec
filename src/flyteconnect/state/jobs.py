"""What the server remembers about one job, and the keys it is kept under.

One record per job, under ``job:<digest of resource_meta>`` (the job's identity, principle 6): the last Resource
seen (from the connector's ``get`` or from a callback), when it was seen and when the connector may be asked again.
Poll pacing reads and writes it; a callback result is written into it, so a GetTask looks up one key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flyteconnect.connector import Resource

__all__ = ["JobRecord", "job_key"]


def job_key(resource_meta: bytes) -> str:
    """``job:<32 hex digits>``: the job's key in the state store (a digest: resource_meta may be large)."""
    return "job:" + hashlib.blake2b(resource_meta, digest_size=16).hexdigest()


@dataclass(frozen=True)
class JobRecord:
    """The last known state of a job."""

    resource: bytes
    """The ``flyteidl.admin.Resource`` proto bytes of the last answer."""
    seen: float
    """Unix time the answer was seen."""
    source: str = "get"
    """``get`` (the connector answered a poll) or ``callback`` (the external system reported it)."""
    next_poll: float | None = None
    """Unix time before which the connector is not asked again (None: at the connector's pace)."""

    @classmethod
    def of(cls, resource: Resource, seen: float, source: str = "get", next_poll: float | None = None) -> JobRecord:
        """The record of ``resource`` (its outputs converted to literals now, as a reply would)."""
        pb = resource.to_flyte_idl()
        return cls(pb.SerializeToString(deterministic=True), seen, source, next_poll)

    def to_resource(self) -> Resource:
        """The Resource this record holds (outputs as a ``LiteralMap`` view)."""
        from flyteidl.admin import agent_pb2

        from flyteconnect.connector import Resource

        return Resource.from_flyte_idl(agent_pb2.Resource.FromString(self.resource))

    def encode(self) -> bytes:
        """Compact bytes for the store."""
        import msgpack  # with the literal engine, on first use: not at server start

        return bytes(msgpack.packb([1, self.resource, self.seen, self.source, self.next_poll]))

    @classmethod
    def decode(cls, data: bytes | None) -> JobRecord | None:
        """The record in ``data``; None for None or bytes this version cannot read (then the job is polled)."""
        if data is None:
            return None
        import msgpack

        try:
            fields: Any = msgpack.unpackb(data)
            version, resource, seen, source, next_poll = fields
        except (ValueError, TypeError, msgpack.UnpackException):
            return None
        if version != 1 or not isinstance(resource, bytes):
            return None
        return cls(resource, float(seen), str(source), None if next_poll is None else float(next_poll))
