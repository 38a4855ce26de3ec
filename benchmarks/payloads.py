"""The requests the benchmark sends and the constant replies the bare servicer answers with.

Plain flyteidl and flyteidl2 protos only (no flyteconnect imports), so the bare servicer and the load generator share
them with no framework cost. The request shapes are what Propeller sends for a typical connector task: a template with
a custom struct and a typed interface, a few inputs, execution metadata with labels and annotations. The Flyte 2
builders (``v2_*``) carry the same job handle and outputs in flyteidl2's messages; they import flyteidl2 when called,
so the benchmark connectors (which use this module's constants) load what a real connector module loads.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from flyteidl.admin import agent_pb2
from flyteidl.core import (
    identifier_pb2,
    interface_pb2,
    literals_pb2,
    tasks_pb2,
    types_pb2,
)
from google.protobuf import duration_pb2, struct_pb2

if TYPE_CHECKING:
    from flyteidl2.connector import connector_pb2 as v2_connector_pb2
    from flyteidl2.task import common_pb2 as v2_common_pb2

# Task types served by benchmarks/connectors.py (and benchmarks/flytekit_connectors.py): one per behaviour.
ASYNC_TYPE = "bench"  # async def create/get/delete, answers at once
SLEEP_TYPE = "bench_sleep"  # async def get awaiting SLEEP_SECONDS
BLOCKING_TYPE = "bench_blocking"  # plain def get calling time.sleep(SLEEP_SECONDS): runs on the server's thread pool
SYNC_TYPE = "bench_sync"  # SyncConnectorBase: ExecuteTaskSync
SLEEP_SECONDS = 0.05

CONNECTORS = (
    ("Bench Connector", ASYNC_TYPE, False),
    ("Bench Sleep Connector", SLEEP_TYPE, False),
    ("Bench Blocking Connector", BLOCKING_TYPE, False),
    ("Bench Sync Connector", SYNC_TYPE, True),
)

# The outputs every finished job reports, as Python values (for the connectors) and as literals (for the bare server).
OUTPUTS_PY: dict[str, object] = {"row_count": 1234, "table": "project.dataset.results_20240601", "score": 0.9375}


def _primitive(**kw: object) -> literals_pb2.Literal:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(**kw)))  # type: ignore[arg-type]


def outputs_literal_map() -> literals_pb2.LiteralMap:
    """OUTPUTS_PY as the literals flytekit produces for int, str and float."""
    return literals_pb2.LiteralMap(
        literals={
            "row_count": _primitive(integer=1234),
            "table": _primitive(string_value="project.dataset.results_20240601"),
            "score": _primitive(float_value=0.9375),
        }
    )


def resource_meta(done: bool, job_id: str = "bench-job-000001") -> bytes:
    """The bytes a connector's ``BenchMeta(job_id, region, done).encode()`` gives (flytekit's JSON encoding)."""
    return json.dumps({"job_id": job_id, "region": "us-east-1", "done": done}).encode()


META_RUNNING = resource_meta(False)
META_DONE = resource_meta(True)


def _simple(t: int) -> types_pb2.LiteralType:
    return types_pb2.LiteralType(simple=t)  # type: ignore[arg-type]


def task_template(task_type: str) -> tasks_pb2.TaskTemplate:
    """A realistic connector task template (BigQuery-like custom config, typed interface, metadata)."""
    custom = struct_pb2.Struct()
    custom.update(
        {
            "Location": "us-east-1",
            "ProjectID": "flyte-bench",
            "Domain": "development",
            "QueryConfig": {"priority": "INTERACTIVE", "useLegacySql": False, "maximumBytesBilled": 10_000_000},
            "Labels": {"team": "data", "cost-center": "1234"},
        }
    )
    variables_in = {
        "ds": interface_pb2.Variable(type=_simple(types_pb2.STRING), description="partition date"),
        "limit": interface_pb2.Variable(type=_simple(types_pb2.INTEGER)),
        "threshold": interface_pb2.Variable(type=_simple(types_pb2.FLOAT)),
        "dry_run": interface_pb2.Variable(type=_simple(types_pb2.BOOLEAN)),
    }
    variables_out = {
        "row_count": interface_pb2.Variable(type=_simple(types_pb2.INTEGER)),
        "table": interface_pb2.Variable(type=_simple(types_pb2.STRING)),
        "score": interface_pb2.Variable(type=_simple(types_pb2.FLOAT)),
    }
    return tasks_pb2.TaskTemplate(
        id=identifier_pb2.Identifier(
            resource_type=identifier_pb2.TASK,
            project="flyte-bench",
            domain="development",
            name="workflows.etl.daily_aggregate_query",
            version="v1.4.2-abcdef0",
        ),
        type=task_type,
        metadata=tasks_pb2.TaskMetadata(
            runtime=tasks_pb2.RuntimeMetadata(
                type=tasks_pb2.RuntimeMetadata.FLYTE_SDK, version="1.16.0", flavor="python"
            ),
            timeout=duration_pb2.Duration(seconds=3600),
            retries=literals_pb2.RetryStrategy(retries=3),
        ),
        interface=interface_pb2.TypedInterface(
            inputs=interface_pb2.VariableMap(variables=variables_in),
            outputs=interface_pb2.VariableMap(variables=variables_out),
        ),
        custom=custom,
    )


def inputs_literal_map() -> literals_pb2.LiteralMap:
    """The task's inputs."""
    return literals_pb2.LiteralMap(
        literals={
            "ds": _primitive(string_value="2024-06-01"),
            "limit": _primitive(integer=100_000),
            "threshold": _primitive(float_value=0.75),
            "dry_run": _primitive(boolean=False),
        }
    )


