"""The executor mixins (flytekit's names): mixed into a task class, they make ``task(**inputs)`` run its connector.

The class provides ``name``, ``input_types`` and ``output_types`` (name -> Python type) and ``task_template()``
(the ``flyteidl.core.TaskTemplate``), as ``ConnectorTask`` does; or it is shaped like a flytekit task class:
``name``, ``task_type`` (``task_type_version``), ``python_interface`` (or ``interface``) with ``inputs``/``outputs``
dicts of Python types, and optionally ``get_custom(settings)``/``get_config(settings)`` (called with None).
Whether the connector is sync or async is decided by the registered connector, so both mixins behave the same;
both names exist so flytekit task classes port by changing imports.
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
        if hasattr(self, "task_template") and hasattr(self, "input_types"):
            return self  # type: ignore[return-value]
        return _from_flytekit_style(self)

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


def _from_flytekit_style(task: Any) -> ExecutableTask:
    """A ConnectorTask with the facts of a flytekit-style task object (see the module docstring)."""
    from flyteconnect.local.task import ConnectorTask

    interface = getattr(task, "python_interface", None) or getattr(task, "interface", None)
    missing = [n for n in ("name", "task_type") if not getattr(task, n, None)]
    if missing or interface is None:
        raise TypeError(
            f"{type(task).__name__} cannot run locally: it needs name, task_type and python_interface (or "
            f"interface), as flytekit tasks have, or task_template() and input_types/output_types as ConnectorTask"
        )
    custom = task.get_custom(None) if hasattr(task, "get_custom") else None
    config = task.get_config(None) if hasattr(task, "get_config") else None
    return ConnectorTask(  # type: ignore[return-value]  # mypy: its dict attributes vs the protocol's Mapping
        task.name,
        task.task_type,
        getattr(task, "task_type_version", 0),
        inputs=dict(getattr(interface, "inputs", None) or {}),
        outputs=dict(getattr(interface, "outputs", None) or {}),
        custom=custom or {},
        config=config or {},
    )
