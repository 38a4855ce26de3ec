"""Where each flytekit name a connector module uses lives in flyteconnect: the table ``flyteconnect migrate`` applies.

``NAMES`` maps (flytekit module, name) to (flyteconnect module, name); ``MODULES`` maps whole flytekit modules that
connectors import as a namespace (``from flytekit.models import literals``). A flytekit name found in neither cannot be
ported mechanically; ``unported_reason`` says why, for the report.
"""

from __future__ import annotations

__all__ = ["FLYTEKIT_DEPENDENCIES", "MODULES", "NAMES", "PARTIAL", "flytekit_module", "unported_reason"]

_RUNTIME = "flyteconnect.compat.runtime"
_TYPES = "flyteconnect.compat.types"
_MODELS = "flyteconnect.compat.models"
_V1 = "flyteconnect.server.flyteidl_v1"


def _same(target: str, *names: str) -> dict[str, tuple[str, str]]:
    return {name: (target, name) for name in names}


_FRAMEWORK = {
    **_same(
        "flyteconnect",
        "AsyncConnectorBase",
        "SyncConnectorBase",
        "ConnectorBase",
        "Resource",
        "ResourceMeta",
        "ConnectorRegistry",
        "TaskCategory",
        "is_terminal_phase",
        "convert_to_flyte_phase",
        "AsyncConnectorExecutorMixin",
        "SyncConnectorExecutorMixin",
        "AgentBase",
        "AsyncAgentBase",
        "SyncAgentBase",
        "AgentRegistry",
        "AsyncAgentExecutorMixin",
        "SyncAgentExecutorMixin",
    ),
    **_same("flyteconnect.secrets", "get_connector_secret", "get_agent_secret"),
}

_SERVICES = {
    **_same(_V1, "AsyncConnectorService", "SyncConnectorService", "ConnectorMetadataService"),
    "AsyncAgentService": (_V1, "AsyncConnectorService"),
    "SyncAgentService": (_V1, "SyncConnectorService"),
    "AgentMetadataService": (_V1, "ConnectorMetadataService"),
}

_TOP_LEVEL = {
    **_same(_RUNTIME, "logger", "lazy_module", "current_context", "FlyteContextManager", "FlyteContext", "Resources"),
    **_same("flyteconnect.literals", "StructuredDataset", "FlyteFile", "FlyteDirectory"),
    "TypeEngine": (_TYPES, "TypeEngine"),
}

_IDENTIFIERS = _same(
    _MODELS, "Identifier", "WorkflowExecutionIdentifier", "NodeExecutionIdentifier", "TaskExecutionIdentifier"
)

