"""Instructions per call under callgrind: a deterministic companion to the req/s ratios of the suite.

Each server runs under ``valgrind --tool=callgrind --instr-atstart=no`` (nothing is counted while it starts). For each
scenario: a warm-up with h2load, ``callgrind_control -i on PID``, N calls with h2load, ``callgrind_control --dump``,
``-i off``. The dump's ``totals:`` line is every instruction the process executed in that window, on all its threads
(the event loop, grpc's C-core threads, the thread pool), divided by N. On a shared machine req/s ratios move by
+-0.15 between runs; instruction counts repeat to 1-2 %, so per-call framework cost can be compared.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.frames import write_body
from benchmarks.h2load import run_h2load
from benchmarks.runner import machine_info
from benchmarks.scenarios import Scenario, by_name
from benchmarks.servers import RunningServer, ServerSpec, start
from benchmarks.verify import reply_frame_bytes

__all__ = [
    "CallgrindServer",
    "Dump",
    "InstructionsError",
    "Window",
    "measure",
    "parse_dump",
    "run_instructions",
    "skip_reason",
    "to_markdown",
    "valgrind_version",
    "write_report",
]

Log = Callable[[str], None]
WARM_UP_CALLS = 300
STARTUP_TIMEOUT_S = 300.0
"""Starting Python with grpc and flyteidl under valgrind takes 5-20 s; a loaded machine can make it much longer."""


class InstructionsError(RuntimeError):
    """valgrind is missing, callgrind_control failed, or a measured call did not answer gRPC OK."""


@dataclass(frozen=True)
class Dump:
    """The header of one callgrind output file: which part of the run, why it was written, instructions counted."""

    part: int
    trigger: str
    instructions: int

    @property
    def at_exit(self) -> bool:
        """Written when the program ended: what ran after the last requested dump, not a measured window."""
        return self.trigger.startswith("Program termination")


def parse_dump(text: str) -> Dump:
    """Read ``part``, the trigger and the instructions counted in callgrind output (raises ValueError).

    The count is the ``totals:`` line (the sum of the file's cost lines), not the ``summary:`` header: after the
    first dump of a run that switches instrumentation off and on, callgrind 3.19 writes as summary the difference to
    the previous dump's total, negative (wrapped around 2^64) when this window cost less. A file without totals
    falls back to its summary.
    """
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if key == "desc" and value.strip().startswith("Trigger:"):
            key, value = "trigger", value.strip().removeprefix("Trigger:")
        if sep and key in ("part", "trigger", "events", "summary", "totals"):
            fields.setdefault(key, value.strip())
    if fields.get("events", "").split()[:1] != ["Ir"]:
        raise ValueError(f"not callgrind output counting instructions (events: {fields.get('events')!r})")
    count_field = fields.get("totals") or fields.get("summary")
    if not count_field:
        raise ValueError("callgrind output without a totals: or summary: line")
    count = int(count_field.split()[0])
    if count >= 2**63:  # a wrapped-around negative summary
        count -= 2**64
    return Dump(part=int(fields.get("part", "1")), trigger=fields.get("trigger", "").strip(), instructions=count)


def valgrind_version() -> str | None:
    """``valgrind --version`` (e.g. ``valgrind-3.19.0``), or None when valgrind or callgrind_control is missing."""
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        return None
    return subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip() or None


def skip_reason(sc: Scenario) -> str | None:
    """Why instructions per call say nothing about ``sc`` (None: it is measured)."""
    if sc.pool_bound:
        return "bounded by the thread pool sleeping (pool size / 50 ms), not by instructions; see the req/s suite"
    if sc.subject != "flyteconnect":
        return (
            f"compares {sc.subject} (several processes) with one bare process: a question of parallelism; "
            "per call each worker runs the single-process instructions"
        )
    return None


@dataclass(frozen=True)
class Window:
    """One measured window of one scenario on one server: calls, concurrency, instructions counted, calls OK."""

    calls: int
    in_flight: int
    instructions: int
    grpc_ok: int

    @property
    def per_call(self) -> float:
        """Instructions per call."""
        return self.instructions / self.calls


class CallgrindServer:
    """A server started under callgrind with instrumentation off; :meth:`measure` counts one scenario's calls."""

    def __init__(self, spec: ServerSpec, work_dir: Path, timeout: float = STARTUP_TIMEOUT_S) -> None:
        if valgrind_version() is None:
            raise InstructionsError("valgrind is not installed: apt-get install -y valgrind")
        self.spec = spec
        self.work_dir = work_dir
        self.dump_dir = Path(tempfile.mkdtemp(prefix=f"callgrind-{spec.label}-", dir=work_dir))
        self._seen: set[Path] = set()
        out_file = f"--callgrind-out-file={self.dump_dir}/cg.%p"
        wrapped = ServerSpec(
            spec.label,
            lambda port: ["valgrind", "--tool=callgrind", "--instr-atstart=no", out_file, *spec.argv(port)],
            # A fixed hash seed: set and dict layouts (and so the instructions spent on them) repeat between runs.
            env={**spec.env, "PYTHONHASHSEED": "0"},
            description=spec.description,
        )
        self.server: RunningServer = start(wrapped, work_dir / "logs", timeout=timeout)

    def __enter__(self) -> CallgrindServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the server (the file callgrind writes at exit is ignored)."""
        self.server.stop()

    def _control(self, *args: str) -> None:
        # Always name the pid: without one callgrind_control acts on every callgrind run on the machine.
        cmd = ["callgrind_control", *args, str(self.server.pid)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0 or "Error" in proc.stdout:
            raise InstructionsError(f"{' '.join(cmd)} failed: {(proc.stdout + proc.stderr).strip()[-500:]}")

    def _new_dumps(self, wait: float = 0.0) -> list[Dump]:
        """Parse the dump files written since the last call (cg.PID.N; the exit file cg.PID has no suffix)."""
        deadline = time.monotonic() + wait
        while True:
            paths = sorted(set(self.dump_dir.glob(f"cg.{self.server.pid}.*")) - self._seen)
            if paths or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        self._seen.update(paths)
        return [d for d in (parse_dump(p.read_text(errors="replace")) for p in paths) if not d.at_exit]

    def measure(
        self, sc: Scenario, calls: int, warm_up: int = WARM_UP_CALLS, in_flight_cap: int | None = None
    ) -> Window:
        """Warm up, then count the instructions of ``calls`` calls of ``sc`` (every one checked gRPC OK)."""
        in_flight = min(sc.in_flight, in_flight_cap or sc.in_flight)
        clients = min(sc.clients, in_flight)
        streams = max(1, -(-in_flight // clients))
        body = write_body(self.dump_dir / f"{sc.name}.bin", sc.messages())
        frame_bytes = reply_frame_bytes(self.server.port, sc, timeout=60.0)
        url = self.server.url(sc.path)
        if warm_up:
            run_h2load(url, body, warm_up, clients, streams)
        self._new_dumps()  # nothing should be there; forget anything that is
        self._control("--instr=on")
        try:
            result = run_h2load(url, body, calls, clients, streams)
            self._control(f"--dump={sc.name}")
        finally:
            self._control("--instr=off")
        dumps = self._new_dumps(wait=30.0)  # --dump returns once written; the wait is for a slow filesystem
        if not dumps:
            raise InstructionsError(f"{self.spec.label} {sc.name}: no callgrind dump appeared in {self.dump_dir}")
        counted = sum(d.instructions for d in dumps)
        if counted <= 0:
            raise InstructionsError(f"{self.spec.label} {sc.name}: callgrind counted {counted} instructions")
        grpc_ok = min(result.succeeded, result.body_bytes // frame_bytes if frame_bytes else result.succeeded)
        if grpc_ok != calls:
            raise InstructionsError(f"{self.spec.label} {sc.name}: {grpc_ok} of {calls} calls answered gRPC OK")
        return Window(calls, clients * streams, counted, grpc_ok)


def measure(spec: ServerSpec, scenario: Scenario, calls: int, work_dir: Path | None = None) -> float:
    """Instructions per call of ``calls`` calls of ``scenario`` on a fresh ``spec`` server under callgrind."""
    work = work_dir or Path(tempfile.mkdtemp(prefix="flyteconnect-instructions-"))
    with CallgrindServer(spec, work) as server:
        return server.measure(scenario, calls).per_call


def run_instructions(
    scenarios: Iterable[Scenario],
    specs: dict[str, ServerSpec],
    calls: int = 1000,
    warm_up: int = WARM_UP_CALLS,
    in_flight_cap: int | None = None,
    work_dir: Path | None = None,
    log: Log = print,
    mode: str = "full",
) -> dict[str, Any]:
    """Measure every meaningful scenario on ``specs["bare"]`` and ``specs["flyteconnect"]``; return the report dict.

    One process per server serves all scenarios in turn (starting under valgrind is slow); each scenario has its own
    warm-up and measured window. A scenario runs at least twice its in-flight calls, so the window is not all ramp.
    """
    version = valgrind_version()
    if version is None:
        raise InstructionsError("valgrind is not installed: apt-get install -y valgrind")
    work = work_dir or Path(tempfile.mkdtemp(prefix="flyteconnect-instructions-"))
    selected = list(scenarios)
    measured = [sc for sc in selected if skip_reason(sc) is None]
    info = {**machine_info(), "valgrind": version, "source": _source_state()}
    log(f"machine: {info['nproc']} x {info['cpu']}, {version}; {len(measured)} scenario(s), {calls} calls each")
    windows: dict[str, dict[str, Window]] = {sc.name: {} for sc in measured}
    for label in ("bare", "flyteconnect"):
        t0 = time.monotonic()
        with CallgrindServer(specs[label], work) as server:
            log(f"{label}: started under callgrind in {server.server.startup_s:.1f} s")
            for sc in measured:
                n = max(calls, 2 * min(sc.in_flight, in_flight_cap or sc.in_flight))
                windows[sc.name][label] = w = server.measure(sc, n, warm_up, in_flight_cap)
                log(f"  {sc.name}: {w.per_call / 1000:,.1f} k instructions/call ({n} calls)")
        log(f"{label}: {time.monotonic() - t0:.0f} s")
    info["loadavg_end"] = list(os.getloadavg())
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "mode": mode,
        "machine": info,
        "settings": {"calls": calls, "warm_up": warm_up, "in_flight_cap": in_flight_cap},
        "servers": {label: specs[label].description for label in ("bare", "flyteconnect")},
        "scenarios": [_scenario_result(sc, windows[sc.name]) for sc in measured],
        "versus": _versus(measured, windows),
        "skipped": [
            {"name": sc.name, "title": sc.title, "reason": skip_reason(sc)} for sc in selected if sc not in measured
        ],
    }


def _source_state() -> str:
    """The commit measured, and whether src/ had uncommitted changes (the servers run the working tree)."""
    root = Path(__file__).resolve().parent.parent
    git = ["git", "-C", str(root)]
    try:
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "--", "src"], capture_output=True, text=True).stdout
    except OSError:
        return "unknown"
    return f"{head or 'unknown'}{' + uncommitted changes in src/' if dirty.strip() else ''}"


def _scenario_result(sc: Scenario, windows: dict[str, Window]) -> dict[str, Any]:
    bare, subject = windows["bare"], windows["flyteconnect"]
    return {
        "name": sc.name,
        "title": sc.title,
        "in_flight": subject.in_flight,
        "target": sc.target,
        "results": {label: {**dataclasses.asdict(w), "per_call": round(w.per_call)} for label, w in windows.items()},
        "ratio": round(bare.per_call / subject.per_call, 3),
    }


def _versus(measured: Sequence[Scenario], windows: dict[str, dict[str, Window]]) -> list[dict[str, Any]]:
    """Same-server comparisons (Scenario.versus) with both scenarios measured: the ratio on flyteconnect."""
    out = []
    for sc in measured:
        if sc.versus and sc.versus in windows:
            mine, other = windows[sc.name]["flyteconnect"], windows[sc.versus]["flyteconnect"]
            out.append(
                {
                    "scenario": sc.name,
                    "title": sc.title,
                    "versus": sc.versus,
                    "versus_title": by_name(sc.versus).title,
                    "target": sc.versus_target,
                    "ratio": round(other.per_call / mine.per_call, 3),
                }
            )
    return out


def _k(instructions: float) -> str:
    return f"{instructions / 1000:,.1f}"


def to_markdown(report: dict[str, Any]) -> str:
    """The markdown report: a table of instructions per call and ratios, then what was skipped and why."""
    m, s = report["machine"], report["settings"]
    lines = [
        f"# flyteconnect instructions per call under callgrind ({report['mode']}), {report['date']}",
        "",
        f"Machine: {m['nproc']} x {m['cpu']}, Linux {m['kernel']}, Python {m['python']}, grpcio {m['grpcio']}, "
        f"{m['valgrind']}, {m['h2load']}; source {m.get('source', 'unknown')}.",
        f"Each server runs under `valgrind --tool=callgrind --instr-atstart=no`; per scenario {s['warm_up']} warm-up "
        f"calls, then at least {s['calls']} counted calls (twice the in-flight count when that is more). Counted: "
        "every instruction of the server process in the window, all threads (event loop, grpc C-core, thread pool), "
        "divided by the calls. Ratio = bare / flyteconnect instructions per call: what the req/s ratio would be if "
        "both were CPU-bound and cost scaled with instructions (it does not fully: cache misses and syscalls differ).",
        "",
        "| Scenario | in flight | calls | bare k instr/call | flyteconnect k instr/call | extra k instr/call "
        "| ratio bare/flyteconnect | req/s target |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for sc in report["scenarios"]:
        bare, fc = sc["results"]["bare"], sc["results"]["flyteconnect"]
        target = f">= {sc['target']}" if sc["target"] is not None else "-"
        lines.append(
            f"| {sc['title']} | {sc['in_flight']} | {fc['calls']} | {_k(bare['per_call'])} | {_k(fc['per_call'])} "
            f"| {_k(fc['per_call'] - bare['per_call'])} | {sc['ratio']:.3f} | {target} |"
        )
    if report["versus"]:
        lines += [
            "",
            "Same flyteconnect server: ratio = compared-with instructions per call / scenario instructions per call.",
            "",
            "| Scenario | compared with | ratio | target |",
            "|---|---|--:|--:|",
        ]
        for v in report["versus"]:
            target = f">= {v['target']}" if v["target"] is not None else "-"
            lines.append(f"| {v['title']} | {v['versus_title']} | {v['ratio']:.3f} | {target} |")
    if report["skipped"]:
        lines += ["", "Not measured here:", ""]
        lines += [f"- {s['title']} (`{s['name']}`): {s['reason']}." for s in report["skipped"]]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out_dir: Path, stem: str = "instructions") -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.md`` into ``out_dir``; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(to_markdown(report))
    return json_path, md_path
