"""The conformance checklist behind ``flyteconnect check MODULE``.

Each check exercises one promise a connector makes to Propeller and to the server:

- ``metadata``: a task type name and int version, a name, a ResourceMeta dataclass; the registry accepts it;
- ``resource_meta round-trip``: ``decode(encode(m)) == m`` for an example built from the metadata's field types;
- ``encode deterministic``: encoding twice, and re-encoding the decoded value, gives the same bytes;
- ``get unknown job``: ``get`` on a job that does not exist returns a Resource or raises a flyteconnect error
  (which the server maps to a clean status), not an arbitrary exception;
- ``delete idempotent``: ``delete`` on that job, twice, succeeds both times;
- ``run``: one job driven as the server drives it (``flyteconnect.testing.check_run``): ``create`` with the inputs the
  author gives or derived from the module's task for the connector, ``get`` until terminal, the results refused
  where the server refuses them (naming the method's file and line); then ``outputs`` (converted to literals and to
  the task's declared types) and ``delete created job twice``;
- ``loop not blocked``: no ``async def`` method stalls the event loop while it runs;
- ``registered``: every connector class the module defines is registered (or named by an entry point), so that
  ``serve`` would serve it (a failure when the module registers none, a warning when it leaves some out).

The calls go to the connector's real external system (one real job, deleted at the end, and a job id that cannot
exist): run it where the connector's credentials (or a test double of its system) are available.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import inspect
import time
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flyteconnect.connector import AsyncConnectorBase, ConnectorBase, Resource, ResourceMeta
from flyteconnect.errors import FlyteConnectError
from flyteconnect.registry import ConnectorRegistry
from flyteconnect.testing.check_run import where_raised

__all__ = ["CheckReport", "CheckResult", "check_connector", "check_module", "connectors_in_module", "example_meta"]

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
STALL_THRESHOLD = 0.1
"""Seconds an ``async def`` method may hold the event loop before the check fails."""


@dataclass(frozen=True)
class CheckResult:
    """One check of one connector: ``status`` is pass, fail, warn or skip; ``detail`` says why."""

    connector: str
    check: str
    status: str
    detail: str = ""


@dataclass
class CheckReport:
    """Every check of every connector found in a module, plus modules or classes that could not be loaded."""

    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return bool(self.results) and all(r.status != FAIL for r in self.results)

    def failures(self) -> list[CheckResult]:
        """The failed checks."""
        return [r for r in self.results if r.status == FAIL]

    def exit_code(self, strict: bool = False) -> int:
        """0 when everything passed (warnings allowed unless ``strict``), else 1."""
        bad = {FAIL, WARN} if strict else {FAIL}
        return 0 if self.results and not any(r.status in bad for r in self.results) else 1


# ------------------------------------------------------------------------------------------------ example metadata

_UNION = (typing.Union, types.UnionType)


def _example(tp: Any, depth: int = 0) -> Any:
    """An example value of type ``tp`` (raises TypeError when none can be made)."""
    if depth > 8:
        raise TypeError("recursive type")
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is object or tp is str:
        return "flyteconnect-check-unknown-job"
    if tp is bool:
        return True
    if tp is int:
        return 424242
    if tp is float:
        return 0.5
    if origin in _UNION:
        non_none = [a for a in args if a is not type(None)]
        return _example(non_none[0], depth + 1) if non_none else None
    if origin is typing.Literal:
        return args[0]
    if origin in (list, set, frozenset) or tp in (list, set, frozenset):
        item = _example(args[0], depth + 1) if args else "x"
        return (origin or tp)([item])
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return (_example(args[0], depth + 1),)
        return tuple(_example(a, depth + 1) for a in args)
    if origin is dict or tp is dict:
        value = _example(args[1], depth + 1) if len(args) == 2 else "v"
        return {"k": value}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return next(iter(tp))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        kwargs = {f.name: _example(hints.get(f.name, Any), depth + 1) for f in dataclasses.fields(tp) if f.init}
        return tp(**kwargs)
    raise TypeError(f"no example for {tp!r}")


def example_meta(meta_type: type[ResourceMeta]) -> ResourceMeta:
    """An instance of ``meta_type`` for a job that cannot exist, built from its field types.

    A metadata class may provide its own with a classmethod ``check_example()``.
    """
    custom = getattr(meta_type, "check_example", None)
    if callable(custom):
        return custom()  # type: ignore[no-any-return]
    return _example(meta_type)  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------------------------------ the checks


class _LoopWatch:
    """Measures the longest time the event loop went without running a 10 ms heartbeat."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _LoopWatch:
        async def beat() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                self.worst = max(self.worst, now - last - 0.01)
                last = now

        self._task = asyncio.get_running_loop().create_task(beat())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        await asyncio.sleep(0.011)  # let the heartbeat observe a stall that ended with the call
        self._task.cancel()


