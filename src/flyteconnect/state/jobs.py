"""What the server remembers about one job, and the keys it is kept under.

One record per job, under ``job:<digest of resource_meta>`` (the job's identity, principle 6): the last Resource
seen (from the connector's ``get`` or from a callback), when it was seen and when the connector may be asked again.
Poll pacing reads and writes it; a callback result is written into it, so a GetTask looks up one key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from flyteconnect.connector import Phase, Resource

__all__ = ["JobRecord", "job_key"]

_VERSION = 2
_PHASES = Phase._value2member_map_


def job_key(resource_meta: bytes) -> str:
    """``job:<32 hex digits>``: the job's key in the state store (a digest: resource_meta may be large)."""
    return "job:" + hashlib.blake2b(resource_meta, digest_size=16).hexdigest()


@dataclass(frozen=True)
class JobRecord:
    """The last known state of a job: a phase and message, plus the whole Resource when it carries more."""

    phase: int
    message: str | None
    resource: bytes | None
    """The ``flyteidl.admin.Resource`` proto bytes when the Resource has outputs, log links or custom info (None:
    phase and message are all of it, and answering from the record parses nothing)."""
    seen: float
    """Unix time the answer was seen."""
    source: str = "get"
    """``get`` (the connector answered a poll) or ``callback`` (the external system reported it)."""
    next_poll: float | None = None
    """Unix time before which the connector is not asked again (None: never, the result is final)."""

    @classmethod
    def of(cls, resource: Resource, seen: float, source: str = "get", next_poll: float | None = None) -> JobRecord:
        """The record of ``resource`` (outputs converted to literals now, as a reply would)."""
        full = None
        if resource.outputs is not None or resource.log_links or resource.custom_info:
            full = resource.to_flyte_idl().SerializeToString(deterministic=True)
        return cls(int(resource.phase), resource.message or None, full, seen, source, next_poll)

    def to_resource(self) -> Resource:
        """The Resource this record holds (outputs as a ``LiteralMap`` view)."""
        if self.resource is None:
            return Resource(phase=_PHASES.get(self.phase, self.phase), message=self.message)  # type: ignore[arg-type]
        from flyteidl.admin import agent_pb2

        return Resource.from_flyte_idl(agent_pb2.Resource.FromString(self.resource))

    def encode(self) -> bytes:
        """Compact bytes for the store."""
        import msgpack  # with the literal engine, on first use: not at server start

        fields = [_VERSION, self.phase, self.message, self.resource, self.seen, self.source, self.next_poll]
        return bytes(msgpack.packb(fields))

    @classmethod
    def decode(cls, data: bytes | None) -> JobRecord | None:
        """The record in ``data``; None for None or bytes this version cannot read (then the job is polled)."""
        if data is None:
            return None
        import msgpack

        try:
            fields: Any = msgpack.unpackb(data)
            version, phase, message, resource, seen, source, next_poll = fields
        except (ValueError, TypeError, msgpack.UnpackException):
            return None
        if version != _VERSION or not isinstance(phase, int):
            return None
        return cls(phase, message, resource, float(seen), str(source), None if next_poll is None else float(next_poll))
