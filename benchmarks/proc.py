"""Process readings from /proc (CPU time and resident memory of a server and its worker processes), and CPU pinning
of the child processes the suite starts."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["cpu_seconds", "pinned_to", "process_tree", "rss_bytes"]

_TICKS = os.sysconf("SC_CLK_TCK")


def pinned_to(cpus: tuple[int, ...] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` restricting a child process (and every thread it starts) to ``cpus``; None: no restriction."""
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing parenthesis.
    return text[text.rindex(")") + 2 :].split()


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants (a ``--workers N`` server is a supervisor plus N workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by ``pid`` and its live descendants."""
    total = 0
    for p in process_tree(pid):
        fields = _stat_fields(p)
        if fields is not None:
            # fields[11], fields[12] are utime and stime (fields 14 and 15 of proc(5), counted from the state field).
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size (VmRSS) of ``pid`` plus its live descendants, in bytes."""
    total = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total
