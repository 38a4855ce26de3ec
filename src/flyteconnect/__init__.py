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
    "SyncAgentBase",
    "__version__",
]
