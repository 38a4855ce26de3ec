"""Loop-bound clean-up: closers run on their own loop, newest first, bounded; a stubborn task cannot hang a run."""

from __future__ import annotations

import asyncio
import logging

import pytest

from flyteconnect.local.sync import run_sync
from flyteconnect.loops import close_loop_resources, on_loop_close


async def test_closers_run_newest_first_and_only_for_their_loop() -> None:
    order: list[str] = []

    async def closer(name: str) -> None:
        order.append(name)

    on_loop_close(lambda: closer("first"))
    on_loop_close(lambda: closer("second"))
    await asyncio.to_thread(asyncio.run, close_loop_resources())  # another loop: none of ours run
    assert order == []
    await close_loop_resources()
    assert order == ["second", "first"]
    await close_loop_resources()  # each closer runs once
    assert order == ["second", "first"]


async def test_a_failing_or_hanging_closer_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    ran: list[str] = []

    async def boom() -> None:
        raise RuntimeError("cannot close")

    async def hang() -> None:
        await asyncio.Event().wait()

    async def fine() -> None:
        ran.append("fine")

    on_loop_close(fine)
    on_loop_close(hang)
    on_loop_close(boom)
    with caplog.at_level(logging.WARNING, logger="flyteconnect.loops"):
        await close_loop_resources(timeout=0.05)
    assert ran == ["fine"]
    assert "RuntimeError: cannot close" in caplog.text and "TimeoutError" in caplog.text


def test_sync_run_closes_loop_clients_and_survives_tasks_that_ignore_cancellation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import flyteconnect.local.sync as sync

    monkeypatch.setattr(sync, "FINISH_TIMEOUT", 0.1)
    closed: list[bool] = []

    async def stubborn() -> None:  # like a pool worker that reconnects when cancelled
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    async def main() -> int:
        asyncio.get_running_loop().create_task(stubborn())

        async def close() -> None:
            closed.append(True)

        on_loop_close(close)
        return 7

    assert run_sync(main) == 7
    assert closed == [True]
