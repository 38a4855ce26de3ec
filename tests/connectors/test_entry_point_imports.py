"""Loading the default entry points (what ``flyteconnect serve`` does) imports no connector's heavy library.

The built-ins import httpx, fsspec and psycopg on first use: a server that never runs a webhook, a remote sensor or a
query does not pay their start-up time and memory. Checked in a fresh interpreter, where nothing was imported yet.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("httpx", "httpcore", "fsspec", "s3fs", "botocore", "aiohttp", "psycopg", "psycopg_pool", "pyarrow", "rich")

PROBE = f"""
import json, sys
from flyteconnect.registry import discover_connectors
found = discover_connectors()
print(json.dumps({{
    "sources": sorted(found.sources.values()),
    "failures": found.failures,
    "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules),
}}))
"""


def test_loading_the_default_entry_points_imports_no_heavy_library() -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout)
    assert loaded["failures"] == {}
    # The built-ins were really loaded (else the check below would prove nothing).
    assert {
        "postgres = flyteconnect.connectors.postgres:PostgresConnector",
        "sensor = flyteconnect.connectors.file_sensor:FileSensorConnector",
        "webhook = flyteconnect.connectors.webhook:WebhookConnector",
    } <= set(loaded["sources"])
    assert loaded["heavy"] == []


def test_the_probe_sees_a_heavy_import() -> None:
    """The check above can fail: a run that does import one of them is reported."""
    probe = PROBE.replace("found = discover_connectors()", "found = discover_connectors(); import fsspec")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "fsspec" in json.loads(proc.stdout)["heavy"]
