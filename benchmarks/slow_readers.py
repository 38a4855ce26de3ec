"""Slow readers: raw HTTP/2 clients that start GetTask calls for large replies and never read the answers.

    python -m benchmarks.slow_readers                      # 100 connections x 5 streams, ~1 MiB replies
    python -m benchmarks.slow_readers --connections 300    # more of them
    python -m benchmarks.slow_readers -- --max-reply-bytes-in-flight 0   # extra ``serve`` options after ``--``

It serves ``benchmarks/big_replies.py`` with ``flyteconnect serve``, reads its RSS at rest, then opens the
connections (``h2``, one plain socket each): every stream is a GetTask whose reply is ~1 MiB, and no client ever
reads its socket, so neither the replies nor HTTP/2 window updates nor ping acknowledgements come back. While they
stall it samples the server's RSS and times a health check on a separate, well-behaved connection; then the clients
close their sockets and it reads the RSS again. Prints one table (and ``--json``): RSS at rest, peak growth, growth
left after the clients left, the slowest health check and its status.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from benchmarks.frames import encode_frame
from benchmarks.proc import rss_bytes

__all__ = ["SlowReadResult", "SlowReaders", "check_health", "get_task_frame", "main", "measure", "start_server"]

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "benchmarks" / "big_replies.py"
MiB = 1024 * 1024
GET_TASK = "/flyteidl.service.AsyncAgentService/GetTask"


def get_task_frame() -> bytes:
    """One gRPC frame holding a GetTask request for the big-reply connector."""
    from flyteidl.admin import agent_pb2

    request = agent_pb2.GetTaskRequest(
        task_type="big_reply",
        task_category=agent_pb2.TaskCategory(name="big_reply", version=0),
        resource_meta=b'{"job_id": "big-1"}',
    )
    return encode_frame(request)


@dataclass
class SlowReaders:
    """``connections`` HTTP/2 connections, each with ``streams`` GetTask calls sent and nothing ever read."""

    port: int
    connections: int = 100
    streams: int = 5
    host: str = "127.0.0.1"
    sockets: list[socket.socket] = field(default_factory=list)

    def open(self) -> None:
        """Connect, send the preface, the settings and every stream's request; read nothing."""
        import h2.config
        import h2.connection

        frame = get_task_frame()
        headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", f"{self.host}:{self.port}"),
            (":path", GET_TASK),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
        for _ in range(self.connections):
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            conn.initiate_connection()
            for _ in range(self.streams):
                stream = conn.get_next_available_stream_id()
                conn.send_headers(stream, headers)
                conn.send_data(stream, frame, end_stream=True)
            sock = socket.create_connection((self.host, self.port))
            # A small receive buffer: the kernel holds little on the client's side, the server keeps the rest.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(conn.data_to_send())
            self.sockets.append(sock)

    def close(self) -> None:
        """Drop every connection (the clients leave)."""
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()

    def __enter__(self) -> SlowReaders:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_health(address: str, timeout: float = 5.0) -> tuple[str, float]:
    """One health check on a fresh connection: (status name or gRPC error code, seconds it took)."""
    start = time.perf_counter()
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.RpcError as e:
            status = e.code().name
    return status, time.perf_counter() - start


def start_server(port: int, extra: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """``flyteconnect serve`` of the big-reply connector on ``port``; returns once health answers SERVING."""
    argv = [sys.executable, "-m", "flyteconnect", "serve", "-m", str(MODULE), "--no-entry-points"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--metrics-port", "0", "--log-level", "WARNING", *extra]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {' '.join(argv)}")
        if check_health(f"127.0.0.1:{port}", timeout=1)[0] == "SERVING":
            return proc
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not answer health within 60 s")


@dataclass
class SlowReadResult:
    """What one run measured (bytes and seconds)."""

    connections: int
    streams: int
    rss_rest: int
    rss_peak: int
    rss_after: int
    health_slowest: float
    health_statuses: list[str]

    @property
    def growth(self) -> int:
        """Peak RSS growth over the RSS at rest."""
        return self.rss_peak - self.rss_rest

    @property
    def left_after(self) -> int:
        """RSS growth still there once the clients left."""
        return self.rss_after - self.rss_rest


def measure(pid: int, port: int, connections: int, streams: int, stall: float, settle: float) -> SlowReadResult:
    """Stall ``connections`` x ``streams`` readers on the server ``pid`` for ``stall`` s, then let them go."""
    address = f"127.0.0.1:{port}"
    check_health(address)
    rest = rss_bytes(pid)
    peak = rest
    slowest = 0.0
    statuses: list[str] = []
    with SlowReaders(port, connections, streams):
        deadline = time.monotonic() + stall
        while time.monotonic() < deadline:
            status, took = check_health(address)
            statuses.append(status)
            slowest = max(slowest, took)
            peak = max(peak, rss_bytes(pid))
            time.sleep(0.25)
    # The clients left: let the server notice the closed connections and free what it held.
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        peak = max(peak, rss_bytes(pid))
        time.sleep(0.25)
    return SlowReadResult(connections, streams, rest, peak, rss_bytes(pid), slowest, sorted(set(statuses)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.slow_readers", description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--streams", type=int, default=5, help="GetTask streams per connection")
    parser.add_argument("--stall", type=float, default=10.0, help="seconds the readers stall")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after they leave before reading RSS")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("serve_args", nargs="*", help="extra `flyteconnect serve` options (after --)")
    args = parser.parse_args(argv)
    port = _free_port()
    proc = start_server(port, args.serve_args)
    try:
        result = measure(proc.pid, port, args.connections, args.streams, args.stall, args.settle)
    finally:
        proc.terminate()
        proc.wait(60)
    if args.json:
        print(json.dumps({**asdict(result), "growth": result.growth, "left_after": result.left_after}))
        return 0
    rows = [
        ("readers", f"{result.connections} connections x {result.streams} streams, ~1 MiB replies, never read"),
        ("RSS at rest", f"{result.rss_rest / MiB:.0f} MiB"),
        ("RSS growth, peak", f"{result.growth / MiB:.0f} MiB"),
        ("RSS growth left after they left", f"{result.left_after / MiB:.0f} MiB"),
        ("slowest health check", f"{result.health_slowest:.3f} s"),
        ("health statuses", ", ".join(result.health_statuses)),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
