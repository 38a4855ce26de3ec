"""The file sensor: wait until a file (or object, or prefix) exists, a drop-in for flytekit's ``FileSensor``.

Task type ``sensor`` v0, async (create/get/delete). The template's ``custom`` is what flytekit's sensors serialize
(``sensor_module``, ``sensor_name``, ``sensor_config``, ``inputs``) and the input ``path`` names the file: a local path
or an fsspec URL (``s3://``, ``gs://``, ``abfs://``... with s3fs, gcsfs, adlfs installed). ``create`` returns at once;
``get`` is RUNNING until the path exists, then SUCCEEDED; ``delete`` has nothing to cancel.

Where it may look is the server's decision, not the task's (``flyteconnect.connectors.sensor_reach``): by default the
object stores anywhere and no local file; the operator names local roots and other protocols. A path outside that
reach is INVALID_ARGUMENT at ``create`` and FAILED at ``get`` (a forged ``resource_meta`` sent straight to GetTask is
checked the same way), with a message naming the policy and nothing about what the path holds. ``http(s)`` URLs,
when the operator allows them, are fetched only through ``flyteconnect.egress.http_client`` (the egress policy on
the address dialled, every redirect hop included), never through fsspec.

Beyond flytekit: a timeout (``sensor_config.timeout_sec``, else the task's ``metadata.timeout``) turns into FAILED with
a clear message; storage errors (network, throttling, credentials) are ``TransientError`` so the poll is retried;
unknown schemes and missing fsspec extras fail at ``create``. Only ``FileSensor`` is served: flytekit's generic engine
imports and runs arbitrary sensor classes named in the template, which a shared server should not do.

S3 settings come from the server's environment, as flytekit's: ``FLYTE_AWS_ENDPOINT`` or ``AWS_ENDPOINT_URL``,
``FLYTE_AWS_ACCESS_KEY_ID``/``FLYTE_AWS_SECRET_ACCESS_KEY`` (otherwise botocore's usual chain). A task's
``sensor_config.storage_options`` may only set ``anon``: it cannot move an endpoint or change credentials.

The methods are plain ``def``: file system calls block, so the server runs them on its worker threads. Local files
are checked with ``os.path``; fsspec is imported on the first remote path, and one filesystem per (protocol, options)
is made on first use and reused.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from flyteconnect.connector import AsyncConnectorBase, Phase, Resource, ResourceMeta
from flyteconnect.connectors._common import caller_text, literal_values, scrub_endpoints, storage_options
from flyteconnect.connectors.sensor_reach import LOCAL, ReachDenied, SensorReach, current_reach
from flyteconnect.errors import InvalidRequest, TransientError
from flyteconnect.models import LiteralMap, TaskExecutionMetadata, TaskTemplate

__all__ = ["FileSensorConnector", "FileSensorMetadata"]

TASK_TYPE = "sensor"
SENSOR_NAME = "FileSensor"
HTTP = ("http", "https")
"""Protocols checked with the egress policy's HTTP client (when the operator allows them), not with fsspec."""
HTTP_TIMEOUT = 30.0


@dataclass
class FileSensorMetadata(ResourceMeta):
    """flytekit's ``SensorMetadata`` fields (so flytekit-written metadata decodes), plus an optional deadline."""

    sensor_module: str
    sensor_name: str
    sensor_config: Optional[dict] = None
    inputs: Optional[dict] = None
    deadline: Optional[float] = None
    """Unix time after which ``get`` reports FAILED; None waits until Propeller's own timeout."""


@dataclass(frozen=True)
class _Target:
    """An allowed path: its protocol, what to look at (local paths resolved) and the task's storage options."""

    protocol: str
    path: str
    options: dict[str, Any]


