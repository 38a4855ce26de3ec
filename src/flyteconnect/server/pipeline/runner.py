"""``Pipeline``: the calls of one (connector, operation), built once: a strategy inside two built-in stages (metrics
and the deadline) and the ordered policies.

Why metrics and the deadline are stages of the runner and not policies: measured with callgrind on Python 3.11, a
hook call costs 0.6-0.9k instructions and a ``Call`` object 2-2.5k; as hooks, these two would add ~7k instructions
(13%) to every GetTask. So the runner does them inline, and builds a ``Call`` only for pipelines whose policies have
per-call hooks (``enter``, ``around``, ``exit``); ``recover`` hooks get theirs when something failed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from flyteconnect.connector import ConnectorMethod
from flyteconnect.server.errors import CallFailed, CallTimeout, is_expected, to_status
from flyteconnect.server.metrics import LATENCY_BUCKETS
from flyteconnect.server.pipeline.call import Call
from flyteconnect.server.pipeline.deadline import Deadlines
from flyteconnect.server.pipeline.policy import Policy, Proceed
from flyteconnect.server.pipeline.results import CHECKS
from flyteconnect.server.pipeline.strategy import OnLoop, Strategy

if TYPE_CHECKING:
    from flyteconnect.server.dispatch import Entry

__all__ = ["Pipeline", "failure", "now"]

log = logging.getLogger("flyteconnect.server")

now = time.monotonic
"""The one clock of calls: latency, deadlines and ``Call.start``."""
_current_task = asyncio.current_task


def failure(exc: BaseException, operation: str, category: str, connector: str, debug: bool) -> CallFailed:
    """``exc`` as the CallFailed to raise (its status from ``server.errors.to_status``), logged: expected errors as
    one line, anything else with its traceback."""
    if isinstance(exc, CallFailed):
        return exc
    code, details = to_status(exc, operation=operation, category=category, connector=connector, debug=debug)
    if is_expected(exc):
        log.warning("%s -> %s", details, code.name)
    else:
        log.error("%s -> %s", details, code.name, exc_info=exc)
    return CallFailed(code, details)


class Pipeline:
    """Runs one operation of one connector: ``await pipeline.run(kwargs, resource_meta, convert, timeout)``.

    Gives the reply (``convert`` of the checked result) or raises ``CallFailed``, counted and logged. ``strategy``
    may be swapped later (quarantine); the policies are fixed for the pipeline's life.
    """

    def __init__(
        self,
        entry: Entry,
        operation: str,
        method: ConnectorMethod | None,
        strategy: Strategy,
        policies: Sequence[Policy],
        deadlines: Deadlines,
        *,
        timeout: float | None,
        margin: float,
        debug: bool = False,
    ) -> None:
        self.entry = entry
        self.operation = operation
        self.method = method
        self.policies = tuple(policies)
        self.timeout = timeout
        """Seconds one call may take (the ``timeout`` setting; None: only the caller's deadline bounds it)."""
        self.margin = margin
        """Seconds (at most 10% of the deadline) kept free before the caller's deadline to send the answer."""
        self._deadlines = deadlines
        self._debug = debug
        self._op = entry.ops[operation]
        self._check = CHECKS[operation]
        # A missing method is refused before its resource_meta is read (UNIMPLEMENTED, not a decoding error).
        self._decode = entry.decode if method is not None else self._refuse
        self._accepted = None if method is None else method.accepted
        self.strategy = strategy
        self.rewire()

    @property
    def strategy(self) -> Strategy:
        """How the method runs (``OnLoop``, ``OnPool``, ``Quarantined``, ``Refuse``)."""
        return self._strategy

    @strategy.setter
    def strategy(self, strategy: Strategy) -> None:
        self._strategy = strategy
        # The usual strategy is inlined by ``run``: the method's coroutine is started there, without a call.
        self._on_loop = strategy.func if type(strategy) is OnLoop else None

    def rewire(self) -> None:
        """(Re)collect the hooks of the policies that are not ``dormant`` (after one woke up)."""
        hooks = [(p, p.hooks()) for p in self.policies if not p.dormant]
        self._enter = tuple(p.enter for p, h in hooks if "enter" in h)
        self._exit = tuple(p.exit for p, h in reversed(hooks) if "exit" in h)
        self._recover = tuple(p.recover for p, h in reversed(hooks) if "recover" in h)
        proceed: Proceed = self._attempt_recovering
        arounds = [p for p, h in hooks if "around" in h]
        for p in reversed(arounds):
            proceed = _step(p, proceed)
        self._around = proceed
        self._hooked = bool(self._enter or self._exit or arounds)

    def wake(self, policy: Policy) -> None:
        """Start calling ``policy``'s hooks (it was ``dormant``)."""
        policy.dormant = False  # type: ignore[misc]
        self.rewire()

    # -- the call ---------------------------------------------------------------------------------------------------

    async def run(
        self,
        kwargs: dict[str, Any],
        resource_meta: bytes | None,
        convert: Callable[[Any], Any] | None,
        timeout: float | None,
    ) -> Any:
        """One call: ``kwargs`` for the method (owned by the call), the request's ``resource_meta`` (decoded into
        ``kwargs`` when the call runs), the caller's remaining seconds ``timeout``."""
        op = self._op
        op.in_flight.value += 1
        start = now()
        bound = self.timeout if timeout is None else self.bound(timeout)
        call: Call | None = None
        try:
            if self._hooked:
                call = Call(self, kwargs, resource_meta, convert, timeout, start, bound)
                for enter in self._enter:
                    enter(call)
                result = await self._around(call)
            else:
                # attempt() inlined: a coroutine per call costs ~1.2k instructions, and this is GetTask's whole path.
                try:
                    if resource_meta is not None:
                        kwargs["resource_meta"] = self._decode(resource_meta)
                    accepted = self._accepted
                    if accepted is not None and not kwargs.keys() <= accepted:
                        kwargs = {k: v for k, v in kwargs.items() if k in accepted}
                    func = self._on_loop
                    if func is not None:
                        awaitable = func(**kwargs)
                    else:
                        strategy = self._strategy
                        check = functools.partial(self._check, self.entry, self.operation, convert)
                        awaitable = strategy.start(kwargs, check)
                    if bound is None:
                        result = await awaitable
                    else:
                        task = _current_task()
                        deadlines = self._deadlines
                        deadlines.calls[task] = start + bound  # type: ignore[index]
                        if deadlines.timer is None:
                            deadlines.arm()
                        try:
                            result = await awaitable
                        except asyncio.CancelledError:
                            if not deadlines.claim(task):  # type: ignore[arg-type]
                                raise
                            raise self._timed_out(bound) from None
                        finally:
                            deadlines.calls.pop(task, None)  # type: ignore[arg-type]
                    if func is not None or strategy.finish_on_loop:
                        result = self._check(self.entry, self.operation, convert, result)
                except Exception as e:
                    if not self._recover:
                        raise
                    call = Call(self, kwargs, resource_meta, convert, timeout, start, bound)
                    result = await self._recovered(call, e)
        except asyncio.CancelledError as e:
            op.failed("CANCELLED")
            if call is not None:
                self.exit(call, e)
            raise
        except BaseException as e:
            failed = self.fail(e)
            op.failed(failed.code.name)
            if call is not None:
                self.exit(call, failed)
            raise failed from e
        finally:
            op.in_flight.value -= 1
            elapsed = now() - start
            latency = op.latency
            latency.sum += elapsed
            latency.counts[bisect_left(LATENCY_BUCKETS, elapsed)] += 1
        if call is not None:
            self.exit(call, None)
        op.success.value += 1
        return result

    async def attempt(self, call: Call) -> Any:
        """One bounded run of the strategy, its result checked and converted (what ``recover`` hooks retry)."""
        kwargs = call.kwargs
        if call.resource_meta is not None:
            kwargs["resource_meta"] = self._decode(call.resource_meta)
        accepted = self._accepted
        if accepted is not None and not kwargs.keys() <= accepted:
            kwargs = {k: v for k, v in kwargs.items() if k in accepted}
        strategy = self._strategy
        awaitable = strategy.start(kwargs, functools.partial(self.finish, call))
        bound = call.bound
        if bound is None:
            result = await awaitable
        else:
            task = _current_task()
            deadlines = self._deadlines
            deadlines.calls[task] = call.start + bound  # type: ignore[index]
            if deadlines.timer is None:
                deadlines.arm()
            try:
                result = await awaitable
            except asyncio.CancelledError:
                if not deadlines.claim(task):  # type: ignore[arg-type]
                    raise
                raise self._timed_out(bound) from None
            finally:
                deadlines.calls.pop(task, None)  # type: ignore[arg-type]
        return self.finish(call, result) if strategy.finish_on_loop else result

    async def _attempt_recovering(self, call: Call) -> Any:
        try:
            return await self.attempt(call)
        except Exception as e:
            if not self._recover:
                raise
            return await self._recovered(call, e)

    async def _recovered(self, call: Call, error: Exception) -> Any:
        for recover in self._recover:
            try:
                return await recover(call, error, self.attempt)
            except Exception as e:
                error = e
        raise error

    # -- pieces -----------------------------------------------------------------------------------------------------

    def bound(self, remaining: float | None) -> float | None:
        """Seconds a call may take: ``min(remaining - margin, timeout)`` (the margin at most 10% of ``remaining``)."""
        bound = self.timeout
        if remaining is not None:
            usable = remaining - min(self.margin, remaining * 0.1)
            bound = usable if bound is None or usable < bound else bound
            if bound < 0.0:
                bound = 0.0
        return bound

    def enter(self, call: Call) -> None:
        """Run the ``enter`` hooks (streams)."""
        for enter in self._enter:
            enter(call)

    def exit(self, call: Call, error: BaseException | None) -> None:
        """Run the ``exit`` hooks."""
        for exit_ in self._exit:
            exit_(call, error)

    def finish(self, call: Call, result: Any) -> Any:
        """Record the connector's ``result`` as ``call.outcome`` (and, for create, its encoded resource_meta as
        ``call.resource_meta``), then check and convert it."""
        call.outcome = result
        if self.operation == "create":
            call.resource_meta = data = self._check(self.entry, "create", None, result)
            return data if call.convert is None else call.convert(data)
        return self._check(self.entry, self.operation, call.convert, result)

    def check(self, call: Call, result: Any) -> Any:
        """Check and convert ``result`` for ``call``'s reply."""
        return self._check(self.entry, self.operation, call.convert, result)

    def fail(self, exc: BaseException) -> CallFailed:
        """``exc`` as a logged ``CallFailed`` naming this operation and connector."""
        entry = self.entry
        return failure(exc, self.operation, entry.label, entry.name, self._debug)

    def _refuse(self, resource_meta: bytes) -> Any:
        raise self.entry.missing(self.operation)

    def _timed_out(self, bound: float) -> CallTimeout:
        """The error for a connector call our bound cancelled."""
        return CallTimeout(
            f"{self.entry.name} {self.operation}() did not finish within {bound:.2f}s"
            " (the caller's deadline or the connector timeout)"
        )

    def __repr__(self) -> str:
        names = ", ".join(type(p).__name__ for p in self.policies)
        return f"<Pipeline {self.entry.label} {self.operation}: {self._strategy.name} [{names}]>"


def _step(policy: Policy, proceed: Proceed) -> Proceed:
    around = policy.around

    def step(call: Call) -> Any:
        return around(call, proceed)

    return step
