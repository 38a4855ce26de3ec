"""The call pipeline: one per (connector, operation), built when the dispatcher reads its registry.

::

    dispatcher ──▶ Pipeline.run(kwargs, resource_meta, convert, timeout)
                     metrics stage     in flight, latency, success / failure by status code
                     deadline stage    bound = min(caller's deadline - margin, connector timeout)
                     enter hooks       (in policy order)
                     around chain      (bulkhead, pacing, idempotent create... when configured)
                       strategy        OnLoop | OnPool | Quarantined | Refuse  ◀── recover hooks: transient_get
                       check+convert   the connector's result checked, converted by the adapter's ``convert``
                     exit hooks        (reverse order): phase_memory
                 ◀── reply, or CallFailed (status from server.errors.to_status)

``DEFAULT_POLICIES`` is the ordered list of policy factories the dispatcher builds from
(``DispatchConfig.policies`` replaces it); see ``policy.py`` for the interface and docs/architecture.md for a worked
example.
"""

from __future__ import annotations

from flyteconnect.server.pipeline.call import Call
from flyteconnect.server.pipeline.deadline import Deadlines, DeadlineScope
from flyteconnect.server.pipeline.policy import Policy, PolicyContext, PolicyFactory, Proceed, Settings
from flyteconnect.server.pipeline.runner import Pipeline, failure
from flyteconnect.server.pipeline.strategy import OnLoop, OnPool, Quarantined, Refuse, SideLoop, Strategy
from flyteconnect.server.pipeline.transient import PhaseMemory, TransientGet, phase_memory, transient_get

__all__ = [
    "DEFAULT_POLICIES",
    "Call",
    "DeadlineScope",
    "Deadlines",
    "OnLoop",
    "OnPool",
    "PhaseMemory",
    "Pipeline",
    "Policy",
    "PolicyContext",
    "PolicyFactory",
    "Proceed",
    "Quarantined",
    "Refuse",
    "Settings",
    "SideLoop",
    "Strategy",
    "TransientGet",
    "failure",
]

DEFAULT_POLICIES: tuple[PolicyFactory, ...] = (phase_memory, transient_get)
"""The server's policies, outermost first: the phase memory notes what the transient policy answers from."""
