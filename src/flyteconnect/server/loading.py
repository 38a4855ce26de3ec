"""Find the connectors to serve: user modules (import paths or files), entry points and the classic registrations.

``load_connectors(...)`` never raises for a broken plugin: it returns what loaded, where each connector came from,
what failed (one line each) and which allow-list entries matched nothing, so ``serve`` can report it and decide
whether to start (``module_failures``: modules the operator named; ``plugin_failures``: the rest).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import os
import sys
import traceback
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flyteconnect.connector import ConnectorBase
from flyteconnect.registry import ENTRY_POINT_GROUP, ConnectorRegistry, discover_connectors

__all__ = ["LoadResult", "import_module", "load_connectors", "unregistered_connectors", "unregistered_message"]

log = logging.getLogger("flyteconnect.server")


@dataclass
class LoadResult:
    """The registry to serve, each category's source, and failures (source → one-line reason)."""

    registry: ConnectorRegistry
    sources: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    """Categories left out by the ``--connector`` allow-list."""
    warnings: dict[str, str] = field(default_factory=dict)
    """Source -> a likely mistake that is not a failure (a module defining connectors it never registers)."""
    unmatched: list[str] = field(default_factory=list)
    """Allow-list entries that matched no connector found (a typo, or a plugin that did not load)."""

    def module_failures(self) -> dict[str, str]:
        """Failures of modules named with ``-m`` (import errors, duplicate categories): source → reason."""
        return {source: reason for source, reason in self.failures.items() if source.startswith("module ")}

    def plugin_failures(self) -> dict[str, str]:
        """Every other failure: entry points and connectors registered before serve."""
        return {source: reason for source, reason in self.failures.items() if not source.startswith("module ")}


def import_module(spec: str) -> object:
    """Import ``spec``: a dotted module path, or a ``.py`` file (its directory goes on sys.path)."""
    # os.path, not pathlib: pathlib (with urllib.parse and ipaddress) is otherwise not needed to serve.
    if spec.endswith(".py") or os.path.isfile(spec):
        if not os.path.isfile(spec):
            raise ImportError(f"no such file: {spec}")
        directory = os.path.dirname(os.path.realpath(spec))
        if directory not in sys.path:
            sys.path.insert(0, directory)
        name = os.path.splitext(os.path.basename(spec))[0]
        if name in sys.modules:
            return sys.modules[name]
        module_spec = importlib.util.spec_from_file_location(name, spec)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot import {spec}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module
    return importlib.import_module(spec)


def _flytekit_connectors() -> Any:
    from flyteconnect.flytekit_compat import FlytekitConnectors

    return FlytekitConnectors()


def _flytekit_plugins(flytekit: Any, found: list[tuple[ConnectorBase, str]]) -> list[tuple[ConnectorBase, str]]:
    """flytekit's plugin connectors, less flytekit's own Sensor and Webhook where a built-in serves the task type."""
    from flyteconnect.flytekit_compat import FLYTEKIT_BUILT_IN

    taken = {c.task_category for c, _ in found}
    plugins = []
    for connector, source in flytekit.plugins():
        if source == FLYTEKIT_BUILT_IN and connector.task_category in taken:
            log.debug("flytekit's %s gives way to the built-in for %s", connector.name, connector.task_category)
            continue
        plugins.append((connector, source))
    return plugins


def unregistered_connectors(module: object, registered: Iterable[ConnectorBase]) -> list[type[ConnectorBase]]:
    """Connector classes ``module`` defines that nothing serves: no instance of the class is in ``registered``, no
    ``flyteconnect.connectors`` entry point names it, and it is not a base of one that is served.

    Forgetting ``ConnectorRegistry.register(MyConnector())`` is otherwise invisible (an empty table); ``serve``,
    ``list`` and ``check`` call this to say so.
    """
    name = getattr(module, "__name__", "")
    defined = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, ConnectorBase)
        and value.__module__ == name
        and not inspect.isabstract(value)
    ]
    if not defined:
        return []
    from flyteconnect._entry_points import entry_points  # as discovery reads them: no importlib.metadata

    served = {type(c) for c in registered}
    named: set[str] = set()
    for ep in entry_points(ENTRY_POINT_GROUP):
        module_name, _, attr = ep.value.partition(":")
        if module_name.strip() == name:
            named.add(attr.strip().split(".")[0])
    if any(not isinstance(vars(module).get(attr), type) for attr in named):
        return []  # an entry point names a factory or an instance of this module: it decides what is served
    return [
        cls
        for cls in defined
        if cls not in served and cls.__name__ not in named and not any(issubclass(s, cls) for s in served)
    ]


