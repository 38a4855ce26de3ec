"""ListAgents / ListConnectors replies are built once per registry snapshot and rebuilt after a refresh."""

from __future__ import annotations

from typing import Any

from flyteconnect.registry import ConnectorRegistry
from flyteconnect.server import flyteidl_v1, flyteidl_v2
from flyteconnect.server.dispatch import DispatchConfig, Dispatcher

from . import connectors


async def test_list_replies_follow_the_registry_snapshot() -> None:
    registry = ConnectorRegistry([connectors.EchoConnector()])
    dispatcher = Dispatcher(registry, DispatchConfig(stall_threshold=None))
    v1 = flyteidl_v1.ConnectorMetadataService(dispatcher)
    v2 = flyteidl_v2.ConnectorMetadataService(dispatcher)
    context: Any = None  # the list calls read neither the request nor the context
    try:
        first_v1 = await v1.ListAgents(None, context)
        first_v2 = await v2.ListConnectors(None, context)
        assert [a.name for a in first_v1.agents] == ["Echo Connector"]
        assert [c.name for c in first_v2.connectors] == ["Echo Connector"]
        assert await v1.ListAgents(None, context) is first_v1  # same snapshot: the reply is reused
        assert await v2.ListConnectors(None, context) is first_v2

        registry.register(connectors.LogsConnector())
        dispatcher.refresh()
        again_v1 = await v1.ListAgents(None, context)
        again_v2 = await v2.ListConnectors(None, context)
        assert sorted(a.name for a in again_v1.agents) == ["Echo Connector", "Logs Connector"]
        assert sorted(c.name for c in again_v2.connectors) == ["Echo Connector", "Logs Connector"]
    finally:
        dispatcher.close()
