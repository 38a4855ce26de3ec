"""Compare flyteconnect's literal engine with flytekit's TypeEngine on a realistic connector output dict.

Run with the reference venv (it has flytekit); flyteconnect is imported from this checkout's src/:

    /work/.venv-ref/bin/python benchmarks/bench_literals.py

Prints timings and ratios; asserts nothing.
"""

from __future__ import annotations

import datetime
import logging
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from flytekit import FlyteContextManager
from flytekit.core.type_engine import TypeEngine
from flytekit.models.literals import LiteralMap

from flyteconnect.literals import literal_map_to_python, to_literal_map

OUTPUTS = {
    "job_id": "run-2024-05-01-abc123",
    "rows": 123456,
    "duration_s": 12.75,
    "succeeded": True,
    "finished_at": datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc),
    "stats": {"read": 1000, "written": 990, "errors": [], "by_table": {"a": 1, "b": 2}},
    "message": "ok",
    "attempts": 1,
}
HINTS = {k: type(v) for k, v in OUTPUTS.items()}


def _time(fn: object, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6  # type: ignore[arg-type]


def main() -> None:
    logging.getLogger("flytekit").setLevel(logging.ERROR)
    ctx = FlyteContextManager.current_context()
    ours_lm = to_literal_map(OUTPUTS)
    kit_lm_pb = TypeEngine.dict_to_literal_map(ctx, OUTPUTS).to_flyte_idl()
    assert ours_lm == kit_lm_pb, "engines disagree"

    n = 2000
    rows = [
        (
            "to_literal_map (untyped)",
            lambda: to_literal_map(OUTPUTS),
            lambda: TypeEngine.dict_to_literal_map(ctx, OUTPUTS).to_flyte_idl(),
        ),
        (
            "literal_map_to_python (typed)",
            lambda: literal_map_to_python(ours_lm, HINTS),
            lambda: TypeEngine.literal_map_to_kwargs(ctx, LiteralMap.from_flyte_idl(kit_lm_pb), HINTS),
        ),
    ]
    print(f"{'operation':34} {'flyteconnect':>14} {'flytekit':>14} {'speed-up':>9}")
    for name, ours, kit in rows:
        t_ours, t_kit = _time(ours, n), _time(kit, n // 10)
        print(f"{name:34} {t_ours:11.1f} us {t_kit:11.1f} us {t_kit / t_ours:8.1f}x")


if __name__ == "__main__":
    main()
