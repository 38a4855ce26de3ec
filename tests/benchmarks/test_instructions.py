"""The callgrind instruction-count mode: parsing callgrind's output, which scenarios it skips, and a smoke run.

The smoke run needs valgrind (scripts/test.sh installs it) and is skipped without it; it checks the machinery, never
the numbers (20 calls at 8 in flight say nothing about cost).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The suite is not an installed package: the repository root must be on the path, or `benchmarks` would resolve to
# this test directory (a namespace package, tests/ is on the path). A regular package anywhere on the path wins.
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from benchmarks import instructions, scenarios  # noqa: E402

# The header of a file callgrind writes on `callgrind_control --dump=get_running`, then its first cost lines.
DUMP = """# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 10543
cmd:  /work/main/.venv/bin/python -m benchmarks.bare_server --port 59641
part: 1


desc: I1 cache:
desc: D1 cache:
desc: LL cache:

desc: Timerange: Basic block 0 - 3566778
desc: Trigger: dump get_running

positions: line
events: Ir
summary: 15821902


ob=(28) /work/main/.venv/lib/python3.11/site-packages/google/_upb/_message.abi3.so
fn=(1) summary: not a header line
3 12
totals: 15821902
"""

# The file written at exit after that dump: instrumentation was off, and the count wraps around below zero.
AT_EXIT = DUMP.replace("part: 1", "part: 2").replace("Trigger: dump get_running", "Trigger: Program termination")
AT_EXIT = AT_EXIT.replace("summary: 15821902", "summary: 18446744073693729714")


def test_a_requested_dump_is_a_measured_window() -> None:
    dump = instructions.parse_dump(DUMP)
    assert dump == instructions.Dump(part=1, trigger="dump get_running", instructions=15821902)
    assert not dump.at_exit


def test_the_file_written_at_exit_is_not_a_window_and_its_wrapped_count_reads_negative() -> None:
    dump = instructions.parse_dump(AT_EXIT)
    assert dump.at_exit and dump.part == 2
    assert dump.instructions == 18446744073693729714 - 2**64 < 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (DUMP.replace("events: Ir", "events: Ir Dr Dw"), None),
        (DUMP.replace("events: Ir", "events: Dr"), "not callgrind output counting instructions"),
        (DUMP.replace("summary: 15821902\n", ""), "without a summary"),
        ("hello\n", "not callgrind output"),
    ],
)
def test_only_instruction_counts_with_a_summary_parse(text: str, message: str | None) -> None:
    if message is None:
        assert instructions.parse_dump(text).instructions == 15821902
    else:
        with pytest.raises(ValueError, match=message):
            instructions.parse_dump(text)


def test_scenarios_bounded_by_sleeping_or_parallelism_are_skipped_with_a_reason() -> None:
    skipped = {sc.name: instructions.skip_reason(sc) for sc in scenarios.SCENARIOS if instructions.skip_reason(sc)}
    assert set(skipped) == {"get_blocking_50ms", "get_outputs_workers2"}
    assert "thread pool" in (skipped["get_blocking_50ms"] or "")
    assert "parallelism" in (skipped["get_outputs_workers2"] or "")
    assert instructions.skip_reason(scenarios.by_name("get_await_50ms")) is None


@pytest.mark.slow
@pytest.mark.skipif(instructions.valgrind_version() is None, reason="valgrind is not installed")
def test_smoke_instructions_run_writes_a_complete_report(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "benchmarks", "--instructions", "--smoke", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    report = json.loads((tmp_path / "instructions.json").read_text())
    assert report["mode"] == "smoke" and report["machine"]["valgrind"].startswith("valgrind-")
    [sc] = report["scenarios"]
    assert sc["name"] == "get_running"
    for label in ("bare", "flyteconnect"):
        r = sc["results"][label]
        assert r["calls"] == r["grpc_ok"] == 20, (label, r)
        # A GetTask through grpc.aio costs hundreds of thousands of instructions: a few would mean a broken window.
        assert r["per_call"] > 10_000, (label, r)
    assert sc["ratio"] == round(
        sc["results"]["bare"]["instructions"] / sc["results"]["flyteconnect"]["instructions"], 3
    )

    markdown = (tmp_path / "instructions.md").read_text()
    assert "| GetTask, running (no outputs) | 8 | 20 |" in markdown
    assert report["machine"]["valgrind"] in markdown


def test_instructions_without_valgrind_is_a_clear_error(tmp_path: Path) -> None:
    # An empty PATH hides valgrind (and everything else): the mode must say what to install, not crash.
    cmd = [sys.executable, "-m", "benchmarks", "--instructions", "--smoke", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, env={"PATH": ""})
    assert proc.returncode == 2
    assert "needs valgrind" in proc.stderr
    assert not (tmp_path / "instructions.json").exists()
