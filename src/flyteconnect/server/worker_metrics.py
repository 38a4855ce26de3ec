"""One Prometheus endpoint for ``--workers N``: workers write snapshots, the supervisor serves their sum.

The per-call metrics are plain Python numbers (``server.metrics``), not prometheus-client's multiprocess values, so
each worker writes its registry's text exposition to ``<dir>/worker-<pid>.prom`` every ``interval`` seconds and when
it stops (``SnapshotWriter``; written to a temporary name and renamed, so a reader never sees half a file). The
supervisor owns ``<dir>`` (a temporary folder it removes on exit) and serves ``MergedMetrics``: every sample summed
over the workers by name and labels, as prometheus-client's multiprocess mode does. A worker that is gone keeps
counting in its counters, histograms and summaries (its last snapshot is folded into a running total, so the sums
never go down when a worker is replaced) and drops out of the gauges.

Limits: an endpoint read shows the workers' counts as of their last snapshot (up to ``interval`` old); a worker
killed with -9 loses what it counted after its last snapshot.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

__all__ = ["MergedMetrics", "SnapshotWriter", "serve_merged"]

log = logging.getLogger("flyteconnect.server")

SUFFIX = ".prom"
_Key = tuple[str, tuple[tuple[str, str], ...]]


class SnapshotWriter:
    """Writes ``registry`` to ``<folder>/worker-<pid>.prom`` every ``interval`` seconds (a daemon thread)."""

    def __init__(self, registry: CollectorRegistry, folder: str, interval: float = 1.0) -> None:
        self.path = os.path.join(folder, f"worker-{os.getpid()}{SUFFIX}")
        self._registry = registry
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flyteconnect-metrics-snapshots", daemon=True)

    def start(self) -> SnapshotWriter:
        """Write the first snapshot now and start the thread."""
        self.write()
        self._thread.start()
        return self

    def write(self) -> None:
        """Write one snapshot (atomically: a temporary file renamed over the last one)."""
        from prometheus_client import generate_latest

        temporary = f"{self.path}.tmp"
        try:
            with open(temporary, "wb") as f:
                f.write(generate_latest(self._registry))
            os.replace(temporary, self.path)
        except OSError as e:  # the supervisor removed its folder (it is stopping): nothing left to report to
            log.debug("metrics snapshot not written: %s", e)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.write()

    def stop(self) -> None:
        """Stop the thread and write the final snapshot."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.write()


def _pid(filename: str) -> int | None:
    stem = filename[: -len(SUFFIX)]
    head, _, pid = stem.rpartition("-")
    return int(pid) if head == "worker" and pid.isdigit() else None


class MergedMetrics:
    """A Prometheus collector: the sum of the workers' snapshots in ``folder``.

    ``live`` returns the pids of the workers running now; a snapshot of any other pid is folded into the running
    totals of counters, histograms and summaries (gauges are dropped) and its file removed.
    """

    def __init__(self, folder: str, live: Callable[[], Iterable[int]]) -> None:
        self.folder = folder
        self._live = live
        self._lock = threading.Lock()
        self._families: dict[str, tuple[str, str]] = {}  # name -> (type, documentation)
        self._retired: dict[str, dict[_Key, float]] = {}  # family name -> totals of workers that are gone

    def _read(self, path: str) -> list[Any]:
        from prometheus_client.parser import text_string_to_metric_families

        try:
            with open(path, encoding="utf-8") as f:
                return list(text_string_to_metric_families(f.read()))
        except (OSError, ValueError) as e:
            log.warning("unreadable metrics snapshot %s: %s", path, e)
            return []

    @staticmethod
    def _add(into: dict[_Key, float], family: Any) -> None:
        for sample in family.samples:
            if sample.name.endswith("_created"):  # a timestamp, not a count: it does not add up
                continue
            key = (sample.name, tuple(sorted(sample.labels.items())))
            into[key] = into.get(key, 0.0) + sample.value

    def collect(self) -> Iterator[Metric]:
        """Yield every family, summed over the live workers' snapshots and the retired totals."""
        from prometheus_client.core import Metric

        with self._lock:  # two concurrent scrapes must not fold the same dead worker twice
            live = set(self._live())
            totals = {name: dict(samples) for name, samples in self._retired.items()}
            try:
                names = sorted(os.listdir(self.folder))
            except OSError:
                names = []
            for filename in names:
                pid = _pid(filename) if filename.endswith(SUFFIX) else None
                if pid is None:
                    continue
                path = os.path.join(self.folder, filename)
                families = self._read(path)
                for family in families:
                    self._families.setdefault(family.name, (family.type, family.documentation))
                    if pid in live:
                        self._add(totals.setdefault(family.name, {}), family)
                    elif family.type != "gauge":  # gone: its counts stay in the sums, its gauges go
                        self._add(self._retired.setdefault(family.name, {}), family)
                        self._add(totals.setdefault(family.name, {}), family)
                if pid not in live:
                    os.unlink(path)
        for name, samples in totals.items():
            kind, documentation = self._families[name]
            metric = Metric(name, documentation, kind)
            for (sample_name, labels), value in samples.items():
                metric.add_sample(sample_name, dict(labels), value)
            yield metric


def serve_merged(port: int, host: str, merged: MergedMetrics) -> Any:
    """Serve ``merged`` over HTTP on (host, port); returns the HTTP server (``shutdown()`` it to stop).

    Raises OSError naming the port when it cannot listen.
    """
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    registry.register(merged)  # type: ignore[arg-type]
    try:
        httpd, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        raise OSError(f"cannot serve metrics on {host}:{port} (--metrics-port {port}): {e}") from e
    return httpd
