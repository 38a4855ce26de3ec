"""``python -m benchmarks``: the performance suite.

Starts the bare grpc.aio servicer (the ceiling) and ``flyteconnect serve`` with the benchmark connectors, drives both
with h2load (installed from Debian's nghttp2-client when missing), and writes ``benchmarks/results/latest.{json,md}``.

    python -m benchmarks                     # full run (~3 minutes on 2 cores)
    python -m benchmarks --smoke             # tiny sizes, no warm-up, ~10 s: proves the suite runs (CI)
    python -m benchmarks --against-flytekit  # also flytekit's `pyflyte serve connector` (scratch venv)
    python -m benchmarks --soak              # 10^6 GetTask calls, RSS every 10^5 (run by hand)
    python -m benchmarks --subject bare      # bare vs bare: validates the method (ratios ~1)
    python -m benchmarks --instructions      # instructions per call under callgrind, bare vs flyteconnect (~10 min)
    python -m benchmarks --startup           # start-up and idle RSS only, default serve vs bare (~1 min)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import instructions, report, runner, scenarios, servers, startup
from benchmarks.h2load import H2LoadError
from benchmarks.verify import CallFailed

RESULTS = Path(__file__).resolve().parent / "results"
SCRATCH_FLYTEKIT = Path.home() / ".cache" / "flyteconnect-bench" / "flytekit-venv"


def _flytekit_venv(explicit: str | None) -> Path:
    """A virtualenv with flytekit[connector]: the given one, $FLYTEKIT_VENV, or a scratch one created on first use."""
    for candidate in (explicit, os.environ.get("FLYTEKIT_VENV")):
        if candidate:
            venv = Path(candidate)
            if not (venv / "bin" / "pyflyte").exists():
                raise SystemExit(f"{venv} has no bin/pyflyte: pip install 'flytekit[connector]' into it")
            return venv
    venv = SCRATCH_FLYTEKIT
    if not (venv / "bin" / "pyflyte").exists():
        print(f"creating a scratch virtualenv with flytekit[connector] in {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "flytekit[connector]"], check=True)
    return venv


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes: check the suite works, numbers meaningless")
    p.add_argument("--soak", action="store_true", help="soak: many GetTask calls, RSS sampled (run by hand)")
    p.add_argument("--soak-calls", type=int, default=1_000_000)
    p.add_argument("--soak-every", type=int, default=100_000, help="sample RSS every this many calls")
    p.add_argument("--against-flytekit", action="store_true", help="also measure flytekit's pyflyte serve connector")
    p.add_argument("--flytekit-venv", help="virtualenv with flytekit[connector] (default: $FLYTEKIT_VENV or scratch)")
    p.add_argument(
        "--subject",
        choices=("flyteconnect", "bare"),
        default="flyteconnect",
        help="server under test ('bare': bare vs bare)",
    )
    p.add_argument(
        "--instructions",
        action="store_true",
        help="only instructions per call under callgrind (results/instructions.{json,md}); needs valgrind",
    )
    p.add_argument(
        "--startup",
        action="store_true",
        help="only start-up and idle RSS: bare, flyteconnect and the default serve with the built-ins "
        "(results/startup.{json,md})",
    )
    p.add_argument("--startup-runs", type=int, help="rounds of server starts (default 3, --startup 7, smoke 1)")
    p.add_argument("--calls", type=int, help="calls counted per scenario with --instructions (default 1000, smoke 20)")
    p.add_argument("--scenario", action="append", help="run only this scenario (repeatable)")
    p.add_argument(
        "--pin",
        action="store_true",
        help="servers on CPU 0, h2load on CPU 1: steadier ratios on a shared machine (--workers 2 is left out)",
    )
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--seconds", type=float, help="length of one measured run (default 1.2, smoke 0.3)")
    p.add_argument("--rounds", type=int, help="rounds; medians count (default 5, smoke 1)")
    p.add_argument("--pool-size", type=int, default=16, help="thread pool for def connectors, both servers")
    p.add_argument("--out", type=Path, help="output directory (default benchmarks/results; smoke: a temporary dir)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run what the flags ask for; exit status 0 when the suite ran (targets are reported, not enforced)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list:
        for sc in scenarios.SCENARIOS:
            print(f"{sc.name:24} {sc.title}")
        return 0
    try:
        selected = scenarios.select(args.scenario)
    except ValueError as e:
        parser.error(str(e))
    work = Path(tempfile.mkdtemp(prefix="flyteconnect-bench-"))
    out = args.out or (work / "results" if args.smoke else RESULTS)

    if args.subject == "bare":
        subject, subject_w2 = servers.bare_spec(args.pool_size), servers.bare_spec(args.pool_size)
        subject = servers.ServerSpec("flyteconnect", subject.argv, description="bare (method check)")
        subject_w2 = servers.ServerSpec("flyteconnect-w2", subject_w2.argv, description="bare (method check)")
    else:
        pool = ("--threads", str(args.pool_size))
        subject = servers.flyteconnect_spec(1, extra=pool)
        subject_w2 = servers.flyteconnect_spec(2, label="flyteconnect-w2", extra=pool)
    specs = {"bare": servers.bare_spec(args.pool_size), "flyteconnect": subject, "flyteconnect-w2": subject_w2}
    if args.subject != "bare":
        specs[startup.DEFAULT] = servers.flyteconnect_default_spec()
    if args.against_flytekit:
        specs["flytekit"] = servers.flytekit_spec(_flytekit_venv(args.flytekit_venv))

    settings = runner.Settings(scenarios=selected, specs=specs, pool_size=args.pool_size, work_dir=work)
    if args.pin:
        if (os.cpu_count() or 1) < 2:
            parser.error("--pin needs at least 2 CPUs")
        # Two workers against one bare process is a question of cores: pinned to one it means nothing.
        dropped = [sc.name for sc in selected if sc.subject != "flyteconnect"]
        settings.scenarios = [sc for sc in selected if sc.subject == "flyteconnect"]
        if dropped:
            print(f"--pin: left out {', '.join(dropped)} (compares processes on several cores)", flush=True)
        settings.server_cpus, settings.load_cpus = (0,), (1,)
        settings.mode = "pinned"
    if args.smoke:
        settings.seconds, settings.rounds, settings.startup_runs = 0.3, 1, 1
        settings.in_flight_cap, settings.min_requests, settings.mode = 32, 50, "smoke"
        settings.warm_up = False
    settings.seconds = args.seconds or settings.seconds
    settings.rounds = args.rounds or settings.rounds
    settings.startup_runs = args.startup_runs or settings.startup_runs

    if args.startup:
        return _startup(args, specs, work, out)

    if args.instructions:
        return _instructions(args, selected, {"bare": specs["bare"], "flyteconnect": subject}, work, out)

    try:
        if args.soak:
            calls, every = args.soak_calls, args.soak_every
            get = scenarios.select(["get_outputs"])[0]
            print(f"soak: {calls:,} x {get.title} on {subject.label}, RSS every {every:,} calls", flush=True)
            result = runner.run_soak(subject, get, calls, every, settings, log=lambda m: print(m, flush=True))
            paths = report.write_report(result, out, stem="soak" if not args.smoke else "soak-smoke")
        else:
            result = runner.run_suite(settings, log=lambda m: print(m, flush=True))
            paths = report.write_report(result, out)
    except (H2LoadError, servers.ServerStartError, CallFailed) as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        return 2
    print()
    print(paths[1].read_text())
    print(f"written: {paths[0]} and {paths[1]}")
    return 0


def _startup(args: argparse.Namespace, specs: dict[str, servers.ServerSpec], work: Path, out: Path) -> int:
    """The --startup mode: bare, flyteconnect and the default serve, started in alternating rounds."""
    runs = args.startup_runs or (1 if args.smoke else 7)
    chosen = {label: specs[label] for label in ("bare", "flyteconnect", startup.DEFAULT) if label in specs}
    try:
        result = startup.run_startup(
            chosen, runs, work, log=lambda m: print(m, flush=True), mode=("smoke" if args.smoke else "startup")
        )
    except servers.ServerStartError as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        return 2
    stem = "startup-smoke" if args.smoke else "startup"
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    md_path.write_text(startup.to_markdown(result))
    print()
    print(md_path.read_text())
    print(f"written: {json_path} and {md_path}")
    return 0


def _instructions(
    args: argparse.Namespace,
    selected: list[scenarios.Scenario],
    specs: dict[str, servers.ServerSpec],
    work: Path,
    out: Path,
) -> int:
    """The --instructions mode; a smoke run counts a few calls of GetTask running and DeleteTask unless named."""
    if instructions.valgrind_version() is None:
        print("--instructions needs valgrind and callgrind_control: apt-get install -y valgrind", file=sys.stderr)
        return 2
    calls, warm_up, cap, mode = args.calls or 1000, instructions.WARM_UP_CALLS, None, "full"
    if args.smoke:
        calls, warm_up, cap, mode = args.calls or 20, 10, 8, "smoke"
        # Two scenarios: the second window of a process is where callgrind's dump accounting can go wrong.
        selected = selected if args.scenario else scenarios.select(["get_running", "delete"])
    try:
        result = instructions.run_instructions(
            selected, specs, calls, warm_up, cap, work, log=lambda m: print(m, flush=True), mode=mode
        )
    except (H2LoadError, servers.ServerStartError, CallFailed, instructions.InstructionsError) as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        return 2
    paths = instructions.write_report(result, out)
    print()
    print(paths[1].read_text())
    print(f"written: {paths[0]} and {paths[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
