"""flyteconnect new (issue 21 item 7): the generated package installs, passes its own tests and check as written.

The project is generated into a temporary directory and installed (editable, offline: --no-deps
--no-build-isolation) into a throwaway virtualenv that sees this one's packages, as an author would install it; its
entry point is then found by discovery, its tests run with pytest and ``flyteconnect check`` passes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from click.testing import CliRunner

from flyteconnect.cli.main import cli


def _throwaway_venv(where: Path) -> Path:
    """A virtualenv without pip whose site-packages chain to this interpreter's (a .pth running site.addsitedir)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    python = where / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    shared = sysconfig.get_paths()["purelib"]
    Path(purelib, "shared-site.pth").write_text(f"import site; site.addsitedir({shared!r})\n")
    return python


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the generated project, the python of the virtualenv it is installed in)."""
    root = tmp_path_factory.mktemp("new")
    result = CliRunner().invoke(cli, ["new", "acme-batch", "--dir", str(root / "acme-batch")])
    assert result.exit_code == 0, result.output
    python = _throwaway_venv(root / "venv")
    install = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", "."]
    # pip runs from this interpreter's site-packages (the venv has none of its own).
    proc = subprocess.run(install, cwd=root / "acme-batch", capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root / "acme-batch", python


def test_it_writes_a_package_with_an_entry_point_tests_and_a_dockerfile(project: tuple[Path, Path]) -> None:
    root, _ = project
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "egg-info" not in str(p))
    assert files == [
        "Dockerfile",
        "README.md",
        "pyproject.toml",
        "src/acme_batch/__init__.py",
        "src/acme_batch/connector.py",
        "tests/test_connector.py",
    ]
    pyproject = (root / "pyproject.toml").read_text()
    entry_point = 'acme_batch = "acme_batch.connector:AcmeBatchConnector"'
    assert f'[project.entry-points."flyteconnect.connectors"]\n{entry_point}' in pyproject
    dockerfile = (root / "Dockerfile").read_text()
    assert "FROM ${FLYTECONNECT_IMAGE}" in dockerfile and "USER 10001:10001" in dockerfile
    assert "USER 10001:10001" in (Path(__file__).parents[2] / "Dockerfile").read_text()  # the base image's user


def test_the_installed_entry_point_is_discovered(project: tuple[Path, Path]) -> None:
    root, python = project
    code = "from flyteconnect.registry import discover_connectors as d; r = d(); print(r.sources.get('acme_batch_v0'))"
    proc = subprocess.run([str(python), "-c", code], cwd=root.parent, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "acme_batch = acme_batch.connector:AcmeBatchConnector", proc.stderr


def test_the_generated_tests_pass(project: tuple[Path, Path]) -> None:
    root, python = project
    proc = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "FLYTECONNECT_RAW_PREFIX": str(root.parent / "raw")},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "6 passed" in proc.stdout


def test_check_passes_out_of_the_box(project: tuple[Path, Path]) -> None:
    root, python = project
    proc = subprocess.run(
        [str(python), "-m", "flyteconnect", "check", "acme_batch.connector", "--json"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "FLYTECONNECT_RAW_PREFIX": str(root.parent / "raw")},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(proc.stdout)
    assert {r["status"] for r in results} == {"pass"}, results
    assert {"registered", "run", "outputs"} - {r["check"] for r in results} == {"registered"}  # nothing left out


def test_names_and_refusals(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "file").write_text("x")
    not_empty = CliRunner().invoke(cli, ["new", "x-connector", "--dir", str(taken)])
    assert not_empty.exit_code == 2 and "exists and is not empty" in not_empty.output
    bad = CliRunner().invoke(cli, ["new", "9lives", "--dir", str(tmp_path / "n")])
    assert bad.exit_code == 2 and "starting with a letter" in bad.output
