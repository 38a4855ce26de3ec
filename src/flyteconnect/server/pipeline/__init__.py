"""The call pipeline: one per (connector, operation), built when the dispatcher reads its registry.

::

    dispatcher ──▶ Pipeline.run(kwargs, resource_meta, convert, timeout)
                     metrics stage     in flight, latency, success / failure by status code
                     deadline stage    bound = min(caller's deadline - margin, connector timeout)
                     enter hooks       (in policy order)
                     around chain      idempotent_create, callback_create, job_state (pacing, answers from
                                       state), rate_limit: each only where it applies
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
from flyteconnect.server.pipeline.callback import CallbackCreate, callback_create
from flyteconnect.server.pipeline.deadline import Deadlines, DeadlineScope
from flyteconnect.server.pipeline.idempotent import IdempotentCreate, idempotent_create
from flyteconnect.server.pipeline.job_state import JobState, job_state
from flyteconnect.server.pipeline.policy import Policy, PolicyContext, PolicyFactory, Proceed, Settings
from flyteconnect.server.pipeline.rate_limit import RateLimit, rate_limit
from flyteconnect.server.pipeline.runner import Pipeline, failure
from flyteconnect.server.pipeline.strategy import OnLoop, OnPool, Quarantined, Refuse, SideLoop, Strategy
from flyteconnect.server.pipeline.transient import PhaseMemory, TransientGet, phase_memory, transient_get

__all__ = [
    "DEFAULT_POLICIES",
    "Call",
    "CallbackCreate",
    "DeadlineScope",
    "Deadlines",
    "IdempotentCreate",
    "JobState",
    "OnLoop",
    "OnPool",
    "PhaseMemory",
    "Pipeline",
    "Policy",
    "PolicyContext",
    "PolicyFactory",
    "Proceed",
    "Quarantined",
    "RateLimit",
    "Refuse",
    "Settings",
    "SideLoop",
    "Strategy",
    "TransientGet",
    "failure",
]

DEFAULT_POLICIES: tuple[PolicyFactory, ...] = (
    phase_memory,
    transient_get,
    idempotent_create,
    callback_create,
    job_state,
    rate_limit,
)
"""The server's policies, outermost first: the phase memory notes what the transient policy answers from; a
duplicate create is answered before a callback URL is made; a job's record answers GetTask before the rate limit is
asked, and the rate limit answers from that record when it has no capacity."""
