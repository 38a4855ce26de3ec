"""Connector discovery for serve/list: modules by path or name, allow-list, duplicates, broken modules."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from flyteconnect import ConnectorRegistry
from flyteconnect.server.loading import load_connectors

HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def fresh_default_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Modules register into the process default registry: give each test its own."""
    monkeypatch.setattr(ConnectorRegistry, "_default", None)
    monkeypatch.setattr(sys, "path", list(sys.path))


def write_module(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    sys.modules.pop(name, None)
    return str(path)


def test_a_file_module_registers_connectors_and_a_broken_one_is_reported(tmp_path: Path) -> None:
    good = write_module(
        tmp_path,
        "fc_good_module",
        f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        from connectors import AdderConnector, SlowConnector
        from flyteconnect import ConnectorRegistry
        ConnectorRegistry.register(AdderConnector())
        ConnectorRegistry.register(SlowConnector())
        """,
    )
    bad = write_module(tmp_path, "fc_bad_module", "raise RuntimeError('plugin is broken')\n")
    result = load_connectors([good, bad, "fc_missing_module_xyz"], entry_points=False)
    assert [str(c) for c in result.registry.categories()] == ["adder_v0", "slow_v0"]
    assert result.sources == {"adder_v0": f"module {good}", "slow_v0": f"module {good}"}
    assert result.failures == {
        f"module {bad}": "RuntimeError: plugin is broken",
        "module fc_missing_module_xyz": "ModuleNotFoundError: No module named 'fc_missing_module_xyz'",
    }


def test_allow_list_by_name_task_type_or_category(tmp_path: Path) -> None:
    module = write_module(
        tmp_path,
        "fc_three",
        f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        from connectors import AdderConnector, EchoConnector, EchoV1Connector
        from flyteconnect import ConnectorRegistry
        for c in (AdderConnector(), EchoConnector(), EchoV1Connector()):
            ConnectorRegistry.register(c)
        """,
    )
    result = load_connectors([module], entry_points=False, allow={"Adder", "echo_v1"})
    assert [str(c) for c in result.registry.categories()] == ["adder_v0", "echo_v1"]
    assert result.skipped == ["echo_v0"]


def test_entry_points_and_the_same_connector_registered_by_a_module_do_not_conflict(tmp_path: Path) -> None:
    module = write_module(
        tmp_path,
        "fc_reuses_builtin",
        """
        from flyteconnect import ConnectorRegistry
        from flyteconnect.connectors.webhook import WebhookConnector
        ConnectorRegistry.register(WebhookConnector())
        """,
    )
    result = load_connectors([module], entry_points=True)
    assert "webhook_v0" in {str(c) for c in result.registry.categories()}
    assert result.sources["webhook_v0"] == f"module {module}"
    assert not any("webhook" in source for source in result.failures)


def test_plain_table_for_logs() -> None:
    from flyteconnect.cli.serve_output import plain_table
    from flyteconnect.server.loading import LoadResult

    from .connectors import AdderConnector, EchoV1Connector

    result = LoadResult(ConnectorRegistry([AdderConnector(), EchoV1Connector()]), sources={"adder_v0": "module m"})
    lines = plain_table(result).splitlines()
    assert lines[0].split() == ["CONNECTOR", "TASK", "TYPE", "VERSION", "KIND", "METHODS", "SOURCE"]
    assert lines[1].split() == ["Adder", "adder", "0", "sync", "do", "(async", "def)", "module", "m"]
    assert lines[2].startswith("Echo Connector  echo       1        async  create (def), get (def), delete (def)")
