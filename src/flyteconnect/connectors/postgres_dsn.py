"""Connection strings a caller brings to the PostgreSQL connector, and the rule they must pass.

The operator's connection strings (the server's secrets: ``dsn_secret``, ``postgres_dsn``) are trusted as they are.
A connection string from the caller, the template's ``custom.dsn`` or a Flyte 2 request's own ``postgres_dsn``
connection secret, is not: libpq would connect it to a database on the server's loopback that trusts local
connections, to internal hosts, to a Unix socket, read the server's files (``sslkey``, ``passfile``, ``service``...)
and fill in what it leaves out from the server's ``PG*`` environment (``PGPASSWORD`` included).

So a caller's DSN is refused unless the operator allows them (``flyteconnect serve --postgres-allow-caller-dsn`` or
``FLYTECONNECT_POSTGRES_ALLOW_CALLER_DSN=1``), and even then ``checked_conninfo`` admits it only when:

- it parses (psycopg's parser; the parser's message is not repeated, it can quote the password) and sets only the
  keys in ``CALLER_KEYS``;
- it names a user and every host is a TCP host (no Unix socket directory, no abstract socket, no empty host);
- every host, and every address it resolves to, passes the egress policy (``flyteconnect.egress``), as does every
  ``hostaddr`` it gives; the connection is pinned to the checked addresses (``hostaddr``), so the name cannot
  resolve elsewhere when libpq connects;

and it connects with every file and credential option set to nothing (``FORCED``: no client certificate or key, no
password file, no CRL, no GSSAPI, only password or no authentication) and with each libpq option the server's
environment sets replaced by libpq's built-in default. A refusal is ``DsnRefused`` (INVALID_ARGUMENT), naming the
key or host and never the password.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from typing import TYPE_CHECKING

from flyteconnect import redaction
from flyteconnect.errors import InvalidRequest, TransientError

if TYPE_CHECKING:
    from flyteconnect.egress import EgressPolicy

__all__ = [
    "CALLER_KEYS",
    "ENV_ALLOW",
    "FORCED",
    "DsnRefused",
    "allow_caller_dsn",
    "caller_dsn_allowed",
    "checked_conninfo",
]

ENV_ALLOW = "FLYTECONNECT_POSTGRES_ALLOW_CALLER_DSN"
"""``1`` (or ``true``, ``yes``) lets tasks bring their own connection strings."""

POLICY = "the server's PostgreSQL connection policy"

CALLER_KEYS = frozenset(
    {
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "application_name",
        "connect_timeout",
        "sslmode",
        "sslrootcert",  # "system" only: the system's CA roots
        "channel_binding",
        "target_session_attrs",
        "load_balance_hosts",
    }
)
"""Keys a caller's DSN may set: where to connect, as whom, how strictly TLS is checked; nothing naming a file."""

_SSLMODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
_NOWHERE = "/dev/null/none"
"""A path that cannot exist (``/dev/null`` is not a directory): libpq treats it as an absent file, silently."""

FORCED = {
    "passfile": _NOWHERE,
    "sslcert": _NOWHERE,
    "sslkey": _NOWHERE,
    "sslcrl": _NOWHERE,
    "sslcrldir": _NOWHERE,
    "sslcertmode": "disable",
    "gssencmode": "disable",
    "gssdelegation": "0",
    "require_auth": "password,md5,scram-sha-256,none",
}
"""Set on every caller's connection: no server file is read, no server credential (certificate, Kerberos) used."""

_TRUE = frozenset({"1", "true", "yes", "on"})
_allowed: bool | None = None


class DsnRefused(InvalidRequest):
    """A caller's connection string the server will not connect (INVALID_ARGUMENT); never quotes the password."""


def allow_caller_dsn(allowed: bool | None) -> None:
    """Allow (or refuse) callers' DSNs in this process; None follows ``FLYTECONNECT_POSTGRES_ALLOW_CALLER_DSN``."""
    global _allowed
    _allowed = allowed


def caller_dsn_allowed() -> bool:
    """Whether this server connects DSNs that callers bring (``allow_caller_dsn``, else the environment)."""
    if _allowed is not None:
        return _allowed
    return os.environ.get(ENV_ALLOW, "").strip().lower() in _TRUE


def _parse(dsn: str) -> dict[str, str]:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        parsed = conninfo_to_dict(dsn)
    except psycopg.Error:
        raise DsnRefused("the task's connection string does not parse (libpq's key=value or URI syntax)") from None
    return {k: str(v) for k, v in parsed.items() if v is not None}


