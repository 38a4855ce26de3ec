"""Drive h2load (Debian's nghttp2-client) as a gRPC load generator and parse what it reports.

h2load counts an HTTP 200 as a success even when the gRPC status in the trailers is an error, so the caller checks
gRPC success separately: a failed gRPC call is answered trailers-only, without a DATA frame, so the response body
bytes h2load reports must equal (requests x the size of a good reply frame).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.proc import pinned_to

__all__ = ["H2LoadError", "H2Result", "ensure_h2load", "run_h2load"]


class H2LoadError(RuntimeError):
    """h2load is missing or failed."""


def ensure_h2load() -> str:
    """The path of h2load, installing Debian's nghttp2-client first when missing and running as root."""
    path = shutil.which("h2load")
    if path:
        return path
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise H2LoadError(
            "h2load is not installed: install Debian's nghttp2-client (sudo apt-get install -y nghttp2-client)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "nghttp2-client"]
    # Try the install first (the package lists are often there already), then refresh the lists and retry.
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        subprocess.run(install, env=env, capture_output=True)
    path = shutil.which("h2load")
    if not path:
        raise H2LoadError("installing nghttp2-client with apt-get failed: install it by hand")
    return path


@dataclass
class H2Result:
    """One h2load run."""

    requests: int
    succeeded: int
    failed: int
    errored: int
    seconds: float
    req_per_s: float
    body_bytes: int
    latency_ms: dict[str, float]
    """p50, p90, p99, max and mean request latency in milliseconds."""

    @property
    def completed(self) -> int:
        """Requests that got a complete HTTP response."""
        return self.succeeded


_FINISHED = re.compile(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s")
_REQUESTS = re.compile(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored")
_TRAFFIC = re.compile(r"traffic: .*?, [\d.]+\w*B \((\d+)\) data")


def _percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return float(sorted_values[index])


def _latencies(log: Path) -> dict[str, float]:
    """Percentiles of the per-request times in h2load's --log-file (start µs, status, elapsed µs per line)."""
    values = []
    for line in log.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[1] == "200":
            values.append(int(parts[2]))
    values.sort()
    ms = 1000.0
    mean = sum(values) / len(values) / ms if values else float("nan")
    return {
        "p50": _percentile(values, 0.50) / ms,
        "p90": _percentile(values, 0.90) / ms,
        "p99": _percentile(values, 0.99) / ms,
        "max": (values[-1] / ms) if values else float("nan"),
        "mean": mean,
    }


def run_h2load(
    url: str,
    body: Path,
    requests: int,
    clients: int,
    streams: int,
    threads: int = 1,
    timeout: float = 600.0,
    cpus: tuple[int, ...] | None = None,
) -> H2Result:
    """POST ``body`` (gRPC frames) to ``url`` ``requests`` times over ``clients`` connections x ``streams`` streams."""
    exe = ensure_h2load()
    clients = max(1, min(clients, requests))
    with tempfile.TemporaryDirectory(prefix="h2load-") as tmp:
        log = Path(tmp) / "requests.log"
        cmd = [
            exe,
            "-n",
            str(requests),
            "-c",
            str(clients),
            "-m",
            str(streams),
            "-t",
            str(max(1, min(threads, clients))),
            "-d",
            str(body),
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
            f"--log-file={log}",
            url,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, preexec_fn=pinned_to(cpus))
        out = proc.stdout
        finished, counts, traffic = _FINISHED.search(out), _REQUESTS.search(out), _TRAFFIC.search(out)
        if proc.returncode != 0 or not (finished and counts and traffic):
            raise H2LoadError(f"h2load failed (exit {proc.returncode}): {(proc.stderr or out).strip()[-500:]}")
        seconds = float(finished.group(1)) / (1000.0 if finished.group(2) == "ms" else 1.0)
        return H2Result(
            requests=int(counts.group(1)),
            succeeded=int(counts.group(3)),
            failed=int(counts.group(4)),
            errored=int(counts.group(5)),
            seconds=seconds,
            req_per_s=float(finished.group(3)),
            body_bytes=int(traffic.group(1)),
            latency_ms=_latencies(log),
        )
