"""flyteconnect: write, test and serve Flyte connectors.

Everything a connector author needs is importable from here. Names are imported on first access (PEP 562), and the
server, CLI, local runner and testing kit live in subpackages imported only when used: ``import flyteconnect`` loads
nothing else, so ``flyteconnect --help`` is instant and ``flyteconnect serve`` loads the SDK with the collector off.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flyteconnect.callbacks import CallbacksUnavailable, callback_url
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
    from flyteconnect.local.mixins import AsyncConnectorExecutorMixin, SyncConnectorExecutorMixin
    from flyteconnect.local.task import ConnectorTask
    from flyteconnect.models import LiteralMap, TaskExecutionMetadata, TaskTemplate, TypedInterface
    from flyteconnect.registry import ConnectorRegistry

    # flytekit's deprecated Agent* names, kept so older connectors port by changing imports only.
    AgentBase = ConnectorBase
    AsyncAgentBase = AsyncConnectorBase
    SyncAgentBase = SyncConnectorBase
    AgentRegistry = ConnectorRegistry
    AsyncAgentExecutorMixin = AsyncConnectorExecutorMixin
    SyncAgentExecutorMixin = SyncConnectorExecutorMixin

__version__ = "0.1.0"

# public name -> "module" (same attribute name) or "module:attribute"
_LAZY: dict[str, str] = {
    **dict.fromkeys(
        (
            "AsyncConnectorBase",
            "ConnectorBase",
            "Phase",
            "Resource",
            "ResourceMeta",
            "SyncConnectorBase",
            "TaskCategory",
            "convert_to_flyte_phase",
            "is_terminal_phase",
        ),
        "flyteconnect.connector",
    ),
    **dict.fromkeys(
        (
            "ConnectorError",
            "ConnectorNotFound",
            "FlyteConnectError",
            "InvalidRequest",
            "LiteralError",
            "ResourceMetaError",
            "TransientError",
        ),
        "flyteconnect.errors",
    ),
    **dict.fromkeys(("LiteralMap", "TaskExecutionMetadata", "TaskTemplate", "TypedInterface"), "flyteconnect.models"),
    "ConnectorRegistry": "flyteconnect.registry",
    "ConnectorTask": "flyteconnect.local.task",
    **dict.fromkeys(("CallbacksUnavailable", "callback_url"), "flyteconnect.callbacks"),
    "AsyncConnectorExecutorMixin": "flyteconnect.local.mixins",
    "SyncConnectorExecutorMixin": "flyteconnect.local.mixins",
    # deprecated aliases
    "AgentBase": "flyteconnect.connector:ConnectorBase",
    "AsyncAgentBase": "flyteconnect.connector:AsyncConnectorBase",
    "SyncAgentBase": "flyteconnect.connector:SyncConnectorBase",
    "AgentRegistry": "flyteconnect.registry:ConnectorRegistry",
    "AsyncAgentExecutorMixin": "flyteconnect.local.mixins:AsyncConnectorExecutorMixin",
    "SyncAgentExecutorMixin": "flyteconnect.local.mixins:SyncConnectorExecutorMixin",
}


def __getattr__(name: str) -> object:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'flyteconnect' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module), attr or name)
    globals()[name] = value  # later lookups are plain module attributes
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
    # completion by callback (the external system reports; see flyteconnect.callbacks)
    "CallbacksUnavailable",
    "callback_url",
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
