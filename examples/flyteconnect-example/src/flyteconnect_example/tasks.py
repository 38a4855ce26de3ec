"""The task users write against the connector (a flytekit task with ``task_type="example_timer"`` works the same)."""

from __future__ import annotations

from flyteconnect.local import ConnectorTask

countdown = ConnectorTask(
    name="countdown",
    task_type="example_timer",
    inputs={"seconds": float, "message": str},
    outputs={"message": str, "elapsed": float},
    custom={"default_seconds": 1.0},
)
