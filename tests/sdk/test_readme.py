"""The README's code runs: its connector example works end to end (docs must not rot)."""

from __future__ import annotations

import asyncio
import re
import sys
import types
from pathlib import Path

import pytest
from flyteidl.core import tasks_pb2

from flyteconnect import ConnectorRegistry, LiteralMap, Phase, TaskTemplate
from flyteconnect.literals import to_literal_map

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


async def test_readme_connector_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    (source,) = python_blocks(README.read_text())
    monkeypatch.setattr(ConnectorRegistry, "_default", None)
    module = types.ModuleType("sleep_connector")
    monkeypatch.setitem(sys.modules, "sleep_connector", module)
    exec(compile(source, "README.md", "exec"), module.__dict__)

    connector = ConnectorRegistry.get_connector("sleep")
    template = TaskTemplate.from_flyte_idl(tasks_pb2.TaskTemplate(type="sleep"))
    inputs = LiteralMap.from_flyte_idl(to_literal_map({"seconds": 0.05}))
    meta = await connector.create(task_template=template, output_prefix="/tmp", inputs=inputs)
    first = await connector.get(resource_meta=meta)
    assert first.phase == Phase.RUNNING
    await asyncio.sleep(0.06)
    done = await connector.get(resource_meta=meta)
    assert done.phase == Phase.SUCCEEDED and done.outputs == {"slept": True}
    await connector.delete(resource_meta=meta)
    await connector.delete(resource_meta=meta)  # idempotent


def test_readme_gives_exactly_two_setup_commands() -> None:
    setup = README.read_text().split("## Set up", 1)[1].split("##", 1)[0]
    (bash,) = re.findall(r"```bash\n(.*?)```", setup, flags=re.S)
    commands = [line for line in bash.splitlines() if line.strip() and not line.startswith("#")]
    assert len(commands) == 2
    assert commands[1] == "bash scripts/test.sh"
    assert "bash scripts/test.sh" in (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()


def test_readme_connector_passes_the_conformance_check(tmp_path: Path) -> None:
    import subprocess

    (source,) = python_blocks(README.read_text())
    (tmp_path / "sleep_connector.py").write_text(source)
    cli = Path(sys.executable).with_name("flyteconnect")
    proc = subprocess.run(
        [str(cli), "check", "sleep_connector.py", "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '"fail"' not in proc.stdout
