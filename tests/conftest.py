"""Fixtures shared by every test area: free ports, an S3-compatible server (moto in server mode), a Redis server,
egress on loopback."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from support import free_port, wait_for_port

# tests/compat needs flytekit and its plugins: scripts/test.sh runs it in the compat virtualenv
# (scripts/compat_venv.sh) as a second pytest invocation. find_spec looks flytekit up without importing it.
collect_ignore = [] if importlib.util.find_spec("flytekit") else ["compat"]


@pytest.fixture(autouse=True)
def forget_secret_values() -> Iterator[None]:
    """Each test starts with no remembered secret values: a value one test resolved (say ``127.0.0.1``) would
    otherwise be masked in every later test's messages, as it is, by design, in a long-running server."""
    yield
    from flyteconnect import redaction

    redaction.VALUES.clear()


@pytest.fixture
def allow_loopback_egress() -> Iterator[None]:
    """Let connectors reach loopback, where the test servers listen (the default egress policy refuses it)."""
    from flyteconnect import egress

    saved = egress.current_policy()
    egress.configure(egress.EgressPolicy.from_allow(["127.0.0.0/8", "::1"]))
    yield
    egress.configure(saved)


@dataclass
class S3Server:
    """A running S3-compatible server and the settings to reach it."""

    endpoint_url: str

    @property
    def storage_options(self) -> dict[str, object]:
        """fsspec/s3fs options for this server."""
        return {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": self.endpoint_url}}

    def create_bucket(self, name: str) -> None:
        """Create a bucket (no error when it exists)."""
        import s3fs

        fs = s3fs.S3FileSystem(**self.storage_options)  # type: ignore[arg-type]
        if not fs.exists(name):
            fs.mkdir(name)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server in a subprocess on a free loopback port; AWS env vars point clients at it."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        endpoint = f"http://127.0.0.1:{port}"
        saved = {
            k: os.environ.get(k)
            for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION")
        }
        os.environ.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_ENDPOINT_URL=endpoint,
            AWS_DEFAULT_REGION="us-east-1",
        )
        yield S3Server(endpoint)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class RedisServer:
    """A running throwaway ``redis-server`` on loopback."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def flush(self) -> None:
        """Empty every database (``redis-cli`` ships with the server)."""
        subprocess.run(["redis-cli", "-p", str(self.port), "FLUSHALL"], check=True, capture_output=True, timeout=10)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """``redis-server`` (Debian package redis-server) on a free loopback port, no persistence, in a temp dir."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (Debian: apt-get install redis-server)")
    tmp = tempfile.mkdtemp(prefix="flyteconnect-redis-")
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp, "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield RedisServer(port, proc)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
