"""flytekit connectors served unchanged by flyteconnect: the same ListAgents as ``pyflyte serve connector``, and the
same replies for a module of flytekit connectors (``serve -m``), with flyteconnect's error mapping, transient
handling, metrics and Flyte 2 on top."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.service import agent_pb2_grpc

from flyteconnect import Phase
from flyteconnect.literals import to_literal_map
from flyteconnect.testing import FakePropeller

from .compat_support import ROOT, Served, categories, compat_env, flyteconnect_serve, pyflyte_serve
from .flytekit_tasks import EchoTask, serialize

HERE = Path(__file__).resolve().parent
ECHO = str(HERE / "flytekit_echo.py")
ECHO_CATEGORIES = {
    ("Echo Connector", "echo", 0, False),
    ("Echo Def Connector", "echo_def", 2, False),
    ("Echo Sync Connector", "echo_sync", 0, True),
}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("airflow")
    return compat_env(AIRFLOW_HOME=str(home), PYTHONPATH=f"{ROOT / 'src'}:{ROOT}:{HERE}")


@pytest.fixture(scope="module")
def pyflyte(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with pyflyte_serve(tmp_path_factory.mktemp("pyflyte") / "server.log", env, "flytekit_echo") as served:
        yield served


@pytest.fixture(scope="module")
def ours(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    log = tmp_path_factory.mktemp("ours") / "server.log"
    with flyteconnect_serve(log, env, "--no-entry-points", "-m", ECHO) as served:
        yield served


def test_list_agents_equals_pyflyte_serve_connector(env: dict[str, str], pyflyte: Served, tmp_path: Path) -> None:
    """Every plugin installed here, flytekit's Sensor and Webhook and the module's connectors, as pyflyte lists."""
    with flyteconnect_serve(tmp_path / "ours.log", env, "--no-entry-points", "--flytekit-plugins", "-m", ECHO) as ours:
        served = categories(ours.list_agents())
    expected = categories(pyflyte.list_agents())
    assert {c[1] for c in expected} >= {"sensor", "webhook", "bigquery_query_job_task", "sagemaker-endpoint", "airflow"}
    assert served == expected


def test_builtins_stand_in_for_flytekits_sensor_and_webhook(
    env: dict[str, str], pyflyte: Served, tmp_path: Path
) -> None:
    """With entry points on, flyteconnect's own sensor and webhook serve those task types (same names, kinds)."""
    with flyteconnect_serve(tmp_path / "ours.log", env, "--flytekit-plugins", "-m", ECHO) as ours:
        served = categories(ours.list_agents())
        output = ours.output()
    expected = categories(pyflyte.list_agents())
    assert expected <= served
    assert {c[1] for c in served - expected} == {"postgres_query"}
    assert "failed to load" not in output, output


def test_serve_module_serves_what_it_registered_in_flytekit(ours: Served) -> None:
    """``-m`` of a module that registers into flytekit's registry serves those connectors, and not the plugins
    that ``import flytekit`` loaded (those come with --flytekit-plugins)."""
    assert categories(ours.list_agents()) == ECHO_CATEGORIES


def _create(served: Served, template: object, inputs: dict[str, str]) -> agent_pb2.CreateTaskResponse:
    with grpc.insecure_channel(served.address) as channel:
        request = agent_pb2.CreateTaskRequest(
            template=template,
            inputs=to_literal_map(inputs),
            output_prefix="s3://bucket/prefix",
            task_execution_metadata=agent_pb2.TaskExecutionMetadata(namespace="flytesnacks-development"),
        )
        return agent_pb2_grpc.AsyncAgentServiceStub(channel).CreateTask(request, timeout=30)


def _get(served: Served, template: object, meta: bytes) -> agent_pb2.GetTaskResponse:
    with grpc.insecure_channel(served.address) as channel:
        category = agent_pb2.TaskCategory(name=template.type, version=template.task_type_version)  # type: ignore[attr-defined]
        request = agent_pb2.GetTaskRequest(task_category=category, resource_meta=meta)
        return agent_pb2_grpc.AsyncAgentServiceStub(channel).GetTask(request, timeout=30)


