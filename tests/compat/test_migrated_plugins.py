"""The plugins Flyte users run, ported by `flyteconnect migrate` alone, served without flytekit, reaching their
services on loopback (issue 20 item 3).

Each plugin's connector module (from its installed 1.16.31 distribution) is migrated; the ones that import no
task-side code must port completely, and are served together by one ``flyteconnect serve`` in which every import of
flytekit or flytekitplugins fails (tests/compat/without_flytekit.py). CreateTask then reaches each external service:
a loopback fake (OpenAI, Google token + BigQuery, moto's SageMaker, a fake ``float`` CLI for MMCloud) or, where the
client only speaks TLS or SSH to a configurable host (Databricks, Slurm), a loopback listener that sees the client
connect and the client's own error.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.core import tasks_pb2
from flyteidl.service import agent_pb2_grpc
from google.protobuf import json_format
from tests.compat import service_fakes
from tests.compat.compat_support import ROOT, Served, compat_env, serving

from flyteconnect.literals import to_literal_map
from support import free_port

WITHOUT_FLYTEKIT = Path(__file__).with_name("without_flytekit.py")

# plugin -> (distribution, connector module path in it, task type)
PORTABLE = {
    "openai-chatgpt": ("flytekitplugins-openai", "flytekitplugins/openai/chatgpt/connector.py", "chatgpt"),
    "openai-batch": ("flytekitplugins-openai", "flytekitplugins/openai/batch/connector.py", "openai-batch"),
    "bigquery": ("flytekitplugins-bigquery", "flytekitplugins/bigquery/connector.py", "bigquery_query_job_task"),
    "snowflake": ("flytekitplugins-snowflake", "flytekitplugins/snowflake/connector.py", "snowflake"),
    "sagemaker-endpoint": (
        "flytekitplugins-awssagemaker",
        "flytekitplugins/awssagemaker_inference/connector.py",
        "sagemaker-endpoint",
    ),
    "databricks": ("flytekitplugins-spark", "flytekitplugins/spark/connector.py", "spark"),
    "mmcloud": ("flytekitplugins-mmcloud", "flytekitplugins/mmcloud/connector.py", "mmcloud_task"),
    "slurm-function": ("flytekitplugins-slurm", "flytekitplugins/slurm/function/connector.py", "slurm_fn"),
    "perian": ("flytekitplugins-perian-job", "flytekitplugins/perian_job/connector.py", "perian_task"),
}
# plugin -> (distribution, connector module, a task-side name migrate must report)
TASK_SIDE = {
    "airflow": (
        "flytekitplugins-airflow",
        "flytekitplugins/airflow/connector.py",
        "flytekit.core.base_task.PythonTask",
    ),
    "k8sdataservice": (
        "flytekitplugins-k8sdataservice",
        "flytekitplugins/k8sdataservice/connector.py",
        "flytekit.core.base_task.PythonTask",
    ),
    "slurm-script": (
        "flytekitplugins-slurm",
        "flytekitplugins/slurm/script/connector.py",
        "flytekit.extras.tasks.shell.OutputLocation",
    ),
    "sagemaker-training": (
        "flytekitplugins-awssagemaker",
        "flytekitplugins/awssagemaker_training/connector.py",
        "flytekit.PythonFunctionTask",
    ),
}


def _source(distribution: str, path: str) -> Path:
    """The file in the installed distribution (located without importing it: its package imports flytekit)."""
    return Path(str(importlib.metadata.distribution(distribution).locate_file(path)))


def _migrate(source: Path, out: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "flyteconnect", "migrate", str(source), "-o", str(out)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=compat_env())


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str, subprocess.CompletedProcess[str]]]:
    """plugin -> (output root, module name to load, migrate's run). The portable plugins share one output tree,
    as a deployment would (both OpenAI connectors live in the package flytekitplugins.openai)."""
    out = tmp_path_factory.mktemp("migrated")
    result = {}
    for plugin, (dist, path, _) in {**PORTABLE, **TASK_SIDE}.items():
        root = out / ("portable" if plugin in PORTABLE else plugin)
        done = _migrate(_source(dist, path), root)
        module = done.stderr.rpartition("serve -m ")[2].split(" ")[0] if done.returncode == 0 else ""
        result[plugin] = (root, module, done)
    return result


@pytest.mark.parametrize("plugin", sorted(PORTABLE))
def test_the_plugin_ports_with_migrate_alone(migrated: dict[str, Any], plugin: str) -> None:
    root, module, done = migrated[plugin]
    assert done.returncode == 0, done.stdout + done.stderr
    assert module
    for file in root.rglob("*.py"):
        assert "flytekit." not in file.read_text().replace("flytekitplugins.", ""), file


@pytest.mark.parametrize("plugin", sorted(TASK_SIDE))
def test_a_plugin_importing_task_side_code_is_reported(migrated: dict[str, Any], plugin: str) -> None:
    _, _, done = migrated[plugin]
    assert done.returncode == 1
    assert f"cannot port: {TASK_SIDE[plugin][2]}: task-side" in done.stdout


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[service_fakes.FakeApi, service_fakes.Sink, service_fakes.Sink]]:
    with service_fakes.fake_api() as api, service_fakes.sink() as databricks, service_fakes.sink() as ssh:
        yield api, databricks, ssh


def _service_account(token_uri: str) -> dict[str, str]:
    """A Google service-account key file whose token endpoint is the fake (a fresh RSA key; nothing is signed for
    a real account)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "p",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "connector@p.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }


def _fake_float(directory: Path) -> Path:
    """MMCloud's `float` CLI: logs in, submits (recording its arguments), answers JSON."""
    directory.mkdir()
    record = directory / "calls.jsonl"
    script = directory / "float"
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        f"open({str(record)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "if sys.argv[1:2] == ['submit']:\n"
        "    print(json.dumps({'id': 'mmc-job-1', 'status': 'Submitted'}))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return record


@pytest.fixture(scope="module")
def served(
    migrated: dict[str, Any], fakes: Any, s3_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Served, Path]]:
    api = fakes[0]
    work = tmp_path_factory.mktemp("served")
    float_calls = _fake_float(work / "bin")
    (work / ".ssh").mkdir()
    ssh_port = fakes[2].port
    (work / ".ssh" / "config").write_text(f"Host slurm-fake\n  HostName 127.0.0.1\n  Port {ssh_port}\n")
    credentials = work / "google.json"
    credentials.write_text(json.dumps(_service_account(f"{api.url}/token")))
    roots = sorted({str(migrated[p][0]) for p in PORTABLE})
    env = compat_env(
        PYTHONPATH=os.pathsep.join([*roots, str(ROOT / "src"), str(ROOT)]),
        MIGRATED_OUTPUT=os.pathsep.join(roots),
        PATH=f"{work / 'bin'}{os.pathsep}{os.environ['PATH']}",
        OPENAI_BASE_URL=f"{api.url}/v1",
        _FSEC_FLYTE_OPENAI_API_KEY="sk-fake",
        BIGQUERY_EMULATOR_HOST=api.url,
        GOOGLE_APPLICATION_CREDENTIALS=str(credentials),
        GOOGLE_CLOUD_PROJECT="p",
        _FSEC_FLYTE_DATABRICKS_ACCESS_TOKEN="dapi-fake",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_ENDPOINT_URL=s3_server.endpoint_url,
        AWS_DEFAULT_REGION="us-east-1",
        NO_PROXY="*",
        HOME=str(work),
    )
    port, metrics = free_port(), free_port()
    argv = [sys.executable, str(WITHOUT_FLYTEKIT), "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--metrics-host", "127.0.0.1", "--metrics-port", str(metrics), "--no-entry-points"]
    argv += ["--egress-allow", "127.0.0.0/8"]
    for plugin in PORTABLE:
        argv += ["-m", migrated[plugin][1]]
    with serving(argv, port, work / "serve.log", env, metrics) as server:
        yield server, float_calls


