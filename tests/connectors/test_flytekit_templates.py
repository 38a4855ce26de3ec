"""Tasks authored with flytekit run unchanged on flyteconnect's built-in connectors.

The TaskTemplates and inputs under tests/golden/templates were serialized by flytekit 1.16 itself
(tools/make_golden_templates.py); here they go through a real flyteconnect server as Propeller would send them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flyteidl.core import literals_pb2, tasks_pb2

from flyteconnect import Phase
from flyteconnect.connectors.file_sensor import FileSensorConnector
from flyteconnect.connectors.sensor_reach import SensorReach
from flyteconnect.connectors.webhook import WebhookConnector
from flyteconnect.literals import to_literal
from flyteconnect.testing import ConnectorServer

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "templates"


def load(name: str) -> Any:
    cls = tasks_pb2.TaskTemplate if name.endswith(".template.pb") else literals_pb2.LiteralMap
    return cls.FromString((GOLDEN / name).read_bytes())


@pytest.mark.parametrize("protocol", ["v1", "v2"])
@pytest.mark.usefixtures("allow_loopback_egress")
async def test_flytekit_webhook_post_task(protocol: str, http_server: Any) -> None:
    template = load("webhook_post.template.pb")
    assert template.type == "webhook" and template.custom.fields["method"].string_value == "POST"
    inputs = load("webhook_post.inputs.pb")
    inputs.literals["base_url"].CopyFrom(to_literal(http_server.url))
    before = len(http_server.requests)
    async with ConnectorServer(WebhookConnector(), protocols=[protocol]) as server:
        result = await server.propeller(protocol=protocol, poll_interval=0.02).run(template, inputs)
    assert result.phase == Phase.SUCCEEDED, result.message
    (sent,) = http_server.requests[before:]
    assert (sent["method"], sent["path"]) == ("POST", "/echo/r-42")
    assert sent["headers"]["x-run"] == "r-42"
    assert sent["json"] == {
        "text": "run r-42 finished",
        "count": 3,
    }  # a whole-string placeholder keeps its type, as in flytekit
    info = result.outputs["info"]
    assert info["status_code"] == 200
    assert info["url"] == f"{http_server.url}/echo/r-42"
    assert info["input_data"] == {
        "text": "run r-42 finished",
        "count": 3,
    }  # a whole-string placeholder keeps its type, as in flytekit


@pytest.mark.usefixtures("allow_loopback_egress")
async def test_flytekit_webhook_get_task(http_server: Any) -> None:
    template = load("webhook_get.template.pb")
    inputs = load("webhook_get.inputs.pb")
    inputs.literals["base_url"].CopyFrom(to_literal(http_server.url))
    before = len(http_server.requests)
    async with ConnectorServer(WebhookConnector(), protocols=["v1"]) as server:
        result = await server.propeller(poll_interval=0.02).run(template, inputs)
    assert result.phase == Phase.SUCCEEDED, result.message
    (sent,) = http_server.requests[before:]
    assert (sent["method"], sent["path"], sent["query"]) == ("GET", "/echo", {"q": "r-7"})
    assert [c.method for c in result.calls][-1] == "ExecuteTaskSync"


@pytest.mark.parametrize("protocol", ["v1", "v2"])
async def test_flytekit_file_sensor_task(protocol: str, tmp_path: Path) -> None:
    template = load("file_sensor.template.pb")
    assert (template.type, template.custom.fields["sensor_name"].string_value) == ("sensor", "FileSensor")
    target = tmp_path / "arrived.txt"
    target.write_text("here")
    inputs = literals_pb2.LiteralMap(literals={"path": to_literal(str(target))})
    sensor = FileSensorConnector(reach=SensorReach(roots=(str(tmp_path),)))
    async with ConnectorServer(sensor, protocols=[protocol]) as server:
        result = await server.propeller(protocol=protocol, poll_interval=0.02).run(template, inputs)
    assert result.phase == Phase.SUCCEEDED, result.message
    assert [c.method for c in result.calls if c.method != "ListAgents" and c.method != "ListConnectors"][:1] == [
        "CreateTask"
    ]
