"""The file sensor: wait until a file (or object, or prefix) exists, a drop-in for flytekit's ``FileSensor``.

Task type ``sensor`` v0, async (create/get/delete). The template's ``custom`` is what flytekit's sensors serialize
(``sensor_module``, ``sensor_name``, ``sensor_config``, ``inputs``) and the input ``path`` names the file: a local path
or any fsspec URL (``s3://``, ``gs://``, ``abfs://``... with s3fs, gcsfs, adlfs installed). ``create`` returns at once;
``get`` is RUNNING until the path exists, then SUCCEEDED; ``delete`` has nothing to cancel.

Beyond flytekit: a timeout (``sensor_config.timeout_sec``, else the task's ``metadata.timeout``) turns into FAILED with
a clear message; storage errors (network, throttling, credentials) are ``TransientError`` so the poll is retried;
unknown schemes and missing fsspec extras fail at ``create``. Only ``FileSensor`` is served: flytekit's generic engine
imports and runs arbitrary sensor classes named in the template, which a shared server should not do.

S3 settings come from the environment, as flytekit's: ``FLYTE_AWS_ENDPOINT`` or ``AWS_ENDPOINT_URL``,
``FLYTE_AWS_ACCESS_KEY_ID``/``FLYTE_AWS_SECRET_ACCESS_KEY`` (otherwise botocore's usual chain); non-secret fsspec
options may also be given per task in ``sensor_config.storage_options``.

The methods are plain ``def``: fsspec's calls block, so the server runs them on its worker threads. One filesystem
per (protocol, options) is made on first use and reused.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

import fsspec
from fsspec.utils import get_protocol

from flyteconnect.connector import AsyncConnectorBase, Phase, Resource, ResourceMeta
from flyteconnect.connectors._common import literal_values, storage_options
from flyteconnect.errors import InvalidRequest, TransientError
from flyteconnect.models import LiteralMap, TaskExecutionMetadata, TaskTemplate

__all__ = ["FileSensorConnector", "FileSensorMetadata"]

TASK_TYPE = "sensor"
SENSOR_NAME = "FileSensor"


@dataclass
class FileSensorMetadata(ResourceMeta):
    """flytekit's ``SensorMetadata`` fields (so flytekit-written metadata decodes), plus an optional deadline."""

    sensor_module: str
    sensor_name: str
    sensor_config: Optional[dict] = None
    inputs: Optional[dict] = None
    deadline: Optional[float] = None
    """Unix time after which ``get`` reports FAILED; None waits until Propeller's own timeout."""


class FileSensorConnector(AsyncConnectorBase[FileSensorMetadata]):
    """Succeeds once ``inputs.path`` exists (local or remote through fsspec)."""

    name: ClassVar[str] = "Sensor"
    task_type_name = TASK_TYPE
    metadata_type = FileSensorMetadata

    def __init__(self) -> None:
        super().__init__()
        self._filesystems: dict[str, Any] = {}
        self._lock = threading.Lock()

    def create(
        self,
        task_template: TaskTemplate,
        output_prefix: str,
        inputs: LiteralMap | None = None,
        task_execution_metadata: TaskExecutionMetadata | None = None,
        **kwargs: Any,
    ) -> FileSensorMetadata:
        """Validate the task and remember the path and deadline; nothing is started."""
        custom = task_template.custom
        name = custom.get("sensor_name")
        if name != SENSOR_NAME:
            module = custom.get("sensor_module", "?")
            raise InvalidRequest(f"the sensor connector only runs {SENSOR_NAME}, not {module}.{name}")
        config = custom.get("sensor_config") or {}
        if not isinstance(config, dict):
            raise InvalidRequest("sensor_config must be an object or null")
        values = literal_values(inputs)
        path = values.get("path")
        if not isinstance(path, str) or not path:
            raise InvalidRequest("the FileSensor task needs a non-empty string input 'path'")
        self._filesystem(path, config)  # unknown scheme or missing extra: fail now, not at every poll
        timeout = config.get("timeout_sec")
        if timeout is None and task_template.metadata.HasField("timeout"):
            timeout = task_template.metadata.timeout.ToTimedelta().total_seconds() or None
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
            raise InvalidRequest(f"sensor_config.timeout_sec must be a positive number, got {timeout!r}")
        return FileSensorMetadata(
            sensor_module=str(custom.get("sensor_module", __name__)),
            sensor_name=SENSOR_NAME,
            sensor_config=custom.get("sensor_config"),
            inputs={"path": path},
            deadline=None if timeout is None else time.time() + float(timeout),
        )

    def get(self, resource_meta: FileSensorMetadata, **kwargs: Any) -> Resource:
        """SUCCEEDED once the path exists, FAILED after the deadline, RUNNING before."""
        path = (resource_meta.inputs or {}).get("path")
        if not isinstance(path, str) or not path:
            raise InvalidRequest("sensor resource_meta has no inputs.path")
        fs = self._filesystem(path, resource_meta.sensor_config or {})
        try:
            fs.invalidate_cache(path)  # remote listings are cached: a new object must not be missed
            exists = bool(fs.exists(path))
        except Exception as e:  # whatever the storage backend raises: try again at the next poll
            raise TransientError(f"cannot check {path}: {type(e).__name__}: {e}") from None
        if exists:
            return Resource(phase=Phase.SUCCEEDED, message=f"{path} exists")
        deadline = resource_meta.deadline
        if deadline is not None and time.time() >= deadline:
            return Resource(phase=Phase.FAILED, message=f"{path} did not appear before the sensor's timeout")
        return Resource(phase=Phase.RUNNING, message=f"waiting for {path}")

    def delete(self, resource_meta: FileSensorMetadata, **kwargs: Any) -> None:
        """Nothing runs outside the server: cancelling is a no-op."""
        return None

    def _filesystem(self, path: str, config: dict[str, Any]) -> Any:
        protocol = get_protocol(path)
        options = {**storage_options(protocol), **(config.get("storage_options") or {})}
        key = f"{protocol}:{json.dumps(options, sort_keys=True, default=str)}"
        with self._lock:
            fs = self._filesystems.get(key)
            if fs is None:
                try:
                    fs = fsspec.filesystem(protocol, **options)
                except ImportError as e:
                    raise InvalidRequest(f"cannot watch {protocol}:// paths: {e}") from None
                except (ValueError, TypeError) as e:
                    raise InvalidRequest(f"cannot watch {protocol}:// paths: {e}") from None
                self._filesystems[key] = fs
            return fs