def task_execution_metadata() -> agent_pb2.TaskExecutionMetadata:
    """What Propeller fills in for every task attempt."""
    return agent_pb2.TaskExecutionMetadata(
        task_execution_id=identifier_pb2.TaskExecutionIdentifier(
            task_id=identifier_pb2.Identifier(
                resource_type=identifier_pb2.TASK,
                project="flyte-bench",
                domain="development",
                name="workflows.etl.daily_aggregate_query",
                version="v1.4.2-abcdef0",
            ),
            node_execution_id=identifier_pb2.NodeExecutionIdentifier(
                node_id="n0",
                execution_id=identifier_pb2.WorkflowExecutionIdentifier(
                    project="flyte-bench", domain="development", name="f8a3c2b1d0e94"
                ),
            ),
            retry_attempt=0,
        ),
        namespace="flyte-bench-development",
        labels={"execution-id": "f8a3c2b1d0e94", "workflow-name": "workflows-etl-daily", "team": "data"},
        annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
        k8s_service_account="default",
        environment_variables={"FLYTE_INTERNAL_EXECUTION_ID": "f8a3c2b1d0e94"},
        max_attempts=4,
    )


OUTPUT_PREFIX = "s3://flyte-bench-data/metadata/propeller/flyte-bench-development-f8a3c2b1d0e94/n0/data/0"


def _category(task_type: str) -> agent_pb2.TaskCategory:
    return agent_pb2.TaskCategory(name=task_type, version=0)


# ------------------------------------------------------------------------------------------------------------ requests


def list_agents_request() -> agent_pb2.ListAgentsRequest:
    """ListAgents (Propeller's discovery call)."""
    return agent_pb2.ListAgentsRequest()


def create_request(task_type: str = ASYNC_TYPE) -> agent_pb2.CreateTaskRequest:
    """CreateTask with the realistic template, inputs and execution metadata."""
    return agent_pb2.CreateTaskRequest(
        inputs=inputs_literal_map(),
        template=task_template(task_type),
        output_prefix=OUTPUT_PREFIX,
        task_execution_metadata=task_execution_metadata(),
    )