def _check_keys(params: dict[str, str]) -> None:
    refused = sorted(k for k in params if k not in CALLER_KEYS)
    if refused:
        raise DsnRefused(
            f"{POLICY} refuses {', '.join(refused)} in a task's connection string: a task may set only "
            f"{', '.join(sorted(CALLER_KEYS))}"
        )
    mode = params.get("sslmode")
    if mode is not None and mode not in _SSLMODES:
        raise DsnRefused(f"sslmode must be one of {', '.join(sorted(_SSLMODES))}")
    if mode == "verify-ca":
        raise DsnRefused("sslmode=verify-ca needs a CA file, which a task may not name: use verify-full")
    if "sslrootcert" in params:
        if params["sslrootcert"] != "system":
            raise DsnRefused(f"{POLICY} allows only sslrootcert=system (the system's CA roots), never a file")
        if mode not in (None, "verify-full"):
            raise DsnRefused("sslrootcert=system needs sslmode=verify-full")
    if not params.get("user"):
        raise DsnRefused("the task's connection string must name a user")
    if not params.get("host"):
        raise DsnRefused("the task's connection string must name a host (Unix sockets are not reachable)")


def _split(params: dict[str, str], key: str, count: int) -> list[str]:
    values = params.get(key, "").split(",") if params.get(key) else [""]
    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise DsnRefused(f"the task's connection string gives {len(values)} {key} values for {count} hosts")
    return values


def _port(text: str) -> int:
    if not text:
        return 5432
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise DsnRefused(f"port {text[:16]!r} is not a TCP port")
    return int(text)


async def _addresses(policy: EgressPolicy, host: str, hostaddr: str, port: int, timeout: float) -> list[str]:
    """The checked addresses to connect to for one host of the DSN."""
    from flyteconnect.egress import EgressDenied

    if host.startswith(("/", "@")) or "\\" in host:
        raise DsnRefused(f"{POLICY} refuses Unix sockets: a task's connection string must name TCP hosts")
    if hostaddr:
        try:
            address = ipaddress.ip_address(hostaddr)
        except ValueError:
            raise DsnRefused(f"hostaddr {hostaddr[:64]!r} is not an IP address") from None
        reason = policy.refusal(address)
        if reason is not None:
            raise EgressDenied(hostaddr, reason)
        return [str(address)]
    found = await policy.resolve(host, port, timeout)
    if found != [host] or not policy.allows_host(host):
        return found
    # A host name the operator allowed: trusted whatever it resolves to, still pinned to what it resolves to now.
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
    except (OSError, asyncio.TimeoutError) as e:
        raise TransientError(f"cannot resolve {host}: {type(e).__name__}: {e}") from None
    return list(dict.fromkeys(str(info[4][0]).partition("%")[0] for info in infos))


def _environment_defaults() -> dict[str, str]:
    """Each libpq option the server's environment sets (``PGHOST``, ``PGSSLMODE``...), at libpq's built-in default."""
    from psycopg import pq

    replaced: dict[str, str] = {}
    for option in pq.Conninfo.get_defaults():
        envvar = option.envvar.decode() if option.envvar else None
        if envvar and envvar in os.environ:
            replaced[option.keyword.decode()] = option.compiled.decode() if option.compiled is not None else ""
    return replaced


async def checked_conninfo(dsn: str, policy: EgressPolicy | None = None, timeout: float = 10.0) -> dict[str, str]:
    """The connection parameters for a caller's ``dsn`` after the rule above; ``DsnRefused`` or ``EgressDenied``."""
    from flyteconnect.egress import current_policy

    params = _parse(dsn)
    if params.get("password"):
        redaction.remember_connection([params["password"]])  # masked wherever a message would repeat it
    _check_keys(params)
    if "PGSERVICE" in os.environ:
        raise DsnRefused(
            "this server's environment sets PGSERVICE, which libpq would apply to a task's connection string: "
            "the operator must unset it to accept them"
        )
    policy = policy or current_policy()
    hosts = params["host"].split(",")
    hostaddrs = _split(params, "hostaddr", len(hosts))
    ports = _split(params, "port", len(hosts))
    pinned_hosts: list[str] = []
    pinned_addresses: list[str] = []
    pinned_ports: list[str] = []
    for host, hostaddr, port_text in zip(hosts, hostaddrs, ports, strict=True):
        if not host:
            raise DsnRefused("the task's connection string has an empty host (Unix sockets are not reachable)")
        port = _port(port_text)
        for address in await _addresses(policy, host, hostaddr, port, timeout):
            pinned_hosts.append(host)
            pinned_addresses.append(address)
            pinned_ports.append(str(port))
    checked = {**_environment_defaults(), **params, **FORCED}
    checked.update(host=",".join(pinned_hosts), hostaddr=",".join(pinned_addresses), port=",".join(pinned_ports))
    checked.setdefault("dbname", checked["user"])
    # verify-full checks the certificate against the system's CA roots; other modes read no CA file at all.
    verify = params.get("sslmode") == "verify-full" or params.get("sslrootcert") == "system"
    if verify:
        checked.update(sslrootcert="system", sslmode="verify-full")
    else:
        checked["sslrootcert"] = _NOWHERE
    return checked
