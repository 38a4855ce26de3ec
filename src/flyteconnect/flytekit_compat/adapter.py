"""A flytekit connector presented as an ordinary flyteconnect connector.

``wrap(connector)`` takes an instance of flytekit's ``AsyncConnectorBase`` or ``SyncConnectorBase`` and returns a
flyteconnect connector with the same name, task category and sync/async kind. The server then treats it like any
other: both protocols, error mapping, metrics, deadlines, transient handling, drain and the other policies.

Each call converts what flytekit's own servicer would hand the connector (``flytekit.models`` objects built
``from_flyte_idl``; inputs and execution metadata always present, empty when the request has none), calls the
flytekit method with exactly the keywords flytekit's servicer passes, and converts its ``Resource`` back (dict
outputs through flytekit's TypeEngine, so the literals are flytekit's). A method written ``async def`` is awaited on
the loop, a plain ``def`` runs on the server's worker threads, as our own connectors' methods do.

flytekit's exceptions with a meaning of their own become ours (``translate``); anything else the connector raises
is reported as it is (INTERNAL, with the traceback in the server log only).
"""

from __future__ import annotations

import inspect
from types import TracebackType
from typing import Any, ClassVar

from flyteidl.admin import agent_pb2
from flyteidl.core import literals_pb2
from flytekit.core.context_manager import FlyteContextManager
from flytekit.core.type_engine import TypeEngine
from flytekit.extend.backend import base_connector as fk
from flytekit.models.literals import LiteralMap as FkLiteralMap
from flytekit.models.task import TaskExecutionMetadata as FkTaskExecutionMetadata
from flytekit.models.task import TaskTemplate as FkTaskTemplate

from flyteconnect.connector import AsyncConnectorBase, ConnectorBase, Resource, ResourceMeta, SyncConnectorBase
from flyteconnect.errors import ConnectorNotFound, InvalidRequest, ResourceMetaError, TransientError

__all__ = ["FlytekitResourceMeta", "is_flytekit_connector", "translate", "wrap"]


def is_flytekit_connector(obj: object) -> bool:
    """True for an instance of flytekit's connector base classes."""
    return isinstance(obj, (fk.AsyncConnectorBase, fk.SyncConnectorBase))


# ------------------------------------------------------------------------------------------------------ errors


def translate(exc: BaseException) -> BaseException | None:
    """Our exception for a flytekit exception with a meaning of its own, or None (report ``exc`` as it is)."""
    from flytekit.exceptions import system, user

    if isinstance(exc, (system.FlyteConnectorNotFound, system.FlyteAgentNotFound)):
        return ConnectorNotFound(str(exc))
    if isinstance(exc, (user.FlyteRecoverableException, system.FlyteSystemUnavailableException, user.FlyteTimeout)):
        return TransientError(f"{type(exc).__name__}: {exc}")
    return None


class _Translated:
    """``with TRANSLATED:`` re-raises flytekit exceptions as ours (``translate``), the original as the cause."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        # Returns None: never swallows (and mypy then knows a ``return`` inside the block is the only way out).
        if isinstance(exc, Exception):
            mapped = translate(exc)
            if mapped is not None:
                raise mapped from exc


TRANSLATED = _Translated()


# ------------------------------------------------------------------------------------------- request and reply


def _model(what: str, build: Any, pb: Any) -> Any:
    try:
        return build(pb)
    except Exception as e:  # flytekit's models reject what its servicer would reject: the caller's fault
        raise InvalidRequest(f"flytekit cannot read the request's {what}: {type(e).__name__}: {e}") from None


def _template(view: Any) -> Any:
    return _model("task template", FkTaskTemplate.from_flyte_idl, view.to_flyte_idl())


def _inputs(view: Any) -> Any:
    # flytekit's servicer always passes a LiteralMap, empty when the request has no inputs.
    pb = view.to_flyte_idl() if view is not None else literals_pb2.LiteralMap()
    return _model("inputs", FkLiteralMap.from_flyte_idl, pb)


def _execution_metadata(view: Any) -> Any:
    pb = view.to_flyte_idl() if view is not None else agent_pb2.TaskExecutionMetadata()
    return _model("task execution metadata", FkTaskExecutionMetadata.from_flyte_idl, pb)


def _checked(connector: Any, method: str, result: Any) -> Any:
    if not isinstance(result, fk.Resource):
        raise TypeError(f"{connector.name}.{method}() returned {type(result).__name__}, expected a flytekit Resource")
    return result


def _resource(result: Any, outputs: Any) -> Resource:
    return Resource(
        phase=int(result.phase),
        message=result.message or None,
        log_links=list(result.log_links) if result.log_links else None,
        outputs=outputs,
        custom_info=result.custom_info or None,
    )


def _plain_outputs(outputs: Any) -> tuple[bool, Any]:
    """(True, outputs as a LiteralMap proto or None) unless they are a dict of Python values for the TypeEngine."""
    if outputs is None:
        return True, None
    if isinstance(outputs, FkLiteralMap):
        return True, outputs.to_flyte_idl()
    if isinstance(outputs, dict):
        return False, outputs
    return True, outputs  # a LiteralMap proto or a view: ours converts it


async def _resource_async(connector: Any, method: str, result: Any) -> Resource:
    result = _checked(connector, method, result)
    plain, outputs = _plain_outputs(result.outputs)
    if not plain:
        ctx = FlyteContextManager.current_context()
        outputs = await TypeEngine.dict_to_literal_map_pb(ctx, outputs)
    return _resource(result, outputs)


def _resource_sync(connector: Any, method: str, result: Any) -> Resource:
    result = _checked(connector, method, result)
    plain, outputs = _plain_outputs(result.outputs)
    if not plain:
        ctx = FlyteContextManager.current_context()
        outputs = TypeEngine.dict_to_literal_map(ctx, outputs).to_flyte_idl()
    return _resource(result, outputs)


# -------------------------------------------------------------------------------------------- resource_meta


class FlytekitResourceMeta(ResourceMeta):
    """A flytekit connector's resource metadata, encoded and decoded by its own class (the same bytes as flytekit).

    Subclassed per connector with ``flytekit_type`` set (``_meta_type``); ``value`` is the flytekit object.
    """

    flytekit_type: ClassVar[Any]

    def __init__(self, value: Any) -> None:
        self.value = value

    def encode(self) -> bytes:
        """flytekit's encoding of the wrapped metadata."""
        data = self.value.encode()
        return data if type(data) is bytes else bytes(data)

    @classmethod
    def decode(cls, data: bytes) -> FlytekitResourceMeta:
        """Decode with the flytekit class; bytes it cannot read are the caller's error (INVALID_ARGUMENT)."""
        try:
            return cls(cls.flytekit_type.decode(data if type(data) is bytes else bytes(data)))
        except Exception as e:
            name = cls.flytekit_type.__name__
            raise ResourceMetaError(f"resource_meta for {name} does not decode: {type(e).__name__}: {e}") from None

    def __repr__(self) -> str:
        return f"FlytekitResourceMeta({self.value!r})"


