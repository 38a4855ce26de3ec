"""Connector base classes (both declaration styles), method inspection, the registry and entry-point discovery."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flyteconnect import (
    AgentRegistry,
    AsyncAgentBase,
    AsyncConnectorBase,
    ConnectorNotFound,
    ConnectorRegistry,
    Phase,
    Resource,
    ResourceMeta,
    SyncConnectorBase,
    TaskCategory,
)
from flyteconnect.registry import discover_connectors


@dataclass
class JobMeta(ResourceMeta):
    job_id: str


class CtorStyle(AsyncConnectorBase[JobMeta]):
    name = "Ctor Connector"

    def __init__(self, version: int = 0) -> None:
        super().__init__(task_type_name="ctor_type", task_type_version=version, metadata_type=JobMeta)

    def create(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> JobMeta:
        return JobMeta("j")

    async def get(self, resource_meta: JobMeta, **kwargs: Any) -> Resource:
        return Resource(phase=Phase.SUCCEEDED)

    async def delete(self, resource_meta: JobMeta) -> None:  # no **kwargs: the server must filter keywords
        return None


class ClassAttrStyle(AsyncConnectorBase[JobMeta]):
    name = "Attr Connector"
    task_type_name = "attr_type"
    task_type_version = 3
    metadata_type = JobMeta

    async def create(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> JobMeta:
        return JobMeta("k")

    def get(self, resource_meta: JobMeta, **kwargs: Any) -> Resource:
        return Resource(phase=Phase.RUNNING)

    def delete(self, resource_meta: JobMeta, **kwargs: Any) -> None:
        return None

    async def get_logs(self, resource_meta: JobMeta, **kwargs: Any) -> AsyncIterator[str]:
        yield "page"


class Echo(SyncConnectorBase):
    name = "Echo"
    task_type_name = "echo"

    async def do(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> Resource:
        return Resource(phase=Phase.SUCCEEDED)


def test_task_category_is_a_hashable_value() -> None:
    assert TaskCategory("a", 1) == TaskCategory("a", 1)
    assert TaskCategory("a") == TaskCategory("a", 0)
    assert TaskCategory("a", 1) != TaskCategory("a", 2)
    assert len({TaskCategory("a", 1), TaskCategory("a", 1)}) == 1
    assert str(TaskCategory("dummy", 2)) == "dummy_v2"
    assert TaskCategory.from_flyte_idl(TaskCategory("x", 4).to_flyte_idl()) == TaskCategory("x", 4)


def test_both_declaration_styles_give_a_task_category() -> None:
    assert CtorStyle(version=2).task_category == TaskCategory("ctor_type", 2)
    assert ClassAttrStyle().task_category == TaskCategory("attr_type", 3)
    assert Echo().task_category == TaskCategory("echo", 0)
    assert Echo.is_sync and not CtorStyle.is_sync


def test_methods_are_inspected_once_with_their_kind_and_keywords() -> None:
    ctor, attr = CtorStyle(), ClassAttrStyle()
    assert ctor.method("create") is not None and ctor.method("create").is_async is False  # type: ignore[union-attr]
    assert ctor.method("get").is_async is True  # type: ignore[union-attr]
    delete = ctor.method("delete")
    assert delete is not None and delete.keywords({"resource_meta": 1, "secret": 2}) == {"resource_meta": 1}
    assert ctor.method("get_logs") is None  # not implemented: the server answers UNIMPLEMENTED
    logs = attr.method("get_logs")
    assert logs is not None and logs.is_async_gen
    assert ctor.methods() is ctor.methods()  # cached: decided once


def test_missing_declarations_are_clear_errors() -> None:
    class NoType(SyncConnectorBase):
        def do(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> Resource:
            return Resource(phase=Phase.SUCCEEDED)

    with pytest.raises(TypeError, match="NoType needs a task_type_name"):
        NoType()

    class NoMeta(AsyncConnectorBase[JobMeta]):
        task_type_name = "t"

    with pytest.raises(TypeError, match="NoMeta needs a metadata_type"):
        NoMeta()

    class NoGet(AsyncConnectorBase[JobMeta]):
        task_type_name = "t"
        metadata_type = JobMeta

        def create(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> JobMeta:
            return JobMeta("x")

    with pytest.raises(TypeError, match="must implement get"):
        NoGet()

    with pytest.raises(TypeError, match="task_type_version must be an int"):
        CtorStyle(version="1")  # type: ignore[arg-type]


def test_registry_instance_lookup_and_metadata() -> None:
    registry = ConnectorRegistry([CtorStyle(0), CtorStyle(2), ClassAttrStyle, Echo()])
    assert len(registry) == 4
    assert registry.get_connector("ctor_type", 2).task_category == TaskCategory("ctor_type", 2)
    assert TaskCategory("attr_type", 3) in registry
    with pytest.raises(ConnectorNotFound, match=r"Cannot find connector for task category: ctor_type_v1\."):
        registry.get_connector("ctor_type", 1)
    agents = {a.name: a for a in registry.list_connectors()}
    ctor = agents["Ctor Connector"]
    assert list(ctor.supported_task_types) == ["ctor_type", "ctor_type"]  # one entry per category, as flytekit
    assert [(c.name, c.version) for c in ctor.supported_task_categories] == [("ctor_type", 0), ("ctor_type", 2)]
    assert agents["Echo"].is_sync and not ctor.is_sync
    assert registry.get_connector_metadata("Echo").supported_task_categories[0].name == "echo"
    with pytest.raises(ConnectorNotFound, match=r"Cannot find connector for name: nope\."):
        registry.get_connector_metadata("nope")


def test_duplicates_raise_unless_override_and_metadata_never_duplicates() -> None:
    registry = ConnectorRegistry([CtorStyle()])
    with pytest.raises(ValueError, match="Duplicate connector for task type: ctor_type_v0"):
        registry.register(CtorStyle())
    replacement = CtorStyle()
    registry.register(replacement, override=True)
    registry.register(CtorStyle(), override=True)
    (agent,) = registry.list_connectors()
    assert len(agent.supported_task_categories) == 1


def test_override_with_a_differently_named_connector_moves_the_category() -> None:
    class Renamed(CtorStyle):
        name = "Renamed"

    registry = ConnectorRegistry([CtorStyle()])
    registry.register(Renamed(), override=True)
    assert [a.name for a in registry.list_connectors()] == ["Renamed"]


def test_metadata_returned_is_a_copy() -> None:
    registry = ConnectorRegistry([Echo()])
    registry.list_connectors()[0].name = "mutated"
    assert registry.list_connectors()[0].name == "Echo"


def test_classic_static_calls_act_on_the_process_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ConnectorRegistry, "_default", None)
    ConnectorRegistry.register(Echo())
    assert ConnectorRegistry.get_connector("echo").name == "Echo"
    assert [a.name for a in ConnectorRegistry.list_connectors()] == ["Echo"]
    assert ConnectorRegistry.get_connector_metadata("Echo").is_sync
    assert AgentRegistry.get_agent("echo").name == "Echo"
    assert AsyncAgentBase is AsyncConnectorBase
    mine = ConnectorRegistry()
    assert len(mine) == 0  # instances do not see the default


def _write_plugin(root: Path, dist: str, entry_points: str, modules: dict[str, str]) -> None:
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    for name, source in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))


def test_entry_point_discovery_returns_connectors_and_reports_broken_plugins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_plugin(
        tmp_path,
        "fc_test_plugins",
        """
        [fc_test.connectors]
        good = fc_good_plugin:GoodConnector
        many = fc_good_plugin:make_connectors
        broken = fc_broken_plugin:Nothing
        """,
        {
            "fc_good_plugin": """
                from flyteconnect import SyncConnectorBase, Resource, Phase, ConnectorRegistry

                class GoodConnector(SyncConnectorBase):
                    name = "Good"
                    task_type_name = "good"

                    def do(self, task_template, output_prefix, inputs=None, **kwargs):
                        return Resource(phase=Phase.SUCCEEDED)

                def make_connectors():
                    return [GoodConnector(task_type_name="good", task_type_version=v) for v in (1, 2)]
            """,
            "fc_broken_plugin": "import a_module_that_does_not_exist\n",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(ConnectorRegistry, "_default", None)
    result = discover_connectors("fc_test.connectors")
    assert sorted(str(c.task_category) for c in result.connectors) == ["good_v0", "good_v1", "good_v2"]
    assert list(result.failures) == ["broken = fc_broken_plugin:Nothing"]
    assert "No module named 'a_module_that_does_not_exist'" in result.failures["broken = fc_broken_plugin:Nothing"]
    assert result.sources["good_v0"] == "good = fc_good_plugin:GoodConnector"
    assert len(ConnectorRegistry.default()) == 0  # discovery never registers by side effect