class _Stalls:
    """The worst loop stall of each connector call, and where the loop was (the server's watchdog) when it stalled."""

    def __init__(self, connector: ConnectorBase) -> None:
        from flyteconnect.local.contract import StallWatch

        self.connector = connector
        self.worst: dict[str, float] = {}
        self.where = StallWatch(STALL_THRESHOLD, warn=False)

    async def watch(self, key: str, awaitable: Any) -> Any:
        """Await ``awaitable``, one call of the method named by ``key``'s first word, recording its stall."""
        method = self.connector.method(key.split()[0])
        self.where.watch([self.connector])
        watch = _LoopWatch()
        try:
            async with watch:
                return await awaitable
        finally:
            self.worst[key] = watch.worst if method is not None and method.is_async else 0.0

    def locations(self) -> str:
        """Where blocking calls were seen: ``get() at file:line in get``, one per method."""
        from flyteconnect.local.contract import short_path

        seen = {method: short_path(location) for _, method, _, location in self.where.stalls}
        return "; ".join(f"{method}() blocked at {location}" for method, location in seen.items())


async def _call(connector: ConnectorBase, name: str, timeout: float, stalls: _Stalls, key: str, **kw: Any) -> Any:
    """Call method ``name`` (``def`` on a thread, ``async def`` on this loop), recording the worst loop stall."""
    from flyteconnect.local.backend import call_method

    method = connector.method(name)
    assert method is not None
    return await asyncio.wait_for(stalls.watch(key, call_method(method, **kw)), timeout)


def _label(connector: ConnectorBase) -> str:
    return f"{connector.name} ({connector.task_category})"


def _static_checks(connector: ConnectorBase) -> list[CheckResult]:
    label = _label(connector)
    problems: list[str] = []
    if type(connector).name in ("Base Connector", "Base Async Connector", "Base Sync Connector"):
        problems.append("set a `name` (it is what ListAgents reports)")
    try:
        ConnectorRegistry([connector])
        info = ConnectorRegistry([connector]).list_connectors()[0]
        if not info.supported_task_categories:
            problems.append("ListAgents would advertise no task category")
    except Exception as e:
        problems.append(f"the registry refuses it: {e}")
    if (
        isinstance(connector, AsyncConnectorBase)
        and not dataclasses.is_dataclass(connector.metadata_type)
        and connector.metadata_type.encode is ResourceMeta.encode
    ):
        problems.append(f"{connector.metadata_type.__name__} must be a @dataclass or override encode/decode")
    for name, method in connector.methods().items():
        line = _blocking_sleep_line(method.func) if method.is_async else None
        if line:
            problems.append(
                f"async def {name} calls time.sleep at {line} (it blocks the event loop: use await asyncio.sleep)"
            )
    status = FAIL if problems else PASS
    detail = "; ".join(problems) or f"{connector.task_category}, {'sync' if connector.is_sync else 'async'}"
    return [CheckResult(label, "metadata", status, detail)]


def _blocking_sleep_line(func: Callable[..., Any]) -> str | None:
    """``file:line`` of a ``time.sleep(`` call in ``func``'s source, or None."""
    from flyteconnect.local.contract import where

    try:
        lines, first = inspect.getsourcelines(inspect.unwrap(func))
    except (OSError, TypeError):
        return None
    for offset, text in enumerate(lines):
        if "time.sleep(" in text:
            return f"{where(func).rsplit(':', 1)[0]}:{first + offset}"
    return None


