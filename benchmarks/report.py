"""Targets, JSON and the markdown table of a benchmark run.

Targets are reported pass/fail, never asserted: the numbers come from a shared machine and are a measurement, not a
test. The JSON keeps every raw number; the markdown is what the README quotes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks import startup

__all__ = ["IDLE_RSS_TARGET_MIB", "STARTUP_TARGET_S", "evaluate_targets", "to_markdown", "write_report"]

STARTUP_TARGET_S = 0.2
IDLE_RSS_TARGET_MIB = 45.0
SUBJECT = "flyteconnect"


def _mark(ok: bool | None) -> str:
    return "n/a" if ok is None else ("pass" if ok else "**FAIL**")


def evaluate_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per target of the issues: what, measured value, required, pass; also stored in the report."""
    rows: list[dict[str, Any]] = []
    for sc in report["scenarios"]:
        if sc.get("target") is None:
            continue
        if "ratio_to_pool_bound" in sc:
            value, what = sc["ratio_to_pool_bound"], f"{sc['title']}: req/s / (pool size / 50 ms)"
        else:
            value, what = sc["ratio"], f"{sc['title']}: req/s ratio to bare"
        row = {"target": what, "value": value, "required": f">= {sc['target']}", "pass": value >= sc["target"]}
        if "ratio_to_pool_bound" not in sc and sc["subject"] == SUBJECT and sc.get("cpu_ratio") is not None:
            # The CPU-per-call ratio moves much less with the neighbours' load: shown next to the req/s ratio.
            row["cpu_ratio"] = sc["cpu_ratio"]
            row["cpu_pass"] = sc["cpu_ratio"] >= sc["target"]
        rows.append(row)
    for sc in report["scenarios"]:
        vs = sc.get("versus")
        if not vs or vs.get("target") is None:
            continue
        row = {
            "target": f"{sc['title']}: req/s ratio to {vs['title']} on the same {sc['subject']} server",
            "value": vs["ratio"],
            "required": f">= {vs['target']}",
            "pass": vs["ratio"] is not None and vs["ratio"] >= vs["target"],
        }
        if vs.get("cpu_ratio") is not None:
            row["cpu_ratio"] = vs["cpu_ratio"]
            row["cpu_pass"] = vs["cpu_ratio"] >= vs["target"]
        rows.append(row)
    subject = report["servers"].get(SUBJECT)
    if subject:
        rows.append(
            {
                "target": "startup to first answered ListAgents (s)",
                "value": subject["startup_s"],
                "required": f"<= {STARTUP_TARGET_S}",
                "pass": subject["startup_s"] <= STARTUP_TARGET_S,
            }
        )
        rows.append(
            {
                "target": "idle RSS (MiB)",
                "value": subject["idle_rss_mib"],
                "required": f"<= {IDLE_RSS_TARGET_MIB:g}",
                "pass": subject["idle_rss_mib"] <= IDLE_RSS_TARGET_MIB,
            }
        )
    rows += startup.targets(report["servers"])
    bad = [
        f"{sc['name']}/{label}"
        for sc in report["scenarios"]
        for label, r in sc["results"].items()
        if r["failed"] or r["grpc_ok"] < r["succeeded"]
    ]
    rows.append(
        {
            "target": "every measured call answered gRPC OK",
            "value": "all OK" if not bad else "errors in " + ", ".join(bad),
            "required": "all OK",
            "pass": not bad,
        }
    )
    return rows


def _f(x: Any, digits: int = 0) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return str(x)


