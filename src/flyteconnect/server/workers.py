"""``--workers N``: N server processes sharing one port with SO_REUSEPORT, supervised.

The supervisor reserves the port (so ``--port 0`` works: it binds a non-listening SO_REUSEPORT socket and keeps it),
starts N children (``python -m flyteconnect serve ... --worker-index i``), restarts a child that dies, and on
SIGTERM/SIGINT forwards SIGTERM so every child drains its in-flight calls, then exits 0. The kernel spreads new
connections over the children. The supervisor serves one metrics endpoint for all of them (``worker_metrics``).

A worker must not outlive its supervisor, however the supervisor dies (a -9 included): ``follow_supervisor`` asks
Linux for SIGTERM when the parent dies (``PR_SET_PDEATHSIG``) and, on every platform, watches the parent pid from a
thread; either way the worker drains and exits as on a stop signal.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType

__all__ = ["SUPERVISOR_ENV", "Supervisor", "follow_supervisor", "reserve_port"]

log = logging.getLogger("flyteconnect.server")

SUPERVISOR_ENV = "FLYTECONNECT_SUPERVISOR"
"""Environment variable holding the supervisor's pid, set for each worker."""
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _parent_death_signal(signum: int) -> bool:
    """Ask Linux to send ``signum`` to this process when its parent dies; False where that is unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def follow_supervisor(supervisor: int, interval: float = 1.0) -> None:
    """Make this worker stop (SIGTERM to itself: a normal drain) as soon as ``supervisor``, its parent, is gone."""
    _parent_death_signal(signal.SIGTERM)

    def parent_gone() -> bool:
        return os.getppid() != supervisor  # re-parented to init (or a subreaper): the supervisor died

    if parent_gone():  # it died before the death signal was armed
        os.kill(os.getpid(), signal.SIGTERM)
        return

    def watch() -> None:  # the fallback where PR_SET_PDEATHSIG does not exist or did not fire
        while not parent_gone():
            time.sleep(interval)
        log.error("supervisor %d is gone: stopping this worker", supervisor)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="flyteconnect-follow-supervisor", daemon=True).start()


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
    _live: set[int] = field(default_factory=set)
    _stopping: bool = False

    def live_pids(self) -> set[int]:
        """The pids of the workers running now (safe to call from another thread)."""
        return set(self._live)

    def _spawn(self, index: int) -> None:
        env = {**os.environ, "FLYTECONNECT_WORKER": str(index), SUPERVISOR_ENV: str(os.getpid())}
        proc = subprocess.Popen(list(self.command(index)), env=env)
        self._procs[index] = proc
        self._live.add(proc.pid)

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
                    self._live.discard(proc.pid)
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
            self._live.discard(proc.pid)
        return 0

    @staticmethod
    def python_command(args: Sequence[str]) -> list[str]:
        """``python -m flyteconnect <args>`` with this interpreter."""
        return [sys.executable, "-m", "flyteconnect", *args]
