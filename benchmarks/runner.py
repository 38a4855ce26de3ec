"""Run the suite: start the servers, measure every scenario on each (interleaved, best of N rounds), collect a report.

Everything that matters is a ratio within one run, because absolute numbers on a shared machine are noise: each
scenario runs against the bare servicer and the server under test back to back, in every round.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks import payloads, startup
from benchmarks.frames import write_body
from benchmarks.h2load import H2Result, ensure_h2load, run_h2load
from benchmarks.scenarios import Scenario, by_name
from benchmarks.servers import RunningServer, ServerSpec, start
from benchmarks.verify import reply_frame_bytes

__all__ = ["Settings", "machine_info", "run_soak", "run_suite"]

Log = Callable[[str], None]


@dataclass
class Settings:
    """What to run and how long."""

    scenarios: list[Scenario]
    specs: dict[str, ServerSpec]
    """Servers by label: "bare" (the baseline), the subjects the scenarios name, and optionally "flytekit"."""
    seconds: float = 1.2
    """Target length of one measured h2load run."""
    rounds: int = 5
    startup_runs: int = 3
    pool_size: int = 16
    in_flight_cap: int | None = None
    """Cap every scenario's concurrency (smoke runs)."""
    min_requests: int = 200
    warm_up: bool = True
    """Size the measured runs from a warm-up run (off: fixed small sizes, for smoke runs)."""
    work_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="flyteconnect-bench-")))
    mode: str = "full"
    server_cpus: tuple[int, ...] | None = None
    """``--pin``: every server runs on these CPUs (all its threads)..."""
    load_cpus: tuple[int, ...] | None = None
    """... and h2load on these, so the two never share a core and the scheduler cannot move them around."""


def machine_info() -> dict[str, Any]:
    """Where the numbers were taken: CPU, cores, load, versions."""
    import grpc

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        h2 = subprocess.run([ensure_h2load(), "--version"], capture_output=True, text=True).stdout.strip()
    except Exception:
        h2 = "unknown"
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "h2load": h2,
        "loadavg_start": list(os.getloadavg()),
    }


@dataclass
class _Call:
    """One measured series of a scenario: which server, which request (body and path), how big a good reply is."""

    server: RunningServer
    scenario: Scenario
    """Whose path and concurrency are used (the versus scenario for a versus series)."""
    body: Path
    frames: int


@dataclass
class _Plan:
    scenario: Scenario
    calls: dict[str, _Call]
    """By label, in run order: bare, the subject, the versus series, flytekit."""
    runs: dict[str, list[dict]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)


def _plan(sc: Scenario, running: dict[str, RunningServer], s: Settings) -> _Plan:
    """Write the request bodies and verify one call of each series (gRPC OK, reply size) before any load."""
    body = write_body(s.work_dir / f"{sc.name}.bin", sc.messages())
    calls: dict[str, _Call] = {}
    for label in ["bare", sc.subject]:
        calls[label] = _Call(running[label], sc, body, reply_frame_bytes(running[label].port, sc))
    if sc.versus and sc.versus_label:
        # The other scenario's request on the same subject server, with this scenario's concurrency.
        other = replace(by_name(sc.versus), in_flight=sc.in_flight, clients=sc.clients)
        other_body = write_body(s.work_dir / f"{sc.name}-versus-{other.name}.bin", other.messages())
        server = running[sc.subject]
        calls[sc.versus_label] = _Call(server, other, other_body, reply_frame_bytes(server.port, other))
    if "flytekit" in running and sc.flytekit:
        calls["flytekit"] = _Call(running["flytekit"], sc, body, reply_frame_bytes(running["flytekit"].port, sc))
    return _Plan(sc, calls, runs={label: [] for label in calls})


