"""The server application and dispatcher settings: TLS, drain seen through health, protocols, per-connector
timeouts, contextvars in worker threads, --debug details, JSON logs."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import json
import logging
import subprocess
from pathlib import Path

import grpc
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.service import agent_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from flyteconnect import AsyncConnectorBase, ConnectorRegistry, Phase, Resource
from flyteconnect.server.app import load_adapters, serve_in_thread
from flyteconnect.server.dispatch import DispatchConfig, Dispatcher
from flyteconnect.server.errors import CallFailed
from flyteconnect.server.logs import JsonFormatter

from . import connectors
from .conftest import make_config
from .test_rpcs import get_request

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


class ContextConnector(AsyncConnectorBase[connectors.EchoMeta]):
    """``def get`` (a worker thread) reporting the caller's contextvar."""

    name = "Context Connector"
    task_type_name = "ctx"
    metadata_type = connectors.EchoMeta

    def create(self, task_template, output_prefix, inputs=None, **kwargs):
        return connectors.EchoMeta(job_id="c")

    def get(self, resource_meta, **kwargs):
        return Resource(phase=Phase.RUNNING, message=request_id.get())

    def delete(self, resource_meta, **kwargs):
        return None


def test_tls_with_a_self_signed_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    config = dataclasses.replace(make_config(), tls_cert=str(cert), tls_key=str(key), metrics_port=None)
    with serve_in_thread(ConnectorRegistry([connectors.AdderConnector()]), config) as handle:
        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with grpc.secure_channel(handle.address, credentials) as channel:
            listed = agent_pb2_grpc.AgentMetadataServiceStub(channel).ListAgents(agent_pb2.ListAgentsRequest())
        assert [a.name for a in listed.agents] == ["Adder"]
        with grpc.insecure_channel(handle.address) as plain, pytest.raises(grpc.RpcError) as info:
            agent_pb2_grpc.AgentMetadataServiceStub(plain).ListAgents(agent_pb2.ListAgentsRequest(), timeout=2)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_health_turns_not_serving_when_draining_and_in_flight_calls_finish() -> None:
    handle = serve_in_thread(ConnectorRegistry([connectors.SlowConnector()]), make_config())
    try:
        channel = grpc.aio.insecure_channel(handle.address)
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        stub = agent_pb2_grpc.AsyncAgentServiceStub(channel)
        in_flight = asyncio.ensure_future(
            stub.GetTask(get_request("slow", connectors.SlowMeta(seconds=1.0).encode()), timeout=10)
        )
        while handle.server.metrics.in_flight_for("slow").value < 1:  # noqa: ASYNC110 - state of another thread
            await asyncio.sleep(0.01)
        stopping = asyncio.get_running_loop().run_in_executor(None, handle.stop, 10)
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()  # an open Watch stream is an in-flight call too: the drain would wait for it
        assert (await in_flight).resource.message == "slow done"
        await stopping
        await channel.close()
    finally:
        handle.stop()


def test_protocol_selection() -> None:
    assert [a.name for a in load_adapters(["v1"])] == ["v1"]
    default = [a.name for a in load_adapters(None)]
    assert default[0] == "v1"
    assert set(default) <= {"v1", "v2"}
    with pytest.raises(ValueError, match="unknown protocol 'v3'"):
        load_adapters(["v3"])


async def test_per_connector_timeout_bounds_calls() -> None:
    registry = ConnectorRegistry([connectors.SlowConnector(), connectors.FaultyConnector()])
    config = DispatchConfig(timeouts={"Slow Connector": 0.2}, stall_threshold=None, transient_retries=-1)
    dispatcher = Dispatcher(registry, config)
    try:
        with pytest.raises(CallFailed) as info:
            await dispatcher.get(("slow", 0), connectors.SlowMeta(seconds=5).encode())
        assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "Slow Connector get() did not finish within 0.20s" in info.value.details
        # Other connectors keep the default bound (60 s): this one answers normally.
        resource = await dispatcher.get(("faulty", 0), b'{"mode": "queued"}')
        assert resource.phase == Phase.QUEUED
    finally:
        dispatcher.close()


async def test_def_methods_see_the_callers_contextvars() -> None:
    dispatcher = Dispatcher(ConnectorRegistry([ContextConnector()]), DispatchConfig(stall_threshold=None))
    try:
        request_id.set("req-42")
        resource = await dispatcher.get(("ctx", 0), b'{"job_id": "c"}')
        assert resource.message == "req-42"
    finally:
        dispatcher.close()


async def test_debug_adds_traceback_frames_to_unexpected_errors_only() -> None:
    registry = ConnectorRegistry([connectors.FaultyConnector()])
    for debug in (False, True):
        dispatcher = Dispatcher(registry, DispatchConfig(debug=debug, stall_threshold=None))
        try:
            with pytest.raises(CallFailed) as info:
                await dispatcher.get(("faulty", 0), b'{"mode": "raise"}')
            assert ("connectors.py" in info.value.details) is debug
            with pytest.raises(CallFailed) as info:
                await dispatcher.get(("faulty", 0), b"not json")
            assert "connectors.py" not in info.value.details
        finally:
            dispatcher.close()


def test_json_log_lines() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord("flyteconnect.server", logging.ERROR, __file__, 1, "failed %s", ("x",), None)
        import sys

        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    data = json.loads(line)
    assert data["level"] == "ERROR"
    assert data["message"] == "failed x"
    assert "RuntimeError: boom" in data["traceback"]
    assert "\n" not in line
