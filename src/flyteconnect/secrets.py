"""One accessor for connector secrets, wherever they come from.

Flyte 2 sends secrets with each request (``connection.secrets``); Flyte 1 connectors read them from the server's
environment or mounted files, as flytekit's ``get_connector_secret`` does. ``get_secret(key)`` looks in that order:

1. the secrets of the request being served (set by the server for Flyte 2 requests, and by the local runner);
2. the environment variable ``<prefix><KEY upper-cased>`` (prefix ``_FSEC_``, or ``$FLYTE_SECRETS_ENV_PREFIX``);
3. the file ``<dir>/<key lower-cased>`` (dir ``/etc/secrets``, or ``$FLYTE_SECRETS_DEFAULT_DIR``).

Values are never logged: errors name the key and where it was looked for, not what was found.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from flyteconnect.errors import ConnectorError

__all__ = ["SecretNotFound", "get_connector_secret", "get_secret", "request_secrets"]

_NO_SECRETS: Mapping[str, str] = {}
_request_secrets: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "flyteconnect_secrets", default=_NO_SECRETS
)


class SecretNotFound(ConnectorError, KeyError, ValueError):
    """No source holds the requested secret (a KeyError, and a ValueError as flytekit's accessors raise)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


@contextlib.contextmanager
def request_secrets(secrets: Mapping[str, str]) -> Iterator[None]:
    """Make ``secrets`` visible to ``get_secret`` for the duration of one request (contextvars: task-local)."""
    token = _request_secrets.set(secrets)
    try:
        yield
    finally:
        _request_secrets.reset(token)


def get_secret(key: str, default: str | None = None) -> str:
    """Return the secret ``key`` from the current request, the environment or a mounted file (see module doc)."""
    value = _request_secrets.get().get(key)
    if value is not None:
        return value
    prefix = os.environ.get("FLYTE_SECRETS_ENV_PREFIX", "_FSEC_")
    env_name = f"{prefix}{key.upper()}"
    value = os.environ.get(env_name)
    if value is not None:
        return value
    directory = Path(os.environ.get("FLYTE_SECRETS_DEFAULT_DIR", "/etc/secrets"))
    path = directory / key.lower()
    try:
        return path.read_text().strip()
    except OSError:
        pass
    if default is not None:
        return default
    raise SecretNotFound(
        f"secret {key!r} not found: not in the request's connection, not in ${env_name}, not in file {path}"
    )


def get_connector_secret(secret_key: str) -> str:
    """flytekit's accessor (same keyword): ``get_secret(secret_key)``; a missing secret raises a ValueError."""
    return get_secret(secret_key)


get_agent_secret = get_connector_secret  # flytekit's deprecated name
