"""GenericOnly keeps generated services off grpc.aio's registered-method path (which taxes every call)."""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from flyteconnect.server.grpc_util import GenericOnly


class _Recorder:
    """What a server is asked to register (the generated code calls these two methods)."""

    def __init__(self) -> None:
        self.generic: list[Any] = []
        self.registered: list[str] = []

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self.generic.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: Any) -> None:
        self.registered.append(service)


def test_generated_registration_keeps_only_the_generic_handler() -> None:
    direct = _Recorder()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), direct)
    assert direct.registered == ["grpc.health.v1.Health"]  # what grpcio-health-checking does on its own

    through = _Recorder()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), GenericOnly(through))  # type: ignore[arg-type]
    assert through.registered == []
    assert len(through.generic) == 1

    class Details(grpc.HandlerCallDetails):  # type: ignore[misc]
        method = "/grpc.health.v1.Health/Check"
        invocation_metadata = ()

    assert through.generic[0].service(Details()) is not None  # the generic handler still serves Check
