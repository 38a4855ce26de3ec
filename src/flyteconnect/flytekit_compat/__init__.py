"""Serve flytekit's connectors unchanged (``flyteconnect serve --flytekit-plugins``, ``serve -m`` of a module that
registers into flytekit's ConnectorRegistry). Needs the ``flytekit`` extra; flytekit is imported only from here,
and this package only when asked for: ``import flyteconnect.flytekit_compat`` does not import flytekit itself.
"""

from __future__ import annotations

from flyteconnect.flytekit_compat.discovery import FLYTEKIT_BUILT_IN, FlytekitConnectors, flytekit_imported

__all__ = ["FLYTEKIT_BUILT_IN", "FlytekitConnectors", "flytekit_imported"]
