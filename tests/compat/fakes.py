"""Loopback stand-ins for the services flytekit's plugins call: a recording HTTP server (with a fake of the OpenAI
Files, Batches and Chat Completions API on it) and moto's server for AWS."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from support import free_port, wait_for_port

Reply = tuple[int, Any]
Route = Callable[["Seen"], Reply]


@dataclass
class Seen:
    """One request as it arrived."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body or b"null")


@dataclass
class RecordingServer:
    """An HTTP server on 127.0.0.1 that records every connection and request and answers from ``routes``
    (``(METHOD, path prefix) -> handler``; anything else: 404 with a JSON error). A client speaking TLS or SSH to
    it still counts as a connection."""

    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                seen = Seen(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)
                )
                recorder.requests.append(seen)
                status, payload = recorder._route(seen)
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _answer

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request: Any, client_address: Any) -> bool:
                recorder.connections += 1
                return True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _route(self, seen: Seen) -> Reply:
        path = seen.path.split("?")[0]
        for (method, prefix), handler in sorted(self.routes.items(), key=lambda kv: -len(kv[0][1])):
            if method == seen.method and path.startswith(prefix):
                return handler(seen)
        return 404, {"error": {"message": f"no route for {seen.method} {path}", "type": "not_found"}}

    def paths(self) -> list[str]:
        """``METHOD path`` of every request so far."""
        return [f"{s.method} {s.path.split('?')[0]}" for s in self.requests]

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


def openai_fake() -> RecordingServer:
    """The OpenAI API's Files, Batches and Chat Completions endpoints (``OPENAI_BASE_URL=<url>/v1``)."""
    server = RecordingServer()
    files: dict[str, dict[str, Any]] = {}
    batches: dict[str, dict[str, Any]] = {}

    def create_file(seen: Seen) -> Reply:
        file_id = f"file-{len(files) + 1}"
        files[file_id] = {
            "id": file_id,
            "object": "file",
            "bytes": len(seen.body),
            "created_at": int(time.time()),
            "filename": "batch.jsonl",
            "purpose": "batch",
            "status": "processed",
        }
        return 200, files[file_id]

    def create_batch(seen: Seen) -> Reply:
        request = seen.json()
        if request["input_file_id"] not in files:
            return 404, {"error": {"message": f"no file {request['input_file_id']}", "type": "invalid_request_error"}}
        batch_id = f"batch_{len(batches) + 1}"
        batches[batch_id] = {
            "id": batch_id,
            "object": "batch",
            "endpoint": request["endpoint"],
            "input_file_id": request["input_file_id"],
            "completion_window": request["completion_window"],
            "status": "in_progress",
            "created_at": int(time.time()),
            "output_file_id": None,
            "error_file_id": None,
            "errors": None,
            "request_counts": {"total": 1, "completed": 0, "failed": 0},
        }
        return 200, batches[batch_id]

    def batch(seen: Seen) -> Reply:
        parts = seen.path.split("?")[0].strip("/").split("/")  # v1 batches ID [cancel]
        found = batches.get(parts[2])
        if found is None:
            return 404, {"error": {"message": f"no batch {parts[2]}", "type": "invalid_request_error"}}
        if parts[-1] == "cancel":
            found["status"] = "cancelled"
        elif found["status"] == "in_progress":  # the second look finds it done
            found.update(
                status="completed", output_file_id="file-out", request_counts={"total": 1, "completed": 1, "failed": 0}
            )
        return 200, found

    def chat(seen: Seen) -> Reply:
        request = seen.json()
        text = request["messages"][-1]["content"]
        return 200, {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request["model"],
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": f"you said: {text}"}}
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4},
        }

    server.routes.update(
        {
            ("POST", "/v1/files"): create_file,
            ("POST", "/v1/batches"): create_batch,
            ("GET", "/v1/batches/"): batch,
            ("POST", "/v1/batches/"): batch,
            ("POST", "/v1/chat/completions"): chat,
        }
    )
    server.batches = batches  # type: ignore[attr-defined]
    return server


class MotoServer:
    """moto's server (every AWS service it emulates) on a free loopback port."""

    def __init__(self, python: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process = subprocess.Popen(
            [python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, timeout=60)

    def close(self) -> None:
        """Stop it."""
        self._process.terminate()
        self._process.wait(10)