def _meta_checks(connector: AsyncConnectorBase[Any]) -> tuple[list[CheckResult], ResourceMeta | None]:
    label = _label(connector)
    meta_type = connector.metadata_type
    try:
        meta = example_meta(meta_type)
    except Exception as e:
        why = f"cannot build an example {meta_type.__name__} ({e}); add a classmethod check_example()"
        return [CheckResult(label, "resource_meta round-trip", SKIP, why)], None
    out: list[CheckResult] = []
    try:
        data = meta.encode()
        again = meta_type.decode(data)
        if again != meta:
            out.append(
                CheckResult(label, "resource_meta round-trip", FAIL, f"decode(encode(m)) gave {again!r}, not {meta!r}")
            )
        else:
            out.append(CheckResult(label, "resource_meta round-trip", PASS, f"{len(data)} bytes"))
        if meta.encode() != data or again.encode() != data:
            out.append(
                CheckResult(label, "encode deterministic", FAIL, "encoding the same metadata gave different bytes")
            )
        else:
            out.append(CheckResult(label, "encode deterministic", PASS))
    except Exception as e:
        out.append(CheckResult(label, "resource_meta round-trip", FAIL, f"{type(e).__name__}: {e}"))
        return out, None
    return out, meta


def _handled(e: BaseException) -> bool:
    return isinstance(e, FlyteConnectError)


async def _call_checks(
    connector: AsyncConnectorBase[Any], meta: ResourceMeta, timeout: float, stalls: _Stalls
) -> list[CheckResult]:
    label = _label(connector)
    out: list[CheckResult] = []
    try:
        resource = await _call(connector, "get", timeout, stalls, "get", resource_meta=meta)
        if isinstance(resource, Resource):
            out.append(CheckResult(label, "get unknown job", PASS, f"returned phase {resource.phase!r}"))
        else:
            out.append(
                CheckResult(label, "get unknown job", FAIL, f"returned {type(resource).__name__}, not a Resource")
            )
    except asyncio.TimeoutError:
        out.append(CheckResult(label, "get unknown job", FAIL, f"did not return within {timeout}s"))
    except Exception as e:
        status = PASS if _handled(e) else FAIL
        hint = (
            "" if _handled(e) else " (raise a flyteconnect error, e.g. ConnectorError, so callers get a clean status)"
        )
        detail = f"raised {type(e).__name__}: {e}{where_raised(e)}{hint}"
        out.append(CheckResult(label, "get unknown job", status, detail))
    problems: list[str] = []
    for attempt in ("first", "second"):
        try:
            await _call(connector, "delete", timeout, stalls, f"delete ({attempt})", resource_meta=meta)
        except asyncio.TimeoutError:
            problems.append(f"{attempt} delete did not return within {timeout}s")
        except Exception as e:
            problems.append(f"{attempt} delete raised {type(e).__name__}: {e}{where_raised(e)}")
    detail = "; ".join(problems) or "deleting an unknown job twice succeeded"
    out.append(CheckResult(label, "delete idempotent", FAIL if problems else PASS, detail))
    return out


def _loop_check(connector: ConnectorBase, stalls: _Stalls) -> CheckResult:
    """Blocking calls in ``async def`` methods, under their own heading, with where the loop was held."""
    label = _label(connector)
    blocked = {k: v for k, v in stalls.worst.items() if v > STALL_THRESHOLD}
    if blocked:
        worst = ", ".join(f"{k} held the loop {v * 1000:.0f} ms" for k, v in blocked.items())
        where = stalls.locations()
        detail = f"{worst}{'; ' + where if where else ''} (async def must not block: await, or use def)"
        return CheckResult(label, "loop not blocked", FAIL, detail)
    kinds = {
        k.split()[0]: "async" if (m := connector.method(k.split()[0])) and m.is_async else "def" for k in stalls.worst
    }
    return CheckResult(label, "loop not blocked", PASS, ", ".join(f"{k}: {v}" for k, v in kinds.items()))


