"""Connectors written the Flyte 2 SDK way (``flyte.connectors``), served on both protocols.

Port a flyte-sdk connector by changing its imports to this module::

    from flyteconnect.v2 import AsyncConnector, Resource, ResourceMeta

    class MyConnector(AsyncConnector[MyMeta]):
        name = "My Connector"
        task_type_name = "my_type"
        metadata_type = MyMeta

        async def create(self, task_template, output_prefix, inputs=None, task_execution_metadata=None, **kwargs):
            ...  # task_template: flyteidl2.core.TaskTemplate; inputs: {"x": 1, ...}; kwargs: connection secrets

Calling convention (flyte-sdk's): ``create`` receives the ``flyteidl2.core.TaskTemplate`` proto, ``inputs`` as a
dict of native Python values (typed by the template's interface), ``task_execution_metadata`` as the
``flyteidl2.connector.TaskExecutionMetadata`` proto, and the request's ``connection`` secrets/configs as keyword
arguments. Log links may be Flyte 1 or Flyte 2 ``TaskLog`` protos. The translation happens in the connector's method
table (``methods()``), so Flyte 1 requests, Flyte 2 requests and ``flyteconnect run`` all call it the same way.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from flyteconnect.connector import AsyncConnectorBase, ConnectorMethod, M, Resource, ResourceMeta, TaskCategory

__all__ = ["AsyncConnector", "Resource", "ResourceMeta", "TaskCategory"]


class AsyncConnector(AsyncConnectorBase[M]):
    """Base class of Flyte 2 SDK style connectors: native inputs and flyteidl2 protos (see the module doc)."""

    name: ClassVar[str] = "Async Connector"
    native_inputs: ClassVar[bool] = True
    """Marks the Flyte 2 calling convention: ``create`` gets native inputs and flyteidl2 protos."""

    def methods(self) -> dict[str, ConnectorMethod]:
        """The inspected methods, with ``create`` wrapped to translate its arguments (cached on the instance)."""
        cached: dict[str, ConnectorMethod] | None = self.__dict__.get("_v2_methods")
        if cached is None:
            cached = dict(super().methods())
            if "create" in cached:
                cached["create"] = _wrap_create(cached["create"])
            self.__dict__["_v2_methods"] = cached
        return cached


def _flyte2_arguments(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Translate create's keyword arguments to the Flyte 2 calling convention (already native ones pass through)."""
    from flyteconnect.models import LiteralMap, TaskExecutionMetadata, TaskTemplate
    from flyteconnect.server import v2_convert as cv

    template = kwargs.get("task_template")
    if template is not None:
        view = template if isinstance(template, TaskTemplate) else None
        kwargs["task_template"] = cv.template_to_v2(template)
        inputs = kwargs.get("inputs")
        if isinstance(inputs, LiteralMap) or hasattr(inputs, "literals"):
            if not isinstance(inputs, LiteralMap):
                inputs = LiteralMap.from_flyte_idl(inputs)
            kwargs["inputs"] = cv.native_inputs(inputs, view or cv.template_view(kwargs["task_template"]))
    metadata = kwargs.get("task_execution_metadata")
    if isinstance(metadata, TaskExecutionMetadata) or (metadata is not None and hasattr(metadata, "DESCRIPTOR")):
        kwargs["task_execution_metadata"] = cv.metadata_to_v2(metadata)
    return kwargs


def _wrap_create(method: ConnectorMethod) -> ConnectorMethod:
    func = method.func
    wrapper: Any
    if method.is_async:

        @functools.wraps(func)
        async def wrapper(**kwargs: Any) -> Any:
            return await func(**_flyte2_arguments(kwargs))

    else:

        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> Any:
            return func(**_flyte2_arguments(kwargs))

    # Same sync/async decision and accepted keywords; the watchdog unwraps to the connector's own code object.
    return ConnectorMethod(method.name, wrapper, method.is_async, method.is_async_gen, method.accepted)
