"""A/B: this checkout's server against an earlier commit's, and both against the bare servicer, in one run.

    python -m benchmarks.ab 6f71f2f                                  # the hot scenarios, 4 rounds
    python -m benchmarks.ab HEAD~3 --scenario create --rounds 6      # some of them, more rounds
    python -m benchmarks.ab HEAD --smoke                             # tiny sizes: the machinery works

The req/s suite compares flyteconnect with the bare servicer; a change's own effect is then the difference of two
ratios from two runs, each as noisy as the machine. Here the commit under test (``base``, checked out in a temporary
git worktree) and this checkout (``head``) run side by side with the bare servicer, each scenario in alternating
rounds, and ``head/base`` is the median of the per-round ratios: what the change bought, measured in one run. Both
serve this checkout's ``benchmarks/connectors.py``, so only the framework differs.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks import frames, scenarios, servers, verify
from benchmarks.h2load import run_h2load
from benchmarks.servers import ROOT, RunningServer

__all__ = ["checkout", "main"]

HOT = ("create", "get_outputs", "get_running", "delete", "execute_sync")


@contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """``rev`` checked out in a temporary git worktree (removed afterwards); yields its root."""
    tmp = Path(tempfile.mkdtemp(prefix="flyteconnect-ab-"))
    root = tmp / "base"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(root), rev], check=True, capture_output=True
    )
    try:
        yield root
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(root)], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def _ratio(subject: list[float], base: list[float]) -> float:
    return statistics.median(s / b for s, b in zip(subject, base, strict=True))


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.ab", description=__doc__.splitlines()[0] if __doc__ else None
    )
    p.add_argument("base", help="the commit to compare with (anything git rev-parse takes)")
    p.add_argument("--scenario", action="append", help=f"repeatable; default: {' '.join(HOT)}")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--calls", type=int, default=30_000, help="calls per h2load run")
    p.add_argument("--smoke", action="store_true", help="1 round of 200 calls at 16 in flight: the machinery works")
    args = p.parse_args(argv)
    rounds, calls = (1, 200) if args.smoke else (args.rounds, args.calls)
    chosen = [scenarios.by_name(name) for name in (args.scenario or HOT)]
    work = Path(tempfile.mkdtemp(prefix="flyteconnect-ab-work-"))
    print(
        f"| scenario | bare req/s | base req/s | head req/s | base/bare | head/bare | head/base ({args.base}) "
        "| CPU µs/call bare / base / head |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    with checkout(args.base) as base_root:
        specs = [
            servers.bare_spec(16),
            servers.flyteconnect_spec(label="base", src=base_root / "src"),
            servers.flyteconnect_spec(label="head", src=ROOT / "src"),
        ]
        running: list[RunningServer] = []
        try:
            running = [servers.start(spec, work) for spec in specs]
            for sc in chosen:
                body = frames.write_body(work / f"{sc.name}.bin", sc.messages())
                # A non-OK answer stops the run with the server's message; an error reply has no body, so every
                # run's body bytes must be its calls times the size of a good reply.
                frame = {s.spec.label: verify.reply_frame_bytes(s.port, sc) for s in running}
                in_flight = 16 if args.smoke else sc.in_flight
                clients = min(sc.clients, in_flight)
                streams = max(1, -(-in_flight // clients))
                rates: dict[str, list[float]] = {s.spec.label: [] for s in running}
                cpu: dict[str, list[float]] = {s.spec.label: [] for s in running}
                for r in range(rounds):
                    for server in running if r % 2 == 0 else running[::-1]:
                        cpu0 = server.cpu_seconds()
                        result = run_h2load(server.url(sc.path), body, calls, clients, streams)
                        label = server.spec.label
                        cpu[label].append((server.cpu_seconds() - cpu0) * 1e6 / calls)
                        if result.succeeded != calls or result.body_bytes != calls * frame[label]:
                            raise SystemExit(f"{sc.name} on {label}: not every call answered OK ({result})")
                        rates[label].append(result.req_per_s)
                bare, base, head = (rates[label] for label in ("bare", "base", "head"))
                us = " / ".join(f"{statistics.median(cpu[label]):.0f}" for label in ("bare", "base", "head"))
                print(
                    f"| {sc.name} | {statistics.median(bare):,.0f} | {statistics.median(base):,.0f} | "
                    f"{statistics.median(head):,.0f} | {_ratio(base, bare):.2f} | {_ratio(head, bare):.2f} | "
                    f"{_ratio(head, base):.2f} | {us} |",
                    flush=True,
                )
        finally:
            for server in running:
                server.stop()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
