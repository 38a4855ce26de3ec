"""Completion by callback, the create side: ``callback_url()`` works inside ``create`` and the job it names is tied
to the resource_meta ``create`` returned (issue 19 item 4; the GetTask side is ``job_state``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flyteconnect.callbacks import CallbackScope, callback_scope, end_callback_scope
from flyteconnect.server.pipeline.job_state import CALLBACKS
from flyteconnect.server.pipeline.policy import Policy, PolicyContext, Proceed

if TYPE_CHECKING:
    from flyteconnect.server.callback_server import CallbackServer
    from flyteconnect.server.pipeline.call import Call

__all__ = ["CallbackCreate", "callback_create"]


class CallbackCreate(Policy):
    """Opens a callback scope around ``create``; links the job the connector asked a URL for to its resource_meta."""

    __slots__ = ("server",)

    def __init__(self, server: CallbackServer) -> None:
        self.server = server

    async def around(self, call: Call, proceed: Proceed) -> Any:
        """Run ``create`` with ``callback_url()`` available."""
        signer = self.server.signer
        if signer is None:  # not listening (yet): no URL to hand out
            return await proceed(call)
        scope = CallbackScope(signer)
        token = callback_scope(scope)  # a def create sees it too: its thread runs in a copy of this context
        try:
            reply = await proceed(call)
        finally:
            end_callback_scope(token)
        # The job's encoded resource_meta: the reply itself without an adapter's convert, else what the pipeline kept.
        resource_meta = reply if call.convert is None else call.resource_meta
        if scope.job_id is not None and resource_meta is not None:
            await self.server.inbox.link(scope.job_id, resource_meta)
        return reply


def callback_create(ctx: PolicyContext) -> CallbackCreate | None:
    """Factory: on ``create`` when the server serves callbacks."""
    server = ctx.shared.get(CALLBACKS)
    if ctx.operation != "create" or server is None:
        return None
    return CallbackCreate(server)
