"""The state store and callback server as parts of a ConnectorServer and of ``flyteconnect serve``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from flyteconnect import ConnectorRegistry
from flyteconnect.cli.main import cli
from flyteconnect.server.app import ConnectorServer, ServerConfig
from flyteconnect.server.callback_server import CallbackConfig
from flyteconnect.state import MemoryStore
from flyteconnect.state.jobs import JobRecord, job_key
from flyteconnect.state.redis import RedisStore
from support import free_port

KEY = b"a-test-signing-key-of-32-bytes!!"


def config(**kwargs: object) -> ServerConfig:
    return ServerConfig(host="127.0.0.1", port=0, metrics_port=None, protocols=["v1"], **kwargs)  # type: ignore[arg-type]


async def test_server_with_redis_state_and_callbacks(redis_server: object) -> None:
    url = redis_server.url  # type: ignore[attr-defined]
    callback = CallbackConfig(port=0, host="127.0.0.1", keys=(KEY,))
    server = ConnectorServer(ConnectorRegistry(), config(state_url=url, callback=callback))
    assert isinstance(server.state, RedisStore)
    await server.start()
    try:
        assert server.callback_port is not None and server.callbacks is not None
        await server.callbacks.inbox.link("j", b"meta")
        assert server.callbacks.signer is not None
        async with httpx.AsyncClient() as http:
            reply = await http.post(server.callbacks.signer.url("j"), json={"phase": "SUCCEEDED"})
        assert reply.json() == {"recorded": True}
        record = JobRecord.decode(await server.state.get(job_key(b"meta")))
        assert record is not None and record.source == "callback"
    finally:
        await server.stop(grace=0)
    assert server.callbacks.port is not None
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError):  # stopped with the server
            await http.get(f"http://127.0.0.1:{server.callbacks.port}/healthz")


async def test_default_server_keeps_state_in_memory_without_callbacks() -> None:
    server = ConnectorServer(ConnectorRegistry(), config())
    await server.start()
    try:
        assert isinstance(server.state, MemoryStore)
        assert server.callback_port is None
    finally:
        await server.stop(grace=0)


async def test_unreachable_redis_refuses_to_start_without_leaking_its_password() -> None:
    server = ConnectorServer(ConnectorRegistry(), config(state_url=f"redis://:hunter2@127.0.0.1:{free_port()}/0"))
    with pytest.raises(OSError, match=r"state store redis 127\.0\.0\.1:\d+/0 is unreachable") as info:
        await server.start()
    assert "hunter2" not in str(info.value)
    assert server.port == 0  # no gRPC port was opened


def test_serve_refuses_a_bad_state_url_and_unshared_callbacks_across_workers() -> None:
    runner = CliRunner()
    module = ["--no-entry-points", "-m", str(Path(__file__).parents[1] / "server" / "serve_module.py")]
    bad = runner.invoke(cli, ["serve", *module, "--port", "0", "--metrics-port", "0", "--state-url", "mongodb://x"])
    assert bad.exit_code != 0 and "unknown state store URL scheme 'mongodb'" in bad.output
    workers = runner.invoke(cli, ["serve", *module, "--workers", "2", "--callback-port", "0"])
    assert workers.exit_code != 0 and "shared --state-url" in workers.output


def test_default_serve_imports_neither_redis_nor_aiohttp() -> None:
    code = (
        "import sys\n"
        "from flyteconnect import ConnectorRegistry\n"
        "from flyteconnect.server.app import ServerConfig, serve_in_thread\n"
        "with serve_in_thread(ConnectorRegistry(), ServerConfig(host='127.0.0.1', port=0, metrics_port=None)):\n"
        "    print(sorted({m.split('.')[0] for m in sys.modules} & {'redis', 'aiohttp'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
