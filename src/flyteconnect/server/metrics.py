"""Prometheus metrics of the connector server, in their own ``CollectorRegistry``.

The reference's names are kept so existing dashboards keep working:

- ``flyte_connector_requests_success_total{task_type, operation}``
- ``flyte_connector_requests_failure_total{task_type, operation, error_code}`` (error_code = gRPC code name, e.g.
  ``NOT_FOUND``, the same on every Python version)
- ``flyte_connector_request_latency_seconds{task_type, operation}`` (a Histogram here; the reference's Summary had only
  ``_sum``/``_count``, which a Histogram also exports)
- ``flyte_connector_input_literal_bytes{task_type}`` (Summary, as the reference)

and adds ``flyte_connector_requests_in_flight{task_type}``,
``flyte_connector_transient_retries_total{task_type, operation}``,
``flyte_connector_transient_fallbacks_total{task_type}``,
``flyte_connector_loop_stalls_total{task_type, operation}`` and, where poll pacing, rate limits, idempotent create or
callbacks apply, ``flyte_connector_external_calls_total{task_type, operation}``,
``flyte_connector_calls_saved_total{task_type, operation, reason}`` and
``flyte_connector_calls_delayed_total{task_type, operation}``.
Operations are the connector method names (create, get, delete, do, get_metrics, get_logs) and the metadata calls
(list_connectors, get_connector).

The per-call metrics (success, latency, in-flight, input bytes) are plain Python numbers updated on the event loop
and turned into Prometheus families when scraped (a custom collector): recording a call costs well under a
microsecond, where prometheus-client's locked children cost several. Failures, retries and stalls are rare and use
plain labelled counters. prometheus-client itself is imported only when the metrics are first scraped or read
(``ServerMetrics.registry``), so a server started with metrics off never loads it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

__all__ = ["LATENCY_BUCKETS", "OpMetrics", "ServerMetrics"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Count:
    """A lock-free counter (updated from the event loop thread only)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        """Add ``amount``."""
        self.value += amount

    def dec(self, amount: int = 1) -> None:
        """Subtract ``amount`` (gauges)."""
        self.value -= amount


class Histogram:
    """A lock-free histogram with LATENCY_BUCKETS bounds."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Record one observation."""
        self.sum += value
        self.counts[bisect_left(LATENCY_BUCKETS, value)] += 1


class Summary:
    """A lock-free count and sum."""

    __slots__ = ("count", "sum")

    def __init__(self) -> None:
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Record one observation."""
        self.count += 1
        self.sum += value


class LabeledCounter:
    """A counter family: one ``Count`` per label values, exported as ``<name>_total`` at scrape time."""

    def __init__(self, name: str, documentation: str, labelnames: tuple[str, ...]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = labelnames
        self.children: dict[tuple[str, ...], Count] = {}

    def labels(self, *values: str) -> Count:
        """The child counter of these label values, created on first use."""
        found = self.children.get(values)
        if found is None:
            found = self.children[values] = Count()
        return found


class OpMetrics:
    """The metrics of one (task type, operation): what the hot path touches."""

    __slots__ = ("_failure", "in_flight", "labels", "latency", "success")

    def __init__(self, metrics: ServerMetrics, task_type: str, operation: str) -> None:
        self.labels = (task_type, operation)
        self.success = Count()
        self.latency = Histogram()
        self.in_flight = metrics.in_flight_for(task_type)
        self._failure = metrics.failure

    def failed(self, code_name: str) -> None:
        """Count one failure with ``code_name`` (a gRPC status code name)."""
        self._failure.labels(self.labels[0], self.labels[1], code_name).inc()


class _InputBytes:
    """``flyte_connector_input_literal_bytes`` children by task type."""

    def __init__(self) -> None:
        self.children: dict[str, Summary] = {}

    def labels(self, task_type: str) -> Summary:
        found = self.children.get(task_type)
        if found is None:
            found = self.children[task_type] = Summary()
        return found


class _CallCollector:
    """Turns the plain per-call numbers into Prometheus families at scrape time."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
            SummaryMetricFamily,
        )
        from prometheus_client.utils import floatToGoString

        for counter in self._m.counters:
            family = CounterMetricFamily(counter.name, counter.documentation, labels=list(counter.labelnames))
            for values, count in list(counter.children.items()):
                family.add_metric(list(values), count.value)
            yield family
        labels = ["task_type", "operation"]
        success = CounterMetricFamily("flyte_connector_requests_success", "Successful connector calls", labels=labels)
        latency = HistogramMetricFamily(
            "flyte_connector_request_latency_seconds", "Time spent serving a connector call", labels=labels
        )
        bounds = [floatToGoString(b) for b in LATENCY_BUCKETS] + ["+Inf"]  # type: ignore[no-untyped-call]
        for (task_type, operation), op in list(self._m.ops.items()):
            total = 0
            buckets = []
            for le, n in zip(bounds, list(op.latency.counts), strict=True):
                total += n
                buckets.append((le, float(total)))
            if op.success.value or total:
                success.add_metric([task_type, operation], op.success.value)
                latency.add_metric([task_type, operation], buckets, op.latency.sum)
        yield success
        yield latency
        in_flight = GaugeMetricFamily(
            "flyte_connector_requests_in_flight", "Connector calls being served right now", labels=["task_type"]
        )
        for task_type, gauge in list(self._m.in_flight.items()):
            in_flight.add_metric([task_type], gauge.value)
        yield in_flight
        inputs = SummaryMetricFamily(
            "flyte_connector_input_literal_bytes",
            "Size of the inputs LiteralMap of CreateTask/ExecuteTaskSync requests",
            labels=["task_type"],
        )
        for task_type, summary in list(self._m.input_bytes.children.items()):
            inputs.add_metric([task_type], summary.count, summary.sum)
        yield inputs


