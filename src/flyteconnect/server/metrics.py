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
``flyte_connector_transient_fallbacks_total{task_type}`` and
``flyte_connector_loop_stalls_total{task_type, operation}``.
Operations are the connector method names (create, get, delete, do, get_metrics, get_logs) and the metadata calls
(list_connectors, get_connector). Label children are cached: recording costs a few dict-free calls.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary

__all__ = ["LATENCY_BUCKETS", "OpMetrics", "ServerMetrics"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class OpMetrics:
    """The cached label children for one (task type, operation): what the hot path touches."""

    __slots__ = ("_failure", "in_flight", "labels", "latency", "success")

    def __init__(self, metrics: ServerMetrics, task_type: str, operation: str) -> None:
        self.labels = (task_type, operation)
        self.success = metrics.success.labels(task_type, operation)
        self.latency = metrics.latency.labels(task_type, operation)
        self.in_flight = metrics.in_flight.labels(task_type)
        self._failure = metrics.failure

    def failed(self, code_name: str) -> None:
        """Count one failure with ``code_name`` (a gRPC status code name)."""
        self._failure.labels(self.labels[0], self.labels[1], code_name).inc()


class ServerMetrics:
    """Every metric of one server, registered in ``registry`` (a fresh one unless given)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.success = Counter(
            "flyte_connector_requests_success_total",
            "Successful connector calls",
            ["task_type", "operation"],
            registry=r,
        )
        self.failure = Counter(
            "flyte_connector_requests_failure_total",
            "Failed connector calls, by gRPC status code name",
            ["task_type", "operation", "error_code"],
            registry=r,
        )
        self.latency = Histogram(
            "flyte_connector_request_latency_seconds",
            "Time spent serving a connector call",
            ["task_type", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.input_bytes = Summary(
            "flyte_connector_input_literal_bytes",
            "Size of the inputs LiteralMap of CreateTask/ExecuteTaskSync requests",
            ["task_type"],
            registry=r,
        )
        self.in_flight = Gauge(
            "flyte_connector_requests_in_flight",
            "Connector calls being served right now",
            ["task_type"],
            registry=r,
        )
        self.transient_retries = Counter(
            "flyte_connector_transient_retries_total",
            "Connector calls retried after a TransientError or a timeout",
            ["task_type", "operation"],
            registry=r,
        )
        self.transient_fallbacks = Counter(
            "flyte_connector_transient_fallbacks_total",
            "GetTask answers made from the last seen phase because the connector was transiently unavailable",
            ["task_type"],
            registry=r,
        )
        self.loop_stalls = Counter(
            "flyte_connector_loop_stalls_total",
            "Times an async connector method blocked the event loop beyond the watchdog threshold",
            ["task_type", "operation"],
            registry=r,
        )
        self._ops: dict[tuple[str, str], OpMetrics] = {}

    def op(self, task_type: str, operation: str) -> OpMetrics:
        """The cached children for (task_type, operation)."""
        key = (task_type, operation)
        found = self._ops.get(key)
        if found is None:
            found = self._ops[key] = OpMetrics(self, task_type, operation)
        return found

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's current value (0 when absent): handy for tests and the CLI summary."""
        got: Any = self.registry.get_sample_value(name, labels or {})
        return float(got) if got is not None else 0.0