def test_every_migrated_plugin_loads_and_lists_without_flytekit(served: tuple[Served, Path]) -> None:
    server, _ = served
    listed = {c.name for a in server.list_agents() for c in a.supported_task_categories}
    assert {task_type for _, _, task_type in PORTABLE.values()} <= listed, server.output()[-3000:]
    assert "flytekit is blocked" not in server.output()


def _template(task_type: str, custom: dict[str, Any], **parts: Any) -> tasks_pb2.TaskTemplate:
    pb = tasks_pb2.TaskTemplate(type=task_type, **parts)
    pb.id.name = "t"
    json_format.ParseDict(custom, pb.custom)
    return pb


def _create(server: Served, template: tasks_pb2.TaskTemplate, inputs: dict[str, Any]) -> agent_pb2.CreateTaskResponse:
    with grpc.insecure_channel(server.address) as channel:
        stub = agent_pb2_grpc.AsyncAgentServiceStub(channel)
        request = agent_pb2.CreateTaskRequest(
            template=template, inputs=to_literal_map(inputs), output_prefix="s3://b/o"
        )
        return stub.CreateTask(request, timeout=60)


def _create_fails(server: Served, template: tasks_pb2.TaskTemplate) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        _create(server, template, {})
    return info.value


def test_chatgpt_asks_the_fake_openai(served: tuple[Served, Path], fakes: Any) -> None:
    server, _ = served
    api = fakes[0]
    template = _template("chatgpt", {"openai_organization": "org", "chatgpt_config": {"model": "gpt-4o"}})
    header = agent_pb2.CreateRequestHeader(template=template, output_prefix="s3://b/o")

    def stream() -> Iterator[agent_pb2.ExecuteTaskSyncRequest]:
        yield agent_pb2.ExecuteTaskSyncRequest(header=header)
        yield agent_pb2.ExecuteTaskSyncRequest(inputs=to_literal_map({"message": "hi"}))

    with grpc.insecure_channel(server.address) as channel:
        replies = list(agent_pb2_grpc.SyncAgentServiceStub(channel).ExecuteTaskSync(stream(), timeout=60))
    outputs = replies[0].header.resource.outputs
    assert outputs.literals["o0"].scalar.primitive.string_value == service_fakes.CHAT_REPLY, server.output()[-3000:]
    calls = [(m, p, b) for m, p, b in api.requests if p == "/v1/chat/completions"]
    assert calls and calls[-1][2]["messages"] == [{"role": "user", "content": "hi"}]