@pytest.mark.parametrize(("task_type", "version"), [("echo", 0), ("echo_def", 2)])
def test_replies_are_pyflytes(ours: Served, pyflyte: Served, task_type: str, version: int) -> None:
    """CreateTask and GetTask answer with the bytes flytekit's own server answers (async def and def methods)."""
    template = serialize(EchoTask(f"tasks.{task_type}", task_type, version))
    inputs = {"text": "world", "mode": "ok"}
    theirs_meta = _create(pyflyte, template, inputs).resource_meta
    our_meta = _create(ours, template, inputs).resource_meta
    assert our_meta == theirs_meta
    theirs, mine = _get(pyflyte, template, theirs_meta), _get(ours, template, our_meta)
    assert mine.resource.phase == Phase.SUCCEEDED
    assert mine.resource.outputs == theirs.resource.outputs
    assert mine.resource.outputs.literals["echo"].scalar.primitive.string_value == "hello world"
    assert mine.resource.outputs.literals["namespace"].scalar.primitive.string_value == "flytesnacks-development"
    assert mine.resource.custom_info == theirs.resource.custom_info
    assert mine.resource.message == theirs.resource.message == "echoed world"


@pytest.mark.parametrize("protocol", ["v1", "v2"])
async def test_runs_through_both_protocols(ours: Served, protocol: str) -> None:
    propeller = FakePropeller(ours.address, protocol=protocol, poll_interval=0.01)
    result = await propeller.run(serialize(EchoTask("tasks.echo")), {"text": "both", "mode": "ok"})
    assert result.phase == Phase.SUCCEEDED, result.message
    assert result.outputs == {"echo": "hello both", "namespace": result.outputs["namespace"], "length": 4}


async def test_sync_connector_through_execute_task_sync(ours: Served) -> None:
    propeller = FakePropeller(ours.address)
    task = EchoTask("tasks.echo_sync", "echo_sync")
    result = await propeller.run(serialize(task), {"text": "loud", "mode": "ok"})
    assert result.phase == Phase.SUCCEEDED, result.message
    assert [c.method for c in result.calls][-1] == "ExecuteTaskSync"
    assert result.resource.outputs.literals["echo"].scalar.primitive.string_value == "LOUD"


def test_flytekit_errors_get_our_status_codes(ours: Served) -> None:
    template = serialize(EchoTask("tasks.echo"))
    boom = _create(ours, template, {"text": "x", "mode": "boom"}).resource_meta
    with pytest.raises(grpc.RpcError) as internal:
        _get(ours, template, boom)
    assert internal.value.code() == grpc.StatusCode.INTERNAL
    assert "ValueError: echo exploded" in internal.value.details()
    assert "Traceback" not in internal.value.details() and "File " not in internal.value.details()

    with pytest.raises(grpc.RpcError) as bad_meta:
        _get(ours, template, b"not json")
    assert bad_meta.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "EchoMeta" in bad_meta.value.details()


def test_recoverable_errors_are_transient(ours: Served) -> None:
    """flytekit's FlyteRecoverableException in get is a transient failure: retried, then answered with the last
    phase (RUNNING) and a message instead of an error that would count against the task."""
    template = serialize(EchoTask("tasks.echo"))
    meta = _create(ours, template, {"text": "x", "mode": "recoverable"}).resource_meta
    reply = _get(ours, template, meta)
    assert reply.resource.phase == Phase.RUNNING
    assert "the echo service is busy" in reply.resource.message


def test_metrics_count_flytekit_connectors(ours: Served) -> None:
    template = serialize(EchoTask("tasks.echo"))
    _get(ours, template, _create(ours, template, {"text": "m", "mode": "ok"}).resource_meta)
    with urllib.request.urlopen(f"http://127.0.0.1:{ours.metrics_port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    assert 'flyte_connector_requests_success_total{operation="create",task_type="echo"}' in text
    assert 'flyte_connector_requests_success_total{operation="get",task_type="echo"}' in text


def test_list_says_where_each_flytekit_connector_came_from(env: dict[str, str]) -> None:
    import json
    import subprocess

    from .compat_support import BIN

    argv = [str(BIN / "flyteconnect"), "list", "--json", "--flytekit-plugins", "-m", ECHO]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=True)
    listed = json.loads(out.stdout)  # what the plugins log while they import goes to stderr
    sources = {row["task_type"]: row["source"] for row in listed["connectors"]}
    assert sources["bigquery_query_job_task"] == "flytekit plugin bigquery (flytekitplugins.bigquery)"
    assert sources["echo"] == f"module {ECHO}"
    assert sources["sensor"].startswith("entry point")  # the built-in stands in for flytekit's Sensor
    assert listed["failures"] == {}
