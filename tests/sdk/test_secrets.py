"""One secrets accessor: request secrets first, then the environment, then mounted files; values never echoed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flyteconnect.secrets import SecretNotFound, get_connector_secret, get_secret, request_secrets


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLYTE_SECRETS_DEFAULT_DIR", str(tmp_path))
    monkeypatch.delenv("FLYTE_SECRETS_ENV_PREFIX", raising=False)
    return tmp_path


def test_lookup_order_request_then_env_then_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text("from-file\n")
    assert get_secret("token") == "from-file"
    monkeypatch.setenv("_FSEC_TOKEN", "from-env")
    assert get_secret("token") == "from-env"
    with request_secrets({"token": "from-request"}):
        assert get_secret("token") == "from-request"
    assert get_connector_secret("token") == "from-env"


def test_env_prefix_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYTE_SECRETS_ENV_PREFIX", "MY_")
    monkeypatch.setenv("MY_KEY", "v")
    assert get_secret("key") == "v"


def test_missing_secret_names_the_places_looked_but_no_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_FSEC_OTHER", "do-not-leak")
    with pytest.raises(SecretNotFound) as info:
        get_secret("absent")
    message = str(info.value)
    assert "'absent'" in message and "$_FSEC_ABSENT" in message and "do-not-leak" not in message
    assert get_secret("absent", default="fallback") == "fallback"


async def test_request_secrets_are_task_local() -> None:
    async def read(value: str) -> str:
        with request_secrets({"k": value}):
            await asyncio.sleep(0.01)
            return get_secret("k")

    assert await asyncio.gather(read("a"), read("b")) == ["a", "b"]