class ServerMetrics:
    """Every metric of one server, registered in ``registry`` (a fresh one unless given)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._registry = registry
        self._collector_registered = False
        self.ops: dict[tuple[str, str], OpMetrics] = {}
        self.in_flight: dict[str, Count] = {}
        self.input_bytes = _InputBytes()
        self.failure = LabeledCounter(
            "flyte_connector_requests_failure",
            "Failed connector calls, by gRPC status code name",
            ("task_type", "operation", "error_code"),
        )
        self.transient_retries = LabeledCounter(
            "flyte_connector_transient_retries",
            "Connector calls retried after a TransientError or a timeout",
            ("task_type", "operation"),
        )
        self.transient_fallbacks = LabeledCounter(
            "flyte_connector_transient_fallbacks",
            "GetTask answers made from the last seen phase because the connector was transiently unavailable",
            ("task_type",),
        )
        self.loop_stalls = LabeledCounter(
            "flyte_connector_loop_stalls",
            "Times an async connector method blocked the event loop beyond the watchdog threshold",
            ("task_type", "operation"),
        )
        self.external_calls = LabeledCounter(
            "flyte_connector_external_calls",
            "Calls that reached a connector with poll pacing, a rate limit, idempotent create or callbacks",
            ("task_type", "operation"),
        )
        self.calls_saved = LabeledCounter(
            "flyte_connector_calls_saved",
            "Calls answered from state instead of the connector, by reason (pacing, terminal, callback, idempotent, "
            "rate_limited)",
            ("task_type", "operation", "reason"),
        )
        self.calls_delayed = LabeledCounter(
            "flyte_connector_calls_delayed",
            "Calls that waited for the connector's rate limit or concurrency cap",
            ("task_type", "operation"),
        )
        self.counters = (
            self.failure,
            self.transient_retries,
            self.transient_fallbacks,
            self.loop_stalls,
            self.external_calls,
            self.calls_saved,
            self.calls_delayed,
        )
        if registry is not None:
            self.registry  # noqa: B018 - register in the caller's registry now

    @property
    def registry(self) -> CollectorRegistry:
        """The Prometheus registry holding these metrics (prometheus-client is imported on first access)."""
        if self._registry is None:
            from prometheus_client import CollectorRegistry

            self._registry = CollectorRegistry()
        if not self._collector_registered:
            self._registry.register(_CallCollector(self))  # type: ignore[arg-type]
            self._collector_registered = True
        return self._registry

    def in_flight_for(self, task_type: str) -> Count:
        """The in-flight gauge of ``task_type``."""
        found = self.in_flight.get(task_type)
        if found is None:
            found = self.in_flight[task_type] = Count()
        return found

    def op(self, task_type: str, operation: str) -> OpMetrics:
        """The metrics of (task_type, operation), created on first use."""
        key = (task_type, operation)
        found = self.ops.get(key)
        if found is None:
            found = self.ops[key] = OpMetrics(self, task_type, operation)
        return found

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's current value (0 when absent): handy for tests and the CLI summary."""
        got: Any = self.registry.get_sample_value(name, labels or {})
        return float(got) if got is not None else 0.0
