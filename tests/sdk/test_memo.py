"""The bounded memo rule: oldest entry out first, never an error when threads race."""

from __future__ import annotations

import threading

from flyteconnect.memo import remember


def test_the_oldest_entry_goes_first_and_the_value_comes_back() -> None:
    memo: dict[int, str] = {}
    for i in range(10):
        assert remember(memo, i, f"v{i}", limit=3) == f"v{i}"
    assert memo == {7: "v7", 8: "v8", 9: "v9"}
    remember(memo, 8, "again", limit=3)  # full: the oldest (7) goes; a key already there keeps its place
    assert list(memo) == [8, 9] and memo[8] == "again"


def test_threads_sharing_a_memo_never_fail_and_it_stays_bounded() -> None:
    memo: dict[tuple[int, int], int] = {}
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(20_000):
                remember(memo, (t, i), i, limit=64)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(memo) <= 64 + len(threads)  # each racing thread may have added one past the bound
