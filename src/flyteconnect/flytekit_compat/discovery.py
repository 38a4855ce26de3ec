"""Find the connectors registered in flytekit's ``ConnectorRegistry`` and wrap each once.

Two ways in, both used by ``flyteconnect.server.loading``:

- ``plugins()``: what ``pyflyte serve connector`` serves from the same environment, found the way flytekit finds
  it: ``import flytekit`` runs its ``load_implicit_plugins()`` (every ``flytekit.plugins`` entry point; each plugin's
  import registers its connectors) and registers the Sensor; ``flytekit.extras.webhook`` registers the Webhook
  Connector. flytekit aborts its own import when one plugin fails to import: that is reported as one failure.
- ``registered_by(module)``: after a served module was imported (``serve -m``), the connectors it registered into
  flytekit's registry. Connectors of flytekit itself and of installed plugins came with ``import flytekit``, not
  from the module, and are left to ``plugins()`` (unless they are defined in the module itself).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flyteconnect.connector import ConnectorBase

__all__ = ["FLYTEKIT_BUILT_IN", "FlytekitConnectors", "flytekit_imported"]

log = logging.getLogger("flyteconnect.server")

FLYTEKIT_BUILT_IN = "flytekit (built in)"
"""The source of flytekit's own Sensor and Webhook Connector (flyteconnect has built-ins for both task types)."""


def flytekit_imported() -> bool:
    """True once something in this process imported flytekit's connector framework."""
    return "flytekit.extend.backend.base_connector" in sys.modules


@dataclass
class FlytekitConnectors:
    """The flytekit connectors found so far in this process, each wrapped once (``flytekit_compat.wrap``)."""

    failures: dict[str, str] = field(default_factory=dict)
    _taken: set[int] = field(default_factory=set)

    def plugins(self) -> list[tuple[ConnectorBase, str]]:
        """Every connector ``pyflyte serve connector`` would serve here (not yet taken), with its source."""
        try:
            # Plugins log to stdout while they import (airflow configures its logging then; flytekit's console
            # handler is created then): send that to stderr, where logs go, so stdout stays the command's output.
            with contextlib.redirect_stdout(sys.stderr):
                importlib.import_module("flytekit")
                importlib.import_module("flytekit.extras.webhook")
        except Exception as e:  # pyflyte would not start at all; we serve the rest and say why these are missing
            if isinstance(e, ModuleNotFoundError) and e.name == "flytekit":
                reason = "flytekit is not installed: pip install 'flyteconnect[flytekit]' and the plugins to serve"
            else:
                reason = f"import flytekit failed: {type(e).__name__}: {e}"
            self.failures["flytekit plugins"] = reason
            log.error("flytekit plugins: %s", reason)
            return []
        plugins = _plugin_modules()
        return [(wrapped, _source(fk, plugins)) for fk, wrapped in self._new()]

    def registered_by(self, module: str) -> list[ConnectorBase]:
        """The connectors that ``module`` (just imported) registered into flytekit's ConnectorRegistry."""
        if not flytekit_imported():
            return []
        plugins = _plugin_modules()
        wanted = lambda c: _within(type(c).__module__, module) or not _implicit(c, plugins)  # noqa: E731
        return [wrapped for _, wrapped in self._new(wanted)]

    def _new(self, wanted: Any = None) -> Iterator[tuple[Any, ConnectorBase]]:
        from flytekit.extend.backend.base_connector import ConnectorRegistry

        from flyteconnect.flytekit_compat.adapter import wrap

        for agent in ConnectorRegistry.list_connectors():
            for category in agent.supported_task_categories:
                try:
                    fk = ConnectorRegistry.get_connector(category.name, category.version)
                except Exception:  # stale metadata of an overridden registration: nothing to serve
                    continue
                if id(fk) in self._taken or (wanted is not None and not wanted(fk)):
                    continue
                self._taken.add(id(fk))
                try:
                    yield fk, wrap(fk)
                except Exception as e:
                    self.failures[f"flytekit connector {agent.name}"] = f"{type(e).__name__}: {e}"


def _plugin_modules() -> dict[str, str]:
    """Module → entry point name of every ``flytekit.plugins`` entry point (what ``import flytekit`` loads)."""
    return {ep.value.split(":")[0]: ep.name for ep in importlib.metadata.entry_points(group="flytekit.plugins")}


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _implicit(connector: Any, plugins: dict[str, str]) -> bool:
    """True for connectors ``import flytekit`` registers by itself (flytekit's own and the installed plugins')."""
    module = type(connector).__module__
    return _within(module, "flytekit") or any(_within(module, p) for p in plugins)


def _source(connector: Any, plugins: dict[str, str]) -> str:
    module = type(connector).__module__
    if _within(module, "flytekit"):
        return FLYTEKIT_BUILT_IN
    for plugin, name in plugins.items():
        if _within(module, plugin):
            return f"flytekit plugin {name} ({plugin})"
    return f"flytekit registry ({module})"
