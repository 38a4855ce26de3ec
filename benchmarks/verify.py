"""Check, with a real gRPC client, that a scenario's call succeeds, and learn the size of a good reply.

h2load cannot see gRPC status (it lives in the trailers), so before the load each (scenario, server) pair is called
once here: a non-OK status aborts the benchmark with the server's message, and the reply's framed size lets the
runner check afterwards that every call of the load run got a full reply (errors come back without a body).
"""

from __future__ import annotations

import grpc

from benchmarks.scenarios import Scenario

__all__ = ["CallFailed", "reply_frame_bytes"]


class CallFailed(RuntimeError):
    """A scenario's call did not return gRPC OK."""


def _identity(b: bytes) -> bytes:
    return b


def reply_frame_bytes(port: int, scenario: Scenario, timeout: float = 10.0) -> int:
    """Call ``scenario`` once on 127.0.0.1:``port`` and return its reply's size as gRPC frames (5 bytes + message)."""
    requests = [m.SerializeToString() for m in scenario.messages()]
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            if scenario.streaming:
                call = channel.stream_stream(
                    scenario.path, request_serializer=_identity, response_deserializer=_identity
                )
                replies: list[bytes] = list(call(iter(requests), timeout=timeout))
            else:
                unary = channel.unary_unary(
                    scenario.path, request_serializer=_identity, response_deserializer=_identity
                )
                replies = [unary(requests[0], timeout=timeout)]
        except grpc.RpcError as e:
            code = e.code() if isinstance(e, grpc.Call) else "?"
            details = e.details() if isinstance(e, grpc.Call) else str(e)
            raise CallFailed(f"{scenario.name}: {scenario.path} answered {code}: {details}") from None
    return sum(5 + len(r) for r in replies)