class FileSensorConnector(AsyncConnectorBase[FileSensorMetadata]):
    """Succeeds once ``inputs.path`` exists (local or remote through fsspec), within the server's sensor reach.

    ``reach``: where this instance may look; None (the default, and what entry points load) follows the server's
    ``flyteconnect.connectors.sensor_reach.current_reach()``, read at every call.
    """

    name: ClassVar[str] = "Sensor"
    task_type_name = TASK_TYPE
    metadata_type = FileSensorMetadata

    def __init__(self, reach: SensorReach | None = None) -> None:
        super().__init__()
        self._reach = reach
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
        try:
            target = self._target(path, config)
            if target.protocol in HTTP:
                _check_egress(path)  # a refused host fails now; every poll checks again where it connects
        except ReachDenied as e:
            raise InvalidRequest(f"cannot watch {path}: {e}") from None
        if target.protocol not in (LOCAL, *HTTP):
            self._filesystem(target)  # unknown scheme or missing extra: fail now, not at every poll
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
        """SUCCEEDED once the path exists, FAILED after the deadline or outside the server's reach, RUNNING before."""
        path = (resource_meta.inputs or {}).get("path")
        if not isinstance(path, str) or not path:
            raise InvalidRequest("sensor resource_meta has no inputs.path")
        config = resource_meta.sensor_config or {}
        if not isinstance(config, dict):
            raise InvalidRequest("sensor resource_meta: sensor_config must be an object or null")
        try:
            # resource_meta comes back from the caller: it is checked like a new task, never trusted.
            target = self._target(path, config)
        except ReachDenied as e:
            return Resource(phase=Phase.FAILED, message=caller_text(f"cannot watch {path}: {e}"))
        try:
            exists = self._exists(target)
        except ReachDenied as e:  # the host (or a redirect) leads where the egress policy forbids: final
            return Resource(phase=Phase.FAILED, message=caller_text(f"cannot watch {path}: {e}"))
        if exists:
            return Resource(phase=Phase.SUCCEEDED, message=caller_text(f"{path} exists"))
        deadline = resource_meta.deadline
        if deadline is not None and time.time() >= deadline:
            return Resource(
                phase=Phase.FAILED, message=caller_text(f"{path} did not appear before the sensor's timeout")
            )
        return Resource(phase=Phase.RUNNING, message=caller_text(f"waiting for {path}"))

    def delete(self, resource_meta: FileSensorMetadata, **kwargs: Any) -> None:
        """Nothing runs outside the server: cancelling is a no-op."""
        return None

    def _target(self, path: str, config: dict[str, Any]) -> _Target:
        reach = self._reach or current_reach()
        options = reach.check_storage_options(config.get("storage_options"))
        protocol, resolved = reach.check(path)
        return _Target(protocol, resolved, options)

    def _exists(self, target: _Target) -> bool:
        if target.protocol == LOCAL:
            return os.path.exists(target.path)  # already resolved inside a root: no fsspec needed
        if target.protocol in HTTP:
            return asyncio.run(_url_exists(target.path))  # on a worker thread: a loop of its own for this poll
        fs = self._filesystem(target)
        try:
            fs.invalidate_cache(target.path)  # remote listings are cached: a new object must not be missed
            return bool(fs.exists(target.path))
        except Exception as e:  # whatever the storage backend raises: try again at the next poll
            # botocore's text can carry the server's endpoint URL: the caller learns what failed, not where.
            raise TransientError(f"cannot check {target.path}: {scrub_endpoints(f'{type(e).__name__}: {e}')}") from None

    def _filesystem(self, target: _Target) -> Any:
        protocol = target.protocol
        options = {**storage_options(protocol), **target.options}
        key = f"{protocol}:{json.dumps(options, sort_keys=True, default=str)}"
        with self._lock:
            fs = self._filesystems.get(key)
            if fs is None:
                try:
                    import fsspec  # on the first remote path: loading the entry point stays light

                    fs = fsspec.filesystem(protocol, **options)
                except ImportError as e:
                    raise InvalidRequest(f"cannot watch {protocol}:// paths: {e}") from None
                except (ValueError, TypeError) as e:
                    raise InvalidRequest(f"cannot watch {protocol}:// paths: {e}") from None
                self._filesystems[key] = fs
            return fs


def _check_egress(url: str) -> None:
    """``egress.current_policy().check_url`` from a worker thread; its refusal as a ReachDenied."""
    from flyteconnect.egress import EgressDenied, current_policy  # only where http(s) is allowed at all

    try:
        asyncio.run(current_policy().check_url(url))
    except EgressDenied as e:
        raise ReachDenied(str(e)) from None


async def _url_exists(url: str) -> bool:
    """Whether ``url`` answers 2xx (404 and 410: not yet), through ``egress.http_client``.

    The client checks the address it dials for the URL and for every redirect hop, so neither DNS nor a redirect can
    lead the sensor to an address the egress policy refuses. HEAD first; GET (body not read) when HEAD is not allowed.
    """
    import httpx

    from flyteconnect.egress import EgressDenied, http_client

    async with http_client(follow_redirects=True, timeout=HTTP_TIMEOUT) as client:
        try:
            response = await client.head(url)
            if response.status_code in (405, 501):
                async with client.stream("GET", url) as streamed:
                    response = streamed
        except EgressDenied as e:
            raise ReachDenied(str(e)) from None
        except httpx.HTTPError as e:
            raise TransientError(f"cannot check {url}: {type(e).__name__}: {e}") from None
    status = response.status_code
    if 200 <= status < 300:
        return True
    if status in (404, 410):
        return False
    raise TransientError(f"cannot check {url}: HTTP {status}")
