"""flyteconnect: write, test and serve Flyte connectors.

Everything a connector author needs is importable from here. The server, CLI, local runner and testing kit live in
subpackages and are imported only when used, so ``import flyteconnect`` stays light (no grpc, click or rich).
"""

from __future__ import annotations

from flyteconnect.connector import (
    AsyncConnectorBase,
    ConnectorBase,
    Phase,
    Resource,
    ResourceMeta,
    SyncConnectorBase,
    TaskCategory,
    convert_to_flyte_phase,
    is_terminal_phase,
)
from flyteconnect.errors import (
    ConnectorError,
    ConnectorNotFound,
    FlyteConnectError,
    InvalidRequest,
    LiteralError,
    ResourceMetaError,
    TransientError,
)
from flyteconnect.models import LiteralMap, TaskExecutionMetadata, TaskTemplate, TypedInterface
from flyteconnect.registry import ConnectorRegistry

__version__ = "0.1.0"

# flytekit's deprecated Agent* names, kept so older connectors port by changing imports only.
AgentBase = ConnectorBase
AsyncAgentBase = AsyncConnectorBase
SyncAgentBase = SyncConnectorBase
AgentRegistry = ConnectorRegistry

# Local execution is imported on first use so `import flyteconnect` stays light.
_LAZY = {
    "ConnectorTask": "flyteconnect.local.task",
    "AsyncConnectorExecutorMixin": "flyteconnect.local.mixins",
    "SyncConnectorExecutorMixin": "flyteconnect.local.mixins",
    "AsyncAgentExecutorMixin": "flyteconnect.local.mixins:AsyncConnectorExecutorMixin",
    "SyncAgentExecutorMixin": "flyteconnect.local.mixins:SyncConnectorExecutorMixin",
}


def __getattr__(name: str) -> object:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'flyteconnect' has no attribute {name!r}")
    import importlib

    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr or name)


__all__ = [  # noqa: RUF022 - grouped by topic, not sorted
    # connectors
    "AsyncConnectorBase",
    "ConnectorBase",
    "ConnectorRegistry",
    "SyncConnectorBase",
    "TaskCategory",
    # what connectors exchange
    "LiteralMap",
    "Phase",
    "Resource",
    "ResourceMeta",
    "TaskExecutionMetadata",
    "TaskTemplate",
    "TypedInterface",
    "convert_to_flyte_phase",
    "is_terminal_phase",
    # local execution
    "AsyncConnectorExecutorMixin",
    "ConnectorTask",
    "SyncConnectorExecutorMixin",
    # errors
    "ConnectorError",
    "ConnectorNotFound",
    "FlyteConnectError",
    "InvalidRequest",
    "LiteralError",
    "ResourceMetaError",
    "TransientError",
    # deprecated aliases
    "AgentBase",
    "AgentRegistry",
    "AsyncAgentBase",
    "AsyncAgentExecutorMixin",
    "SyncAgentBase",
    "SyncAgentExecutorMixin",
    "__version__",
]
