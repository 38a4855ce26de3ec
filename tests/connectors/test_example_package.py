"""The example third-party package (examples/flyteconnect-example) works as an installed plugin, and its tests pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import tomllib

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flyteconnect-example"


def install_metadata(site: Path) -> None:
    """What ``pip install`` records for the package: a dist-info with the pyproject's entry points.

    Written directly (no build backend needed) so the test proves the pyproject's declaration is what discovery
    reads, without network access or a wheel build.
    """
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    lines = []
    for group, points in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {value}" for name, value in points.items())
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


def test_example_package_tests_pass(tmp_path: Path) -> None:
    install_metadata(tmp_path / "site")
    path = os.pathsep.join([str(tmp_path / "site"), str(EXAMPLE / "src"), os.environ.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=EXAMPLE,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "6 passed" in proc.stdout
