"""flyteconnect.compat: flytekit's runtime helpers, with flytekit's contracts (facts from flytekit 1.16.31)."""

from __future__ import annotations

import datetime
import importlib
import sys
import typing
from pathlib import Path

import pytest
from flyteidl.core import execution_pb2, identifier_pb2, literals_pb2, tasks_pb2
from google.protobuf import struct_pb2

from flyteconnect import LiteralMap, TaskTemplate
from flyteconnect.compat import formatting, models, runtime
from flyteconnect.compat.types import TypeEngine, literal_map_string_repr
from flyteconnect.literals import StructuredDataset, to_literal, to_literal_map


def test_secrets_resolve_as_flytekit_does_in_a_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("_FSEC_MMC_ADDRESS", " opcenter \n")
    monkeypatch.setenv("FLYTE_SECRETS_DEFAULT_DIR", str(tmp_path))
    (tmp_path / "group").mkdir()
    (tmp_path / "group" / "key").write_text("from-file\n")
    secrets = runtime.current_context().secrets
    assert secrets.get("mmc_address") == "opcenter"  # one positional name: flytekit's group, read like a key
    assert secrets.get(key="mmc_address") == "opcenter"
    assert secrets.get("group", "key") == "from-file"  # <dir>/<group>/<key>
    assert secrets.get_secrets_env_var("group", "key") == "_FSEC_GROUP_KEY"
    with pytest.raises(ValueError, match="perian_token"):
        secrets.get(key="perian_token")
    assert runtime.FlyteContextManager.current_context().secrets is secrets


def test_get_connector_secret_takes_flytekits_keyword_and_raises_its_value_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flyteconnect.secrets import get_agent_secret, get_connector_secret

    monkeypatch.setenv("_FSEC_FLYTE_OPENAI_API_KEY", "sk")
    assert get_connector_secret(secret_key="FLYTE_OPENAI_API_KEY") == "sk" == get_agent_secret("FLYTE_OPENAI_API_KEY")
    with pytest.raises(ValueError):
        get_connector_secret(secret_key="FLYTE_SLURM_PRIVATE_KEY")  # slurm catches ValueError and goes on


def test_lazy_module_imports_on_first_use_and_a_missing_one_fails_then() -> None:
    sys.modules.pop("colorsys", None)
    lazy = runtime.lazy_module("colorsys")
    assert lazy.rgb_to_hsv(1, 0, 0)[0] == 0.0
    missing = runtime.lazy_module("no_such_module_for_flyteconnect")
    with pytest.raises(ImportError, match="no_such_module_for_flyteconnect"):
        missing.anything  # noqa: B018 - the access is the test
    assert runtime.lazy_module("json") is importlib.import_module("json")


def test_flytekit_exceptions_are_connector_errors_with_their_message() -> None:
    from flyteconnect.errors import ConnectorError

    error = runtime.FlyteUserException("perian_organization and perian_token must be provided")
    assert isinstance(error, runtime.FlyteException) and isinstance(error, ConnectorError)
    assert str(error) == "perian_organization and perian_token must be provided"
    assert runtime.FLYTE_FAIL_ON_ERROR == "FLYTE_FAIL_ON_ERROR"
    assert runtime.Resources(cpu="1", mem="1Gi").mem == "1Gi"


def test_type_engine_calls_as_connectors_make_them() -> None:
    ctx = runtime.FlyteContextManager.current_context()
    inputs = LiteralMap.from_flyte_idl(to_literal_map({"message": "hi", "n": 3}))
    assert TypeEngine.literal_map_to_kwargs(ctx, inputs, {"message": str}) == {"message": "hi", "n": 3}
    lt = TypeEngine.to_literal_type(int)
    assert TypeEngine.literal_map_to_kwargs(ctx, inputs, literal_types={"n": lt})["n"] == 3
    assert TypeEngine.guess_python_type(lt) is int
    untyped = typing.Dict  # noqa: UP006 - what the OpenAI batch connector passes
    lit = TypeEngine.to_literal(ctx, {"a": 1}, untyped, TypeEngine.to_literal_type(untyped))
    assert TypeEngine.to_python_value(ctx, lit, dict) == {"a": 1}
    sd = TypeEngine.to_literal(ctx, StructuredDataset(uri="bq://p.d.t"), StructuredDataset, None)
    assert sd.scalar.structured_dataset.uri == "bq://p.d.t"
    assert LiteralMap({"results": sd}).literals["results"] == sd  # snowflake builds its outputs so


