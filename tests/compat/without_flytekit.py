"""Run the ``flyteconnect`` command as if flytekit and its plugins were not installed.

The compat virtualenv has them installed (to serve them unchanged); a migrated connector must not need them, so this
entry point makes every import of ``flytekit`` or ``flytekitplugins`` fail, whoever tries it, then runs the CLI:

    python tests/compat/without_flytekit.py list -m flytekitplugins.mmcloud.connector
"""

from __future__ import annotations

import importlib.abc
import sys

BLOCKED = ("flytekit", "flytekitplugins")


class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname.split(".")[0] in BLOCKED and not _is_output(fullname, path):
            raise ModuleNotFoundError(f"No module named {fullname!r} (flytekit is blocked)", name=fullname)


def _is_output(fullname: str, path: object) -> bool:
    """A migrated package under the output directory (on PYTHONPATH) keeps its name, e.g. flytekitplugins.x."""
    import importlib.machinery
    import os

    roots = [p for p in os.environ.get("MIGRATED_OUTPUT", "").split(os.pathsep) if p]
    search = list(path) if path is not None else roots  # type: ignore[call-overload]
    spec = importlib.machinery.PathFinder.find_spec(
        fullname, [p for p in search if any(p.startswith(r) for r in roots)]
    )
    return spec is not None


if __name__ == "__main__":
    sys.meta_path.insert(0, _Blocker())
    from flyteconnect.cli.main import main

    sys.argv[0] = "flyteconnect"
    main()