_META_TYPES: dict[type, type[FlytekitResourceMeta]] = {}


def _meta_type(flytekit_type: type) -> type[FlytekitResourceMeta]:
    found = _META_TYPES.get(flytekit_type)
    if found is None:
        name = f"Flytekit{flytekit_type.__name__}"
        found = _META_TYPES[flytekit_type] = type(name, (FlytekitResourceMeta,), {"flytekit_type": flytekit_type})
    return found


# ------------------------------------------------------------------------------------------ connector methods
#
# Each method exists as ``async def`` and as ``def``; the adapter class of a flytekit connector class takes, for each
# method, the flavour of the flytekit method it calls, so the dispatcher awaits it on the loop or runs it on a worker
# thread as it does our own connectors' methods.


async def _create_async(
    self: FlytekitAsyncConnector,
    task_template: Any,
    output_prefix: str,
    inputs: Any = None,
    task_execution_metadata: Any = None,
) -> FlytekitResourceMeta:
    kwargs = self._create_kwargs(task_template, output_prefix, inputs, task_execution_metadata)
    with TRANSLATED:
        return self._meta(await self.flytekit.create(**kwargs))


def _create_sync(
    self: FlytekitAsyncConnector,
    task_template: Any,
    output_prefix: str,
    inputs: Any = None,
    task_execution_metadata: Any = None,
) -> FlytekitResourceMeta:
    kwargs = self._create_kwargs(task_template, output_prefix, inputs, task_execution_metadata)
    with TRANSLATED:
        return self._meta(self.flytekit.create(**kwargs))


async def _get_async(self: FlytekitAsyncConnector, resource_meta: FlytekitResourceMeta) -> Resource:
    with TRANSLATED:
        result = await self.flytekit.get(resource_meta=resource_meta.value)
        return await _resource_async(self.flytekit, "get", result)


def _get_sync(self: FlytekitAsyncConnector, resource_meta: FlytekitResourceMeta) -> Resource:
    with TRANSLATED:
        return _resource_sync(self.flytekit, "get", self.flytekit.get(resource_meta=resource_meta.value))


async def _delete_async(self: FlytekitAsyncConnector, resource_meta: FlytekitResourceMeta) -> None:
    with TRANSLATED:
        await self.flytekit.delete(resource_meta=resource_meta.value)


def _delete_sync(self: FlytekitAsyncConnector, resource_meta: FlytekitResourceMeta) -> None:
    with TRANSLATED:
        self.flytekit.delete(resource_meta=resource_meta.value)


async def _get_metrics_async(self: FlytekitAsyncConnector, resource_meta: FlytekitResourceMeta) -> Any:
    with TRANSLATED:
        return await self.flytekit.get_metrics(resource_meta=resource_meta.value)


def _get_metrics_sync(self: FlytekitAsyncConnector, resource_meta: FlytekitResourceMeta) -> Any:
    with TRANSLATED:
        return self.flytekit.get_metrics(resource_meta=resource_meta.value)


