"""The runnable example of each connector docs page runs, against the test systems, as a user would run it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "connectors"


def run_example(page: str, tmp_path: Path, env: dict[str, str]) -> str:
    """Run the page's ``python`` block as a script; return its stdout (fails the test with stderr otherwise)."""
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S)
    assert len(blocks) == 1, f"{page}: expected one runnable python block, found {len(blocks)}"
    script = tmp_path / "example.py"
    script.write_text(blocks[0])
    proc = subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_webhook_page(tmp_path: Path, http_server: Any) -> None:
    env = {"WEBHOOK_URL": http_server.url + "/echo", "FLYTECONNECT_EGRESS_ALLOW": "127.0.0.1"}
    out = run_example("webhook.md", tmp_path, env)
    assert out.strip() == "200 {'text': 'run r-42 finished'}"
    sent = http_server.requests[-1]
    assert sent["headers"]["authorization"] == "Bearer example-token"


def test_file_sensor_page(tmp_path: Path) -> None:
    target = tmp_path / "export" / "_SUCCESS"
    target.parent.mkdir()
    out = run_example("file-sensor.md", tmp_path, {"SENSOR_PATH": str(target)})
    # the example's stand-in "upstream job" writes the file a second later; the sensor waited for it
    assert out.strip() == f"found {target}"
    assert target.read_text() == "done"


@pytest.mark.postgres
def test_postgres_page(tmp_path: Path, postgres_server: Any) -> None:
    out = run_example("postgres.md", tmp_path, {"_FSEC_POSTGRES_DSN": postgres_server.dsn})
    lines = out.strip().splitlines()
    assert lines[0] == "3 [{'id': 3, 'total': 30.0}, {'id': 4, 'total': 40.0}, {'id': 5, 'total': 50.0}]"
    assert lines[1].endswith("/orders")
