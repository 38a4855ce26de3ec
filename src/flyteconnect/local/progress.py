"""Progress of local runs: a rich live table on a terminal, plain lines on phase changes otherwise, or nothing."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from flyteconnect.connector import Phase

__all__ = ["NullProgress", "PlainProgress", "Progress", "RichProgress", "RunState", "make_progress"]


@dataclass
class RunState:
    """What progress displays know about one run; the runner updates it in place."""

    task_name: str
    execution_id: str
    backend: str
    phase: int = Phase.UNDEFINED
    message: str = ""
    log_links: list[Any] = field(default_factory=list)
    note: str = ""
    """What the runner is doing outside of the connector's phases (creating, deleting the job...)."""
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    @property
    def phase_name(self) -> str:
        """The phase as a name (UNDEFINED before the first status)."""
        return Phase(self.phase).name if self.phase in Phase._value2member_map_ else str(self.phase)

    @property
    def elapsed(self) -> float:
        """Seconds since the run started (frozen once it ended)."""
        return (self.ended if self.ended is not None else time.monotonic()) - self.started

    def outcome(self, error: BaseException | None) -> str:
        """How the run ended, in words: ``SUCCEEDED``, ``cancelled while RUNNING; job deleted``, ``FAILED: why``..."""
        if error is None:
            return self.phase_name
        where = self.phase_name if self.phase else "starting"  # no status yet: created, or being created
        deleted = "; job deleted" if self.note.endswith("job deleted") else ""
        if isinstance(error, (KeyboardInterrupt, asyncio.CancelledError)) or type(error).__name__ == "TaskCancelled":
            return f"cancelled while {where}{deleted}"
        if type(error).__name__ == "TaskTimeout":
            return f"timed out while {where}{deleted}"
        if type(error).__name__ == "TaskFailed":
            return self.phase_name + (f": {self.message}" if self.message else "")
        return f"{where}, failed: {type(error).__name__}"

    def links_text(self) -> str:
        """Log links as ``name: uri`` pairs."""
        return ", ".join(f"{getattr(x, 'name', '') or 'log'}: {getattr(x, 'uri', x)}" for x in self.log_links)


class Progress(Protocol):
    """Receives run events; implementations must be cheap (they are called on the event loop)."""

    def started(self, run: RunState) -> None:
        """A run began."""

    def updated(self, run: RunState) -> None:
        """A run's phase, message, log links or note changed."""

    def finished(self, run: RunState, error: BaseException | None) -> None:
        """A run ended (error is None on success)."""


class NullProgress:
    """Shows nothing."""

    def started(self, run: RunState) -> None:
        """See Progress."""

    def updated(self, run: RunState) -> None:
        """See Progress."""

    def finished(self, run: RunState, error: BaseException | None) -> None:
        """See Progress."""


class PlainProgress:
    """One line per change of phase, note or log links, for logs and pipes."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream
        self._last: dict[str, tuple[Any, ...]] = {}

    def _write(self, run: RunState, text: str) -> None:
        stream = self._stream or sys.stderr
        stream.write(f"[{run.task_name} {run.execution_id}] {text} ({run.elapsed:.1f}s)\n")
        stream.flush()

    def started(self, run: RunState) -> None:
        """See Progress."""
        self._last[run.execution_id] = ()
        self._write(run, f"started on {run.backend}")

    def updated(self, run: RunState) -> None:
        """See Progress."""
        key = (run.phase, run.note, run.links_text())
        if self._last.get(run.execution_id) == key:
            return
        previous = self._last.get(run.execution_id, ())
        self._last[run.execution_id] = key
        text = run.note or run.phase_name + (f": {run.message}" if run.message else "")
        if run.log_links and (not previous or previous[2] != key[2]):
            text += f" | logs: {run.links_text()}"
        self._write(run, text)

    def finished(self, run: RunState, error: BaseException | None) -> None:
        """See Progress."""
        self._last.pop(run.execution_id, None)
        self._write(run, f"{run.phase_name}, done" if error is None else run.outcome(error))


class RichProgress:
    """A live table (task, phase, message, log links, elapsed) on a terminal; one display shared by concurrent runs."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console

        self._console = console or Console(stderr=True)
        self._runs: dict[str, RunState] = {}
        self._live: Any = None

    def __rich__(self) -> Any:
        from rich.table import Table

        table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
        for column in ("task", "phase", "message", "logs", "elapsed"):
            table.add_column(column, overflow="fold")
        for run in list(self._runs.values())[:50]:  # a terminal cannot show thousands of rows anyway
            table.add_row(
                run.task_name, run.note or run.phase_name, run.message, run.links_text(), f"{run.elapsed:.1f}s"
            )
        if len(self._runs) > 50:
            table.add_row(f"... and {len(self._runs) - 50} more", "", "", "", "")
        return table

    def started(self, run: RunState) -> None:
        """See Progress."""
        from rich.live import Live

        self._runs[run.execution_id] = run
        if self._live is None:
            self._live = Live(self, console=self._console, refresh_per_second=4, transient=True)
            self._live.start()

    def updated(self, run: RunState) -> None:
        """See Progress (the live display re-renders on its own)."""

    def finished(self, run: RunState, error: BaseException | None) -> None:
        """See Progress."""
        self._runs.pop(run.execution_id, None)
        if not self._runs and self._live is not None:
            self._live.stop()
            self._live = None
        mark = "[green]✓[/green]" if error is None else "[red]✗[/red]"
        self._console.print(f"{mark} {run.task_name} {run.outcome(error)} in {run.elapsed:.1f}s", highlight=False)


def make_progress(progress: Progress | str | None) -> Progress:
    """Resolve ``"auto"`` (rich on a terminal, else plain), ``"rich"``, ``"plain"``, ``"none"``/None or an object."""
    if progress is None or progress == "none":
        return NullProgress()
    if progress == "plain":
        return PlainProgress()
    if progress == "rich":
        return RichProgress()
    if progress == "auto":
        if sys.stderr.isatty():
            try:
                return RichProgress()
            except ImportError:  # rich is an optional extra: plain lines still work
                pass
        return PlainProgress()
    if isinstance(progress, str):
        raise ValueError(f"progress must be 'auto', 'rich', 'plain', 'none' or a Progress, got {progress!r}")
    return progress
