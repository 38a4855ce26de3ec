"""One secrets accessor: request secrets first, then the environment, then mounted files; values never echoed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flyteconnect.errors import InvalidRequest
from flyteconnect.redaction import VALUES, redact
from flyteconnect.secrets import (
    InvalidSecretName,
    SecretNotFound,
    check_secret_name,
    get_connector_secret,
    get_secret,
    request_secrets,
)


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


# ---------------------------------------------------------------------------------------- names, never paths

BAD_NAMES = [
    ("", "empty"),
    ("   ", "empty"),
    ("/etc/passwd", "path separator"),
    ("a/b", "path separator"),
    ("a\\b", "path separator"),
    ("C:\\secrets\\x", "path separator"),
    ("..", "'..'"),
    ("../x", "path separator"),
    ("x..", "'..'"),
    ("a..b", "'..'"),
    (".", "'.' is not a name"),
    ("a\x00b", "NUL"),
    ("\x00", "NUL"),
    ("a\nb", "control character"),
    ("a\tb", "control character"),
    ("a\x7fb", "control character"),
    ("k" * 257, "longer than 256"),
]


@pytest.mark.parametrize(("name", "problem"), BAD_NAMES)
def test_a_secret_key_or_group_must_be_a_plain_name(name: str, problem: str) -> None:
    for what in ("key", "group"):
        with pytest.raises(InvalidSecretName) as info:
            check_secret_name(name, what)
        message = str(info.value)
        assert message.startswith(f"invalid secret {what} ") and problem in message
        assert isinstance(info.value, InvalidRequest)  # INVALID_ARGUMENT on the wire


@pytest.mark.parametrize(
    "name", ["token", "API_KEY", "postgres_dsn", "a.b", "my-secret", "arn:aws:secretsmanager:eu:1:secret", "k" * 256]
)
def test_plain_names_pass(name: str) -> None:
    assert check_secret_name(name) == name


def test_non_string_names_are_refused() -> None:
    with pytest.raises(InvalidSecretName, match="must be a string, got int"):
        check_secret_name(3)


@pytest.mark.parametrize("name", [n for n, _ in BAD_NAMES])
def test_get_secret_refuses_bad_names_before_looking_anywhere(tmp_path: Path, name: str) -> None:
    (tmp_path / "inside").write_text("never-read")
    with pytest.raises(InvalidSecretName):
        get_secret(name)
    if name:  # an empty group means no group, as in flytekit
        with pytest.raises(InvalidSecretName):
            get_secret("inside", group=name)
        with pytest.raises(InvalidSecretName):
            get_secret("inside", group="team", group_version=name)
    with request_secrets({name: "from-request"}), pytest.raises(InvalidSecretName):
        get_secret(name)  # not even the request's own secrets answer to a bad name


def test_an_absolute_or_escaping_key_never_reads_the_file_it_names(tmp_path: Path) -> None:
    outside = tmp_path.parent / "outside-secret"
    outside.write_text("outside-value")
    for key in (str(outside), f"../{outside.name}", f"x/../../{outside.name}"):
        with pytest.raises(InvalidSecretName) as info:
            get_secret(key)
        assert repr(key) in str(info.value) and "outside-value" not in str(info.value)


def test_long_bad_names_are_shortened_in_the_message() -> None:
    with pytest.raises(InvalidSecretName) as info:
        check_secret_name("../" + "x" * 1000)
    assert len(str(info.value)) < 200


# --------------------------------------------------------------------------------- only secrets, never the env


def test_an_empty_env_prefix_does_not_open_the_whole_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", "not-a-secret")
    monkeypatch.setenv("FLYTE_SECRETS_ENV_PREFIX", "")
    with pytest.raises(SecretNotFound) as info:
        get_secret("DB_PASSWORD")
    assert "$_FSEC_DB_PASSWORD" in str(info.value) and "not-a-secret" not in str(info.value)
    monkeypatch.setenv("FLYTE_SECRETS_ENV_PREFIX", "  ")
    with pytest.raises(SecretNotFound):
        get_secret("db_password")
    monkeypatch.setenv("_FSEC_DB_PASSWORD", "the-secret")
    assert get_secret("db_password") == "the-secret"


def test_missing_secret_names_no_server_path(tmp_path: Path) -> None:
    with pytest.raises(SecretNotFound) as info:
        get_secret("Absent_Key")
    message = str(info.value)
    assert str(tmp_path) not in message and "'absent_key'" in message


def test_groups_use_flytekits_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "team" / "v1").mkdir(parents=True)
    (tmp_path / "team" / "v1" / "token").write_text("grouped-file\n")
    (tmp_path / "team" / "token").write_text("group-file")
    assert get_secret("token", group="team", group_version="v1") == "grouped-file"
    assert get_secret("TOKEN", group="Team") == "group-file"
    monkeypatch.setenv("_FSEC_TEAM_V1_TOKEN", " grouped-env ")
    assert get_secret("token", group="team", group_version="v1") == "grouped-env"
    with request_secrets({"token": "from-request"}):
        assert get_secret("token", group="team") == "group-file"  # request secrets are not grouped


# ------------------------------------------------------------------------------------- values are remembered


def test_resolved_values_are_remembered_for_redaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    VALUES.clear()
    (tmp_path / "file_token").write_text("file-value-1\n")
    monkeypatch.setenv("_FSEC_ENV_TOKEN", "env-value-2")
    assert redact("file-value-1 env-value-2 conn-value-3") == "file-value-1 env-value-2 conn-value-3"
    get_secret("file_token")
    get_secret("env_token")
    with request_secrets({"k": "conn-value-3"}):
        pass
    assert redact("file-value-1 env-value-2 conn-value-3") == "*** *** ***"
    VALUES.clear()
