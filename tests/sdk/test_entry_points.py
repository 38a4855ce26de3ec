"""flyteconnect._entry_points answers as importlib.metadata does, without importing it when it can."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from flyteconnect._entry_points import EntryPoint, entry_points


def both(group: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    ours = sorted((ep.name, ep.value) for ep in entry_points(group))
    theirs = sorted((ep.name, ep.value) for ep in importlib.metadata.entry_points(group=group))
    return ours, theirs


def test_every_group_of_this_environment_agrees_with_importlib_metadata() -> None:
    groups = {ep.group for dist in importlib.metadata.distributions() for ep in dist.entry_points}
    assert {"flyteconnect.connectors", "console_scripts", "pytest11"} <= groups
    for group in sorted(groups):
        ours, theirs = both(group)
        assert ours == theirs, group


def _dist(root: Path, name: str, text: str, folder: str = "") -> None:
    info = root / f"{folder}{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(text)


def test_the_first_distribution_of_a_name_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _dist(tmp_path / "a", "Fc.Shadow", "[fc_test.shadow]\nx = first:X\n")
    _dist(tmp_path / "b", "fc_shadow", "[fc_test.shadow]\nx = second:X\ny = second:Y\n")
    _dist(tmp_path / "b", "fc-other", "# a comment\n[other]\nz = z\n\n[fc_test.shadow]\n  w = other.mod:W [extra]\n")
    monkeypatch.syspath_prepend(str(tmp_path / "b"))
    monkeypatch.syspath_prepend(str(tmp_path / "a"))
    ours, theirs = both("fc_test.shadow")
    assert ours == theirs == [("w", "other.mod:W [extra]"), ("x", "first:X")]


def test_a_zip_on_the_path_falls_back_to_importlib_metadata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("fc_zipped-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: fc_zipped\nVersion: 1.0\n")
        z.writestr("fc_zipped-1.0.dist-info/entry_points.txt", "[fc_test.zipped]\nz = zipped:Z\n")
    monkeypatch.syspath_prepend(str(archive))
    ours, theirs = both("fc_test.zipped")
    assert ours == theirs == [("z", "zipped:Z")]


def test_load_imports_what_the_value_names() -> None:
    assert EntryPoint("j", "json", "g").load() is sys.modules["json"]
    assert EntryPoint("d", "json:JSONDecoder.decode", "g").load() is __import__("json").JSONDecoder.decode
    assert EntryPoint("e", "json:dumps [speed]", "g").load() is __import__("json").dumps
    with pytest.raises(ValueError, match="not an entry point reference"):
        EntryPoint("bad", "json:", "g").load()
    with pytest.raises(ModuleNotFoundError):
        EntryPoint("missing", "no_such_module_here:X", "g").load()


def test_discovery_does_not_import_importlib_metadata() -> None:
    code = (
        "import sys\n"
        "from flyteconnect.registry import discover_connectors\n"
        "assert discover_connectors().connectors\n"
        "print('importlib.metadata' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
