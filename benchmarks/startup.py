"""Start-up time and idle memory: the bare servicer, flyteconnect with the benchmark connectors, and the default
``flyteconnect serve`` (entry points on, so the built-in connectors load), measured in one run.

Each round starts every server once, in alternating order, so a slow spell of the shared machine does not always hit
the same one. Start-up is spawn to first answered ListAgents; idle RSS is read 0.3 s later (``VmRSS`` of the process
tree); the CPU the process used until it answered is recorded too (steadier than wall time on a busy machine). The
medians over rounds are compared with bare's from the same run: what loading the built-ins may cost is set as a
difference to bare (``DEFAULT_STARTUP_OVER_BARE_S``, ``DEFAULT_RSS_OVER_BARE_MIB``).
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.servers import ServerSpec, start

__all__ = [
    "DEFAULT",
    "DEFAULT_RSS_OVER_BARE_MIB",
    "DEFAULT_STARTUP_OVER_BARE_S",
    "measure",
    "run_startup",
    "targets",
    "to_markdown",
]

DEFAULT = "flyteconnect-default"
"""The label of the default ``flyteconnect serve`` (``servers.flyteconnect_default_spec``)."""
DEFAULT_STARTUP_OVER_BARE_S = 0.1
DEFAULT_RSS_OVER_BARE_MIB = 6.0

Log = Callable[[str], None]


def measure(
    specs: dict[str, ServerSpec], runs: int, work_dir: Path, log: Log = print, cpus: tuple[int, ...] | None = None
) -> dict[str, dict[str, Any]]:
    """Per label: median start-up (s) and idle RSS (MiB) over ``runs`` rounds, every round starting each server once."""
    times: dict[str, list[float]] = {label: [] for label in specs}
    cpu: dict[str, list[float]] = {label: [] for label in specs}
    rss: dict[str, list[float]] = {label: [] for label in specs}
    labels = list(specs)
    for rnd in range(runs):
        for label in labels if rnd % 2 == 0 else reversed(labels):
            server = start(specs[label], work_dir / "logs", cpus=cpus)
            try:
                cpu[label].append(round(server.cpu_seconds() * 1000, 1))
                time.sleep(0.3)  # let lazy imports and the first GC settle before reading idle memory
                rss[label].append(round(server.rss_mib(), 1))
                times[label].append(round(server.startup_s, 3))
            finally:
                server.stop()
    out: dict[str, dict[str, Any]] = {}
    for label, spec in specs.items():
        out[label] = {
            "description": spec.description,
            "startup_s": round(statistics.median(times[label]), 3),
            "startup_all_s": times[label],
            "startup_cpu_ms": round(statistics.median(cpu[label]), 1),
            "idle_rss_mib": round(statistics.median(rss[label]), 1),
            "idle_rss_all_mib": rss[label],
        }
        log(f"  {label}: startup {out[label]['startup_s']:.3f} s, idle RSS {out[label]['idle_rss_mib']:.1f} MiB")
    return out


def targets(servers: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The default serve against bare in the same run: start-up and idle RSS differences (empty if either is absent)."""
    default, bare = servers.get(DEFAULT), servers.get("bare")
    if default is None or bare is None:
        return []
    startup = round(default["startup_s"] - bare["startup_s"], 3)
    rss = round(default["idle_rss_mib"] - bare["idle_rss_mib"], 1)
    return [
        {
            "target": "default serve (built-ins) startup minus bare's (s)",
            "value": startup,
            "required": f"<= {DEFAULT_STARTUP_OVER_BARE_S:g}",
            "pass": startup <= DEFAULT_STARTUP_OVER_BARE_S,
        },
        {
            "target": "default serve (built-ins) idle RSS minus bare's (MiB)",
            "value": rss,
            "required": f"<= {DEFAULT_RSS_OVER_BARE_MIB:g}",
            "pass": rss <= DEFAULT_RSS_OVER_BARE_MIB,
        },
    ]


def run_startup(
    specs: dict[str, ServerSpec], runs: int, work_dir: Path, log: Log = print, mode: str = "startup"
) -> dict[str, Any]:
    """The start-up report: machine load, every server's medians and raw runs, and the targets."""
    load = list(os.getloadavg())
    log(f"startup and idle memory, {runs} round(s):")
    servers = measure(specs, runs, work_dir, log)
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "mode": mode,
        "runs": runs,
        "loadavg_start": load,
        "loadavg_end": list(os.getloadavg()),
        "servers": servers,
        "targets": targets(servers),
    }


def to_markdown(report: dict[str, Any]) -> str:
    """The start-up report as markdown."""
    load = report["loadavg_start"]
    lines = [
        f"# flyteconnect start-up and idle memory ({report['mode']}), {report['date']}",
        "",
        f"`python -m benchmarks --startup`: {report['runs']} rounds, each starting every server once (alternating "
        "order); start-up is spawn to first answered ListAgents, idle RSS is read 0.3 s later; medians. Load "
        f"average at start {load[0]:.2f} (a shared machine: compare with bare, measured in the same run).",
        "",
        "| Server | startup (s) | every run (s) | CPU to ready (ms) | idle RSS (MiB) | every run (MiB) |",
        "|---|--:|---|--:|--:|---|",
    ]
    for label, sv in report["servers"].items():
        lines.append(
            f"| {label} ({sv['description']}) | {sv['startup_s']:.3f} | "
            f"{', '.join(f'{t:.3f}' for t in sv['startup_all_s'])} | {sv['startup_cpu_ms']:.0f} | "
            f"{sv['idle_rss_mib']:.1f} | "
            f"{', '.join(f'{r:.1f}' for r in sv['idle_rss_all_mib'])} |"
        )
    lines += ["", "| Target | measured | required | result |", "|---|--:|--:|---|"]
    for t in report["targets"]:
        lines.append(f"| {t['target']} | {t['value']:g} | {t['required']} | {'pass' if t['pass'] else '**FAIL**'} |")
    return "\n".join(lines) + "\n"
