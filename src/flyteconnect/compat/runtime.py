"""flytekit's runtime helpers as connectors use them: logger, lazy imports, secrets, exceptions, constants.

Connectors call ``FlyteContextManager.current_context()`` or ``flytekit.current_context()`` for two things only: the
``ctx`` argument of ``TypeEngine`` conversions (ignored by ``flyteconnect.compat.types``) and ``.secrets``, which
resolves as flytekit does in a server process (``$_FSEC_<GROUP>_<KEY>``, then ``/etc/secrets/<group>/<key>``) and
raises ``ValueError`` when neither holds the secret.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import types
from dataclasses import dataclass
from typing import Any

from flyteconnect.errors import ConnectorError
from flyteconnect.secrets import SecretNotFound, get_secret

__all__ = [
    "FLYTE_FAIL_ON_ERROR",
    "FlyteContext",
    "FlyteContextManager",
    "FlyteException",
    "FlyteUserException",
    "Resources",
    "SecretsManager",
    "current_context",
    "lazy_module",
    "logger",
    "loop_manager",
]

logger = logging.getLogger("flyteconnect.connector")
"""The logger migrated connectors write to (flytekit's is ``flytekit``)."""

FLYTE_FAIL_ON_ERROR = "FLYTE_FAIL_ON_ERROR"
"""Environment variable telling flytekit's entrypoint to exit non-zero on a task error (flytekit.core.constants)."""


class FlyteException(ConnectorError):
    """flytekit's base exception; raised by a connector it fails the call (INTERNAL) with its message."""

    _ERROR_CODE = "UnknownFlyteException"

    def __init__(self, *args: Any) -> None:
        super().__init__(" ".join(str(a) for a in args), code=self._ERROR_CODE)
        self.args = args


class FlyteUserException(FlyteException):
    """flytekit's user-error exception (``flytekit.exceptions.user``)."""

    _ERROR_CODE = "USER:Unknown"


class _MissingModule(types.ModuleType):
    """Stands for a module that is not installed: the ImportError comes on first use, as with flytekit."""

    def __getattr__(self, attr: str) -> Any:
        raise ImportError(f"module {self.__name__!r} is not installed; it is needed for {attr!r}")


def lazy_module(fullname: str) -> types.ModuleType:
    """The module ``fullname``, imported on first attribute access (flytekit.lazy_module)."""
    import sys

    if fullname in sys.modules:
        return sys.modules[fullname]
    spec = importlib.util.find_spec(fullname)
    if spec is None or spec.loader is None:
        return _MissingModule(fullname)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[fullname] = module
    loader.exec_module(module)
    return module


class SecretsManager:
    """``current_context().secrets``: ``get(group, key, group_version)`` as flytekit resolves it in a server."""

    def get(
        self,
        group: str | None = None,
        key: str | None = None,
        group_version: str | None = None,
        encode_mode: str = "r",
    ) -> str:
        """The secret named by ``group``/``group_version``/``key``; ValueError (SecretNotFound) when absent."""
        parts = [p for p in (group, group_version, key) if p]
        if not parts:
            raise ValueError("a secret needs a group or a key")
        prefix = os.environ.get("FLYTE_SECRETS_ENV_PREFIX", "_FSEC_")
        env_name = prefix + "_".join(p.upper() for p in parts)
        value = os.environ.get(env_name)
        if value is not None:
            return value.strip()
        if len(parts) == 1:  # one name: the request's secrets (Flyte 2), then the same places as get_secret
            return get_secret(parts[0])
        base = os.environ.get("FLYTE_SECRETS_DEFAULT_DIR", "/etc/secrets")
        path = os.path.join(base, *(p.lower() for p in parts))
        try:
            with open(path, encode_mode) as f:
                return f.read().strip()  # type: ignore[no-any-return]
        except OSError:
            pass
        raise SecretNotFound(f"secret {'/'.join(parts)!r} not found: not in ${env_name}, not in file {path}")

    def get_secrets_env_var(
        self, group: str | None = None, key: str | None = None, group_version: str | None = None
    ) -> str:
        """The environment variable a secret is read from."""
        prefix = os.environ.get("FLYTE_SECRETS_ENV_PREFIX", "_FSEC_")
        return prefix + "_".join(p.upper() for p in (group, group_version, key) if p)


class FlyteContext:
    """What connectors take from flytekit's context: ``secrets``; passed as ``ctx`` to ``TypeEngine`` calls."""

    secrets = SecretsManager()

    @property
    def user_space_params(self) -> FlyteContext:
        """flytekit's ExecutionParameters; here the context itself (``.secrets``)."""
        return self


_CONTEXT = FlyteContext()


def current_context() -> FlyteContext:
    """flytekit.current_context(): the object whose ``secrets`` connectors read."""
    return _CONTEXT


class FlyteContextManager:
    """flytekit's FlyteContextManager, for ``FlyteContextManager.current_context()``."""

    @staticmethod
    def current_context() -> FlyteContext:
        """The context (see ``current_context``)."""
        return _CONTEXT


@dataclass
class Resources:
    """flytekit.Resources: requested or limited compute (``cpu``, ``mem``, ``gpu``, ``ephemeral_storage``)."""

    cpu: Any = None
    mem: Any = None
    gpu: Any = None
    ephemeral_storage: Any = None


class _LoopManager:
    """flytekit.utils.asyn.loop_manager: ``run_sync(fn, *args)`` calls ``fn`` and, if it returned an awaitable,
    runs it to completion (also from inside a running loop, on a helper thread)."""

    def run_sync(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, awaited when it is a coroutine function or returns an awaitable."""
        import inspect

        from flyteconnect.local.sync import run_sync

        result = fn(*args, **kwargs)
        if not inspect.isawaitable(result):
            return result

        async def wait() -> Any:
            return await result

        return run_sync(wait, label="loop_manager.run_sync")


loop_manager = _LoopManager()
"""flytekit's ``loop_manager`` (``run_sync`` only)."""
