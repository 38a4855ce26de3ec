"""flytekit's connector plugins (1.16.31) served unchanged by ``flyteconnect serve --flytekit-plugins``, each driven
with a TaskTemplate serialized by the plugin's own task class, its endpoint pointed at a loopback stand-in:

- emulated to completion: the OpenAI batch connector (Files and Batches on a local fake: create, get, delete), the
  ChatGPT connector (ExecuteTaskSync), the SageMaker endpoint connector and the Boto connector (moto's server:
  model, endpoint config, endpoint created, polled to InService, deleted); the SageMaker job connectors (training,
  processing, transform, tuning, recommender) create and poll on moto as far as moto emulates each; the Airflow
  connector runs an Airflow FileSensor (polled, deleted, then run to SUCCEEDED once its file exists);
- reaching their service on loopback: Databricks (its HTTPS call), BigQuery (OAuth token and jobs API on the fake),
  Slurm (its SSH connection, refused on 127.0.0.1:22: the plugin then calls sys.exit(1), which costs the call, not
  the server), K8s DataService (the Kubernetes client's call, refused on localhost);
- MMCloud: reaches its client, the ``float`` command line, which is not installed here.

Snowflake and PERIAN are listed and load (test_flytekit_served) but are not driven here: their clients dial fixed
public hosts (no setting points them elsewhere; docs/migrating.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from flyteidl.admin import agent_pb2
from flyteidl.service import agent_pb2_grpc

from flyteconnect import Phase
from flyteconnect.literals import to_literal_map
from flyteconnect.testing import FakePropeller

from .compat_support import PYTHON, Served, compat_env, flyteconnect_serve
from .fakes import MotoServer, RecordingServer, openai_fake
from .flytekit_tasks import serialize

REGION = "us-east-1"


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer(PYTHON)
    yield server
    server.close()


@pytest.fixture(scope="module")
def openai_api() -> Iterator[RecordingServer]:
    server = openai_fake()
    yield server
    server.close()


@pytest.fixture(scope="module")
def google_api() -> Iterator[RecordingServer]:
    """OAuth token endpoint and BigQuery's REST API (the jobs insert is refused: the call is what is checked)."""
    server = RecordingServer()
    server.routes[("POST", "/token")] = lambda seen: (200, {"access_token": "ya29.test", "expires_in": 3600})
    yield server
    server.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[RecordingServer]:
    """A loopback listener for clients that speak TLS or SSH to it: connections are what is checked."""
    server = RecordingServer()
    yield server
    server.close()


def _service_account(path: Path, token_uri: str) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "flyteconnect-test",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "connector@flyteconnect-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info))
    return path


