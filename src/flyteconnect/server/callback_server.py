"""The callback server: an aiohttp web server on its own port where external systems report finished jobs.

``POST /callback/<token>`` with ``{"phase": "SUCCEEDED", "message": "...", "outputs": {...}}`` (see
``flyteconnect.callbacks``). Answers: 200 ``{"recorded": true}`` the first time, 200 ``{"recorded": false}`` for a
replay of the same result, 409 for a different result after the first, 400 for a body that is not such a result,
401 for a token no key signed, 410 for an expired token, 413 for a body over the limit. ``GET /healthz``: 200.

``CallbackInbox`` keeps results in the state store so any replica answers for any job: ``callback:<job id>`` holds
the result as posted (first one wins), ``callback-job:<job id>`` the job's key (written by the server once
``create`` returned), and the result is copied into the job's record (``state.jobs``) as soon as both are known,
whichever arrives first. aiohttp is imported only when a callback port is configured (extra ``callback``).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flyteconnect.callbacks import CALLBACK_KEYS_ENV, CallbackSigner, InvalidCallbackToken, load_keys
from flyteconnect.connector import Phase, Resource
from flyteconnect.state.jobs import JobRecord, job_key

if TYPE_CHECKING:
    from flyteconnect.state import StateStore

__all__ = ["CallbackConfig", "CallbackConflict", "CallbackInbox", "CallbackResult", "CallbackServer"]

log = logging.getLogger("flyteconnect.callbacks")

FINAL_PHASES = {p.name: p for p in (Phase.SUCCEEDED, Phase.FAILED, Phase.RETRYABLE_FAILED, Phase.ABORTED)}
MAX_MESSAGE = 4096
"""Characters of a posted message kept (it ends up in Propeller's events)."""


@dataclass
class CallbackConfig:
    """How to serve callbacks (``serve --callback-port`` and friends)."""

    port: int
    """Port of the callback HTTP server (0 picks a free one)."""
    host: str = "0.0.0.0"
    url_base: str | None = None
    """Where external systems reach this server, e.g. ``https://connectors.example.com`` (default: host and port)."""
    keys: tuple[bytes, ...] = ()
    """Signing keys, newest first (empty: ``key_file``, else ``$FLYTECONNECT_CALLBACK_KEYS``)."""
    key_file: str | None = None
    token_ttl: float = 86_400.0
    """Seconds a callback URL stays valid after ``create``."""
    retention: float = 86_400.0
    """Seconds a posted result is kept (or until the job is deleted)."""
    max_body: int = 1024 * 1024
    """Largest accepted request body in bytes."""
    reuse_port: bool = False
    """Let the ``--workers`` processes share the port (SO_REUSEPORT)."""


class CallbackConflict(ValueError):
    """A result for a job that already has a different one."""


@dataclass(frozen=True)
class CallbackResult:
    """A posted result: a final phase, a message and JSON outputs."""

    phase: Phase
    message: str | None = None
    outputs: dict[str, Any] | None = None

    @classmethod
    def parse(cls, body: Any) -> CallbackResult:
        """Validate a decoded JSON body; ValueError naming what is wrong."""
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object with 'phase'")
        unknown = set(body) - {"phase", "message", "outputs"}
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
        phase = FINAL_PHASES.get(str(body.get("phase", "")).upper())
        if phase is None:
            raise ValueError(f"'phase' must be one of {', '.join(FINAL_PHASES)}")
        message = body.get("message")
        if message is not None and not isinstance(message, str):
            raise ValueError("'message' must be a string")
        outputs = body.get("outputs")
        if outputs is not None and not isinstance(outputs, dict):
            raise ValueError("'outputs' must be a JSON object")
        result = cls(phase, message[:MAX_MESSAGE] if message else None, outputs)
        try:
            result.to_resource().to_flyte_idl()  # outputs that cannot become literals are refused now, not at GetTask
        except Exception as e:
            raise ValueError(f"'outputs' cannot be converted: {e}") from None
        return result

    def canonical(self) -> bytes:
        """The result as canonical JSON (a replay compares equal byte for byte)."""
        plain = {"phase": self.phase.name, "message": self.message, "outputs": self.outputs}
        return json.dumps(plain, sort_keys=True, separators=(",", ":")).encode()

    def to_resource(self) -> Resource:
        """The Resource GetTask answers with."""
        return Resource(phase=self.phase, message=self.message, outputs=self.outputs)


class CallbackInbox:
    """Posted results and their link to jobs, in a state store (see the module docstring)."""

    def __init__(self, store: StateStore, retention: float = 86_400.0) -> None:
        self.store = store
        self.retention = retention

    async def record(self, job_id: str, result: CallbackResult) -> bool:
        """Keep ``result`` for ``job_id``: True the first time, False for a replay; ``CallbackConflict`` otherwise."""
        canonical = result.canonical()
        first = await self.store.get_or_set(f"callback:{job_id}", canonical, self.retention)
        if first is not None:
            if first == canonical:
                return False
            raise CallbackConflict("this job already reported a different result")
        key = await self.store.get(f"callback-job:{job_id}")
        if key is not None:  # create already returned: the job's record answers the next GetTask
            await self._write(key.decode(), result)
        return True

    async def link(self, job_id: str, resource_meta: bytes) -> None:
        """Tie ``job_id`` to the job ``create`` returned; a result that arrived first is filed now."""
        key = job_key(resource_meta)
        await self.store.set(f"callback-job:{job_id}", key.encode(), self.retention)
        # Both sides write, then read the other's key: whichever runs second files the result (never neither).
        posted = await self.store.get(f"callback:{job_id}")
        if posted is not None:
            await self._write(key, CallbackResult.parse(json.loads(posted)))

    async def _write(self, key: str, result: CallbackResult) -> None:
        record = JobRecord.of(result.to_resource(), time.time(), source="callback")
        await self.store.set(key, record.encode(), self.retention)


class CallbackServer:
    """The aiohttp server of callbacks for jobs whose state is in ``store``; ``start()`` returns the bound port.

    ``shared``: the store is shared with other replicas, which must verify this replica's tokens, so a signing key
    must be configured; otherwise a missing key is replaced by a random one for this process (with a warning).
    """

    def __init__(self, config: CallbackConfig, store: StateStore, *, shared: bool = False) -> None:
        self.config = config
        self.inbox = CallbackInbox(store, config.retention)
        self.keys = _keys(config, shared)
        self.signer: CallbackSigner | None = None
        """Set once listening (the default URL base needs the bound port)."""
        self.port: int | None = None
        self._runner: Any = None

    def app(self) -> Any:
        """The ``aiohttp.web.Application``."""
        from aiohttp import web

        app = web.Application(client_max_size=self.config.max_body)
        app.router.add_post("/callback/{token}", self._post)
        app.router.add_get("/healthz", self._health)
        return app

    async def _health(self, request: Any) -> Any:
        from aiohttp import web

        return web.Response(text="ok")

    async def _post(self, request: Any) -> Any:
        from aiohttp import web

        def error(status: int, message: str) -> Any:
            return web.json_response({"error": message}, status=status)

        assert self.signer is not None  # routes are served only after start() made it
        try:
            job_id = self.signer.verify(request.match_info["token"])
        except InvalidCallbackToken as e:
            return error(410 if e.expired else 401, str(e))
        raw = await request.read()  # over max_body: aiohttp answers 413 (HTTPRequestEntityTooLarge)
        try:
            result = CallbackResult.parse(json.loads(raw))
        except json.JSONDecodeError:
            return error(400, "the body is not JSON")
        except ValueError as e:  # UnicodeDecodeError included
            return error(400, str(e))
        try:
            recorded = await self.inbox.record(job_id, result)
        except CallbackConflict as e:
            return error(409, str(e))
        if recorded:
            log.info("callback: job %s reported %s", job_id, result.phase.name)
        return web.json_response({"recorded": recorded})

    async def start(self) -> int:
        """Listen on ``config.host:config.port``; returns the bound port."""
        try:
            from aiohttp import web
        except ImportError:
            raise RuntimeError("callbacks need aiohttp: pip install 'flyteconnect[callback]'") from None
        from flyteconnect.server.workers import probe_host

        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port, reuse_port=self.config.reuse_port or None)
        try:
            await site.start()
        except OSError as e:
            await runner.cleanup()
            raise OSError(f"cannot serve callbacks on {self.config.host}:{self.config.port}: {e}") from None
        self._runner = runner
        self.port = port = int(runner.addresses[0][1])
        base = self.config.url_base or f"http://{probe_host(self.config.host)}:{port}"
        self.signer = CallbackSigner(self.keys, base, self.config.token_ttl)
        return port

    async def stop(self) -> None:
        """Stop listening and finish requests in flight."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


def _keys(config: CallbackConfig, shared: bool) -> tuple[bytes, ...]:
    if config.keys:
        return tuple(config.keys)
    if config.key_file is not None or os.environ.get(CALLBACK_KEYS_ENV):
        return tuple(load_keys(config.key_file))
    if shared:
        raise ValueError(
            f"callbacks with a shared state store need a signing key every replica shares: set ${CALLBACK_KEYS_ENV} "
            "or --callback-key-file"
        )
    log.warning("callbacks: no signing key configured; using a random one (callback URLs die with this process)")
    return (secrets.token_bytes(32),)