async def _get_logs_async(self: FlytekitAsyncConnector, resource_meta: FlytekitResourceMeta) -> Any:
    with TRANSLATED:
        return await self.flytekit.get_logs(resource_meta=resource_meta.value)


def _get_logs_sync(self: FlytekitAsyncConnector, resource_meta: FlytekitResourceMeta) -> Any:
    with TRANSLATED:
        return self.flytekit.get_logs(resource_meta=resource_meta.value)


async def _do_async(self: FlytekitSyncConnector, task_template: Any, output_prefix: str, inputs: Any = None) -> Any:
    kwargs = self._do_kwargs(task_template, output_prefix, inputs)
    with TRANSLATED:
        return await _resource_async(self.flytekit, "do", await self.flytekit.do(**kwargs))


def _do_sync(self: FlytekitSyncConnector, task_template: Any, output_prefix: str, inputs: Any = None) -> Any:
    kwargs = self._do_kwargs(task_template, output_prefix, inputs)
    with TRANSLATED:
        return _resource_sync(self.flytekit, "do", self.flytekit.do(**kwargs))


_FLAVOURS = {
    "create": (_create_async, _create_sync),
    "get": (_get_async, _get_sync),
    "delete": (_delete_async, _delete_sync),
    "get_metrics": (_get_metrics_async, _get_metrics_sync),
    "get_logs": (_get_logs_async, _get_logs_sync),
    "do": (_do_async, _do_sync),
}


# ------------------------------------------------------------------------------------------------- connectors


class FlytekitAsyncConnector(AsyncConnectorBase[FlytekitResourceMeta]):
    """Base of the adapters of flytekit async connectors; ``flytekit`` is the wrapped instance."""

    def __init__(self, connector: Any) -> None:
        self.flytekit = connector
        category = connector.task_category
        super().__init__(category.name, category.version, _meta_type(connector.metadata_type))

    @staticmethod
    def _create_kwargs(template: Any, output_prefix: str, inputs: Any, metadata: Any) -> dict[str, Any]:
        return {
            "task_template": _template(template),
            "inputs": _inputs(inputs),
            "output_prefix": output_prefix,
            "task_execution_metadata": _execution_metadata(metadata),
        }

    def _meta(self, meta: Any) -> FlytekitResourceMeta:
        if not isinstance(meta, fk.ResourceMeta) and not hasattr(meta, "encode"):
            name = type(meta).__name__
            raise TypeError(f"{self.name}.create() returned {name}, expected a flytekit ResourceMeta")
        return self.metadata_type(meta)


class FlytekitSyncConnector(SyncConnectorBase):
    """Base of the adapters of flytekit sync connectors; ``flytekit`` is the wrapped instance."""

    def __init__(self, connector: Any) -> None:
        self.flytekit = connector
        category = connector.task_category
        super().__init__(category.name, category.version)

    @staticmethod
    def _do_kwargs(template: Any, output_prefix: str, inputs: Any) -> dict[str, Any]:
        return {"task_template": _template(template), "inputs": _inputs(inputs), "output_prefix": output_prefix}


_CLASSES: dict[type, type[ConnectorBase]] = {}


def _implements(cls: type, name: str, base: type) -> bool:
    return getattr(cls, name, None) is not getattr(base, name, None)


def _adapter_class(flytekit_cls: type) -> type[ConnectorBase]:
    """The adapter class for a flytekit connector class (built once per class)."""
    found = _CLASSES.get(flytekit_cls)
    if found is not None:
        return found
    if issubclass(flytekit_cls, fk.SyncConnectorBase):
        base: type[ConnectorBase] = FlytekitSyncConnector
        names: tuple[str, ...] = ("do",)
    else:
        base, names = FlytekitAsyncConnector, ("create", "get", "delete")
        names += tuple(n for n in ("get_metrics", "get_logs") if _implements(flytekit_cls, n, fk.AsyncConnectorBase))
    namespace: dict[str, Any] = {
        "name": getattr(flytekit_cls, "name", flytekit_cls.__name__),
        "__module__": __name__,
        "__doc__": f"flytekit's {flytekit_cls.__module__}.{flytekit_cls.__qualname__}, served by flyteconnect.",
    }
    for method in names:
        is_async = inspect.iscoroutinefunction(inspect.unwrap(getattr(flytekit_cls, method)))
        namespace[method] = _FLAVOURS[method][0 if is_async else 1]
    found = _CLASSES[flytekit_cls] = type(f"Flytekit{flytekit_cls.__name__}", (base,), namespace)
    return found


def wrap(connector: Any) -> ConnectorBase:
    """A flyteconnect connector serving the flytekit connector instance ``connector``."""
    if not is_flytekit_connector(connector):
        raise TypeError(f"not a flytekit connector: {connector!r}")
    adapter = _adapter_class(type(connector))(connector)  # type: ignore[call-arg]
    if adapter.name != connector.name:  # a name set on the instance rather than the class
        adapter.name = connector.name  # type: ignore[misc]
    return adapter
