"""A task for a built-in connector (the file sensor): this module registers nothing, so ``flyteconnect run`` must
find the connector through its entry point."""

from __future__ import annotations

from flyteconnect.local import ConnectorTask

wait_for_file = ConnectorTask(
    "wait_for_file",
    "sensor",
    inputs={"path": str},
    custom={"sensor_module": "flytekit.sensor.file_sensor", "sensor_name": "FileSensor", "sensor_config": {}},
)
