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

# A later dump of the same process (instrumentation was switched off and on between the windows): callgrind's summary
# is the difference to the previous dump, here wrapped below zero; totals (the sum of the cost lines) is the window.
LATER = DUMP.replace("part: 1", "part: 3").replace("dump get_running", "dump get_outputs")
LATER = LATER.replace("summary: 15821902", "summary: 18446744073677342432").replace(
    "totals: 15821902", "totals: 474853731"
)

# The file written at exit: not a measured window.
AT_EXIT = DUMP.replace("part: 1", "part: 9").replace("Trigger: dump get_running", "Trigger: Program termination")


def test_a_requested_dump_is_a_measured_window() -> None:
    dump = instructions.parse_dump(DUMP)
    assert dump == instructions.Dump(part=1, trigger="dump get_running", instructions=15821902)
    assert not dump.at_exit


def test_a_later_dump_counts_its_totals_not_its_wrapped_summary() -> None:
    dump = instructions.parse_dump(LATER)
    assert dump == instructions.Dump(part=3, trigger="dump get_outputs", instructions=474853731)


def test_the_file_written_at_exit_is_not_a_measured_window() -> None:
    dump = instructions.parse_dump(AT_EXIT)
    assert dump.at_exit and dump.part == 9


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (DUMP.replace("events: Ir", "events: Ir Dr Dw"), 15821902),
        (LATER.replace("totals: 474853731\n", ""), 18446744073677342432 - 2**64),  # no totals: the summary, signed
        (DUMP.replace("events: Ir", "events: Dr"), "not callgrind output counting instructions"),
        (DUMP.replace("summary: 15821902\n", "").replace("totals: 15821902\n", ""), "without a totals"),
        ("hello\n", "not callgrind output"),
    ],
)
def test_only_instruction_counts_parse(text: str, expected: int | str) -> None:
    if isinstance(expected, int):
        assert instructions.parse_dump(text).instructions == expected
    else:
        with pytest.raises(ValueError, match=expected):
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
    assert [sc["name"] for sc in report["scenarios"]] == ["get_running", "delete"]
    for sc in report["scenarios"]:
        for label in ("bare", "flyteconnect"):
            r = sc["results"][label]
            assert r["calls"] == r["grpc_ok"] == 20, (sc["name"], label, r)
            # A call through grpc.aio costs hundreds of thousands of instructions: far fewer means a broken window
            # (the second window of each process is where callgrind's summary: header goes wrong).
            assert r["per_call"] > 100_000, (sc["name"], label, r)
        bare, fc = sc["results"]["bare"]["instructions"], sc["results"]["flyteconnect"]["instructions"]
        assert sc["ratio"] == round(bare / fc, 3)

    markdown = (tmp_path / "instructions.md").read_text()
    assert "| GetTask, running (no outputs) | 8 | 20 |" in markdown and "| DeleteTask | 8 | 20 |" in markdown
    assert report["machine"]["valgrind"] in markdown


def test_instructions_without_valgrind_is_a_clear_error(tmp_path: Path) -> None:
    # An empty PATH hides valgrind (and everything else): the mode must say what to install, not crash.
    cmd = [sys.executable, "-m", "benchmarks", "--instructions", "--smoke", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, env={"PATH": ""})
    assert proc.returncode == 2
    assert "needs valgrind" in proc.stderr
    assert not (tmp_path / "instructions.json").exists()
