"""``--workers N``: N server processes sharing one port with SO_REUSEPORT, supervised.

The supervisor reserves the port (so ``--port 0`` works: it binds a non-listening SO_REUSEPORT socket and keeps it),
starts N children (``python -m flyteconnect serve ... --worker-index i``), restarts a child that dies, and on
SIGTERM/SIGINT forwards SIGTERM so every child drains its in-flight calls, then exits 0. The kernel spreads new
connections over the children. Worker ``i`` serves Prometheus metrics on ``metrics_port + i``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType

__all__ = ["Supervisor", "reserve_port"]

log = logging.getLogger("flyteconnect.server")


def _family(host: str) -> tuple[socket.AddressFamily, str]:
    bare = host.strip("[]")
    return (socket.AF_INET6 if ":" in bare else socket.AF_INET), bare


def reserve_port(host: str, port: int) -> socket.socket:
    """A bound, non-listening SO_REUSEPORT socket on (host, port); its port is the one the workers share."""
    family, bare = _family(host)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((bare, port))
    return sock


def probe_host(host: str) -> str:
    """The address to connect to for checking a server bound on ``host``."""
    bare = host.strip("[]")
    if bare in ("", "::", "0.0.0.0"):
        return "127.0.0.1"
    return bare


@dataclass
class Supervisor:
    """Run ``command(i)`` for each worker index, restart crashed ones, drain all on a stop signal."""

    workers: int
    command: Callable[[int], Sequence[str]]
    grace: float = 30.0
    restart_delay: float = 1.0
    _procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    _stopping: bool = False

    def _spawn(self, index: int) -> None:
        env = {**os.environ, "FLYTECONNECT_WORKER": str(index)}
        self._procs[index] = subprocess.Popen(list(self.command(index)), env=env)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def run(self) -> int:
        """Supervise until stopped; returns the exit code (0 after a clean drain)."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        restarts: list[float] = []
        try:
            for i in range(self.workers):
                self._spawn(i)
            while not self._stopping:
                time.sleep(0.1)
                for i, proc in list(self._procs.items()):
                    code = proc.poll()
                    if code is None or self._stopping:
                        continue
                    now = time.monotonic()
                    restarts = [t for t in restarts if now - t < 30] + [now]
                    # A worker that keeps dying (bad config, port taken) is restarted more slowly.
                    delay = self.restart_delay if len(restarts) <= 2 * self.workers else 5.0
                    log.error("worker %d exited with code %s; restarting in %.0fs", i, code, delay)
                    time.sleep(delay)
                    if not self._stopping:
                        self._spawn(i)
            return self._drain()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _drain(self) -> int:
        log.info("stopping %d workers (grace %.0fs)", len(self._procs), self.grace)
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace + 5
        for proc in self._procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return 0

    @staticmethod
    def python_command(args: Sequence[str]) -> list[str]:
        """``python -m flyteconnect <args>`` with this interpreter."""
        return [sys.executable, "-m", "flyteconnect", *args]
