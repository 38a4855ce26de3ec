"""FakePropeller: call a connector server the way Flyte Propeller v1.16.8 does, without a cluster.

What it reproduces (flyteplugins ``webapi/connector``, see the user guide's testing page):

- discovery with ListAgents: ``supported_task_types`` registered at version 0, then ``supported_task_categories``;
  each write replaces the name's version map, so one version per task type name survives; UNIMPLEMENTED or any
  error skips the deployment; a task type nobody advertises is not routed to the connector service at all;
- routing by (name, version), falling back to the default deployment, async, on a version miss;
- CreateTask, then GetTask every ``poll_interval`` until a terminal phase; an error on create is a retryable
  failure; GetTask errors are counted over the task's life and once the count exceeds ``max_system_failures`` (5)
  the task fails with ``AutoRefreshCacheFailed`` (so the 6th failed GetTask is the last one sent);
- ExecuteTaskSync for connectors advertised ``is_sync``: header, inputs, half-close, exactly one header read;
- outputs from ``resource.outputs`` when present, else ``<output_prefix>/outputs.pb``; none when the interface
  declares none;
- DeleteTask only on abort (``abort_after_polls``, the task's timeout, or cancelling ``run``), retried on error;
- per-call deadlines: 10 s by default, overridable per operation as in Propeller's ``timeouts`` config.

One task attempt per ``run``: Propeller would retry a retryable failure; FakePropeller reports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flyteconnect.connector import Phase, TaskCategory
from flyteconnect.testing._task import PreparedTask, execution_metadata, prepare_task
from flyteconnect.testing._wire import Advertised, ReadResource, V1Wire, V2Wire, connection_proto, wire_for
from flyteconnect.testing.results import POLL_GIVE_UP, TASK_FAILED, Call, TaskResult, propeller_status, python_outputs

__all__ = ["FakePropeller", "NotRouted", "Route"]

DEFAULT_TIMEOUT = 10.0
_TIMEOUT_KEYS = ("CreateTask", "GetTask", "DeleteTask", "ExecuteTaskSync", "ListConnectors")


class NotRouted(LookupError):
    """Propeller would not send this task to the connector service: no discovered connector advertises its type."""


@dataclass(frozen=True)
class Route:
    """Where Propeller sends a task type: the advertising connector's name and whether it is sync."""

    connector: str
    is_sync: bool


def _go_code(code: Any) -> str:
    # Go's codes.Code.String(): CamelCase, and "Canceled" with one l.
    name = getattr(code, "name", str(code))
    return "Canceled" if name == "CANCELLED" else "".join(p.capitalize() for p in name.split("_"))


def _rpc_text(e: Any) -> str:
    return f"rpc error: code = {_go_code(e.code())} desc = {e.details()}"


