"""The policy interface: one cross-cutting behaviour around the calls of one (connector, operation).

A policy is a small object built once per (connector, operation) when the dispatcher reads its registry (start and
``refresh()``), by a factory that may decline (return None) when the behaviour does not apply. It overrides the hooks
it needs; the pipeline calls only overridden hooks, so a hook a policy does not define costs nothing per call:

=============================================  =========================================================================
hook                                           use it to
=============================================  =========================================================================
``enter(call)``                                note or refuse before the call, on the loop, in pipeline order
                                               (metrics, deadline). Raising refuses the call.
``around(call, proceed)`` (async)              wait, answer from state or wrap: ``await proceed(call)`` runs the rest
                                               (bulkhead, rate limit, poll pacing, idempotent create). Not calling
                                               ``proceed`` answers without the connector: return ``call.answer(x)``.
                                               Costs a coroutine (~2k instructions) per call: only where configured.
``recover(call, error, proceed)`` (async)      on a failure of the connector call: retry it (``await proceed(call)``),
                                               answer instead (``call.answer(resource)``) or re-raise ``error``.
                                               Runs only when something failed (transient handling).
``exit(call, error)``                          after the call, whatever happened (``error`` None on success, the
                                               ``CallFailed`` or ``CancelledError`` otherwise), in reverse order
                                               (metrics, phase memory, releasing what ``enter`` took).
=============================================  =========================================================================

Order: all ``enter`` hooks, then the ``around`` chain (the first policy outermost), inside it the strategy's attempt
with the ``recover`` hooks, then all ``exit`` hooks in reverse order. ``exit`` runs for every policy once the call
started, also when a later ``enter`` refused it or an ``around`` answered. Streams (``get_logs``) get ``enter`` and
``exit`` only.

Settings: ``PolicyContext.settings`` resolves a policy's per-connector setting from one place: the operator's
override (``DispatchConfig.connectors[name or category]``, ``DispatchConfig.timeouts``), then the connector class's
``server_settings`` mapping, then the policy's default.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from flyteconnect.server.pipeline.call import Call

if TYPE_CHECKING:
    from flyteconnect.connector import ConnectorBase
    from flyteconnect.server.dispatch import DispatchConfig, Entry
    from flyteconnect.server.metrics import ServerMetrics

__all__ = ["Policy", "PolicyContext", "PolicyFactory", "Proceed", "Settings"]

P = TypeVar("P", bound="Policy")

Proceed = Callable[[Call], Awaitable[Any]]
"""Runs the rest of the pipeline for a call and gives its reply."""


class Policy:
    """Base class of a pipeline policy: override the hooks you need (see the module docstring)."""

    __slots__ = ()
    dormant = False
    """A dormant policy's hooks are not called until ``Pipeline.wake(policy)`` (it costs nothing until needed)."""

    def enter(self, call: Call) -> None:
        """Before the call, on the loop; raise to refuse it."""

    async def around(self, call: Call, proceed: Proceed) -> Any:
        """Around the rest of the pipeline; return its reply (``await proceed(call)``) or your own."""
        return await proceed(call)

    async def recover(self, call: Call, error: Exception, proceed: Proceed) -> Any:
        """After the connector call raised ``error``: retry, answer, or re-raise."""
        raise error

    def exit(self, call: Call, error: BaseException | None) -> None:
        """After the call, on the loop, whatever happened."""

    @classmethod
    def hooks(cls) -> frozenset[str]:
        """The hooks this class overrides (the pipeline calls only these)."""
        return frozenset(
            name for name in ("enter", "around", "recover", "exit") if getattr(cls, name) is not getattr(Policy, name)
        )


class Settings:
    """A connector's policy settings: operator override, then the class's ``server_settings``, then the default."""

    __slots__ = ("_declared", "_override")

    def __init__(self, connector: ConnectorBase, config: DispatchConfig) -> None:
        override: dict[str, Any] = {}
        for key in (connector.name, str(connector.task_category)):  # the category, more specific, wins
            found = config.connectors.get(key)
            if found:
                override.update(found)
            timeout = config.timeouts.get(key)
            if timeout is not None:
                override["timeout"] = timeout
        self._override = override
        self._declared: Mapping[str, Any] = getattr(connector, "server_settings", None) or {}

    def get(self, key: str, default: Any = None) -> Any:
        """The setting ``key`` for this connector."""
        if key in self._override:
            return self._override[key]
        return self._declared.get(key, default)


@dataclass(frozen=True)
class PolicyContext:
    """What a policy factory sees: where the policy goes and what the server shares with it."""

    connector: ConnectorBase
    entry: Entry
    operation: str
    settings: Settings
    config: DispatchConfig
    metrics: ServerMetrics
    shared: dict[str, Any]
    """Objects the dispatcher's policies share across connectors and refreshes (stores), by name."""
    previous: list[Policy]
    """The policies built so far for this pipeline, in order."""

    def built(self, cls: type[P]) -> P | None:
        """The policy of type ``cls`` already built for this pipeline (one policy may build on another)."""
        for policy in self.previous:
            if isinstance(policy, cls):
                return policy
        return None


PolicyFactory = Callable[[PolicyContext], "Policy | None"]
"""Builds a policy for one (connector, operation), or None when it does not apply there."""
