"""flytekit connectors served unchanged: flyteconnect (``serve -m``) against flytekit's own server, same run.

``python -m benchmarks.flytekit_compat [--smoke] [--scenario NAME ...]`` serves benchmarks/flytekit_connectors.py
(the benchmark connectors written against flytekit) twice from the compat virtualenv (scripts/compat_venv.sh):
through ``flyteconnect serve -m benchmarks.flytekit_connectors`` (flyteconnect_compat's adapter) and through
``pyflyte serve connector --modules benchmarks.flytekit_connectors``, beside the bare servicer, with the suite's
runner (alternating rounds, every call checked gRPC OK). The table gives, per scenario, the median of the per-round
req/s ratios flyteconnect / flytekit and the CPU-per-call ratio flytekit / flyteconnect (both > 1: flyteconnect
is cheaper). Writes results/flytekit_compat/latest.{json,md} (``--smoke``: a scratch directory).

``--function-calls [N]`` instead counts the Python calls per request of each servicer method in-process
(``benchmarks.flytekit_handlers``, in the compat virtualenv): exact from run to run, where req/s on a shared
machine is not. Writes results/flytekit_compat/function_calls.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import report, runner, scenarios, servers
from benchmarks.h2load import H2LoadError
from benchmarks.verify import CallFailed

__all__ = ["main"]

RESULTS = servers.ROOT / "benchmarks" / "results" / "flytekit_compat"
MODULE = "benchmarks.flytekit_connectors"


def compat_venv() -> Path:
    """The compat virtualenv (built on first use, ~3 minutes)."""
    out = subprocess.run(
        ["bash", str(servers.ROOT / "scripts" / "compat_venv.sh")], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip().splitlines()[-1])


def specs(venv: Path, pool_size: int) -> dict[str, servers.ServerSpec]:
    """bare, flyteconnect serving the flytekit connectors, and flytekit serving them: all from ``venv`` but bare."""
    env = {"PYTHONPATH": f"{servers.ROOT / 'src'}:{servers.ROOT}", "FLYTE_SDK_LOGGING_LEVEL": "40"}

    def ours(port: int) -> list[str]:
        return [
            str(venv / "bin" / "python"),
            "-c",
            "from flyteconnect.cli.main import main; main()",
            "serve",
            "--port",
            str(port),
            "--metrics-port",
            "0",
            "--no-entry-points",
            "--threads",
            str(pool_size),
            "--log-level",
            "WARNING",
            "-m",
            MODULE,
        ]

    flytekit = servers.flytekit_spec(venv)
    return {
        "bare": servers.bare_spec(pool_size),
        "flyteconnect": servers.ServerSpec(
            "flyteconnect", ours, env=env, description=f"flyteconnect serve -m {MODULE} (flytekit connectors)"
        ),
        "flytekit": servers.ServerSpec("flytekit", flytekit.argv, env=env, description=flytekit.description),
    }


def _ratio(ours: list[float], theirs: list[float]) -> float | None:
    pairs = [a / b for a, b in zip(ours, theirs, strict=True) if b]
    return round(statistics.median(pairs), 3) if pairs else None


def summary(result: dict[str, Any]) -> str:
    """The flyteconnect-vs-flytekit table (markdown) of a runner result."""
    lines = [
        "| Scenario | flyteconnect / flytekit, req/s (median of rounds) | rounds"
        " | flytekit / flyteconnect, CPU per call |",
        "|---|--:|---|--:|",
    ]
    for sc in result["scenarios"]:
        res = sc["results"]
        if "flytekit" not in res:
            continue
        ours, theirs = res["flyteconnect"]["all_req_per_s"], res["flytekit"]["all_req_per_s"]
        rounds = " / ".join(f"{a / b:.2f}" for a, b in zip(ours, theirs, strict=True) if b)
        cpu_ours, cpu_theirs = res["flyteconnect"].get("cpu_us_per_req"), res["flytekit"].get("cpu_us_per_req")
        cpu = f"{cpu_theirs / cpu_ours:.2f}" if cpu_ours and cpu_theirs else "n/a"
        lines.append(f"| {sc['title']} | {_ratio(ours, theirs)} | {rounds} | {cpu} |")
    return "\n".join(lines) + "\n"


def function_calls(calls: int, out: Path) -> int:
    """Run ``benchmarks.flytekit_handlers`` in the compat virtualenv; print and write its table."""
    venv = compat_venv()
    env = {**os.environ, "PYTHONPATH": f"{servers.ROOT / 'src'}:{servers.ROOT}", "FLYTE_SDK_LOGGING_LEVEL": "40"}
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-W", "ignore", "-m", "benchmarks.flytekit_handlers", str(calls)],
        env=env,
        cwd=servers.ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    lines = [
        f"# Python calls per request, in-process ({calls} requests each, cProfile)\n",
        "| Scenario | flyteconnect | flytekit | flytekit / flyteconnect |",
        "|---|--:|--:|--:|",
    ]
    for name, by_server in counts.items():
        ours, theirs = by_server["flyteconnect"], by_server["flytekit"]
        lines.append(f"| {scenarios.by_name(name).title} | {ours} | {theirs} | {theirs / ours:.2f} |")
    table = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "function_calls.md").write_text(table)
    print(table)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run it; exit status 0 when it ran (ratios are reported, never enforced)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.flytekit_compat", description=__doc__)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one round (checks the machinery)")
    p.add_argument("--scenario", action="append", help="only these scenarios (repeatable)")
    p.add_argument("--rounds", type=int, help="rounds per scenario (default 5)")
    p.add_argument("--pool-size", type=int, default=16)
    p.add_argument("--out", type=Path, help="result directory")
    p.add_argument("--function-calls", type=int, nargs="?", const=1000, metavar="N", help="count calls in-process")
    args = p.parse_args(argv)
    if args.function_calls:
        return function_calls(args.function_calls, args.out or RESULTS)
    chosen = [sc for sc in scenarios.select(args.scenario) if sc.flytekit and sc.subject == "flyteconnect"]
    work = Path(tempfile.mkdtemp(prefix="flyteconnect-bench-fk-"))
    out = args.out or (work / "results" if args.smoke else RESULTS)
    settings = runner.Settings(scenarios=chosen, specs=specs(compat_venv(), args.pool_size), work_dir=work)
    settings.pool_size = args.pool_size
    if args.smoke:
        settings.seconds, settings.rounds, settings.startup_runs = 0.3, 1, 1
        settings.in_flight_cap, settings.min_requests, settings.mode = 32, 50, "smoke"
        settings.warm_up = False
    settings.rounds = args.rounds or settings.rounds
    try:
        result = runner.run_suite(settings, log=lambda m: print(m, flush=True))
    except (H2LoadError, servers.ServerStartError, CallFailed) as e:
        print(f"benchmark failed: {e}")
        return 2
    json_path, md_path = report.write_report(result, out)
    table = summary(result)
    md_path.write_text(
        "# flytekit connectors: flyteconnect vs flytekit's own server\n\n" + table + "\n" + md_path.read_text()
    )
    json_path.write_text(json.dumps({**json.loads(json_path.read_text()), "versus_flytekit": table}, indent=2) + "\n")
    print()
    print(table)
    print(f"written: {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