@pytest.fixture(scope="module")
def server(
    moto: MotoServer,
    openai_api: RecordingServer,
    google_api: RecordingServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("plugins")
    env = compat_env(
        AIRFLOW_HOME=str(tmp),
        AWS_ENDPOINT_URL=moto.url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        OPENAI_BASE_URL=f"{openai_api.url}/v1",
        _FSEC_FLYTE_OPENAI_API_KEY="sk-test",
        _FSEC_FLYTE_DATABRICKS_ACCESS_TOKEN="dapi-test",
        BIGQUERY_EMULATOR_HOST=google_api.url,
        GOOGLE_APPLICATION_CREDENTIALS=str(_service_account(tmp / "sa.json", f"{google_api.url}/token")),
        NO_GCE_CHECK="True",  # never probe the GCE metadata server
        GCE_METADATA_HOST="127.0.0.1:9",
        KUBERNETES_SERVICE_HOST="",
        AIRFLOW_CONN_FS_DEFAULT="fs://?path=%2F",  # Airflow's FileSensor looks its connection up (env first)
    )
    with flyteconnect_serve(tmp / "server.log", env, "--no-entry-points", "--flytekit-plugins") as served:
        yield served


def _stub(served: Served) -> Any:
    return agent_pb2_grpc.AsyncAgentServiceStub(grpc.insecure_channel(served.address))


def _create(served: Served, template: Any, inputs: dict[str, Any] | None = None) -> bytes:
    request = agent_pb2.CreateTaskRequest(
        template=template,
        inputs=to_literal_map(inputs or {}),
        output_prefix="s3://bucket/prefix",
        task_execution_metadata=agent_pb2.TaskExecutionMetadata(namespace="flytesnacks-development"),
    )
    return bytes(_stub(served).CreateTask(request, timeout=60).resource_meta)


def _delete(served: Served, template: Any, meta: bytes) -> None:
    category = agent_pb2.TaskCategory(name=template.type, version=template.task_type_version)
    _stub(served).DeleteTask(agent_pb2.DeleteTaskRequest(task_category=category, resource_meta=meta), timeout=60)


# ------------------------------------------------------------------------------------------------ OpenAI


async def test_openai_batch_create_get_delete(server: Served, openai_api: RecordingServer) -> None:
    import openai
    from flytekitplugins.openai import BatchEndpointTask

    client = openai.OpenAI(base_url=f"{openai_api.url}/v1", api_key="sk-test")
    uploaded = client.files.create(file=("batch.jsonl", b'{"custom_id": "1"}\n'), purpose="batch")
    task = BatchEndpointTask(
        name="openai.batch", config={"endpoint": "/v1/chat/completions"}, openai_organization="org"
    )
    template = serialize(task)
    assert template.type == "openai-batch"

    result = await FakePropeller(server.address, poll_interval=0.05).run(template, {"input_file_id": uploaded.id})
    assert result.phase == Phase.SUCCEEDED, result.message
    assert result.outputs["result"]["status"] == "completed"
    assert result.outputs["result"]["input_file_id"] == uploaded.id
    assert "POST /v1/batches" in openai_api.paths()

    aborted = await FakePropeller(server.address, poll_interval=0.05).run(
        template, {"input_file_id": uploaded.id}, abort_after_polls=0
    )
    assert [c.method for c in aborted.calls if c.method == "DeleteTask"] == ["DeleteTask"]
    cancelled = [b for b in openai_api.batches.values() if b["status"] == "cancelled"]  # type: ignore[attr-defined]
    assert len(cancelled) == 1 and openai_api.paths()[-1].endswith("/cancel")


async def test_openai_batch_on_flyte_2(server: Served, openai_api: RecordingServer) -> None:
    """The same plugin through Flyte 2's AsyncConnectorService, from the same server."""
    import openai
    from flytekitplugins.openai import BatchEndpointTask

    client = openai.OpenAI(base_url=f"{openai_api.url}/v1", api_key="sk-test")
    uploaded = client.files.create(file=("batch.jsonl", b'{"custom_id": "2"}\n'), purpose="batch")
    task = BatchEndpointTask(name="openai.batch2", config={"endpoint": "/v1/chat/completions"}, openai_organization="o")
    propeller = FakePropeller(server.address, protocol="v2", poll_interval=0.05)
    result = await propeller.run(serialize(task), {"input_file_id": uploaded.id})
    assert result.phase == Phase.SUCCEEDED, result.message
    assert result.outputs["result"]["input_file_id"] == uploaded.id


async def test_chatgpt_execute_task_sync(server: Served, openai_api: RecordingServer) -> None:
    from flytekitplugins.openai import ChatGPTTask

    task = ChatGPTTask(name="chatgpt", openai_organization="org", chatgpt_config={"model": "gpt-4o-mini"})
    result = await FakePropeller(server.address).run(serialize(task), {"message": "hello"})
    assert result.phase == Phase.SUCCEEDED, result.message
    assert result.outputs == {"o0": "you said: hello"}
    assert [c.method for c in result.calls][-1] == "ExecuteTaskSync"
    sent = [s for s in openai_api.requests if s.path == "/v1/chat/completions"][-1]
    assert sent.json()["messages"] == [{"role": "user", "content": "hello"}]
    assert sent.headers["authorization"] == "Bearer sk-test"


# --------------------------------------------------------------------------------------------- SageMaker


async def test_sagemaker_endpoint_lifecycle_on_moto(server: Served, moto: MotoServer) -> None:
    import boto3
    from flytekitplugins.awssagemaker_inference import (
        SageMakerDeleteEndpointTask,
        SageMakerEndpointConfigTask,
        SageMakerEndpointTask,
        SageMakerModelTask,
    )

    model = SageMakerModelTask(
        name="sm.model",
        config={
            "ModelName": "flyteconnect-model",
            "PrimaryContainer": {"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/model:latest"},
            "ExecutionRoleArn": "arn:aws:iam::123456789012:role/sagemaker",
        },
        region=REGION,
    )
    endpoint_config = SageMakerEndpointConfigTask(
        name="sm.endpoint_config",
        config={
            "EndpointConfigName": "flyteconnect-config",
            "ProductionVariants": [
                {
                    "VariantName": "main",
                    "ModelName": "flyteconnect-model",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        },
        region=REGION,
    )
    endpoint = SageMakerEndpointTask(
        name="sm.endpoint",
        config={"EndpointName": "flyteconnect-endpoint", "EndpointConfigName": "flyteconnect-config"},
        region=REGION,
    )
    delete = SageMakerDeleteEndpointTask(
        name="sm.delete_endpoint", config={"EndpointName": "flyteconnect-endpoint"}, region=REGION
    )
    propeller = FakePropeller(server.address, poll_interval=0.05)
    for boto_task in (model, endpoint_config):  # the Boto connector (ExecuteTaskSync)
        result = await propeller.run(serialize(boto_task))
        assert result.phase == Phase.SUCCEEDED, result.message

    sagemaker = boto3.client(
        "sagemaker",
        region_name=REGION,
        endpoint_url=moto.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    assert sagemaker.describe_model(ModelName="flyteconnect-model")["ModelName"] == "flyteconnect-model"

    result = await propeller.run(serialize(endpoint))  # the SageMaker Endpoint connector: create, get to InService
    assert result.phase == Phase.SUCCEEDED, result.message
    arn = sagemaker.describe_endpoint(EndpointName="flyteconnect-endpoint")["EndpointArn"]
    assert result.outputs["result"] == {"EndpointArn": arn}

    _delete(server, serialize(endpoint), result.resource_meta)  # DeleteTask of the endpoint connector
    with pytest.raises(sagemaker.exceptions.ClientError):
        sagemaker.describe_endpoint(EndpointName="flyteconnect-endpoint")

    sagemaker.create_endpoint(EndpointName="flyteconnect-endpoint", EndpointConfigName="flyteconnect-config")
    result = await propeller.run(serialize(delete))  # and the Boto connector's delete task
    assert result.phase == Phase.SUCCEEDED, result.message
    with pytest.raises(sagemaker.exceptions.ClientError):
        sagemaker.describe_endpoint(EndpointName="flyteconnect-endpoint")


ROLE = "arn:aws:iam::123456789012:role/sagemaker"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:latest"
STOP = {"MaxRuntimeInSeconds": 3600}
JOBS = {
    "training": (
        "flytekitplugins.awssagemaker_training",
        "SageMakerTrainingJobTask",
        "CreateTrainingJob",
        {
            "TrainingJobName": "fc-training",
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            "RoleArn": ROLE,
            "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
            "StoppingCondition": STOP,
        },
    ),
    "processing": (
        "flytekitplugins.awssagemaker_processing",
        "SageMakerProcessingJobTask",
        "CreateProcessingJob",
        {
            "ProcessingJobName": "fc-processing",
            "ProcessingResources": {
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
            },
            "AppSpecification": {"ImageUri": IMAGE},
            "RoleArn": ROLE,
            "StoppingCondition": STOP,
        },
    ),
    "transform": (
        "flytekitplugins.awssagemaker_batch_transform",
        "SageMakerTransformJobTask",
        "CreateTransformJob",
        {
            "TransformJobName": "fc-transform",
            "ModelName": "flyteconnect-model",
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/in"}}},
            "TransformOutput": {"S3OutputPath": "s3://bucket/out"},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        },
    ),
    "tuning": (
        "flytekitplugins.awssagemaker_hyperparameter_tuning",
        "SageMakerHyperParameterTuningJobTask",
        "CreateHyperParameterTuningJob",
        {
            "HyperParameterTuningJobName": "fc-tuning",
            "HyperParameterTuningJobConfig": {
                "Strategy": "Random",
                "ResourceLimits": {"MaxNumberOfTrainingJobs": 1, "MaxParallelTrainingJobs": 1},
            },
            "TrainingJobDefinition": {
                "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
                "RoleArn": ROLE,
                "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
                "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
                "StoppingCondition": STOP,
            },
        },
    ),
    "recommender": (
        "flytekitplugins.awssagemaker_inference_recommender",
        "SageMakerInferenceRecommenderJobTask",
        "CreateInferenceRecommendationsJob",
        {
            "JobName": "fc-recommender",
            "JobType": "Default",
            "RoleArn": ROLE,
            "InputConfig": {"ModelPackageVersionArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/m/1"},
        },
    ),
}


@pytest.mark.parametrize("job", sorted(JOBS))
def test_sagemaker_job_connectors_reach_moto(server: Served, job: str) -> None:
    """Each SageMaker job connector's CreateTask, then GetTask, reaches moto: the call succeeds, or moto answers the
    plugin's own API call (the error names the operation moto received; moto does not emulate every job type to the
    end, e.g. no Stop*Job, so DeleteTask is left to the endpoint test above)."""
    import importlib

    module, cls, operation, config = JOBS[job]
    template = serialize(getattr(importlib.import_module(module), cls)(name=f"sm.{job}", config=config, region=REGION))
    try:
        meta = _create(server, template)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INTERNAL
        assert f"when calling the {operation} operation" in e.details(), e.details()
        return
    category = agent_pb2.TaskCategory(name=template.type, version=template.task_type_version)
    try:
        reply = _stub(server).GetTask(agent_pb2.GetTaskRequest(task_category=category, resource_meta=meta), timeout=60)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INTERNAL
        assert "when calling the Describe" in e.details(), e.details()
    else:
        assert reply.resource.phase in (Phase.QUEUED, Phase.INITIALIZING, Phase.RUNNING, Phase.SUCCEEDED)


async def test_airflow_file_sensor_create_get(server: Served, tmp_path: Path) -> None:
    """The Airflow connector runs an Airflow sensor (here FileSensor, on this machine's files) in the server."""
    from flytekitplugins.airflow.task import AirflowObj, AirflowTask

    target = tmp_path / "ready.flag"
    sensor = AirflowObj(
        module="airflow.sensors.filesystem",
        name="FileSensor",
        parameters={"task_id": "wait_for_flag", "filepath": str(target)},
    )
    template = serialize(AirflowTask(name="airflow.wait_for_flag", task_config=sensor))
    propeller = FakePropeller(server.address, poll_interval=0.05)
    waiting = await propeller.run(template, abort_after_polls=2)
    assert waiting.phase == Phase.ABORTED, waiting.message  # polled RUNNING twice, then deleted
    target.write_text("ok")
    result = await propeller.run(template)
    assert result.phase == Phase.SUCCEEDED, result.message


# ----------------------------------------------------------------------------- reaching the service only


def test_databricks_calls_its_workspace(server: Served, listener: RecordingServer) -> None:
    from flytekit import task
    from flytekitplugins.spark import DatabricksV2

    @task(
        task_config=DatabricksV2(
            databricks_conf={"run_name": "r", "existing_cluster_id": "c-1"},
            databricks_instance=f"127.0.0.1:{listener.port}",
        )
    )
    def spark_job() -> None: ...

    before = listener.connections
    with pytest.raises(grpc.RpcError) as failed:
        _create(server, serialize(spark_job))
    assert failed.value.code() == grpc.StatusCode.INTERNAL
    assert f"127.0.0.1:{listener.port}" in failed.value.details()  # aiohttp's TLS failure names the endpoint
    assert listener.connections > before


def test_bigquery_calls_the_jobs_api(server: Served, google_api: RecordingServer) -> None:
    from flytekitplugins.bigquery import BigQueryConfig, BigQueryTask

    task = BigQueryTask(
        name="bq.query",
        query_template="SELECT 1",
        task_config=BigQueryConfig(ProjectID="flyteconnect-test", Location="US"),
        inputs={},
    )
    with pytest.raises(grpc.RpcError) as failed:
        _create(server, serialize(task))
    assert failed.value.code() == grpc.StatusCode.INTERNAL
    assert "POST /token" in google_api.paths()
    assert "POST /bigquery/v2/projects/flyteconnect-test/jobs" in google_api.paths()
    inserted = [s for s in google_api.requests if s.path.startswith("/bigquery/v2/projects/flyteconnect-test/jobs")]
    assert inserted[-1].json()["configuration"]["query"]["query"] == "SELECT 1"
    assert inserted[-1].headers["authorization"] == "Bearer ya29.test"


def test_slurm_connects_over_ssh(server: Served, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from flytekitplugins.slurm import SlurmConfig, SlurmShellTask

    key = tmp_path / "id_ed25519"
    key.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    # The plugin's SSHConfig takes no port: it dials 127.0.0.1:22, where nothing listens here.
    ssh = {"host": "127.0.0.1", "username": "flyte", "client_keys": str(key)}
    task = SlurmShellTask(name="slurm.shell", task_config=SlurmConfig(ssh_config=ssh), script="echo hello")
    with pytest.raises(grpc.RpcError) as failed:
        _create(server, serialize(task))
    # On a failed connection the plugin logs the error and calls sys.exit(1): an INTERNAL error for this call here,
    # and the server keeps serving.
    assert failed.value.code() == grpc.StatusCode.INTERNAL, failed.value.details()
    assert "SystemExit: 1" in failed.value.details()
    assert "Connect call failed ('127.0.0.1', 22)" in server.output()
    assert server.process.poll() is None and server.list_agents()


def test_k8s_dataservice_calls_the_kubernetes_api(server: Served) -> None:
    from flytekitplugins.k8sdataservice import DataServiceConfig, DataServiceTask

    task = DataServiceTask(
        name="k8s.dataservice", task_config=DataServiceConfig(Name="graph", Replicas=1, Image="i", Port=8080)
    )
    with pytest.raises(grpc.RpcError) as failed:
        _create(server, serialize(task))
    assert failed.value.code() == grpc.StatusCode.INTERNAL
    # Outside a cluster the Kubernetes client falls back to http://localhost: refused here, and named.
    assert "localhost" in failed.value.details()


def test_mmcloud_runs_its_command_line(server: Served) -> None:
    from flytekit import task
    from flytekitplugins.mmcloud import MMCloudConfig

    @task(task_config=MMCloudConfig(submit_extra="--migratePolicy [enable=true]"))
    def mm_job() -> None: ...

    with pytest.raises(grpc.RpcError) as failed:
        _create(server, serialize(mm_job))
    assert failed.value.code() == grpc.StatusCode.INTERNAL
    assert "float" in failed.value.details()
