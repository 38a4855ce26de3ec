"""Entry points of one group, read without ``importlib.metadata`` when every ``sys.path`` entry is a directory.

``flyteconnect serve`` discovers connectors at every start. ``importlib.metadata`` imports email, zipfile, csv and
their dependencies (about 28 ms of CPU at start-up here, a quarter of the whole server's) to answer a question that
only needs each installed distribution's ``entry_points.txt``. This reads those files directly, with
``importlib.metadata``'s rules: distributions are the ``*.dist-info`` and ``*.egg-info`` directories of the
``sys.path`` entries, the first of a (normalised) name wins, and the file is the INI-like format of the
packaging specification. Anything else on ``sys.path`` (a zip file, an egg, a custom finder) falls back to
``importlib.metadata``; a test checks both agree on this environment's groups.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["EntryPoint", "entry_points"]

_VALUE = re.compile(r"^(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?(\[.*\])?\s*$")
_SEPARATORS = re.compile(r"[-_.]+")


@dataclass(frozen=True)
class EntryPoint:
    """One entry point: ``name = value`` in ``group``; ``load()`` imports what ``value`` names."""

    name: str
    value: str
    group: str

    def load(self) -> Any:
        """The object ``module:attr.path`` names (the module itself without ``:attr``), as importlib.metadata does."""
        match = _VALUE.match(self.value)
        if match is None:
            raise ValueError(f"not an entry point reference: {self.value!r}")
        obj: Any = importlib.import_module(match.group("module"))
        for part in (match.group("attr") or "").split("."):
            if part:
                obj = getattr(obj, part)
        return obj


def entry_points(group: str) -> list[EntryPoint]:
    """The entry points of ``group`` of the installed distributions."""
    paths = [p or "." for p in sys.path]
    if not all(os.path.isdir(p) for p in paths if os.path.exists(p)) or _custom_finders():
        import importlib.metadata

        return [EntryPoint(ep.name, ep.value, group) for ep in importlib.metadata.entry_points(group=group)]
    seen: set[str] = set()
    found: list[EntryPoint] = []
    for path in paths:
        try:
            names = sorted(os.listdir(path))
        except OSError:
            continue
        for entry in names:
            stem, dot, suffix = entry.rpartition(".")
            if not dot or suffix not in ("dist-info", "egg-info"):
                continue
            distribution = _SEPARATORS.sub("_", stem.partition("-")[0]).lower()
            if distribution in seen:
                continue
            seen.add(distribution)
            found += _read(os.path.join(path, entry, "entry_points.txt"), group)
    return found


def _custom_finders() -> bool:
    """True when a meta path finder other than the standard ones may provide distributions (pex, zipapps...)."""
    standard = ("BuiltinImporter", "FrozenImporter", "PathFinder")
    for finder in sys.meta_path:
        name = getattr(finder, "__name__", type(finder).__name__)
        if name not in standard and hasattr(finder, "find_distributions"):
            return True
    return False


def _read(path: str, group: str) -> list[EntryPoint]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:  # no entry points (or unreadable): importlib.metadata gives none either
        return []
    found: list[EntryPoint] = []
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section == group and "=" in line:
            name, _, value = line.partition("=")
            found.append(EntryPoint(name.strip(), value.strip(), group))
    return found
