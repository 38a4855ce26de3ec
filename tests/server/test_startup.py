"""What start-up leaves out and defers: the CLI imports nothing heavy, Flyte 2 loads on its first call or reflection
request (and is still listed, described and served), and the collector is frozen and back on once serving."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import grpc
import pytest
from flyteidl2.connector import connector_pb2, service_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from flyteconnect import ConnectorRegistry
from flyteconnect.server import flyteidl_v2
from flyteconnect.server.app import DEFERRED, REFLECTION_SERVICE, ServerConfig, load_adapters, serve_in_thread
from flyteconnect.server.deferred import DeferredAdapter
from flyteconnect.server.dispatch import DispatchConfig, Dispatcher

from . import connectors

V2_ASYNC = "flyteidl2.connector.AsyncConnectorService"


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_cli_entry_point_imports_nothing_heavy() -> None:
    # `flyteconnect serve` turns the collector off once its command runs: what the entry point imports before that
    # is loaded with the collector on, and `flyteconnect --help` pays for it too.
    loaded = _run(
        """
        import sys
        import flyteconnect.cli.main
        heavy = ("grpc", "google", "flyteidl", "flyteidl2", "rich", "prometheus_client", "importlib.metadata",
                 "flyteconnect.connector", "flyteconnect.server")
        print(",".join(sorted(m for m in sys.modules if m.startswith(heavy))))
        """
    )
    assert loaded == ""


def test_serving_loads_the_literal_engine_only_with_the_first_outputs() -> None:
    # The Flyte 1 adapter, its reply writers and the dispatcher are what `serve` imports; the literal engine (its
    # codecs, msgpack, the flyteidl type protos) waits for the first reply with outputs or the first inputs read.
    loaded = _run(
        """
        import sys
        import flyteconnect.server.app, flyteconnect.server.flyteidl_v1, flyteconnect.server.replies
        print(",".join(sorted(m for m in sys.modules if m.startswith("flyteconnect.literals"))))
        """
    )
    assert loaded == ""


def test_deferred_names_match_the_real_services() -> None:
    assert REFLECTION_SERVICE == reflection.SERVICE_NAME
    assert DEFERRED["v2"][1] == tuple(flyteidl_v2.ADAPTER.service_names)
    assert [type(a) for a in load_adapters(None, defer=True)][1:] == [DeferredAdapter]
    assert [a.name for a in load_adapters(None, defer=True)] == [a.name for a in load_adapters(None)]


def _config() -> ServerConfig:
    return ServerConfig(
        host="127.0.0.1", port=0, metrics_port=None, dispatch=DispatchConfig(threads=2, stall_threshold=None)
    )


def _deferred(handle: object) -> DeferredAdapter:
    (adapter,) = [a for a in handle.server.adapters if isinstance(a, DeferredAdapter)]  # type: ignore[attr-defined]
    return adapter


def test_flyte2_loads_on_its_first_call() -> None:
    with serve_in_thread(ConnectorRegistry([connectors.EchoConnector()]), _config()) as handle:
        v2 = _deferred(handle)
        assert not v2.loaded
        with grpc.insecure_channel(handle.address) as channel:
            reply = service_pb2_grpc.ConnectorMetadataServiceStub(channel).ListConnectors(
                connector_pb2.ListConnectorsRequest(), timeout=10
            )
        assert [c.name for c in reply.connectors] == ["Echo Connector"]
        assert v2.loaded


def test_reflection_describes_flyte2_before_any_flyte2_call() -> None:
    with serve_in_thread(ConnectorRegistry([connectors.EchoConnector()]), _config()) as handle:
        v2 = _deferred(handle)
        with grpc.insecure_channel(handle.address) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            listed = next(
                iter(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
            )
            assert V2_ASYNC in {s.name for s in listed.list_services_response.service}
            ask = reflection_pb2.ServerReflectionRequest(file_containing_symbol=V2_ASYNC)
            reply = next(iter(stub.ServerReflectionInfo(iter([ask]))))
        assert reply.file_descriptor_response.file_descriptor_proto, reply.error_response
        assert v2.loaded


class _Details:
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


def test_server_start_imports_neither_flyte2_nor_reflection_until_asked() -> None:
    out = _run(
        """
        import sys
        import grpc
        from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
        from flyteconnect import ConnectorRegistry
        from flyteconnect.server.app import ServerConfig, serve_in_thread
        lazy = ("flyteconnect.server.flyteidl_v2", "grpc_reflection.v1alpha.reflection")
        config = ServerConfig(host="127.0.0.1", port=0, metrics_port=None)
        with serve_in_thread(ConnectorRegistry(), config) as handle:
            print(*[m in sys.modules for m in lazy])
            with grpc.insecure_channel(handle.address) as channel:
                stub = reflection_pb2_grpc.ServerReflectionStub(channel)
                ask = reflection_pb2.ServerReflectionRequest(list_services="")
                reply = next(iter(stub.ServerReflectionInfo(iter([ask]))))
            print(*[m in sys.modules for m in lazy])
            print(len(reply.list_services_response.service))
        """
    )
    # 3 Flyte 1 + 2 Flyte 2 services, health and reflection itself
    assert out.splitlines() == ["False False", "True True", "7"]


def test_a_deferred_protocol_that_fails_to_load_leaves_its_methods_unknown(caplog: pytest.LogCaptureFixture) -> None:
    dispatcher = Dispatcher(ConnectorRegistry(), DispatchConfig(stall_threshold=None))
    try:
        adapter = DeferredAdapter("v9", "no_such_module_xyz:ADAPTER", ["pkg.Service"])
        collected: list[object] = []

        class Server:
            def add_generic_rpc_handlers(self, handlers: tuple[object, ...]) -> None:
                collected.extend(handlers)

        adapter.add_to_server(Server(), dispatcher)  # type: ignore[arg-type]
        (handler,) = collected
        assert handler.service(_Details("/other.Service/Call")) is None  # type: ignore[attr-defined]
        assert not adapter.loaded  # a call for another service does not load it
        assert handler.service(_Details("/pkg.Service/Call")) is None  # type: ignore[attr-defined]
        assert adapter.loaded
        assert "protocol v9 failed to load" in caplog.text
    finally:
        dispatcher.close()


def test_tune_gc_freezes_the_heap_and_turns_the_collector_back_on() -> None:
    # In a fresh interpreter: gc.freeze is process-wide. The CLI turns the collector off while it loads.
    state = _run(
        """
        import gc
        gc.disable()
        from flyteconnect import ConnectorRegistry
        from flyteconnect.server.app import ServerConfig, serve_in_thread
        config = ServerConfig(host="127.0.0.1", port=0, metrics_port=None, tune_gc=True)
        with serve_in_thread(ConnectorRegistry(), config):
            print(gc.isenabled(), gc.get_freeze_count() > 1000, gc.get_threshold()[0])
        """
    )
    assert state == "True True 10000"
