"""``--flytekit-plugins`` where flytekit cannot be imported: one clear failure, the rest is served.

(Serving flytekit's connectors for real is tested in tests/compat, in a virtualenv with flytekit and its plugins.)
"""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from flyteconnect.cli.main import cli
from flyteconnect.server.loading import load_connectors


def test_missing_flytekit_is_one_clear_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "flytekit", None)  # import flytekit now fails as if not installed
    result = load_connectors(entry_points=True, flytekit_plugins=True, include_default=False)
    assert result.failures == {
        "flytekit plugins": "flytekit is not installed: pip install 'flyteconnect[flytekit]' and the plugins to serve"
    }
    assert {"sensor", "webhook"} <= {c.name for c in result.registry.categories()}  # the built-ins still load


def test_list_names_the_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "flytekit", None)
    out = CliRunner().invoke(cli, ["list", "--json", "--flytekit-plugins"])
    assert out.exit_code == 0, out.output
    assert "flyteconnect[flytekit]" in out.output
