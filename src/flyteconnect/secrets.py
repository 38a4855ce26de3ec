"""One accessor for connector secrets, wherever they come from.

Flyte 2 sends secrets with each request (``connection.secrets``); Flyte 1 connectors read them from the server's
environment or mounted files, as flytekit's ``get_connector_secret`` does. ``get_secret(key)`` looks in that order:

1. the secrets of the request being served (set by the server for Flyte 2 requests, and by the local runner);
2. the environment variable ``<prefix><KEY upper-cased>`` (prefix ``_FSEC_``, or ``$FLYTE_SECRETS_ENV_PREFIX``);
3. the file ``<dir>/<key lower-cased>`` (dir ``/etc/secrets``, or ``$FLYTE_SECRETS_DEFAULT_DIR``).

With a ``group`` (and ``group_version``), as flytekit's ``SecretsManager.get``: the variable
``<prefix><GROUP>_<VERSION>_<KEY>`` and the file ``<dir>/<group>/<version>/<key>``.

A secret is named, never addressed: keys and groups come from task templates and requests, so each is checked by
``check_secret_name`` before any lookup (no ``/`` or ``\\``, no ``..``, no NUL or other control character, not empty;
``InvalidSecretName``, INVALID_ARGUMENT on the wire). An empty ``$FLYTE_SECRETS_ENV_PREFIX`` counts as unset, so a
key can never name an arbitrary environment variable. Values found are remembered for redaction
(``flyteconnect.redaction``); errors name the key and where to put the secret, never a value or a server path.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from flyteconnect import redaction
from flyteconnect.errors import ConnectorError, InvalidRequest

__all__ = [
    "DEFAULT_DIR",
    "DEFAULT_ENV_PREFIX",
    "InvalidSecretName",
    "SecretNotFound",
    "check_secret_name",
    "check_secret_names",
    "get_connector_secret",
    "get_secret",
    "is_request_secret",
    "request_secrets",
]

log = logging.getLogger(__name__)

DEFAULT_ENV_PREFIX = "_FSEC_"
DEFAULT_DIR = "/etc/secrets"
MAX_NAME = 256
"""Longest accepted key or group (a name, not a document; keeps error details short)."""

_NO_SECRETS: Mapping[str, str] = {}
_request_secrets: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "flyteconnect_secrets", default=_NO_SECRETS
)


class SecretNotFound(ConnectorError, KeyError, ValueError):
    """No source holds the requested secret (a KeyError, and a ValueError as flytekit's accessors raise)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class InvalidSecretName(InvalidRequest):
    """A secret key or group that is not a plain name (a path, ``..``, a control character, empty)."""


def _problem(name: str) -> str | None:
    """Why ``name`` is not a secret name, or None when it is one."""
    if not name.strip():
        return "it is empty"
    if len(name) > MAX_NAME:
        return f"it is longer than {MAX_NAME} characters"
    if "/" in name or "\\" in name:
        return "it contains a path separator"
    if ".." in name:
        return "it contains '..'"
    if name == ".":
        return "'.' is not a name"
    if "\x00" in name:
        return "it contains NUL"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "it contains a control character"
    return None


def check_secret_name(name: object, what: str = "key") -> str:
    """``name`` when it is a valid secret key or group; otherwise ``InvalidSecretName`` naming it (module doc)."""
    if not isinstance(name, str):
        raise InvalidSecretName(f"secret {what} must be a string, got {type(name).__name__}")
    problem = _problem(name)
    if problem is not None:
        shown = repr(name) if len(name) <= 80 else repr(name[:77]) + "..."
        raise InvalidSecretName(f"invalid secret {what} {shown}: {problem} (a secret is named, never a path)")
    return name


def check_secret_names(names: Iterable[str], what: str = "key") -> None:
    """``check_secret_name`` for each of ``names``."""
    for name in names:
        check_secret_name(name, what)


@contextlib.contextmanager
def request_secrets(secrets: Mapping[str, str]) -> Iterator[None]:
    """Make ``secrets`` visible to ``get_secret`` for the duration of one request (contextvars: task-local).

    Their values are remembered for redaction (``flyteconnect.redaction``) as the caller's connection secrets.
    """
    redaction.remember_connection(secrets.values())
    token = _request_secrets.set(secrets)
    try:
        yield
    finally:
        _request_secrets.reset(token)


def is_request_secret(key: str) -> bool:
    """True when the request being served carries ``key`` itself (the caller's secret, not the server's)."""
    return key in _request_secrets.get()


def _env_prefix() -> str:
    # Empty would make every environment variable a "secret": the default prefix stands instead.
    return os.environ.get("FLYTE_SECRETS_ENV_PREFIX", "").strip() or DEFAULT_ENV_PREFIX


def get_secret(
    key: str, default: str | None = None, *, group: str | None = None, group_version: str | None = None
) -> str:
    """Return the secret ``key`` from the current request, the environment or a mounted file (see module doc)."""
    check_secret_name(key)
    if group:
        check_secret_name(group, "group")
    if group_version:
        check_secret_name(group_version, "group version")
    if not group:
        value = _request_secrets.get().get(key)
        if value is not None:
            return value
    names = [n for n in (group, group_version, key) if n]
    env_name = _env_prefix() + "_".join(n.upper() for n in names)
    value = os.environ.get(env_name)
    directory = os.environ.get("FLYTE_SECRETS_DEFAULT_DIR", "").strip() or DEFAULT_DIR
    path = Path(directory).joinpath(*(n.lower() for n in names))  # safe: every part passed check_secret_name
    if value is None:
        try:
            value = path.read_text()
        except (OSError, UnicodeDecodeError):
            pass
    if value is not None:
        value = value.strip()  # as flytekit: a trailing newline in a mounted file is not part of the secret
        redaction.remember(value)
        return value
    if default is not None:
        return default
    log.debug("secret %r not found in $%s nor in %s", key, env_name, path)  # the server log may name the path
    where = "/".join(n.lower() for n in names)
    raise SecretNotFound(
        f"secret {key!r} not found: not in the request's connection, not in ${env_name}, "
        f"not in the secrets directory as {where!r}"
    )


def get_connector_secret(secret_key: str) -> str:
    """flytekit's accessor (same keyword): ``get_secret(secret_key)``; a missing secret raises a ValueError."""
    return get_secret(secret_key)


get_agent_secret = get_connector_secret  # flytekit's deprecated name