def get_request(task_type: str = ASYNC_TYPE, done: bool = True) -> agent_pb2.GetTaskRequest:
    """GetTask as Propeller sends it (deprecated task_type filled too)."""
    return agent_pb2.GetTaskRequest(
        task_type=task_type,
        resource_meta=META_DONE if done else META_RUNNING,
        task_category=_category(task_type),
        output_prefix=OUTPUT_PREFIX,
    )


def v2_get_request(task_type: str = ASYNC_TYPE, done: bool = True) -> v2_connector_pb2.GetTaskRequest:
    """Flyte 2 GetTask (``flyteidl2.connector``): task_category, resource_meta and output_prefix, no connection."""
    from flyteidl2.connector import connector_pb2 as v2_connector_pb2

    return v2_connector_pb2.GetTaskRequest(
        resource_meta=META_DONE if done else META_RUNNING,
        task_category=v2_connector_pb2.TaskCategory(name=task_type, version=0),
        output_prefix=OUTPUT_PREFIX,
    )


def delete_request(task_type: str = ASYNC_TYPE) -> agent_pb2.DeleteTaskRequest:
    """DeleteTask (abort)."""
    return agent_pb2.DeleteTaskRequest(
        task_type=task_type, resource_meta=META_RUNNING, task_category=_category(task_type)
    )


def execute_sync_requests(task_type: str = SYNC_TYPE) -> list[agent_pb2.ExecuteTaskSyncRequest]:
    """The two messages of an ExecuteTaskSync stream: the header, then the inputs."""
    header = agent_pb2.CreateRequestHeader(
        template=task_template(task_type),
        output_prefix=OUTPUT_PREFIX,
        task_execution_metadata=task_execution_metadata(),
    )
    return [
        agent_pb2.ExecuteTaskSyncRequest(header=header),
        agent_pb2.ExecuteTaskSyncRequest(inputs=inputs_literal_map()),
    ]


# ------------------------------------------------------------------------------------------------------------- replies


def resource(done: bool) -> agent_pb2.Resource:
    """The Resource a connector reports: SUCCEEDED with outputs, or RUNNING without (state filled consistently)."""
    if done:
        return agent_pb2.Resource(
            state=agent_pb2.SUCCEEDED, phase=3, outputs=outputs_literal_map(), message="job bench-job-000001 done"
        )
    return agent_pb2.Resource(state=agent_pb2.RUNNING, phase=2, message="job bench-job-000001 running")


def list_agents_response() -> agent_pb2.ListAgentsResponse:
    """The benchmark connectors, as ListAgents reports them."""
    return agent_pb2.ListAgentsResponse(
        agents=[
            agent_pb2.Agent(
                name=name, supported_task_types=[t], supported_task_categories=[_category(t)], is_sync=is_sync
            )
            for name, t, is_sync in CONNECTORS
        ]
    )


def v2_outputs() -> v2_common_pb2.Outputs:
    """OUTPUTS_PY as Flyte 2 ``Outputs`` (named literals, same values and order as ``outputs_literal_map``)."""
    from flyteidl2.core import literals_pb2 as v2_literals_pb2
    from flyteidl2.task import common_pb2 as v2_common_pb2

    literals = outputs_literal_map().literals
    return v2_common_pb2.Outputs(
        literals=[
            v2_common_pb2.NamedLiteral(
                name=k, value=v2_literals_pb2.Literal.FromString(literals[k].SerializeToString())
            )
            for k in ("row_count", "table", "score")
        ]
    )


def v2_resource(done: bool) -> v2_connector_pb2.Resource:
    """``resource(done)`` as a ``flyteidl2.connector.Resource`` (Flyte 2 has phase only, no state)."""
    from flyteidl2.connector import connector_pb2 as v2_connector_pb2

    if done:
        return v2_connector_pb2.Resource(phase=3, outputs=v2_outputs(), message="job bench-job-000001 done")  # type: ignore[arg-type]
    return v2_connector_pb2.Resource(phase=2, message="job bench-job-000001 running")  # type: ignore[arg-type]
