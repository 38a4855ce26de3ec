"""The Webhook connector: call an HTTP endpoint, a drop-in for flytekit's ``WebhookTask``/``WebhookConnector``.

Task type ``webhook`` v0, sync. The task template's ``custom`` has flytekit's fields: ``url``, ``method``,
``headers``, ``data``, ``show_data``, ``show_url``, ``timeout_sec``. Strings in ``url``, ``headers`` and ``data`` may
hold ``{inputs.NAME}`` (the task's inputs, as flytekit renders them) and ``{secrets.NAME}`` (a secret from the server's
secret source, see ``flyteconnect.secrets.get_secret``; a NAME that is a path is refused, INVALID_ARGUMENT). A string
that is exactly one placeholder takes the value itself (so ``{"n": "{inputs.n}"}`` sends a number), as in flytekit.

The output ``info`` is flytekit's dict (``status_code``, ``response_data``, and ``input_data``/``url`` when
``show_data``/``show_url``) plus ``response_headers``. Secret values never appear in outputs or messages: shown data
and URLs keep ``***`` where a secret was, and any secret value echoed by the endpoint is replaced by ``***``.

Improvements on flytekit: any 2xx succeeds (flytekit requires exactly 200); connection errors and 5xx are retried
with exponential backoff (``retries``, default 2; ``retry_backoff_sec``, default 0.2); PUT, PATCH and DELETE are
accepted besides GET and POST; 5xx after the retries is RETRYABLE_FAILED, unreachable endpoints a TransientError.

Every request goes through ``flyteconnect.egress.http_client``: a URL whose host is, or resolves to, an address the
egress policy refuses (loopback, private networks, cloud metadata...) is never contacted; the task fails (FAILED,
not retried) with a message naming the policy and the host. Redirects are not followed (a 3xx is the answer). httpx
loads on the first request, not when the connector is discovered.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from flyteidl.core import literals_pb2

from flyteconnect.connector import Phase, Resource, SyncConnectorBase
from flyteconnect.connectors._common import PerLoop, dict_literal, literal_values
from flyteconnect.errors import ConnectorError, InvalidRequest, TransientError
from flyteconnect.models import LiteralMap, TaskTemplate
from flyteconnect.secrets import get_secret

if TYPE_CHECKING:
    import httpx

__all__ = ["TASK_TYPE", "WebhookConnector"]

log = logging.getLogger(__name__)

TASK_TYPE = "webhook"
REDACTED = "***"
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_MAX_MESSAGE = 1000  # response text quoted in a failure message is cut here: messages travel in every status


class _TemplateError(ValueError):
    """A placeholder that names nothing, or a value that cannot be sent."""


class _Renderer:
    """Fills ``{inputs.x}`` and ``{secrets.x}`` placeholders; remembers which secret values it used."""

    def __init__(self, inputs: Mapping[str, Any], secret: Callable[[str], str]) -> None:
        self._inputs = inputs
        self._secret = secret
        self.secrets_used: list[str] = []

    def lookup(self, name: str) -> Any:
        head, _, rest = name.strip().partition(".")
        if head == "secrets" and rest:
            secret = self._secret(rest)
            self.secrets_used.append(secret)
            return secret
        if head == "inputs" and rest:
            value: Any = self._inputs
            for key in rest.split("."):
                if not isinstance(value, Mapping) or key not in value:
                    raise _TemplateError(f"placeholder {{{name}}}: no input {rest!r}")
                value = value[key]
            return value
        raise _TemplateError(f"placeholder {{{name}}}: only {{inputs.NAME}} and {{secrets.NAME}} are known")

    def render(self, value: Any) -> Any:
        """Fill placeholders in strings anywhere inside ``value`` (dicts and lists are walked, never mutated)."""
        if isinstance(value, str):
            matches = _PLACEHOLDER.findall(value)
            # Only dotted names are placeholders (flytekit leaves "{x}" alone, so JSON-ish text passes through).
            matches = [m for m in matches if "." in m]
            if not matches:
                return value
            if len(matches) == 1 and value == f"{{{matches[0]}}}":
                return self.lookup(matches[0])
            return _PLACEHOLDER.sub(lambda m: str(self.lookup(m.group(1))) if "." in m.group(1) else m.group(0), value)
        if isinstance(value, Mapping):
            return {k: self.render(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v) for v in value]
        return value


def _redact(text: str, secrets: list[str]) -> str:
    for value in sorted(set(secrets), key=len, reverse=True):
        if value:
            text = text.replace(value, REDACTED)
    return text


def _redact_any(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return _redact(value, secrets)
    if isinstance(value, dict):
        return {k: _redact_any(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_any(v, secrets) for v in value]
    return value


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


class WebhookConnector(SyncConnectorBase):
    """Sends one HTTP request per task and returns the response as the ``info`` output.

    ``verify`` is httpx's TLS setting (True, False, or a CA bundle path); it is on by default. One
    ``httpx.AsyncClient`` (``egress.http_client``) per event loop is created on first use and reused; ``aclose()``
    closes it.
    """

    name: ClassVar[str] = "Webhook Connector"
    task_type_name = TASK_TYPE

    def __init__(self, verify: bool | str = True, max_connections: int = 100) -> None:
        super().__init__()

        async def make() -> httpx.AsyncClient:
            import httpx  # on first use: discovering the connector must not load it

            from flyteconnect.egress import http_client

            limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=min(20, max_connections))
            return http_client(verify=verify, limits=limits, follow_redirects=False)

        async def close(client: httpx.AsyncClient) -> None:
            await client.aclose()

        self._clients: PerLoop[httpx.AsyncClient] = PerLoop(make, close)

    async def aclose(self) -> None:
        """Close the HTTP client of the running event loop."""
        await self._clients.aclose()

    async def do(
        self, task_template: TaskTemplate, output_prefix: str, inputs: LiteralMap | None = None, **kwargs: Any
    ) -> Resource:
        """Render the request from the template and inputs, send it, and report the response."""
        custom = task_template.custom
        used: list[str] = []
        try:
            values = literal_values(inputs)
            send = _Renderer(values, get_secret)
            url = send.render(custom.get("url"))
            headers = send.render(custom.get("headers") or {})
            data = send.render(custom.get("data") or {})
            used = send.secrets_used
            show = _Renderer(values, lambda _name: REDACTED)
            request = _Request.build(custom, url, headers, data)
        except InvalidRequest:  # a {secrets.KEY} whose key is a path, not a name: the caller's error
            raise
        except ConnectorError as e:  # a missing secret: its message names the key, never a value
            return Resource(phase=Phase.FAILED, message=f"Webhook not sent: {e}")
        except (_TemplateError, ValueError, TypeError) as e:
            return Resource(phase=Phase.FAILED, message=_redact(f"Webhook not sent: {e}", used))

        from flyteconnect.egress import EgressDenied

        try:
            response = await self._send(request, used)
        except EgressDenied as e:  # terminal, not retried: the answer would not change (a secret may be the host)
            return Resource(phase=Phase.FAILED, message=_redact(f"Webhook not sent: {e}", used))
        text = _redact(response.text, used)
        status = response.status_code
        if not 200 <= status < 300:
            phase = Phase.RETRYABLE_FAILED if status >= 500 else Phase.FAILED
            return Resource(phase=phase, message=f"Webhook failed with status code {status}, response: {_short(text)}")
        info: dict[str, Any] = {
            "status_code": status,
            "response_data": text,
            "response_headers": _redact_any(dict(response.headers), used),
        }
        if custom.get("show_data", False):
            info["input_data"] = show.render(custom.get("data") or {})
        if custom.get("show_url", False):
            info["url"] = show.render(custom.get("url"))
        return Resource(
            phase=Phase.SUCCEEDED,
            outputs=literals_pb2.LiteralMap(literals={"info": dict_literal(info)}),
            message="Webhook was successfully invoked!",
        )

    async def _send(self, request: _Request, secrets: list[str]) -> httpx.Response:
        client = await self._clients.get()
        import httpx  # loaded with the client above: a dictionary lookup from here on

        attempt = 0
        while True:
            try:
                response = await client.request(
                    request.method,
                    request.url,
                    headers=request.headers,
                    params=request.params,
                    json=request.json,
                    timeout=request.timeout,
                )
            except httpx.TransportError as e:
                # A request that never left (connect failures) is always safe to repeat; one that may have reached
                # the endpoint is repeated only for GET.
                unsent = isinstance(e, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
                if attempt < request.retries and (unsent or request.method == "GET"):
                    attempt += 1
                    await asyncio.sleep(request.backoff * 2 ** (attempt - 1))
                    continue
                message = _redact(
                    f"Webhook {request.method} {request.shown_url} failed: {type(e).__name__}: {e}", secrets
                )
                log.info("%s", message)
                raise TransientError(_short(message)) from None
            except httpx.HTTPError as e:  # bad URL and the like: retrying cannot help
                raise ConnectorError(_redact(f"Webhook request invalid: {type(e).__name__}: {e}", secrets)) from None
            if response.status_code >= 500 and attempt < request.retries:
                attempt += 1
                await asyncio.sleep(request.backoff * 2 ** (attempt - 1))
                continue
            return response


class _Request:
    """A rendered, validated request."""

    __slots__ = ("backoff", "headers", "json", "method", "params", "retries", "shown_url", "timeout", "url")

    def __init__(self) -> None:
        self.method = "POST"
        self.url = ""
        self.shown_url = ""
        self.headers: dict[str, str] = {}
        self.params: Any = None
        self.json: Any = None
        self.timeout = 10.0
        self.retries = 2
        self.backoff = 0.2

    @classmethod
    def build(cls, custom: Mapping[str, Any], url: Any, headers: Any, data: Any) -> _Request:
        """Validate the rendered parts; ``ValueError`` says which one is wrong."""
        self = cls()
        self.method = str(custom.get("method") or "POST").upper()
        if self.method not in _METHODS:
            raise ValueError(f"method must be one of {', '.join(sorted(_METHODS))}, got {self.method!r}")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"url must be an http:// or https:// URL, got {type(url).__name__}")
        self.url = url
        self.shown_url = url.partition("?")[0]  # messages never quote the query: it may carry a token
        if not isinstance(headers, Mapping):
            raise ValueError("headers must be a mapping of names to values")
        self.headers = {str(k): str(v) for k, v in headers.items()}
        # flytekit: GET sends data as query parameters, every other method as a JSON body.
        if self.method == "GET":
            if not isinstance(data, Mapping):
                raise ValueError("data of a GET webhook must be a mapping (it becomes the query parameters)")
            self.params = {k: _param(v) for k, v in data.items()} or None
        else:
            self.json = data
        self.timeout = _positive(custom, "timeout_sec", 10.0)
        self.retries = int(_positive(custom, "retries", 2, allow_zero=True))
        self.backoff = _positive(custom, "retry_backoff_sec", 0.2, allow_zero=True)
        return self


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the Struct made every number a float: send 3, not 3.0
    if isinstance(value, (str, int, float)) or value is None:
        return value
    raise ValueError(f"query parameter values must be strings or numbers, got {type(value).__name__}")


def _positive(custom: Mapping[str, Any], key: str, default: float, allow_zero: bool = False) -> float:
    value = custom.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{key} must be a {'non-negative' if allow_zero else 'positive'} number, got {value!r}")
    return float(value)
