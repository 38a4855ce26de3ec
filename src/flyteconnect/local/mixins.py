"""The executor mixins (flytekit's names): mixed into a task class, they make ``task(**inputs)`` run its connector.

The class must provide ``name``, ``input_types`` and ``output_types`` (name -> Python type) and ``task_template()``
(the ``flyteidl.core.TaskTemplate``). Whether the connector is sync or async is decided by the registered connector,
so both mixins behave the same; both names exist so flytekit task classes port by changing imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flyteconnect.local.runner import ExecutableTask, LocalRunner, RunResult
    from flyteconnect.models import LiteralMap

__all__ = ["AsyncConnectorExecutorMixin", "SyncConnectorExecutorMixin"]


class _ConnectorExecutorMixin:
    """Local execution through a default ``LocalRunner`` (process default registry, progress on stderr)."""

    def _runner(self) -> LocalRunner:
        from flyteconnect.local.runner import LocalRunner

        return LocalRunner()

    def _as_task(self) -> ExecutableTask:
        return self  # type: ignore[return-value]

    def __call__(self, **inputs: Any) -> Any:
        """Run locally and return the outputs: None, the single value, or a namedtuple for several."""
        return self._runner().run(self._as_task(), **inputs)

    async def arun(self, **inputs: Any) -> Any:
        """Run locally without blocking the event loop; many runs may be awaited concurrently."""
        return await self._runner().arun(self._as_task(), **inputs)

    def run_result(self, **inputs: Any) -> RunResult:
        """Run locally and return the full RunResult (execution id, output prefix, literals, log links...)."""
        return self._runner().run_result(self._as_task(), **inputs)

    def execute(self, **inputs: Any) -> LiteralMap:
        """flytekit's entry point: run locally and return the outputs as a LiteralMap."""
        from flyteconnect.models import LiteralMap

        return LiteralMap.from_flyte_idl(self.run_result(**inputs).literals)


class AsyncConnectorExecutorMixin(_ConnectorExecutorMixin):
    """Run a task whose connector is async (create, poll get, delete on abort) in this process."""


class SyncConnectorExecutorMixin(_ConnectorExecutorMixin):
    """Run a task whose connector is sync (one ``do`` call) in this process."""
