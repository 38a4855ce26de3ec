"""Pins the public names: removing or renaming one is a breaking change and must be deliberate."""

import flyteconnect

EXPECTED = {
    "AgentBase",
    "AgentRegistry",
    "AsyncAgentBase",
    "AsyncConnectorBase",
    "ConnectorBase",
    "ConnectorError",
    "ConnectorNotFound",
    "ConnectorRegistry",
    "FlyteConnectError",
    "InvalidRequest",
    "LiteralError",
    "LiteralMap",
    "Phase",
    "Resource",
    "ResourceMeta",
    "ResourceMetaError",
    "SyncAgentBase",
    "SyncConnectorBase",
    "TaskCategory",
    "TaskExecutionMetadata",
    "TaskTemplate",
    "TransientError",
    "TypedInterface",
    "__version__",
    "convert_to_flyte_phase",
    "is_terminal_phase",
}


def test_public_names_are_pinned() -> None:
    assert set(flyteconnect.__all__) >= EXPECTED
    for name in flyteconnect.__all__:
        assert getattr(flyteconnect, name) is not None, name


def test_every_public_name_has_a_docstring() -> None:
    for name in flyteconnect.__all__:
        obj = getattr(flyteconnect, name)
        if isinstance(obj, type) or callable(obj):
            assert obj.__doc__, f"{name} has no docstring"