def to_markdown(report: dict[str, Any]) -> str:
    """The report as markdown: machine line, scenario table, server table, targets."""
    m = report["machine"]
    load = m.get("loadavg_start") or [0.0]
    st = report["settings"]
    fk = any("flytekit" in sc["results"] for sc in report["scenarios"])
    lines = [
        f"# flyteconnect benchmark ({report['mode']}), {report['date']}",
        "",
        f"Machine: {m['nproc']} x {m['cpu']}, Linux {m['kernel']}, Python {m['python']}, grpcio {m['grpcio']}, "
        f"{m['h2load']}. Load average at start {load[0]:.2f}: the machine is shared, so compare ratios "
        "(measured back to back in the same run), not absolute req/s.",
        f"req/s, latency and CPU are the median of {st['rounds']} rounds of about {st['seconds']:g} s; a ratio is the "
        "median of the per-round ratios (the two servers run back to back in each round, alternating who goes first); "
        "CPU ratio is bare CPU µs per call / flyteconnect CPU µs per call, what the req/s ratio would be on an idle "
        "machine where both are CPU-bound; "
        f"thread pool for `def` connectors: {st['pool_size']}. Load generator: h2load replaying gRPC frames.",
        "",
    ]
    if st.get("server_cpus"):
        lines[-1:-1] = [
            f"Pinned (`--pin`): every server on CPU {st['server_cpus']}, h2load on CPU {st['load_cpus']}; the "
            "servers' own threads share their CPU, so the ratios are per-call efficiency on one core.",
        ]
    head = "| Scenario | in flight | bare req/s | flyteconnect req/s | ratio | target |"
    sep = "|---|--:|--:|--:|--:|--:|"
    if fk:
        head += " flytekit req/s | flytekit ratio |"
        sep += "--:|--:|"
    who = "bare, flyteconnect" + (", flytekit" if fk else "")
    head += f" CPU ratio | p50 / p99 ms ({who}) | CPU µs/req ({who}) |"
    sep += "--:|--:|--:|"
    lines += [head, sep]
    for sc in report["scenarios"]:
        r = sc["results"]
        base, subj = r["bare"], r[sc["subject"]]
        target = "-" if sc["target"] is None else f">= {sc['target']:g}"
        ratio = _f(sc["ratio"], 2)
        if "ratio_to_pool_bound" in sc:
            ratio += f" ({sc['ratio_to_pool_bound']:.2f} of the {sc['pool_bound_req_per_s']:.0f} req/s pool bound)"
        title = sc["title"] + (f" ({sc['subject']})" if sc["subject"] != SUBJECT else "")
        row = f"| {title} | {subj['in_flight']} | {_f(base['req_per_s'])} | {_f(subj['req_per_s'])} | {ratio} |"
        row += f" {target} |"
        if fk:
            fr = r.get("flytekit")
            row += f" {_f(fr['req_per_s']) if fr else '-'} | {_f(sc.get('flytekit_ratio'), 2)} |"
        shown = [base, subj] + ([r["flytekit"]] if fk and "flytekit" in r else [])
        row += f" {_f(sc.get('cpu_ratio'), 2)} |"
        row += " " + ", ".join(f"{x['latency_ms']['p50']:.1f} / {x['latency_ms']['p99']:.1f}" for x in shown) + " |"
        row += " " + ", ".join(_f(x["cpu_us_per_req"]) for x in shown) + " |"
        lines.append(row)
    lines += _versus_table(report)
    lines += [
        "",
        "| Server | startup to first ListAgents (s) | idle RSS (MiB) | RSS after load (MiB) |",
        "|---|--:|--:|--:|",
    ]
    for label, sv in report["servers"].items():
        lines.append(
            f"| {label} ({sv.get('description', '')}) | {sv['startup_s']:.3f} | {sv['idle_rss_mib']:.1f} | "
            f"{_f(sv.get('rss_after_load_mib'), 1)} |"
        )
    lines += [
        "",
        "| Target | measured | required | result | CPU ratio (idle-machine estimate) |",
        "|---|--:|--:|---|---|",
    ]
    for t in report.get("targets", []):
        value = t["value"] if isinstance(t["value"], str) else f"{t['value']:g}"
        cpu = f"{t['cpu_ratio']:g}: {_mark(t['cpu_pass'])}" if "cpu_ratio" in t else "-"
        lines.append(f"| {t['target']} | {value} | {t['required']} | {_mark(t['pass'])} | {cpu} |")
    lines += ["", "Profiles of the missed targets: `benchmarks/results/FINDINGS.md`; soak run: `soak.md`."]
    return "\n".join(lines) + "\n"


def _versus_table(report: dict[str, Any]) -> list[str]:
    """Same-server comparisons (e.g. Flyte 2 vs Flyte 1 GetTask on one flyteconnect), measured back to back."""
    rows = [sc for sc in report["scenarios"] if sc.get("versus")]
    if not rows:
        return []
    lines = [
        "",
        "Same server, same run: each scenario and the one it is compared with run back to back on the subject "
        "server in every round (alternating who goes first); ratio = median of the per-round req/s ratios, CPU "
        "ratio = compared-with CPU µs per call / scenario CPU µs per call.",
        "",
        "| Scenario | compared with | server | req/s | compared-with req/s | ratio | target | CPU ratio |"
        " p50 / p99 ms (scenario, compared with) | CPU µs/req (scenario, compared with) |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for sc in rows:
        vs = sc["versus"]
        a, b = sc["results"][sc["subject"]], sc["results"][vs["label"]]
        target = "-" if vs.get("target") is None else f">= {vs['target']:g}"
        lat = ", ".join(f"{x['latency_ms']['p50']:.1f} / {x['latency_ms']['p99']:.1f}" for x in (a, b))
        lines.append(
            f"| {sc['title']} | {vs['title']} | {sc['subject']} | {_f(a['req_per_s'])} | {_f(b['req_per_s'])} | "
            f"{_f(vs['ratio'], 2)} | {target} | {_f(vs.get('cpu_ratio'), 2)} | {lat} | "
            f"{_f(a['cpu_us_per_req'])}, {_f(b['cpu_us_per_req'])} |"
        )
    return lines


def soak_markdown(report: dict[str, Any]) -> str:
    """A soak run as markdown."""
    lines = [
        f"# flyteconnect soak, {report['date']}",
        "",
        f"{report['calls']:,} calls of {report['scenario']} on {report['server']}; "
        f"failed calls: {report['failed_calls']}.",
        f"RSS growth after the first chunk (warm-up): {report['growth_after_warmup_mib']:.2f} MiB "
        f"(required < {report['target_mib']:g}): {_mark(report['pass'])}.",
        "",
        "| calls | RSS (MiB) | req/s |",
        "|--:|--:|--:|",
    ]
    lines += [f"| {s['calls']:,} | {s['rss_mib']:.2f} | {_f(s.get('req_per_s'))} |" for s in report["samples"]]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out_dir: Path, stem: str = "latest") -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.md`` into ``out_dir`` (targets evaluated first) and return both paths."""
    if report.get("mode") == "soak":
        markdown = soak_markdown(report)
    else:
        report["targets"] = evaluate_targets(report)
        markdown = to_markdown(report)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(markdown)
    return json_path, md_path