def unregistered_message(classes: Sequence[type[ConnectorBase]]) -> str:
    """What to tell the author about ``unregistered_connectors``: which classes, and the line that registers them."""
    names = ", ".join(c.__name__ for c in classes)
    fix = "; ".join(f"ConnectorRegistry.register({c.__name__}())" for c in classes)
    return (
        f"defines {names} but registers no instance, so nothing serves it: add `{fix}` at the end of the module "
        "(or name the class in a 'flyteconnect.connectors' entry point)"
    )


def _allowed(connector: ConnectorBase, allow: Collection[str] | None) -> bool:
    if not allow:
        return True
    cat = connector.task_category
    return connector.name in allow or cat.name in allow or str(cat) in allow


def load_connectors(
    modules: Sequence[str] = (),
    *,
    entry_points: bool = True,
    allow: Collection[str] | None = None,
    include_default: bool = True,
    flytekit_plugins: bool = False,
) -> LoadResult:
    """Build the registry to serve from modules, entry points and the process default registry.

    Modules register through the classic ``ConnectorRegistry.register`` at import (flytekit style); entry points name
    connector classes, instances or factories. A duplicate category is a failure of the later source.
    ``allow`` keeps only connectors whose name, task type or category string (``name_v0``) is listed.

    flytekit's connectors (``flyteconnect.flytekit_compat``): a module that imports flytekit and registers into
    its ConnectorRegistry has those connectors served too; ``flytekit_plugins`` adds every connector
    ``pyflyte serve connector`` would serve here. flytekit's own Sensor and Webhook Connector give way to the
    built-ins of the same task types. flytekit is imported only for ``flytekit_plugins`` or by a module itself.
    """
    cwd = os.path.realpath(os.getcwd())
    if cwd not in (os.path.realpath(p) for p in sys.path if p):
        sys.path.append(cwd)  # as pyflyte serve does, so `-m my_module` finds modules in the working directory
    default = ConnectorRegistry.default()
    result = LoadResult(ConnectorRegistry())
    found: list[tuple[ConnectorBase, str]] = []
    known = set(default.categories())
    if include_default:
        found.extend((c, "registered before serve") for c in default.connectors())
    flytekit: Any = None  # flytekit_compat.FlytekitConnectors, once flytekit is in play
    for spec in modules:
        try:
            module = import_module(spec)
        except BaseException as e:  # SystemExit or KeyboardInterrupt in a plugin must not kill discovery either
            if isinstance(e, KeyboardInterrupt):
                raise
            result.failures[f"module {spec}"] = f"{type(e).__name__}: {e}"
            log.error("connector module %s failed to import: %s", spec, e)
            log.debug("%s", traceback.format_exc())
            continue
        for c in default.connectors():
            if c.task_category not in known:
                known.add(c.task_category)
                found.append((c, f"module {spec}"))
        if "flytekit" in sys.modules:  # the module (or an earlier one) imported flytekit: what did it register?
            flytekit = flytekit or _flytekit_connectors()
            found.extend((c, f"module {spec}") for c in flytekit.registered_by(getattr(module, "__name__", spec)))
        forgotten = unregistered_connectors(module, default.connectors())
        if forgotten:
            result.warnings[f"module {spec}"] = unregistered_message(forgotten)  # the caller reports it
    if entry_points:
        discovered = discover_connectors()
        for label, reason in discovered.failures.items():
            result.failures[f"entry point {label}"] = reason
        for c in discovered.connectors:
            found.append((c, f"entry point {discovered.sources.get(str(c.task_category), '?')}"))
    if flytekit_plugins:
        flytekit = flytekit or _flytekit_connectors()
        found.extend(_flytekit_plugins(flytekit, found))
    if flytekit is not None:
        result.failures.update(flytekit.failures)
    if allow:
        named = {n for c, _ in found for n in (c.name, c.task_category.name, str(c.task_category))}
        result.unmatched = [entry for entry in allow if entry not in named]
    for connector, source in found:
        key = str(connector.task_category)
        if not _allowed(connector, allow):
            result.skipped.append(key)
            continue
        if connector.task_category in result.registry:
            existing = result.registry.get_connector(connector.task_type_name, connector.task_type_version)
            if result.sources.get(key) == source or type(existing) is type(connector):
                continue  # the same connector reached us twice (a module registered a built-in, say)
            result.failures[source] = f"duplicate task category {key}: already served from {result.sources[key]}"
            continue
        try:
            result.registry.register(connector)
        except Exception as e:
            result.failures[source] = f"{type(e).__name__}: {e}"
            continue
        result.sources[key] = source
    return result
