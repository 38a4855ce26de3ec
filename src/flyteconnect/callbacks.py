"""Completion by callback: the external system reports a finished job instead of being polled.

A connector asks for the job's callback URL while it creates the job and hands it to the external system::

    from flyteconnect import callback_url

    async def create(self, task_template, output_prefix, inputs=None, **kwargs):
        job = await client.submit(..., on_finish=callback_url())
        return MyJob(job_id=job.id)

When the job finishes the external system POSTs its result as JSON to that URL:
``{"phase": "SUCCEEDED", "message": "...", "outputs": {"rows": 3}}`` (phase: SUCCEEDED, FAILED, RETRYABLE_FAILED or
ABORTED). The server keeps it in its state store and the next GetTask for the job answers from it without calling
the connector's ``get``. The URL carries a per-job token signed with HMAC-SHA256 that expires (``serve
--callback-ttl``); the first result wins and a replayed POST changes nothing.

Keys: ``FLYTECONNECT_CALLBACK_KEYS`` (or ``serve --callback-key-file``, one key per line) lists one or more secrets;
the first signs, every one verifies, so a key is rotated by putting the new one first, waiting for the old tokens
to expire, then removing the old one. Replicas must share the keys.
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "CALLBACK_KEYS_ENV",
    "CallbackScope",
    "CallbackSigner",
    "CallbacksUnavailable",
    "InvalidCallbackToken",
    "callback_scope",
    "callback_url",
    "end_callback_scope",
    "load_keys",
    "new_job_id",
]

CALLBACK_KEYS_ENV = "FLYTECONNECT_CALLBACK_KEYS"
"""Comma-separated callback signing keys, newest first."""

_PATH = "/callback/"
_MIN_KEY_BYTES = 16


class CallbacksUnavailable(RuntimeError):
    """``callback_url()`` was called outside a ``create`` served with callbacks on (``serve --callback-port``)."""


class InvalidCallbackToken(ValueError):
    """A callback token that is malformed, not signed by a known key, or expired (``expired`` says which)."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class CallbackSigner:
    """Issues and verifies per-job callback tokens: ``<job id>.<expiry, unix s>.<HMAC-SHA256 of both>``.

    ``keys``: the first signs, every one verifies (rotation). ``base_url``: where the external system reaches the
    callback server (its public address: a Kubernetes Service or Ingress). ``ttl``: seconds a token stays valid.
    """

    def __init__(
        self, keys: Sequence[bytes], base_url: str, ttl: float = 86_400.0, clock: Callable[[], float] = time.time
    ) -> None:
        if not keys:
            raise ValueError("callbacks need at least one signing key")
        for key in keys:
            if len(key) < _MIN_KEY_BYTES:
                raise ValueError(f"a callback signing key must have at least {_MIN_KEY_BYTES} bytes")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"callback URL base must be an http(s) URL, got {base_url!r}")
        if ttl <= 0:
            raise ValueError("callback token ttl must be > 0 seconds")
        self._keys = list(keys)
        self.base_url = base_url.rstrip("/")
        self.ttl = ttl
        self._clock = clock

    @classmethod
    def from_env(cls, base_url: str, ttl: float = 86_400.0, key_file: str | None = None) -> CallbackSigner:
        """A signer with the keys of ``load_keys(key_file)``."""
        return cls(load_keys(key_file), base_url, ttl)

    def _sign(self, key: bytes, body: str) -> str:
        return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())

    def issue(self, job_id: str) -> str:
        """A token for ``job_id`` valid for ``ttl`` seconds."""
        body = f"{job_id}.{int(self._clock() + self.ttl)}"
        return f"{body}.{self._sign(self._keys[0], body)}"

    def url(self, job_id: str) -> str:
        """The callback URL for ``job_id``."""
        return f"{self.base_url}{_PATH}{self.issue(job_id)}"

    def verify(self, token: str) -> str:
        """The job id of a valid token; raises ``InvalidCallbackToken`` otherwise."""
        parts = token.split(".")
        if len(parts) != 3 or not all(parts):
            raise InvalidCallbackToken("malformed callback token")
        job_id, expiry, signature = parts
        body = f"{job_id}.{expiry}"
        # Every key is checked (no early exit), so the time taken says nothing about which key matched.
        matches = [hmac.compare_digest(self._sign(key, body), signature) for key in self._keys]
        if not any(matches):
            raise InvalidCallbackToken("callback token signature does not match")
        try:
            expires = int(expiry)
        except ValueError:
            raise InvalidCallbackToken("malformed callback token") from None
        if expires < self._clock():
            raise InvalidCallbackToken("callback token expired", expired=True)
        return job_id


def load_keys(key_file: str | None = None) -> list[bytes]:
    """Signing keys from ``key_file`` (one per line) when given, else from ``$FLYTECONNECT_CALLBACK_KEYS``; newest
    first. Raises ValueError when there is none."""
    if key_file is not None:
        with open(key_file, encoding="utf-8") as f:
            raw = [line.strip() for line in f]
    else:
        raw = [part.strip() for part in os.environ.get(CALLBACK_KEYS_ENV, "").split(",")]
    keys = [k.encode() for k in raw if k]
    if not keys:
        raise ValueError(f"no callback signing key in {key_file or '$' + CALLBACK_KEYS_ENV}")
    return keys


def new_job_id() -> str:
    """A fresh, unguessable callback job id (128 random bits)."""
    return _b64(secrets.token_bytes(16))


@dataclass
class CallbackScope:
    """The callback side of one ``create`` call: the job id is drawn when the connector first asks for its URL."""

    signer: CallbackSigner
    job_id: str | None = field(default=None)

    def url(self) -> str:
        """The job's callback URL (the same one on every call within the scope)."""
        if self.job_id is None:
            self.job_id = new_job_id()
        return self.signer.url(self.job_id)


_scope: contextvars.ContextVar[CallbackScope | None] = contextvars.ContextVar("flyteconnect_callback", default=None)


def callback_scope(scope: CallbackScope | None) -> contextvars.Token[CallbackScope | None]:
    """Make ``scope`` the current create's (the server does this; ``_scope.reset(token)`` ends it)."""
    return _scope.set(scope)


def end_callback_scope(token: contextvars.Token[CallbackScope | None]) -> None:
    """End what ``callback_scope`` started."""
    _scope.reset(token)


def callback_url() -> str:
    """The URL the external system POSTs this job's result to; call it from ``create``.

    Raises ``CallbacksUnavailable`` outside a ``create`` or when the server runs without ``--callback-port``: a
    connector that can also be polled may catch it and fall back to polling.
    """
    scope = _scope.get()
    if scope is None:
        raise CallbacksUnavailable(
            "callback_url() is only available inside create() on a server with callbacks on (serve --callback-port)"
        )
    return scope.url()
