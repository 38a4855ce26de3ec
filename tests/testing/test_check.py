"""flyteconnect check: the conformance checklist catches each broken promise, and exits non-zero for CI."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

from click.testing import CliRunner

from flyteconnect.cli.main import cli
from flyteconnect.testing import check_connector

from .connectors import EchoConnector, SleepConnector

BROKEN_MODULE = """
import asyncio
import time
from dataclasses import dataclass, field
from typing import Optional

from flyteconnect import AsyncConnectorBase, ConnectorError, ConnectorRegistry, Phase, Resource, ResourceMeta


@dataclass
class Meta(ResourceMeta):
    job_id: str
    region: Optional[str] = None
    tags: list[str] = field(default_factory=list)


class LossyMeta(Meta):
    def encode(self):
        return ('{"job_id": "%s"}' % self.job_id).encode()   # forgets region and tags


class Good(AsyncConnectorBase[Meta]):
    name = "Good"
    task_type_name = "good"
    metadata_type = Meta

    async def create(self, task_template, output_prefix, inputs=None, **kw):
        return Meta("1")

    async def get(self, resource_meta, **kw):
        raise ConnectorError(f"no job {resource_meta.job_id}")

    async def delete(self, resource_meta, **kw):
        await asyncio.sleep(0)


ConnectorRegistry.register(Good(), override=True)  # the others are left out: check warns about them


class Blocking(Good):
    name = "Blocking"
    task_type_name = "blocking"

    async def get(self, resource_meta, **kw):
        time.sleep(0.3)
        return Resource(phase=Phase.RUNNING)


class Lossy(Good):
    name = "Lossy"
    task_type_name = "lossy"
    metadata_type = LossyMeta


class DeleteOnce(Good):
    name = "DeleteOnce"
    task_type_name = "delete_once"

    def __init__(self):
        super().__init__()
        self.jobs = {"flyteconnect-check-unknown-job": 1}

    def delete(self, resource_meta, **kw):
        del self.jobs[resource_meta.job_id]     # KeyError the second time
"""


def _statuses(results: list[dict[str, str]], connector: str) -> dict[str, str]:
    return {r["check"]: r["status"] for r in results if r["connector"].startswith(connector + " ")}


def test_each_broken_promise_is_caught(tmp_path: Path) -> None:
    module = tmp_path / "broken_connectors.py"
    module.write_text(textwrap.dedent(BROKEN_MODULE))
    # --budget 1: Blocking's jobs stay RUNNING, and the run check polls them only that long.
    outcome = CliRunner().invoke(cli, ["check", "--json", "--budget", "1", str(module)])
    assert outcome.exit_code == 1, outcome.output
    results = json.loads(outcome.output)
    good = _statuses(results, "Good")
    # Its run gets no inputs (the module defines no task) and its get refuses the job: a warning, not a failure.
    assert good.pop("run") == "warn"
    assert set(good.values()) == {"pass"} and len(good) == 7
    blocking = _statuses(results, "Blocking")
    assert blocking["metadata"] == "fail" and blocking["loop not blocked"] == "fail"
    assert _statuses(results, "Lossy")["resource_meta round-trip"] == "fail"
    assert _statuses(results, "DeleteOnce")["delete idempotent"] == "fail"
    detail = next(r["detail"] for r in results if r["check"] == "loop not blocked" and r["status"] == "fail")
    assert "get held the loop" in detail
    # Each failure names the author's line: the time.sleep call, the line that raised.
    metadata = next(r["detail"] for r in results if r["connector"].startswith("Blocking ") and r["check"] == "metadata")
    assert re.search(r"calls time\.sleep at .*broken_connectors\.py:\d+", metadata), metadata
    delete = next(
        r["detail"] for r in results if r["connector"].startswith("DeleteOnce ") and r["check"] == "delete idempotent"
    )
    assert re.search(r"second delete raised KeyError: .* at .*broken_connectors\.py:\d+ in delete", delete), delete


def test_readable_report_and_exit_zero_when_all_pass(tmp_path: Path) -> None:
    module = tmp_path / "good_only.py"
    module.write_text(textwrap.dedent(BROKEN_MODULE).split("class Blocking")[0])
    outcome = CliRunner().invoke(cli, ["check", str(module)])
    assert outcome.exit_code == 0, outcome.output
    assert "PASS" in outcome.output and "0 failed" in outcome.output


def test_import_failure_and_empty_module_fail(tmp_path: Path) -> None:
    (tmp_path / "empty_mod.py").write_text("x = 1\n")
    (tmp_path / "bad_mod.py").write_text("raise RuntimeError('nope')\n")
    empty = CliRunner().invoke(cli, ["check", str(tmp_path / "empty_mod.py")])
    bad = CliRunner().invoke(cli, ["check", str(tmp_path / "bad_mod.py")])
    assert empty.exit_code == 1 and "no connector" in empty.output
    assert bad.exit_code == 1 and "RuntimeError: nope" in bad.output


def test_library_api_on_instances() -> None:
    report = check_connector(SleepConnector())
    assert report.ok and report.exit_code() == 0
    sync = check_connector(EchoConnector())
    assert [(r.check, r.status) for r in sync.results] == [
        ("metadata", "pass"),
        ("run", "skip"),  # a sync connector without a task: nothing to run it with
        ("loop not blocked", "pass"),
    ]
