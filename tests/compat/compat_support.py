"""Running flyteconnect and flytekit processes of the compat virtualenv from tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""This checkout."""


def compat_env(**extra: str) -> dict[str, str]:
    """The environment of a subprocess: this checkout's sources first, no proxies, quiet flytekit."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    paths = [str(ROOT / "src"), str(ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("FLYTE_SDK_LOGGING_LEVEL", "40")  # flytekit's logger: errors only
    env.update(extra)
    return env


PYTHON = sys.executable
"""The compat virtualenv's interpreter (the suite runs in it)."""
