"""CI smoke test of the performance suite: it runs with tiny sizes and writes a well-formed report.

Never asserts on speed: the numbers of a smoke run are meaningless, only the machinery is checked (servers start,
h2load drives them, every call is verified gRPC OK, the JSON and markdown reports are complete).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_smoke_run_writes_a_complete_report(tmp_path: Path) -> None:
    proc = _run(["--smoke", "--out", str(tmp_path)], timeout=110)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    report = json.loads((tmp_path / "latest.json").read_text())
    names = [sc["name"] for sc in report["scenarios"]]
    assert {"list_agents", "create", "get_outputs", "get_running", "delete", "execute_sync"} <= set(names)
    assert {"get_await_50ms", "get_blocking_50ms", "get_outputs_workers2", "get_outputs_v2"} <= set(names)
    for sc in report["scenarios"]:
        versus = [sc["versus"]["label"]] if "versus" in sc else []
        assert set(sc["results"]) == {"bare", sc["subject"], *versus}, sc["name"]
        for label, r in sc["results"].items():
            assert r["req_per_s"] > 0, (sc["name"], label)
            assert r["failed"] == 0 and r["grpc_ok"] == r["succeeded"] > 0, (sc["name"], label, r)
            assert r["latency_ms"]["p50"] <= r["latency_ms"]["p99"], (sc["name"], label)
            assert r["cpu_us_per_req"] > 0, (sc["name"], label)
        assert sc["ratio"] > 0, sc["name"]
    # Flyte 2 GetTask is also measured against Flyte 1 GetTask on the same server, back to back.
    v2 = next(sc for sc in report["scenarios"] if sc["name"] == "get_outputs_v2")
    assert v2["versus"]["label"] == "flyteconnect:get_outputs" and v2["versus"]["ratio"] > 0
    assert v2["results"]["flyteconnect"]["reply_bytes"] > 0
    assert v2["results"]["flyteconnect:get_outputs"]["reply_bytes"] > 0
    for label in ("bare", "flyteconnect", "flyteconnect-w2"):
        server = report["servers"][label]
        assert server["startup_s"] > 0 and server["idle_rss_mib"] > 0 and server["rss_after_load_mib"] > 0
    # The default serve (entry points, built-ins) is measured for start-up and memory beside them.
    default = report["servers"]["flyteconnect-default"]
    assert default["startup_s"] > 0 and default["idle_rss_mib"] > 0
    targets = {t["target"]: t for t in report["targets"]}
    assert "default serve (built-ins) startup minus bare's (s)" in targets
    assert "startup to first answered ListAgents (s)" in targets and "idle RSS (MiB)" in targets
    versus_row = next(t for t in report["targets"] if "on the same flyteconnect server" in t["target"])
    assert versus_row["value"] == v2["versus"]["ratio"] and versus_row["required"] == ">= 0.9"
    assert targets["every measured call answered gRPC OK"]["pass"] is True
    assert all(isinstance(t["pass"], bool) for t in report["targets"])

    markdown = (tmp_path / "latest.md").read_text()
    assert markdown.count("\n| ") >= len(names) + 3 + len(report["targets"])
    assert "| Scenario | compared with |" in markdown
    assert "| Scenario |" in markdown and "| Target |" in markdown and report["machine"]["cpu"] in markdown


def test_smoke_startup_compares_the_default_serve_with_bare(tmp_path: Path) -> None:
    proc = _run(["--startup", "--smoke", "--startup-runs", "2", "--out", str(tmp_path)], timeout=90)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    report = json.loads((tmp_path / "startup-smoke.json").read_text())
    assert list(report["servers"]) == ["bare", "flyteconnect", "flyteconnect-default"]
    for server in report["servers"].values():
        assert len(server["startup_all_s"]) == len(server["idle_rss_all_mib"]) == 2
        assert server["startup_s"] > 0 and server["idle_rss_mib"] > 0 and server["startup_cpu_ms"] > 0
    assert "flyteconnect serve, default entry points" in report["servers"]["flyteconnect-default"]["description"]
    rows = {t["target"]: t for t in report["targets"]}
    startup = rows["default serve (built-ins) startup minus bare's (s)"]
    bare, default = report["servers"]["bare"], report["servers"]["flyteconnect-default"]
    assert startup["value"] == round(default["startup_s"] - bare["startup_s"], 3) and startup["required"] == "<= 0.1"
    memory = rows["default serve (built-ins) idle RSS minus bare's (MiB)"]
    assert memory["value"] == round(default["idle_rss_mib"] - bare["idle_rss_mib"], 1) and memory["required"] == "<= 6"
    assert isinstance(startup["pass"], bool) and isinstance(memory["pass"], bool)
    markdown = (tmp_path / "startup-smoke.md").read_text()
    assert "| flyteconnect-default (" in markdown and "| Target |" in markdown


def test_smoke_soak_samples_memory(tmp_path: Path) -> None:
    proc = _run(["--soak", "--smoke", "--soak-calls", "600", "--soak-every", "200", "--out", str(tmp_path)], 60)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    report = json.loads((tmp_path / "soak-smoke.json").read_text())
    assert report["calls"] == 600 and report["failed_calls"] == 0
    assert [s["calls"] for s in report["samples"]] == [0, 200, 400, 600]
    assert all(s["rss_mib"] > 0 for s in report["samples"])
    assert isinstance(report["pass"], bool) and "growth_after_warmup_mib" in report
    assert "RSS growth after the first chunk" in (tmp_path / "soak-smoke.md").read_text()


def test_unknown_scenario_is_a_clear_error() -> None:
    proc = _run(["--scenario", "no_such_scenario"], timeout=30)
    assert proc.returncode != 0
    assert "unknown scenario(s) no_such_scenario; known: list_agents" in proc.stderr


def test_pinned_child_processes_run_on_the_given_cpu() -> None:
    import subprocess
    import sys

    from benchmarks.proc import pinned_to

    assert pinned_to(None) is None
    out = subprocess.run(
        [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
        capture_output=True,
        text=True,
        preexec_fn=pinned_to((0,)),
        check=True,
    ).stdout
    assert out.strip() == "[0]"


def test_ab_smoke_compares_a_commit_with_this_checkout_and_cleans_up() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.ab", "HEAD", "--smoke", "--scenario", "get_outputs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (row,) = [line for line in proc.stdout.splitlines() if line.startswith("| get_outputs |")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert all(float(c.replace(",", "")) > 0 for c in cells[1:7])  # three req/s and three ratios
    assert all(float(us) > 0 for us in cells[7].split("/"))  # CPU per call of each server
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "flyteconnect-ab-" not in worktrees


def test_polling_benchmark_counts_the_calls_pacing_saves() -> None:
    # The call counts are exact (a simulated clock): 200 jobs polled every 10 s for 60 s are 1,200 polls; with a
    # 60 s poll_interval each job reaches the connector once.
    from benchmarks.polling import external_calls

    counts = external_calls(jobs=200, period=10.0, interval=60.0, seconds=60.0)
    assert counts.polls == 1200
    assert counts.without == 1200 / 60 and counts.paced == 200 / 60
    assert abs(counts.ratio - 1 / 6) < 1e-9


def test_polling_benchmark_runs_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    # Tiny sizes: three servers (paced in memory, paced on a redis-server it starts, unpaced) under h2load, and the
    # memory of both stores; every GetTask is checked OK by the benchmark itself.
    from benchmarks.polling import main

    assert main(["--jobs", "100", "--seconds", "20", "--requests", "300", "--rounds", "1"]) == 0
    report = capsys.readouterr().out
    for line in ("| **Redis / in-memory** |", "| in-memory store (tracemalloc) |", "| Redis (INFO used_memory) |"):
        assert line in report