def _run(server: RunningServer, scenario: Scenario, body: Path, requests: int, frame_bytes: int, s: Settings) -> dict:
    in_flight = min(scenario.in_flight, s.in_flight_cap or scenario.in_flight)
    clients = min(scenario.clients, in_flight)
    streams = max(1, -(-in_flight // clients))
    cpu0 = server.cpu_seconds()
    result: H2Result = run_h2load(server.url(scenario.path), body, requests, clients, streams, cpus=s.load_cpus)
    cpu = server.cpu_seconds() - cpu0
    good = result.body_bytes / frame_bytes if frame_bytes else result.succeeded
    return {
        "requests": result.requests,
        "succeeded": result.succeeded,
        "grpc_ok": round(min(good, result.succeeded)),
        "failed": result.requests - result.succeeded,
        "seconds": round(result.seconds, 3),
        "req_per_s": round(result.req_per_s, 1),
        "latency_ms": {k: round(v, 3) for k, v in result.latency_ms.items()},
        "cpu_us_per_req": round(cpu * 1e6 / max(1, result.succeeded), 1),
        "in_flight": clients * streams,
        "reply_bytes": frame_bytes,
    }


def run_suite(s: Settings, log: Log = print) -> dict[str, Any]:
    """Run every scenario on every server it involves and return the report dict (see benchmarks.report)."""
    ensure_h2load()
    info = machine_info()
    log(f"machine: {info['nproc']} x {info['cpu']}, load {info['loadavg_start']}")
    labels = ["bare"] + sorted({sc.subject for sc in s.scenarios}) + (["flytekit"] if "flytekit" in s.specs else [])
    log("startup and idle memory:")
    # The default serve (entry points, built-ins) is measured for start-up and memory only, beside the others.
    measured = labels + ([startup.DEFAULT] if startup.DEFAULT in s.specs else [])
    servers_report = startup.measure(
        {label: s.specs[label] for label in measured}, s.startup_runs, s.work_dir, log, s.server_cpus
    )

    running: dict[str, RunningServer] = {}
    results: list[dict[str, Any]] = []
    try:
        for label in labels:
            running[label] = start(s.specs[label], s.work_dir / "logs", cpus=s.server_cpus)
        plans = [_plan(sc, running, s) for sc in s.scenarios]

        # Warm up each pair once and size the measured runs from the warm-up rate.
        log("warm-up:" if s.warm_up else "sizes (no warm-up):")
        for p in plans:
            in_flight = min(p.scenario.in_flight, s.in_flight_cap or p.scenario.in_flight)
            for label, call in p.calls.items():
                p.sizes[label] = max(s.min_requests, 3 * in_flight)
                if s.warm_up:
                    n = max(s.min_requests, 2 * in_flight)
                    warm = _run(call.server, call.scenario, call.body, n, call.frames, s)
                    p.sizes[label] = max(p.sizes[label], int(warm["req_per_s"] * s.seconds))
            log(f"  {p.scenario.name}: " + ", ".join(f"{k} n={v}" for k, v in p.sizes.items()))

        for rnd in range(s.rounds):
            log(f"round {rnd + 1}/{s.rounds}:")
            for p in plans:
                # Alternate who goes first, so a slow spell of the shared machine does not always hit the same server;
                # the subject and its versus runs are adjacent either way (listed last, and first when reversed).
                labels = list(p.calls)
                for label in labels if rnd % 2 == 0 else reversed(labels):
                    call = p.calls[label]
                    p.runs[label].append(_run(call.server, call.scenario, call.body, p.sizes[label], call.frames, s))
                log(
                    f"  {p.scenario.name}: "
                    + ", ".join(f"{k} {v[-1]['req_per_s']:.0f} req/s" for k, v in p.runs.items())
                )

        for p in plans:
            results.append(_scenario_result(p.scenario, list(p.calls), p.runs, s))
        for label, server in running.items():
            servers_report[label]["rss_after_load_mib"] = round(server.rss_mib(), 1)
    finally:
        for server in running.values():
            server.stop()

    info["loadavg_end"] = list(os.getloadavg())
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "mode": s.mode,
        "machine": info,
        "settings": {
            "seconds": s.seconds,
            "rounds": s.rounds,
            "pool_size": s.pool_size,
            "in_flight_cap": s.in_flight_cap,
            "server_cpus": list(s.server_cpus) if s.server_cpus else None,
            "load_cpus": list(s.load_cpus) if s.load_cpus else None,
        },
        "servers": servers_report,
        "scenarios": results,
    }


def _median_run(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda r: r["req_per_s"])[(len(runs) - 1) // 2]


def _paired_ratio(subject: list[dict], base: list[dict]) -> float | None:
    """Median over rounds of subject/base req/s, each pair measured back to back (robust to a busy machine)."""
    ratios = [a["req_per_s"] / b["req_per_s"] for a, b in zip(subject, base, strict=True) if b["req_per_s"]]
    return round(statistics.median(ratios), 3) if ratios else None


def _scenario_result(sc: Scenario, involved: list[str], runs: dict[str, list[dict]], s: Settings) -> dict[str, Any]:
    middle = {label: _median_run(rs) for label, rs in runs.items()}
    out: dict[str, Any] = {
        "name": sc.name,
        "title": sc.title,
        "subject": sc.subject,
        "target": sc.target,
        "note": sc.note,
        "results": {
            label: {**middle[label], "all_req_per_s": [r["req_per_s"] for r in runs[label]]} for label in involved
        },
        "ratio": _paired_ratio(runs[sc.subject], runs["bare"]),
        "round_ratios": [
            round(a["req_per_s"] / b["req_per_s"], 3) for a, b in zip(runs[sc.subject], runs["bare"], strict=True)
        ],
    }
    subject_cpu = middle[sc.subject]["cpu_us_per_req"]
    out["cpu_ratio"] = round(middle["bare"]["cpu_us_per_req"] / subject_cpu, 3) if subject_cpu else None
    if "flytekit" in runs:
        out["flytekit_ratio"] = _paired_ratio(runs["flytekit"], runs["bare"])
    if sc.versus and sc.versus_label:
        versus = middle[sc.versus_label]
        out["versus"] = {
            "scenario": sc.versus,
            "title": by_name(sc.versus).title,
            "label": sc.versus_label,
            "target": sc.versus_target,
            "ratio": _paired_ratio(runs[sc.subject], runs[sc.versus_label]),
            "round_ratios": [
                round(a["req_per_s"] / b["req_per_s"], 3)
                for a, b in zip(runs[sc.subject], runs[sc.versus_label], strict=True)
            ],
            "cpu_ratio": round(versus["cpu_us_per_req"] / subject_cpu, 3) if subject_cpu else None,
        }
    if sc.pool_bound:
        bound = s.pool_size / payloads.SLEEP_SECONDS
        out["pool_bound_req_per_s"] = bound
        out["ratio_to_pool_bound"] = round(middle[sc.subject]["req_per_s"] / bound, 3)
    return out


def run_soak(spec: ServerSpec, scenario: Scenario, total: int, every: int, s: Settings, log: Log = print) -> dict:
    """``total`` calls of ``scenario`` in chunks of ``every``, sampling RSS after each; growth after the first chunk."""
    ensure_h2load()
    info = machine_info()
    server = start(spec, s.work_dir / "logs")
    try:
        body = write_body(s.work_dir / f"soak-{scenario.name}.bin", scenario.messages())
        frames = reply_frame_bytes(server.port, scenario)
        samples = [{"calls": 0, "rss_mib": round(server.rss_mib(), 2)}]
        done, failed = 0, 0
        while done < total:
            n = min(every, total - done)
            r = _run(server, scenario, body, n, frames, s)
            done += n
            failed += r["failed"] + (r["succeeded"] - r["grpc_ok"])
            samples.append({"calls": done, "rss_mib": round(server.rss_mib(), 2), "req_per_s": r["req_per_s"]})
            log(f"  {done:>9} calls: RSS {samples[-1]['rss_mib']:.2f} MiB, {r['req_per_s']:.0f} req/s")
    finally:
        server.stop()
    warm = samples[1]["rss_mib"] if len(samples) > 1 else samples[0]["rss_mib"]
    growth = round(max(x["rss_mib"] for x in samples[1:]) - warm, 2) if len(samples) > 2 else 0.0
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "mode": "soak",
        "machine": info,
        "server": spec.label,
        "scenario": scenario.name,
        "calls": done,
        "failed_calls": failed,
        "samples": samples,
        "growth_after_warmup_mib": growth,
        "target_mib": 5.0,
        "pass": growth < 5.0 and failed == 0,
    }
