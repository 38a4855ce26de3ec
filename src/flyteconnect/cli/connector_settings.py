"""Per-connector policy settings from ``serve --connector-config FILE`` and ``--connector-setting NAME:KEY=VALUE``.

The file is JSON: ``{"<connector name or task category>": {"<setting>": value, ...}, ...}``, e.g.
``{"Remote Job Connector": {"poll_interval": 30, "rate": 5, "burst": 10}}``. A ``--connector-setting`` overrides
the file; its VALUE is read as JSON when it parses (``30``, ``false``), else as text. Settings override the
connector class's ``server_settings`` (``server.pipeline.Settings``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

__all__ = ["connector_settings"]


def connector_settings(path: str | None, items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The merged settings; ValueError naming the problem."""
    settings: dict[str, dict[str, Any]] = {}
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                loaded = json.load(f)
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read connector settings {path}: {e}") from None
        if not isinstance(loaded, dict) or not all(isinstance(v, dict) for v in loaded.values()):
            raise ValueError(f'{path}: expected {{"<connector>": {{"<setting>": value}}}}')
        settings = {str(name): dict(values) for name, values in loaded.items()}
    for item in items:
        target, eq, raw = item.partition("=")
        name, colon, key = target.rpartition(":")
        if not (eq and colon and name and key):
            raise ValueError(f"--connector-setting {item!r}: expected NAME:KEY=VALUE")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        settings.setdefault(name, {})[key] = value
    return settings
