"""Helpers shared by the built-in connectors: per-event-loop clients, literal rendering, storage settings, and
keeping the server's endpoints out of the error text callers see."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from flyteidl.core import literals_pb2

from flyteconnect.loops import on_loop_close
from flyteconnect.protostruct import struct_to_dict

__all__ = [
    "PerLoop",
    "caller_text",
    "dict_literal",
    "literal_value",
    "literal_values",
    "scrub_endpoints",
    "storage_options",
]

C = TypeVar("C")


class PerLoop(Generic[C]):
    """One client per running event loop, made on first use.

    Async clients (httpx, psycopg pools) belong to the loop they were created on. A server runs one loop, so this
    holds exactly one client; tests and local runs may start several loops, and each gets its own client instead of
    one bound to a loop that has since closed. Clients of loops that were garbage-collected are simply dropped.
    """

    def __init__(self, factory: Callable[[], Awaitable[C]], closer: Callable[[C], Awaitable[None]]) -> None:
        self._factory = factory
        self._closer = closer
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, C] = weakref.WeakKeyDictionary()
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()

    async def get(self) -> C:
        """The client of the running loop, created once."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is not None:
            return client
        lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:  # two first requests at once must not build two pools
            client = self._clients.get(loop)
            if client is None:
                client = await self._factory()
                self._clients[loop] = client
                on_loop_close(self.aclose)  # closed on this loop by whoever owns it (server, local runner)
            return client

    async def aclose(self) -> None:
        """Close the running loop's client (the others belong to loops we cannot await on)."""
        loop = asyncio.get_running_loop()
        client = self._clients.pop(loop, None)
        if client is not None:
            await self._closer(client)


def literal_value(lit: literals_pb2.Literal) -> Any:
    """A literal as a plain value for templating, the way flytekit's ``literal_string_repr`` shows it.

    Primitives become their Python value (datetimes ISO text, durations seconds), files and datasets their URI,
    collections lists and maps dicts, msgpack binaries their JSON text.
    """
    kind = lit.WhichOneof("value")
    if kind == "collection":
        return [literal_value(v) for v in lit.collection.literals]
    if kind == "map":
        return {k: literal_value(v) for k, v in lit.map.literals.items()}
    if kind != "scalar":
        raise ValueError(f"cannot use a {kind or 'empty'} literal in a template")
    scalar = lit.scalar
    skind = scalar.WhichOneof("value")
    if skind == "primitive":
        p = scalar.primitive
        pkind = p.WhichOneof("value")
        if pkind == "datetime":
            return p.datetime.ToDatetime().isoformat()
        if pkind == "duration":
            return p.duration.ToTimedelta().total_seconds()
        return getattr(p, pkind) if pkind else None
    if skind == "none_type":
        return None
    if skind == "error":
        return scalar.error.message
    if skind in ("structured_dataset", "schema", "blob"):
        return getattr(scalar, skind).uri
    if skind == "binary":
        if scalar.binary.tag == "msgpack":
            import msgpack  # with the first such literal: the server itself loads it only with the literal engine

            return json.dumps(msgpack.unpackb(scalar.binary.value))
        return base64.b64encode(scalar.binary.value).decode()
    if skind == "generic":
        return struct_to_dict(scalar.generic)
    if skind == "union":
        return literal_value(scalar.union.value)
    raise ValueError(f"cannot use a {skind or 'empty'} scalar in a template")


def literal_values(inputs: Any) -> dict[str, Any]:
    """``literal_value`` of every input (a LiteralMap view, a LiteralMap proto, or None)."""
    if inputs is None:
        return {}
    literals = inputs.literals
    return {name: literal_value(lit) for name, lit in literals.items()}


def dict_literal(value: Any) -> literals_pb2.Literal:
    """A JSON-like value as flytekit encodes an untyped ``dict`` (and ``list[dict]`` item): msgpack in a Binary.

    Built directly because it is a single fixed encoding (the one ``flytekit.TypeEngine`` uses since 1.14); lists
    become a collection of such literals, as ``list[dict]`` does in flytekit.
    """
    if isinstance(value, list):
        return literals_pb2.Literal(
            collection=literals_pb2.LiteralCollection(literals=[dict_literal(v) for v in value])
        )
    import msgpack

    packed = msgpack.packb(value, use_bin_type=True)
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(binary=literals_pb2.Binary(value=packed, tag="msgpack")))


def storage_options(protocol: str) -> dict[str, Any]:
    """fsspec options from flytekit's (and AWS's) environment variables."""
    if protocol not in ("s3", "s3a"):
        return {}
    options: dict[str, Any] = {}
    endpoint = os.environ.get("FLYTE_AWS_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["client_kwargs"] = {"endpoint_url": endpoint}
    key, secret = os.environ.get("FLYTE_AWS_ACCESS_KEY_ID"), os.environ.get("FLYTE_AWS_SECRET_ACCESS_KEY")
    if key and secret:
        options["key"], options["secret"] = key, secret
    return options


ENDPOINT_VARIABLES = ("FLYTE_AWS_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "STORAGE_EMULATOR_HOST")
"""Where the server's storage endpoints are configured (S3-compatible stores, the GCS emulator)."""
_HTTP_URL = re.compile(r"\bhttps?://[^\s'\"<>()\[\]]+", re.IGNORECASE)


def scrub_endpoints(text: str, names: Iterable[str] = (), label: str = "<endpoint>") -> str:
    """``text`` (a storage or database library's error) without the server's endpoints, for a caller to read.

    HTTP(S) URLs (botocore's ``Could not connect to the endpoint URL: "http://..."``), the hosts and ``host:port`` of
    the storage endpoints configured in ``ENDPOINT_VARIABLES``, and ``names`` become ``label``. Paths the caller
    named are not URLs of the server's and stay, so the message still says what failed.
    """
    hosts = set(names)
    for variable in ENDPOINT_VARIABLES:
        value = os.environ.get(variable, "").strip()
        if value:
            parts = urlsplit(value if "://" in value else f"//{value}")
            hosts.update(h for h in (parts.netloc, parts.hostname) if h)
    text = _HTTP_URL.sub(label, text)
    for host in sorted(hosts, key=len, reverse=True):
        text = re.sub(rf"(?<![\w.-]){re.escape(host)}(?![\w-]|\.\w)", label, text)
    return text


def caller_text(text: str) -> str:
    """``text`` as the server's error details show it: no secret values, no server paths (``<home>``, ``<cwd>``...).

    For ``Resource.message`` of the built-ins, so a GetTask answer says what the CreateTask error said.
    """
    from flyteconnect.server.errors import for_callers  # on the first message: the entry point stays light

    return for_callers(text)
