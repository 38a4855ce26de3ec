"""ConnectorRegistry: which connector serves which task category.

Servers and tests build their own registry (``ConnectorRegistry([c1, c2])``); the classic flytekit static calls
(``ConnectorRegistry.register(c)``, ``ConnectorRegistry.get_connector("t")``) act on a process default registry, which
``flyteconnect serve`` uses when nothing else is given. Entry-point discovery returns connectors and never registers by
side effect.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from flyteidl.admin import agent_pb2

from flyteconnect.connector import ConnectorBase, TaskCategory, iter_connectors
from flyteconnect.errors import ConnectorNotFound

__all__ = ["ENTRY_POINT_GROUP", "ConnectorInfo", "ConnectorRegistry", "DiscoveryResult", "discover_connectors"]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "flyteconnect.connectors"

T = TypeVar("T")


class _hybridmethod(Generic[T]):
    """A method that acts on the instance when called on one, and on the process default registry when called on
    the class: so ``ConnectorRegistry.register(c)`` (flytekit's static call) and ``registry.register(c)`` both work."""

    def __init__(self, func: Callable[..., T]) -> None:
        self.func = func
        self.__doc__ = func.__doc__

    def __get__(self, obj: Any, cls: type) -> Callable[..., T]:
        target = obj if obj is not None else cls.default()  # type: ignore[attr-defined]
        return self.func.__get__(target, cls)  # type: ignore[no-any-return]


@dataclass
class ConnectorInfo:
    """What ListAgents/ListConnectors report for one connector name: its categories and whether it is sync."""

    name: str
    is_sync: bool
    categories: list[TaskCategory] = field(default_factory=list)

    def to_flyte_idl(self) -> agent_pb2.Agent:
        """The Flyte 1 ``flyteidl.admin.Agent``, with the deprecated type names and the categories Propeller reads."""
        return agent_pb2.Agent(
            name=self.name,
            supported_task_types=[c.name for c in self.categories],
            supported_task_categories=[c.to_flyte_idl() for c in self.categories],
            is_sync=self.is_sync,
        )


class ConnectorRegistry:
    """Connectors keyed by task category (one per name+version), plus their metadata keyed by connector name."""

    _default: ConnectorRegistry | None = None

    def __init__(self, connectors: Iterable[Any] = ()) -> None:
        self._by_category: dict[TaskCategory, ConnectorBase] = {}
        self._info: dict[str, ConnectorInfo] = {}
        for connector in iter_connectors(connectors):
            self._add(connector, override=False)

    @classmethod
    def default(cls) -> ConnectorRegistry:
        """The process default registry, fed by the classic ``ConnectorRegistry.register`` calls."""
        if ConnectorRegistry._default is None:
            ConnectorRegistry._default = ConnectorRegistry()
        return ConnectorRegistry._default

    # -- registration --------------------------------------------------------------------------------------------

    def _add(self, connector: ConnectorBase, override: bool) -> None:
        if not isinstance(connector, ConnectorBase):
            if isinstance(connector, type) and issubclass(connector, ConnectorBase):
                name = connector.__name__
                raise TypeError(f"register an instance, not the class: ConnectorRegistry.register({name}())")
            raise TypeError(f"not a connector: {connector!r} (register an instance of a ConnectorBase subclass)")
        category = connector.task_category
        previous = self._by_category.get(category)
        if previous is not None and not override:
            raise ValueError(
                f"Duplicate connector for task type: {category} "
                f"({type(previous).__name__} is registered; pass override=True to replace it)"
            )
        connector.methods()  # decide once, at registration, whether each method is def or async def
        self._by_category[category] = connector
        if previous is not None:
            self._forget(previous.name, category)
        info = self._info.get(connector.name)
        if info is None:
            self._info[connector.name] = ConnectorInfo(connector.name, connector.is_sync, [category])
        elif category not in info.categories:
            info.categories.append(category)

    def _forget(self, name: str, category: TaskCategory) -> None:
        info = self._info.get(name)
        if info is not None and category in info.categories:
            info.categories.remove(category)
            if not info.categories:
                del self._info[name]

    @_hybridmethod
    def register(self, connector: ConnectorBase, override: bool = False) -> None:
        """Register ``connector`` for its task category; a second one for the same category raises unless override."""
        self._add(connector, override)

    def unregister(self, category: TaskCategory) -> None:
        """Remove the connector serving ``category`` (no error if there is none)."""
        connector = self._by_category.pop(category, None)
        if connector is not None:
            self._forget(connector.name, category)

    # -- lookup --------------------------------------------------------------------------------------------------

    @_hybridmethod
    def get_connector(self, task_type_name: str, task_type_version: int = 0) -> ConnectorBase:
        """The connector for (name, version), or ``ConnectorNotFound`` naming the category."""
        connector = self._by_category.get(TaskCategory(task_type_name, task_type_version))
        if connector is None:
            raise ConnectorNotFound(f"Cannot find connector for task category: {task_type_name}_v{task_type_version}.")
        return connector

    get_agent = get_connector  # flytekit's deprecated alias

    @_hybridmethod
    def list_connectors(self) -> list[agent_pb2.Agent]:
        """The ``flyteidl.admin.Agent`` protos for ListAgents, in registration order (fresh copies)."""
        return [info.to_flyte_idl() for info in self._info.values()]

    @_hybridmethod
    def get_connector_metadata(self, name: str) -> agent_pb2.Agent:
        """The ``flyteidl.admin.Agent`` proto for connector ``name``, or ``ConnectorNotFound``."""
        info = self._info.get(name)
        if info is None:
            raise ConnectorNotFound(f"Cannot find connector for name: {name}.")
        return info.to_flyte_idl()

    def infos(self) -> list[ConnectorInfo]:
        """Metadata per connector name, in registration order."""
        return list(self._info.values())

    def categories(self) -> list[TaskCategory]:
        """Every registered task category, in registration order."""
        return list(self._by_category)

    def connectors(self) -> list[ConnectorBase]:
        """Every registered connector (once per category), in registration order."""
        return list(self._by_category.values())

    def __iter__(self) -> Iterator[ConnectorBase]:
        return iter(self._by_category.values())

    def __len__(self) -> int:
        return len(self._by_category)

    def __contains__(self, category: object) -> bool:
        return category in self._by_category

    def __repr__(self) -> str:
        return f"ConnectorRegistry({', '.join(str(c) for c in self._by_category)})"


@dataclass
class DiscoveryResult:
    """Connectors found through entry points, and the plugins that failed to load (name → one-line reason)."""

    connectors: list[ConnectorBase] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    """Task category string → the entry point (``name = value``) that provided it."""


def discover_connectors(group: str = ENTRY_POINT_GROUP) -> DiscoveryResult:
    """Load every entry point in ``group``. Each may name a connector class (instantiated without arguments), a
    connector instance, or a callable/iterable giving several. One broken plugin is reported, not fatal."""
    from flyteconnect._entry_points import entry_points  # importlib.metadata's answer without its imports

    result = DiscoveryResult()
    for ep in sorted(entry_points(group), key=lambda e: e.name):
        label = f"{ep.name} = {ep.value}"
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, type) and not isinstance(obj, ConnectorBase):
                obj = obj()
            found = iter_connectors([obj])
        except Exception as e:
            result.failures[label] = f"{type(e).__name__}: {e}"
            log.warning("connector plugin %s failed to load: %s", label, e)
            log.debug("%s", traceback.format_exc())
            continue
        for connector in found:
            result.connectors.append(connector)
            result.sources[str(connector.task_category)] = label
    return result
