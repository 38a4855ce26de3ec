"""flytekit is installed here, yet flyteconnect never imports it unless asked (``--flytekit-plugins``, or a served
module that imports flytekit itself): connectors written for flyteconnect keep today's cost."""

from __future__ import annotations

import subprocess

from .compat_support import PYTHON, ROOT, compat_env

PROBE = """
import asyncio, sys
from flyteconnect.server.loading import load_connectors
from flyteconnect.testing import ConnectorServer

result = load_connectors([{module!r}], entry_points=True)
assert not result.failures, result.failures
categories = sorted(str(c) for c in result.registry.categories())

async def main():
    async with ConnectorServer(result.registry) as server:
        from flyteidl.admin import agent_pb2
        from flyteidl.service import agent_pb2_grpc
        import grpc
        async with grpc.aio.insecure_channel(server.address) as channel:
            reply = await agent_pb2_grpc.AgentMetadataServiceStub(channel).ListAgents(agent_pb2.ListAgentsRequest())
    return sorted(t.name for a in reply.agents for t in a.supported_task_categories)

served = asyncio.run(main())
print(categories, served)
print("flytekit imported:", sorted(m for m in sys.modules if m == "flytekit" or m.startswith("flytekit.")))
"""


def test_serving_our_connectors_does_not_import_flytekit() -> None:
    probe = PROBE.format(module=str(ROOT / "examples/flyteconnect-example/src/flyteconnect_example/connector.py"))
    out = subprocess.run(
        [PYTHON, "-c", probe], env=compat_env(), capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "'sensor'" in out.stdout and "'webhook'" in out.stdout  # the built-ins were served
    assert "flytekit imported: []" in out.stdout, out.stdout


def test_flytekit_is_importable_here() -> None:
    """The check above means something only where flytekit is installed: the compat virtualenv."""
    out = subprocess.run(
        [PYTHON, "-c", "import importlib.metadata as m; print(m.version('flytekit'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "1.16.31"