def test_literal_map_string_repr_gives_plain_values_and_uris() -> None:
    lm = to_literal_map({"region": "us-east-1", "n": 2, "xs": [1, 2], "when": datetime.timedelta(seconds=3)})
    lm.literals["data"].scalar.blob.uri = "s3://b/k"
    assert literal_map_string_repr(lm) == {
        "region": "us-east-1", "n": 2, "xs": [1, 2], "when": datetime.timedelta(seconds=3), "data": "s3://b/k"
    }  # fmt: skip
    assert literal_map_string_repr(LiteralMap.from_flyte_idl(lm))["region"] == "us-east-1"


def test_format_dict_fills_nested_placeholders_and_truncates_sagemaker_tokens() -> None:
    config = {"EndpointName": "{inputs.name}-{idempotence_token}", "Tags": ["{inputs.tag}"], "Whole": "{inputs.obj}"}
    values = {"inputs": {"name": "ep", "tag": "t", "obj": {"k": 1}}}
    out = formatting.format_dict("sagemaker", config, values, idempotence_token="x" * 100)
    assert out["EndpointName"] == "ep-" + "x" * 60 and len(out["EndpointName"]) == 63
    assert out["Tags"] == ["t"] and out["Whole"] == {"k": 1}
    with pytest.raises(ValueError, match="Could not find the key missing"):
        formatting.format_dict("s3", {"a": "{inputs.missing}"}, values)


def test_models_take_flytekits_positional_arguments() -> None:
    task = models.Identifier(identifier_pb2.TASK, "p", "d", "n", "v")
    node = models.NodeExecutionIdentifier("n0", models.WorkflowExecutionIdentifier("p", "d", "e"))
    tid = models.TaskExecutionIdentifier(task, node, 2)
    assert (tid.task_id.name, tid.node_execution_id.execution_id.name, tid.retry_attempt) == ("n", "e", 2)
    log = models.TaskLog(uri="https://x/run/1", name="Databricks Console", ttl=datetime.timedelta(hours=1))
    pb = log.to_flyte_idl()
    assert isinstance(pb, execution_pb2.TaskLog) and pb.name == "Databricks Console" and pb.ttl.seconds == 3600


def test_k8s_pod_view_has_flytekits_dicts() -> None:
    pb = tasks_pb2.TaskTemplate(type="t")
    pb.k8s_pod.metadata.labels["app"] = "x"
    pb.k8s_pod.pod_spec.CopyFrom(struct_pb2.Struct())
    pb.k8s_pod.pod_spec.update({"containers": [{"name": "main", "image": "img"}]})
    pod = TaskTemplate.from_bytes(pb.SerializeToString()).k8s_pod
    assert pod is not None and pod.metadata.labels == {"app": "x"}
    assert pod.pod_spec == {"containers": [{"name": "main", "image": "img"}]}
    assert TaskTemplate.from_bytes(tasks_pb2.TaskTemplate(type="t").SerializeToString()).k8s_pod is None


def test_loop_manager_runs_sync_and_async_callables() -> None:
    async def double(x: int) -> int:
        return 2 * x

    assert runtime.loop_manager.run_sync(double, 2) == 4
    assert runtime.loop_manager.run_sync(lambda: literals_pb2.Literal()) == literals_pb2.Literal()
    assert to_literal(1).scalar.primitive.integer == 1
