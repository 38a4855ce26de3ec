"""Loopback stand-ins for the external services of the migrated plugin connectors.

``FakeApi``: one HTTP server answering the few calls the connectors make to OpenAI (chat completions, batches), and
Google's token endpoint and BigQuery's jobs API (the BigQuery client is pointed at it by BIGQUERY_EMULATOR_HOST and
a credentials file whose token_uri is here). Every request is recorded. ``Sink``: a TCP listener that records
connections and closes them, for clients whose endpoint cannot be a plain-HTTP fake (Databricks' https, SSH).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT_REPLY = "hello from the fake"

_BATCH = {
    "id": "batch_fake",
    "object": "batch",
    "endpoint": "/v1/chat/completions",
    "input_file_id": "file-1",
    "completion_window": "24h",
    "status": "in_progress",
    "created_at": 0,
}


def _answer(method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if method == "POST" and path == "/v1/chat/completions":
        message = {"role": "assistant", "content": CHAT_REPLY}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        return 200, {"id": "c1", "object": "chat.completion", "created": 0, "model": "m", "choices": [choice]}
    if path == "/v1/batches" and method == "POST":
        return 200, _BATCH
    if path.startswith("/v1/batches/") and method == "GET":
        return 200, _BATCH
    if path == "/token":
        return 200, {"access_token": "fake-token", "expires_in": 3600, "token_type": "Bearer"}
    if method == "POST" and path.startswith("/bigquery/v2/projects/") and path.endswith("/jobs"):
        project = path.split("/")[4]
        reference = {"projectId": project, "jobId": "job_fake", "location": "US"}
        return 200, {
            "jobReference": reference,
            "status": {"state": "RUNNING"},
            "configuration": body.get("configuration", {}),
        }
    return 404, {"error": {"message": f"the fake does not answer {method} {path}"}}


@dataclass
class FakeApi:
    """The running fake: its base URL and the (method, path, body) of every request it got."""

    url: str
    requests: list[tuple[str, str, Any]] = field(default_factory=list)


@contextmanager
def fake_api() -> Iterator[FakeApi]:
    """Serve the fake on a free loopback port for the duration of the block."""
    server: ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw and raw.lstrip()[:1] in (b"{", b"[") else {}
            except ValueError:
                body = {}
            path = self.path.split("?")[0]
            api.requests.append((self.command, path, body or raw.decode(errors="replace")))
            status, answer = _answer(self.command, path, body if isinstance(body, dict) else {})
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api = FakeApi(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Sink:
    """A loopback TCP listener: ``port``, and how many connections it accepted."""

    port: int
    accepted: int = 0


@contextmanager
def sink() -> Iterator[Sink]:
    """Accept and close connections on a free loopback port for the duration of the block."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    result = Sink(listener.getsockname()[1])
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            result.accepted += 1
            conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        listener.close()
