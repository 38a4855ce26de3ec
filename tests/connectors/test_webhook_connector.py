"""The Webhook connector against a real HTTP server on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import pytest
from connector_helpers import free_port, make_inputs, make_template

from flyteconnect.connector import Phase, Resource
from flyteconnect.connectors.webhook import WebhookConnector
from flyteconnect.errors import TransientError
from flyteconnect.registry import ConnectorRegistry, discover_connectors
from flyteconnect.secrets import request_secrets

# The test server listens on loopback, which the default egress policy refuses (see test_webhook_egress.py).
pytestmark = pytest.mark.usefixtures("allow_loopback_egress")


@pytest.fixture
async def webhook() -> AsyncIterator[WebhookConnector]:
    connector = WebhookConnector()
    yield connector
    await connector.aclose()


def info_of(resource: Resource) -> dict[str, Any]:
    """The ``info`` output decoded as flytekit would (a msgpack Binary)."""
    lit = resource.outputs.literals["info"]
    assert lit.scalar.binary.tag == "msgpack"
    return msgpack.unpackb(lit.scalar.binary.value)  # type: ignore[no-any-return]


def flytekit_custom(url: str, **overrides: Any) -> dict[str, Any]:
    """``custom`` exactly as flytekit's WebhookTask.get_custom serializes it (every key present)."""
    custom = {
        "url": url,
        "method": "POST",
        "headers": {},
        "data": {},
        "show_data": False,
        "show_url": False,
        "timeout_sec": 10,
    }
    custom.update(overrides)
    return custom


async def test_post_with_dynamic_inputs_like_flytekit(webhook: WebhookConnector, http_server: Any) -> None:
    custom = flytekit_custom(
        http_server.url + "/echo/{inputs.item_id}",
        headers={"Content-Type": "application/json", "X-Name": "{inputs.s}"},
        data={"text": "hello {inputs.s}", "n": "{inputs.item_id}", "nested": ["{inputs.s}"]},
        show_data=True,
        show_url=True,
    )
    resource = await webhook.do(make_template("webhook", custom), "/tmp/out", make_inputs(s="world", item_id=10))
    assert resource.phase == Phase.SUCCEEDED, resource.message
    assert resource.message == "Webhook was successfully invoked!"
    info = info_of(resource)
    echoed = json.loads(info["response_data"])
    assert echoed["method"] == "POST"
    assert echoed["path"] == "/echo/10"
    assert echoed["headers"]["x-name"] == "world"
    # A whole-string placeholder keeps the input's type (10, not "10"), as flytekit's format_dict does.
    assert echoed["json"] == {"text": "hello world", "n": 10, "nested": ["world"]}
    assert info["status_code"] == 200
    assert info["url"] == http_server.url + "/echo/10"
    assert info["input_data"] == {"text": "hello world", "n": 10, "nested": ["world"]}
    assert info["response_headers"]["content-type"] == "application/json"


async def test_get_sends_data_as_query_parameters(webhook: WebhookConnector, http_server: Any) -> None:
    custom = flytekit_custom(http_server.url + "/echo", method="GET", data={"q": "{inputs.s}", "page": 2})
    resource = await webhook.do(make_template("webhook", custom), "/tmp/out", make_inputs(s="cats"))
    assert resource.phase == Phase.SUCCEEDED, resource.message
    echoed = json.loads(info_of(resource)["response_data"])
    assert echoed["method"] == "GET"
    assert echoed["query"] == {"q": "cats", "page": "2"}
    assert "url" not in info_of(resource) and "input_data" not in info_of(resource)  # show_* default off


async def test_any_2xx_succeeds_and_headers_are_returned(webhook: WebhookConnector, http_server: Any) -> None:
    resource = await webhook.do(make_template("webhook", flytekit_custom(http_server.url + "/created")), "/o")
    assert resource.phase == Phase.SUCCEEDED
    info = info_of(resource)
    assert info["status_code"] == 201
    assert json.loads(info["response_data"]) == {"id": 7}
    assert info["response_headers"]["x-request-id"] == "abc123"


async def test_4xx_fails_with_the_response_message(webhook: WebhookConnector, http_server: Any) -> None:
    before = len(http_server.requests)
    resource = await webhook.do(make_template("webhook", flytekit_custom(http_server.url + "/status/404")), "/o")
    assert resource.phase == Phase.FAILED
    assert resource.message == "Webhook failed with status code 404, response: status 404"
    assert len(http_server.requests) == before + 1  # a client error is not retried


async def test_5xx_is_retried_with_backoff_then_succeeds(webhook: WebhookConnector, http_server: Any) -> None:
    custom = flytekit_custom(http_server.url + "/flaky/a/2", retries=2, retry_backoff_sec=0.01)
    resource = await webhook.do(make_template("webhook", custom), "/o")
    assert resource.phase == Phase.SUCCEEDED, resource.message
    assert info_of(resource)["response_data"] == "ok after 2"
    assert http_server.counters["a"] == 3


