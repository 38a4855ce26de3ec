"""Real systems for the built-in connectors: a local HTTP server and a throwaway PostgreSQL cluster."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from connector_helpers import free_port, wait_for_port

# ---------------------------------------------------------------------------------------------------- HTTP server


@dataclass
class HttpServer:
    """A real HTTP server on loopback. Routes:

    - ``/echo...``: 200 with a JSON body describing the request (method, path, query, headers, json body);
    - ``/status/<code>``: that status with body ``status <code>``;
    - ``/flaky/<key>/<n>``: 503 for the first ``n`` requests with that key, then 200 ``ok after <n>``;
    - ``/created``: 201 with a custom response header.
    """

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)


def _handler(server: HttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def _reply(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if body.startswith("{") else "text/plain")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            record = {
                "method": self.command,
                "path": parts.path,
                "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "json": json.loads(raw) if raw else None,
            }
            server.requests.append(record)
            segments = parts.path.strip("/").split("/")
            if segments[0] == "status":
                code = int(segments[1])
                self._reply(code, f"status {code}")
            elif segments[0] == "flaky":
                key, n = segments[1], int(segments[2])
                count = server.counters.get(key, 0)
                server.counters[key] = count + 1
                if count < n:
                    self._reply(503, "try later")
                else:
                    self._reply(200, f"ok after {n}")
            elif segments[0] == "created":
                self._reply(201, '{"id": 7}', {"X-Request-Id": "abc123"})
            else:
                self._reply(200, json.dumps(record))

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    return Handler


@pytest.fixture(scope="session")
def http_server() -> Iterator[HttpServer]:
    """A threaded ``http.server`` on a free loopback port for the whole session."""
    port = free_port()
    state = HttpServer(f"http://127.0.0.1:{port}")
    httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


# ------------------------------------------------------------------------------------------------------ PostgreSQL


@dataclass
class PostgresServer:
    """A running throwaway PostgreSQL cluster."""

    port: int
    dsn: str


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (Debian: apt-get install postgresql)")
    return path


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """initdb into a temp dir and pg_ctl start on a free port (as the ``postgres`` user when running as root)."""
    as_root = os.geteuid() == 0
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    tmp = tempfile.mkdtemp(prefix="flyteconnect-pg-")
    data = os.path.join(tmp, "data")
    if as_root:
        shutil.chown(tmp, "postgres", "postgres")
    port = free_port()
    user = "postgres" if as_root else os.environ.get("USER", "postgres")
    subprocess.run(
        [*run_as, _pg_bin("initdb"), "-D", data, "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
    subprocess.run(
        [*run_as, _pg_bin("pg_ctl"), "-D", data, "-o", options, "-l", os.path.join(tmp, "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        wait_for_port(port)
        yield PostgresServer(port, f"postgresql://{user}@127.0.0.1:{port}/postgres")
    finally:
        subprocess.run(
            [*run_as, _pg_bin("pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"], capture_output=True, timeout=30
        )
        # pg_ctl stop -w returns once the postmaster is gone; the pause only guards slow file systems.
        time.sleep(0.1)
        shutil.rmtree(tmp, ignore_errors=True)