async def acheck_connector(
    connector: ConnectorBase,
    timeout: float = 10.0,
    *,
    task: Any = None,
    inputs: Mapping[str, str] | None = None,
    budget: float = 30.0,
) -> list[CheckResult]:
    """Run the checklist on one connector; ``task`` (one the module defines) and ``inputs`` (text, as with
    ``--input``) feed the ``run`` check, which ``budget`` seconds of polling bound."""
    from flyteconnect.testing.check_run import derive_inputs, run_check

    label = _label(connector)
    results = _static_checks(connector)
    stalls = _Stalls(connector)
    if isinstance(connector, AsyncConnectorBase):
        meta_results, meta = _meta_checks(connector)
        results.extend(meta_results)
        if meta is not None:
            results.extend(await _call_checks(connector, meta, timeout, stalls))
    try:
        values, origin = derive_inputs(task, inputs or {})
    except ValueError as e:
        results.append(CheckResult(label, "run", SKIP, str(e)))
    else:
        if connector.is_sync and task is None and not inputs:
            results.append(CheckResult(label, "run", SKIP, "sync connector: define a task for it or pass --input"))
        else:
            rows = await run_check(connector, task, values, origin, timeout=timeout, budget=budget, watch=stalls.watch)
            results.extend(CheckResult(label, check, status, detail) for check, status, detail in rows)
    results.append(_loop_check(connector, stalls))
    stalls.where.stop_all()
    return results


def check_connector(
    connector: ConnectorBase,
    timeout: float = 10.0,
    *,
    task: Any = None,
    inputs: Mapping[str, str] | None = None,
    budget: float = 30.0,
) -> CheckReport:
    """Run the checklist on ``connector`` and return the report (``task``, ``inputs``: see acheck_connector)."""
    from flyteconnect.local.sync import run_sync

    return CheckReport(
        run_sync(lambda: acheck_connector(connector, timeout, task=task, inputs=inputs, budget=budget), label="check")
    )


def connectors_in_module(module: types.ModuleType, registered: Iterable[ConnectorBase] = ()) -> list[Any]:
    """Connectors a module provides: instances it holds, classes it defines, and those it registered at import.

    Classes that cannot be built without arguments are returned as ``(class, error)`` pairs.
    """
    found: dict[Any, Any] = {}
    for connector in registered:
        found.setdefault(connector.task_category, connector)
    for value in vars(module).values():
        if isinstance(value, ConnectorBase):
            found.setdefault(value.task_category, value)
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, ConnectorBase)
            and value.__module__ == module.__name__
            and not inspect.isabstract(value)
        ):
            if any(type(c) is value for c in found.values() if isinstance(c, ConnectorBase)):
                continue
            try:
                connector = value()
            except Exception as e:
                found[value] = (value, e)
                continue
            found.setdefault(connector.task_category, connector)
    return list(found.values())


def check_module(
    spec: str, timeout: float = 10.0, *, inputs: Mapping[str, str] | None = None, budget: float = 30.0
) -> CheckReport:
    """Import ``spec`` (a dotted module or a ``.py`` file) and run the checklist on every connector it provides.

    Each connector's ``run`` check uses the task the module defines for it (if any) and ``inputs``."""
    from flyteconnect.local.sync import run_sync
    from flyteconnect.testing.check_run import task_for

    default = ConnectorRegistry.default()
    before = set(default.categories())
    report = CheckReport()
    from flyteconnect.server.loading import import_module, unregistered_connectors, unregistered_message

    try:
        module = import_module(spec)
    except Exception as e:
        report.results.append(CheckResult(spec, "import", FAIL, f"{type(e).__name__}: {e}"))
        return report
    registered = [c for c in default.connectors() if c.task_category not in before]
    items = connectors_in_module(typing.cast(types.ModuleType, module), registered)
    if not items:
        report.results.append(CheckResult(spec, "import", FAIL, "the module defines or registers no connector"))
        return report
    forgotten = unregistered_connectors(module, default.connectors())
    # Registering none at all is the classic mistake (serve shows an empty table); leaving out one class of several
    # may be deliberate (a base for others, a test double).
    status = WARN if registered else FAIL
    for cls in forgotten:
        report.results.append(CheckResult(cls.__name__, "registered", status, unregistered_message([cls])))

    async def run_all() -> list[CheckResult]:
        results: list[CheckResult] = []
        for item in items:
            if isinstance(item, tuple):
                cls, error = item
                results.append(
                    CheckResult(cls.__name__, "metadata", FAIL, f"cannot be built: {type(error).__name__}: {error}")
                )
                continue
            task = task_for(typing.cast(types.ModuleType, module), item)
            results.extend(await acheck_connector(item, timeout, task=task, inputs=inputs, budget=budget))
        return results

    report.results.extend(run_sync(run_all, label="check"))
    return report