NAMES: dict[tuple[str, str], tuple[str, str]] = {
    **{("flytekit.extend.backend.base_connector", n): t for n, t in _FRAMEWORK.items()},
    **{("flytekit.extend.backend.base_agent", n): t for n, t in _FRAMEWORK.items()},
    **{("flytekit.extend.backend.utils", n): t for n, t in _FRAMEWORK.items()},
    **{("flytekit.extend.backend.connector_service", n): t for n, t in _SERVICES.items()},
    **{("flytekit.extend.backend.agent_service", n): t for n, t in _SERVICES.items()},
    **{("flytekit", n): t for n, t in _TOP_LEVEL.items()},
    ("flytekit.loggers", "logger"): (_RUNTIME, "logger"),
    ("flytekit.utils.asyn", "loop_manager"): (_RUNTIME, "loop_manager"),
    ("flytekit.lazy_import.lazy_module", "lazy_module"): (_RUNTIME, "lazy_module"),
    ("flytekit.core.type_engine", "TypeEngine"): (_TYPES, "TypeEngine"),
    ("flytekit.extend", "TypeEngine"): (_TYPES, "TypeEngine"),
    ("flytekit.core.context_manager", "FlyteContextManager"): (_RUNTIME, "FlyteContextManager"),
    ("flytekit.core.context_manager", "FlyteContext"): (_RUNTIME, "FlyteContext"),
    ("flytekit.core.constants", "FLYTE_FAIL_ON_ERROR"): (_RUNTIME, "FLYTE_FAIL_ON_ERROR"),
    ("flytekit.core.resources", "Resources"): (_RUNTIME, "Resources"),
    ("flytekit.exceptions.base", "FlyteException"): (_RUNTIME, "FlyteException"),
    ("flytekit.exceptions.user", "FlyteUserException"): (_RUNTIME, "FlyteUserException"),
    ("flytekit.exceptions.system", "FlyteConnectorNotFound"): ("flyteconnect.errors", "ConnectorNotFound"),
    ("flytekit.exceptions.system", "FlyteAgentNotFound"): ("flyteconnect.errors", "ConnectorNotFound"),
    ("flytekit.interaction.string_literals", "literal_map_string_repr"): (_TYPES, "literal_map_string_repr"),
    ("flytekit.utils.dict_formatter", "format_dict"): ("flyteconnect.compat.formatting", "format_dict"),
    ("flytekit.types.structured", "StructuredDataset"): ("flyteconnect.literals", "StructuredDataset"),
    ("flytekit.types.structured.structured_dataset", "StructuredDataset"): (
        "flyteconnect.literals",
        "StructuredDataset",
    ),
    ("flytekit.types.file", "FlyteFile"): ("flyteconnect.literals", "FlyteFile"),
    ("flytekit.types.directory", "FlyteDirectory"): ("flyteconnect.literals", "FlyteDirectory"),
    ("flytekit.models.literals", "LiteralMap"): ("flyteconnect", "LiteralMap"),
    **{
        ("flytekit.models.literals", n): ("flyteconnect.compat.literals", n)
        for n in ("Literal", "LiteralCollection", "Primitive", "Scalar", "Blob", "BlobMetadata", "Binary", "Void")
    },
    **{
        ("flytekit.models.literals", n): ("flyteconnect.compat.literals", n)
        for n in ("StructuredDataset", "StructuredDatasetMetadata", "Union")
    },
    ("flytekit.models.task", "TaskTemplate"): ("flyteconnect", "TaskTemplate"),
    ("flytekit.models.task", "TaskExecutionMetadata"): ("flyteconnect", "TaskExecutionMetadata"),
    ("flytekit.models.interface", "TypedInterface"): ("flyteconnect", "TypedInterface"),
    ("flytekit.models.core.execution", "TaskLog"): (_MODELS, "TaskLog"),
    **{("flytekit.models.core.identifier", n): t for n, t in _IDENTIFIERS.items()},
    ("flytekit.models.core.identifier", "ResourceType"): ("flyteidl.core.identifier_pb2", "ResourceType"),
    **{
        ("flytekit.models.types", n): ("flyteidl.core.types_pb2", n)
        for n in ("LiteralType", "StructuredDatasetType", "SimpleType", "BlobType", "UnionType")
    },
    **{
        ("flytekit.models.security", n): ("flyteidl.core.security_pb2", n)
        for n in ("Identity", "Secret", "SecurityContext", "OAuth2TokenRequest")
    },
}

# The stand-ins that offer part of a flytekit class: the attributes they have (others are reported).
PARTIAL: dict[str, frozenset[str]] = {
    "FlyteContextManager": frozenset({"current_context"}),
    "TypeEngine": frozenset(
        {
            "to_literal",
            "to_python_value",
            "to_literal_type",
            "guess_python_type",
            "literal_map_to_kwargs",
            "dict_to_literal_map",
        }
    ),
}

MODULES: dict[str, str] = {
    "flytekit.models.literals": "flyteconnect.compat.literals",
    "flytekit.models.types": "flyteidl.core.types_pb2",
    "flytekit.models.security": "flyteidl.core.security_pb2",
}

# Third-party modules that come with flytekit: a migrated connector must now list them in its own requirements.
FLYTEKIT_DEPENDENCIES = frozenset({"cloudpickle", "jsonpickle", "fsspec", "mashumaro", "marshmallow", "msgpack"})

_TASK_SIDE = (
    "flytekit.core.base_task",
    "flytekit.core.python_function_task",
    "flytekit.core.python_auto_container",
    "flytekit.core.interface",
    "flytekit.core.workflow",
    "flytekit.core.task",
    "flytekit.configuration",
    "flytekit.extras.tasks",
    "flytekit.image_spec",
    "flytekit.tools",
    "flytekit.sensor",
)
_TASK_SIDE_TOP_LEVEL = frozenset(
    {
        "PythonFunctionTask",
        "PythonTask",
        "PythonInstanceTask",
        "task",
        "workflow",
        "ImageSpec",
        "kwtypes",
        "Secret",
        "SQLTask",
        "ContainerTask",
        "dynamic",
        "map_task",
        "Workflow",
    }
)


def flytekit_module(module: str) -> bool:
    """Whether ``module`` is flytekit or one of its submodules."""
    return module == "flytekit" or module.startswith("flytekit.")


def unported_reason(module: str, name: str) -> str:
    """Why ``module.name`` is not ported: task-side code, or no flyteconnect equivalent."""
    if module.startswith(_TASK_SIDE) or (module == "flytekit" and name in _TASK_SIDE_TOP_LEVEL):
        return "task-side (defines, serializes or runs tasks in the user's program); connector servers do not need it"
    if module.startswith("flytekit.extend.backend"):
        return "flytekit connector-framework internal with no flyteconnect equivalent"
    return "no flyteconnect equivalent"