def test_openai_batch_creates_a_batch_on_the_fake(served: tuple[Served, Path], fakes: Any) -> None:
    server, _ = served
    template = _template("openai-batch", {"openai_organization": "org", "config": {}})
    meta = _create(server, template, {"input_file_id": "file-1"}).resource_meta
    assert b"batch_fake" in meta  # the plugin's metadata is cloudpickled: the batch id the fake answered
    assert any(p == "/v1/batches" and b.get("input_file_id") == "file-1" for _, p, b in fakes[0].requests)


def test_bigquery_submits_the_query_job_to_the_fake(served: tuple[Served, Path], fakes: Any) -> None:
    server, _ = served
    template = _template(
        "bigquery_query_job_task",
        {"ProjectID": "p", "Location": "US", "Domain": "d"},
        sql=tasks_pb2.Sql(statement="select 1", dialect=tasks_pb2.Sql.ANSI),
    )
    with grpc.insecure_channel(server.address) as channel:
        stub = agent_pb2_grpc.AsyncAgentServiceStub(channel)
        request = agent_pb2.CreateTaskRequest(template=template, inputs=to_literal_map({}), output_prefix="s3://b/o")
        try:
            reply = stub.CreateTask(request, timeout=20)
        except grpc.RpcError as e:
            raise AssertionError(f"{e.details()} {fakes[0].requests} {server.output()[-3000:]}") from None
    meta = json.loads(reply.resource_meta)
    assert meta["job_id"] == "job_fake", server.output()[-3000:]
    assert "/bigquery/v2/projects/p/jobs" in [p for _, p, _ in fakes[0].requests]


def test_sagemaker_creates_an_endpoint_on_moto(served: tuple[Served, Path], s3_server: Any) -> None:
    import boto3

    server, _ = served
    client = boto3.client("sagemaker", endpoint_url=s3_server.endpoint_url, region_name="us-east-1")
    client.create_model(
        ModelName="m", ExecutionRoleArn="arn:aws:iam::123456789012:role/r", PrimaryContainer={"Image": "img"}
    )
    variant = {"VariantName": "v", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
    client.create_endpoint_config(EndpointConfigName="cfg", ProductionVariants=[variant])
    config = {"EndpointName": "ep", "EndpointConfigName": "cfg"}
    template = _template("sagemaker-endpoint", {"config": config, "region": "us-east-1"})
    assert _create(server, template, {}).resource_meta  # cloudpickled by the plugin
    assert client.describe_endpoint(EndpointName="ep")["EndpointConfigName"] == "cfg"


def test_mmcloud_submits_through_its_cli(served: tuple[Served, Path]) -> None:
    server, float_calls = served
    container = tasks_pb2.Container(image="img:1", args=["python", "-c", "print(1)"])
    container.env.add(key="K", value="v")
    template = _template(
        "mmcloud_task", {"resources": ["1", "1Gi", None, None], "submit_extra": ""}, container=container
    )
    meta = json.loads(_create(server, template, {}).resource_meta)
    assert meta["job_id"] == "mmc-job-1", server.output()[-3000:]
    submit = [json.loads(line) for line in float_calls.read_text().splitlines() if line.startswith('["submit"')][-1]
    assert "--image" in submit and submit[submit.index("--image") + 1] == "img:1"
    assert submit[submit.index("--env") + 1] == "K=v"  # container.env read as a dict, as flytekit hands it


def test_databricks_connects_to_its_instance(served: tuple[Served, Path], fakes: Any) -> None:
    server, _ = served
    sink = fakes[1]
    container = tasks_pb2.Container(image="img", args=["pyflyte-execute", "--inputs", "x"])
    conf = {"run_name": "r", "existing_cluster_id": "c1"}
    custom = {"databricksConf": conf, "databricksInstance": f"127.0.0.1:{sink.port}", "mainApplicationFile": "m.py"}
    error = _create_fails(server, _template("spark", custom, container=container))
    assert sink.accepted >= 1, error.details()
    assert error.code() == grpc.StatusCode.INTERNAL and "127.0.0.1" in (error.details() or ""), error.details()


def test_slurm_connects_to_its_host(served: tuple[Served, Path], fakes: Any) -> None:
    server, _ = served
    sink = fakes[2]
    ssh_config = {"host": "slurm-fake", "username": "u"}  # ~/.ssh/config (the server's HOME) maps it to the sink
    custom = {"ssh_config": ssh_config, "sbatch_config": {}, "script": None}
    container = tasks_pb2.Container(image="img", args=["echo", "hi"])
    error = _create_fails(server, _template("slurm_fn", custom, container=container))
    assert sink.accepted >= 1, error.details()
    assert error.code() == grpc.StatusCode.INTERNAL