async def test_5xx_after_all_retries_is_retryable_failure(webhook: WebhookConnector, http_server: Any) -> None:
    custom = flytekit_custom(http_server.url + "/flaky/b/5", retries=1, retry_backoff_sec=0.01)
    resource = await webhook.do(make_template("webhook", custom), "/o")
    assert resource.phase == Phase.RETRYABLE_FAILED
    assert "503" in (resource.message or "") and "try later" in (resource.message or "")
    assert http_server.counters["b"] == 2


async def test_unreachable_endpoint_is_transient_after_retries(webhook: WebhookConnector) -> None:
    url = f"http://127.0.0.1:{free_port()}/nothing?token=abc"
    custom = flytekit_custom(url, retries=1, retry_backoff_sec=0.01, timeout_sec=2)
    with pytest.raises(TransientError) as err:
        await webhook.do(make_template("webhook", custom), "/o")
    assert "ConnectError" in str(err.value)
    assert "token=abc" not in str(err.value)  # the query string is never quoted


async def test_secrets_are_sent_but_never_shown(webhook: WebhookConnector, http_server: Any) -> None:
    custom = flytekit_custom(
        http_server.url + "/echo?key={secrets.api_key}",
        headers={"Authorization": "Bearer {secrets.api_key}"},
        data={"token": "{secrets.api_key}", "user": "{inputs.user}"},
        show_data=True,
        show_url=True,
    )
    with request_secrets({"api_key": "s3cr3t-value"}):
        resource = await webhook.do(make_template("webhook", custom), "/o", make_inputs(user="ann"))
    assert resource.phase == Phase.SUCCEEDED, resource.message
    received = http_server.requests[-1]
    assert received["headers"]["authorization"] == "Bearer s3cr3t-value"
    assert received["query"] == {"key": "s3cr3t-value"}
    assert received["json"] == {"token": "s3cr3t-value", "user": "ann"}
    info = info_of(resource)
    assert info["url"] == http_server.url + "/echo?key=***"
    assert info["input_data"] == {"token": "***", "user": "ann"}
    # The echo server sends the secret back: the connector masks it in the outputs too.
    assert "s3cr3t-value" not in json.dumps(info)
    assert '"authorization": "Bearer ***"' in info["response_data"]


async def test_missing_secret_fails_naming_the_key(webhook: WebhookConnector, http_server: Any) -> None:
    custom = flytekit_custom(http_server.url + "/echo", headers={"Authorization": "{secrets.not_there_xyz}"})
    resource = await webhook.do(make_template("webhook", custom), "/o")
    assert resource.phase == Phase.FAILED
    assert "not_there_xyz" in (resource.message or "")


@pytest.mark.parametrize(
    ("custom", "expected"),
    [
        ({"url": "{inputs.missing}"}, "no input 'missing'"),
        ({"url": "ftp://x"}, "http:// or https://"),
        ({"url": "http://x", "method": "TRACE"}, "method must be one of"),
        ({"url": "http://x", "timeout_sec": -1}, "timeout_sec must be a positive number"),
        ({"url": "http://x", "method": "GET", "data": {"a": {"b": 1}}}, "query parameter values"),
        ({"url": "http://x/{env.HOME}"}, "only {inputs.NAME} and {secrets.NAME}"),
    ],
)
async def test_bad_templates_fail_clearly(webhook: WebhookConnector, custom: dict[str, Any], expected: str) -> None:
    resource = await webhook.do(make_template("webhook", custom), "/o")
    assert resource.phase == Phase.FAILED
    assert expected in (resource.message or "")


async def test_one_client_per_event_loop(webhook: WebhookConnector, http_server: Any) -> None:
    template = make_template("webhook", flytekit_custom(http_server.url + "/echo"))
    await webhook.do(template, "/o")
    first = await webhook._clients.get()
    await webhook.do(template, "/o")
    assert await webhook._clients.get() is first


async def test_registered_through_the_entry_point(http_server: Any) -> None:
    found = discover_connectors()
    assert not found.failures
    registry = ConnectorRegistry(found.connectors)
    connector = registry.get_connector("webhook")
    assert isinstance(connector, WebhookConnector)
    assert connector.is_sync and found.sources["webhook_v0"].startswith("webhook = flyteconnect.connectors.webhook")
    try:
        resource = await connector.do(make_template("webhook", flytekit_custom(http_server.url + "/echo")), "/o")
        assert resource.phase == Phase.SUCCEEDED
    finally:
        await connector.aclose()
        for other in found.connectors:
            if other is not connector and hasattr(other, "aclose"):
                await other.aclose()