class FakePropeller:
    """A gRPC client that drives a connector server like Propeller does, and records every call.

    ``FakePropeller("127.0.0.1:8000")``, then ``await fp.run(task, {"x": 1})`` → TaskResult. ``protocol="v2"`` speaks
    Flyte 2's AsyncConnectorService instead. Each ``run`` opens its own channel, so one FakePropeller may be used
    from any event loop (pytest-asyncio's per-test loops included); ``calls`` accumulates every call of every run.
    """

    def __init__(
        self,
        address: str,
        *,
        protocol: str = "v1",
        poll_interval: float = 0.05,
        max_system_failures: int = 5,
        default_timeout: float = DEFAULT_TIMEOUT,
        timeouts: Mapping[str, float] | None = None,
        credentials: Any = None,
        channel_options: Any = (),
        raw_prefix: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        if protocol not in ("v1", "v2"):
            raise ValueError(f"protocol must be 'v1' or 'v2', got {protocol!r}")
        unknown = sorted(set(timeouts or {}) - set(_TIMEOUT_KEYS) - {"ListAgents"})
        if unknown:
            raise ValueError(f"unknown timeout key(s) {unknown}; Propeller's are {list(_TIMEOUT_KEYS)}")
        self.address = address
        self.protocol = protocol
        self.poll_interval = poll_interval
        self.max_system_failures = max_system_failures
        self.default_timeout = default_timeout
        self.timeouts = dict(timeouts or {})
        if "ListAgents" in self.timeouts:
            self.timeouts.setdefault("ListConnectors", self.timeouts.pop("ListAgents"))
        self.credentials = credentials
        self.channel_options = list(channel_options)
        self.raw_prefix = raw_prefix
        self.storage_options = dict(storage_options or {})
        self.routes: dict[str, dict[int, Route]] | None = None
        self.calls: list[Call] = []

    def timeout_for(self, operation: str) -> float | None:
        """The deadline of ``operation`` in seconds (None = no deadline, as Propeller's ``0``)."""
        value = self.timeouts.get(operation, self.default_timeout)
        return None if not value else float(value)

    # -- plumbing ---------------------------------------------------------------------------------------------------

    def _channel(self) -> Any:
        import grpc

        if self.credentials is not None:
            return grpc.aio.secure_channel(self.address, self.credentials, options=self.channel_options)
        return grpc.aio.insecure_channel(self.address, options=self.channel_options)

    async def _call(self, calls: list[Call], method: str, request: Any, coro: Any) -> Any:
        import grpc

        try:
            response = await coro
        except grpc.aio.AioRpcError as e:
            call = Call(method, request, None, e.code().name, e.details() or "")
            calls.append(call)
            self.calls.append(call)
            raise
        call = Call(method, request, response)
        calls.append(call)
        self.calls.append(call)
        return response

    # -- discovery ----------------------------------------------------------------------------------------------

    async def discover(self) -> dict[str, dict[int, Route]]:
        """Run ListAgents (ListConnectors on v2) now and rebuild the routing table, as Propeller does every 10 s."""
        async with self._channel() as channel:
            return await self._discover(wire_for(self.protocol, channel), [])

    async def _discover(self, wire: V1Wire | V2Wire, calls: list[Call]) -> dict[str, dict[int, Route]]:
        import grpc

        request = wire.list_request()
        routes: dict[str, dict[int, Route]] = {}
        try:
            response = await self._call(
                calls, wire.list_method, request, wire.list_connectors(request, self.timeout_for("ListConnectors"))
            )
        except grpc.aio.AioRpcError:
            # UNIMPLEMENTED is logged as a warning by Propeller, anything else as an error: either way, skipped.
            self.routes = routes
            return routes
        agents: list[Advertised] = wire.advertised(response)
        for agent in agents:
            route = Route(agent.name, agent.is_sync)
            for name in agent.task_types:
                routes[name] = {0: route}
            for category in agent.categories:
                routes[category.name] = {category.version: route}  # replaces the map, as Propeller does
        self.routes = routes
        return routes

    def route(self, category: TaskCategory) -> Route:
        """Where Propeller would send ``category`` (after discovery); NotRouted if no connector advertises it."""
        routes = self.routes or {}
        versions = routes.get(category.name)
        if versions is None:
            advertised = sorted(routes) or "nothing"
            raise NotRouted(
                f"no connector advertises task type {category.name!r} in {self._list_name()} "
                f"(advertised: {advertised}); Propeller would not send this task to the connector service"
            )
        # A version miss falls back to the default deployment, always async.
        return versions.get(category.version) or Route("<default connector>", is_sync=False)

    def _list_name(self) -> str:
        return "ListAgents" if self.protocol == "v1" else "ListConnectors"

    # -- running --------------------------------------------------------------------------------------------------

    async def run(
        self,
        task: Any,
        inputs: Mapping[str, Any] | Any | None = None,
        *,
        output_prefix: str | None = None,
        abort_after_polls: int | None = None,
        timeout: float | None = None,
        connection: Any = None,
    ) -> TaskResult:
        """Run one attempt of ``task`` (a ConnectorTask or TaskTemplate) with ``inputs`` and return the TaskResult.

        ``abort_after_polls`` aborts (DeleteTask) after that many GetTask calls, like a user abort; ``timeout``
        (default: the template's own timeout) aborts and fails the attempt like a task timeout. ``connection`` is
        the Flyte 2 per-request connection (a proto or ``{"secrets": {...}, "configs": {...}}``).
        """
        prepared = prepare_task(task, inputs)
        if timeout is None:
            md = prepared.template.metadata
            if md.HasField("timeout") and (md.timeout.seconds or md.timeout.nanos):
                timeout = md.timeout.seconds + md.timeout.nanos / 1e9
        if output_prefix is None:
            output_prefix = self._new_output_prefix()
        result = TaskResult(phase=Phase.UNDEFINED, output_prefix=output_prefix)
        async with self._channel() as channel:
            wire = wire_for(self.protocol, channel)
            if self.routes is None:
                await self._discover(wire, result.calls)
            route = self.route(prepared.category)
            meta = execution_metadata(prepared.template)
            conn = connection_proto(connection)
            if route.is_sync and wire.has_sync_service:
                await self._run_sync(wire, prepared, meta, result)
            else:
                await self._run_async(wire, prepared, meta, conn, result, abort_after_polls, timeout)
        return result

    def run_sync(self, task: Any, inputs: Mapping[str, Any] | Any | None = None, **options: Any) -> TaskResult:
        """``run`` from synchronous code (works inside a running event loop too, on a helper thread)."""
        from flyteconnect.local.sync import run_sync

        return run_sync(lambda: self.run(task, inputs, **options), label="FakePropeller.run")

    def _new_output_prefix(self) -> str:
        from flyteconnect.local.outputs import default_raw_prefix, join_uri, make_output_dir

        prefix = join_uri(self.raw_prefix or default_raw_prefix(), "p" + uuid.uuid4().hex[:19])
        make_output_dir(prefix)
        return prefix

    async def _run_async(
        self,
        wire: V1Wire | V2Wire,
        prepared: PreparedTask,
        meta: Any,
        conn: Any,
        result: TaskResult,
        abort_after_polls: int | None,
        timeout: float | None,
    ) -> None:
        import grpc

        request = wire.create_request(prepared.template, prepared.inputs, result.output_prefix, meta, conn)
        try:
            response = await self._call(
                result.calls, "CreateTask", request, wire.create(request, self.timeout_for("CreateTask"))
            )
        except grpc.aio.AioRpcError as e:
            result.phase, result.error_code = Phase.RETRYABLE_FAILED, TASK_FAILED
            result.message = f"failed to create task from connector with {_rpc_text(e)}"
            return
        handle: bytes = response.resource_meta
        result.resource_meta = handle
        category = prepared.category
        started = time.monotonic()
        failures, polls, seen, last_error = 0, 0, None, ""
        try:
            while True:
                if failures > self.max_system_failures:
                    self._give_up(result, seen, failures, last_error)
                    return
                if abort_after_polls is not None and polls >= abort_after_polls:
                    await self._abort(wire, category, handle, conn, result, f"aborted after {polls} GetTask call(s)")
                    return
                if timeout is not None and time.monotonic() - started >= timeout:
                    await self._abort(wire, category, handle, conn, result, f"task exceeded its timeout of {timeout}s")
                    result.phase, result.error_code = Phase.FAILED, "Timeout"
                    return
                await asyncio.sleep(self.poll_interval)
                get = wire.get_request(category, handle, result.output_prefix, conn)
                polls += 1
                try:
                    resource = await self._call(
                        result.calls, "GetTask", get, wire.get(get, self.timeout_for("GetTask"))
                    )
                except grpc.aio.AioRpcError as e:
                    failures += 1  # cumulative over the task's life, never reset (as Propeller)
                    last_error = _rpc_text(e)
                    continue
                seen = wire.read(resource, with_agent_error=False)
                result.resource = resource
                if self._evaluate(seen, result):
                    break
        except asyncio.CancelledError:
            # The test (or its timeout) gave up on the run: abort the job as Propeller does, then stop.
            with contextlib.suppress(BaseException):
                await asyncio.shield(self._abort(wire, category, handle, conn, result, "cancelled"))
            raise
        await self._outputs(prepared, seen, result)

    def _give_up(self, result: TaskResult, seen: ReadResource | None, failures: int, last_error: str) -> None:
        result.error_code = POLL_GIVE_UP
        if seen is None:
            result.phase, result.message = Phase.FAILED, last_error
        else:
            # Propeller stops polling and keeps deriving the status from the last resource: the task looks stuck.
            result.message = (
                f"GetTask failed {failures} times (last: {last_error}); Propeller stops polling and the task stays "
                f"{result.phase.name} until its timeout"
            )

    async def _abort(
        self, wire: V1Wire | V2Wire, category: TaskCategory, handle: bytes, conn: Any, result: TaskResult, why: str
    ) -> None:
        import grpc

        request = wire.delete_request(category, handle, conn)
        last = ""
        # Propeller retries a failed abort on later rounds.
        for attempt in range(self.max_system_failures + 1):
            if attempt:
                await asyncio.sleep(self.poll_interval)
            try:
                await self._call(
                    result.calls, "DeleteTask", request, wire.delete(request, self.timeout_for("DeleteTask"))
                )
            except grpc.aio.AioRpcError as e:
                last = _rpc_text(e)
                continue
            result.phase, result.message, result.error_code = Phase.ABORTED, why, None
            return
        result.phase, result.message, result.error_code = (
            Phase.ABORTED,
            f"{why}; DeleteTask kept failing: {last}",
            "AbortFailed",
        )

    def _evaluate(self, seen: ReadResource, result: TaskResult) -> bool:
        """Apply Propeller's Status to a resource; True when the attempt is over."""
        status = propeller_status(seen.phase, seen.state, seen.message, seen.error_code)
        result.phase, result.message, result.error_code = status.phase, status.message, status.error_code
        result.log_links, result.custom_info = seen.log_links, seen.custom_info
        return status.terminal

    async def _run_sync(self, wire: V1Wire | V2Wire, prepared: PreparedTask, meta: Any, result: TaskResult) -> None:
        import grpc

        requests = wire.sync_requests(prepared.template, prepared.inputs, result.output_prefix, meta)
        call = wire.sync_call(self.timeout_for("ExecuteTaskSync"))

        async def exchange() -> Any:
            for message in requests:
                await call.write(message)
            await call.done_writing()
            response = await call.read()
            if response is grpc.aio.EOF:
                raise _StreamError("EOF")
            if not response.HasField("header"):
                raise _StreamError("expected header in the response, but got none")
            return response

        try:
            response = await self._call(result.calls, "ExecuteTaskSync", requests, exchange())
        except grpc.aio.AioRpcError as e:
            result.phase, result.error_code = Phase.RETRYABLE_FAILED, TASK_FAILED
            result.message = f"failed to execute task from connector with {_rpc_text(e)}"
            return
        except _StreamError as e:
            failed = Call("ExecuteTaskSync", requests, None, "PROTOCOL_ERROR", str(e))
            result.calls.append(failed)
            self.calls.append(failed)
            result.phase, result.error_code, result.message = Phase.RETRYABLE_FAILED, TASK_FAILED, str(e)
            return
        finally:
            call.cancel()  # Propeller reads one message and cancels the stream's context; further replies are ignored
        resource = response.header.resource
        result.resource = resource
        seen = wire.read(resource, with_agent_error=True)
        if not self._evaluate(seen, result):
            # Propeller v1.16.8 would then poll GetTask with a nil resource meta and crash the plugin.
            result.phase, result.error_code = Phase.FAILED, "SyncNotTerminal"
            result.message = f"a sync connector must return a terminal phase, got {Phase(seen.phase).name}"
            return
        await self._outputs(prepared, seen, result)

    async def _outputs(self, prepared: PreparedTask, seen: ReadResource | None, result: TaskResult) -> None:
        if result.phase != Phase.SUCCEEDED or seen is None or not prepared.declares_outputs:
            return
        literal_map = seen.outputs
        if literal_map is None:
            from flyteconnect.local.outputs import read_outputs_pb

            try:
                literal_map = await asyncio.to_thread(read_outputs_pb, result.output_prefix, self.storage_options)
            except Exception as e:
                result.phase, result.message, result.error_code = Phase.FAILED, str(e), "OutputsNotFound"
                return
        result.outputs = python_outputs(literal_map, prepared.output_types)


class _StreamError(Exception):
    """The sync stream ended without the one header message Propeller expects."""
