"""The PostgreSQL connector: run one parameterised SQL statement and return its rows.

Task type ``postgres_query`` v0, sync. The statement is the template's ``sql.statement``; the task's inputs are bound
as parameters (``%(name)s`` placeholders, psycopg's syntax), never formatted into the text. The connection string
comes from the server's secret named by ``custom.dsn_secret`` (default ``postgres_dsn``): the operator's, trusted. A
connection string the caller brings (``custom.dsn``, or a Flyte 2 request's own ``postgres_dsn`` connection secret) is
refused unless the operator allows them, and then connected only as ``flyteconnect.connectors.postgres_dsn`` allows:
hosts through the egress policy, no server file, no server credential, nothing from the server's ``PG*`` environment.
Other ``custom`` keys, all optional:

- ``timeout_sec`` (default 60): the statement timeout, set for this statement's transaction only;
- ``max_inline_rows`` (default 1000): how many rows may be returned inline as a list of dicts;
- ``output_format`` (``parquet`` when pyarrow is installed, else ``csv``): the format of written results.

Outputs follow the task's declared interface: a StructuredDataset output gets the rows written under
``<output_prefix>/<output name>/`` (file ``00000`` for Parquet, ``.csv`` for CSV: the names flytekit's decoders read),
only where the server's output reach allows (``storage_reach.OutputReach``: the object stores by default, local
directories the operator names; checked before the statement runs);
a ``list[dict]`` (or any other) output gets the rows inline and FAILS if there are more than ``max_inline_rows``; an
output named ``rowcount`` gets the number of rows the statement returned or changed. A task that declares no outputs
gets ``results``: the rows inline when few, otherwise written as a StructuredDataset. The statement runs in a
transaction that commits on success, so INSERT/UPDATE/DELETE work too.

Errors: an error PostgreSQL reports about the statement (syntax, constraint, statement timeout...) is FAILED with
PostgreSQL's message and SQLSTATE; an unreachable server, a dropped connection, a serialization failure or a deadlock
is a ``TransientError`` (retry can help).

No async (create/get) variant: a running query belongs to the database session that started it, and a session cannot
be carried in resource_meta, so a poll on another replica (or after a restart) could not find it again. Long work
belongs in a procedure the database schedules itself (e.g. pg_cron) plus a sensor, or in a sync task with a longer
``timeout_sec`` and Propeller's sync timeout raised to match.

One ``psycopg_pool.AsyncConnectionPool`` per operator connection string (and event loop) is made on first use and
reused; ``aclose()`` closes them. A caller's connection string gets one connection per task, closed after it: a
caller choosing endless distinct strings must not make endless pools.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime
import importlib.util
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from flyteidl.core import literals_pb2, types_pb2

from flyteconnect.connector import Phase, Resource, SyncConnectorBase
from flyteconnect.connectors._common import PerLoop, caller_text, dict_literal, scrub_endpoints, storage_options
from flyteconnect.connectors.postgres_dsn import DsnRefused, caller_dsn_allowed, checked_conninfo
from flyteconnect.connectors.storage_reach import LOCAL, OutputReach, ReachDenied, current_output_reach
from flyteconnect.errors import InvalidRequest, TransientError
from flyteconnect.models import LiteralMap, TaskTemplate
from flyteconnect.secrets import SecretNotFound, get_secret, is_request_secret

if TYPE_CHECKING:  # psycopg, psycopg_pool and fsspec are imported on first use: loading the entry point stays light
    import decimal

    import psycopg
    from psycopg_pool import AsyncConnectionPool

    from flyteconnect.egress import EgressPolicy

__all__ = ["TASK_TYPE", "PostgresConnector"]

TASK_TYPE = "postgres_query"
DEFAULT_OUTPUT = "results"
_TRANSIENT_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "40001", "40P01"})
_TRANSIENT_CLASSES = ("08", "53")  # connection exceptions, insufficient resources


_JSON_OIDS = frozenset({114, 3802})  # json, jsonb: written to files as JSON text, whatever their shape


@dataclasses.dataclass(frozen=True)
class _Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    rowcount: int
    json_columns: frozenset[int]


class _TaskError(ValueError):
    """The task itself is wrong (no statement, bad settings, too many rows for its outputs): FAILED."""


_CALLER_DSN_HINT = (
    "this server connects only to the databases its operator configured (a dsn_secret it holds); the operator can "
    "allow connection strings from tasks with `flyteconnect serve --postgres-allow-caller-dsn`"
)


@dataclasses.dataclass(frozen=True)
class _Settings:
    statement: str
    dsn: str
    timeout_sec: float
    max_inline_rows: int
    output_format: str
    caller_dsn: bool
    """The connection string came from the caller (template or request), not from the server's secrets."""

    @classmethod
    def from_template(cls, template: TaskTemplate, allow_caller_dsn: bool) -> _Settings:
        sql = template.sql
        statement = sql.statement if sql is not None else ""
        if not statement.strip():
            raise _TaskError("the task has no sql.statement")
        custom = template.custom
        dsn = custom.get("dsn")
        if dsn:
            if not isinstance(dsn, str):
                raise DsnRefused("custom.dsn must be a string")
            if not allow_caller_dsn:
                raise DsnRefused(f"custom.dsn refused: {_CALLER_DSN_HINT}")
            caller = True
        else:
            key = str(custom.get("dsn_secret") or "postgres_dsn")
            dsn = get_secret(key)
            caller = is_request_secret(key)
            if caller and not allow_caller_dsn:
                raise DsnRefused(f"the request's own {key!r} connection secret refused: {_CALLER_DSN_HINT}")
        timeout = custom.get("timeout_sec", 60)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise _TaskError(f"timeout_sec must be a positive number, got {timeout!r}")
        max_rows = custom.get("max_inline_rows", 1000)
        if isinstance(max_rows, bool) or not isinstance(max_rows, (int, float)) or max_rows < 0:
            raise _TaskError(f"max_inline_rows must be a non-negative number, got {max_rows!r}")
        default_format = "parquet" if importlib.util.find_spec("pyarrow") else "csv"
        fmt = str(custom.get("output_format") or default_format).lower()
        if fmt not in ("parquet", "csv"):
            raise _TaskError(f"output_format must be 'parquet' or 'csv', got {fmt!r}")
        return cls(statement, str(dsn), float(timeout), int(max_rows), fmt, caller)


class PostgresConnector(SyncConnectorBase):
    """Runs the task's SQL statement on PostgreSQL and returns the rows (see the module documentation)."""

    name: ClassVar[str] = "PostgreSQL Connector"
    task_type_name = TASK_TYPE

    def __init__(
        self,
        max_connections: int = 10,
        connect_timeout_sec: float = 10.0,
        *,
        allow_caller_dsn: bool | None = None,
        egress_policy: EgressPolicy | None = None,
        output_reach: OutputReach | None = None,
    ) -> None:
        """``allow_caller_dsn``, ``egress_policy`` and ``output_reach`` default (None) to the server's settings."""
        super().__init__()
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout_sec
        self._pools: dict[str, PerLoop[AsyncConnectionPool]] = {}
        self._allow_caller_dsn = allow_caller_dsn
        self._egress_policy = egress_policy
        self._output_reach = output_reach

    async def aclose(self) -> None:
        """Close the connection pools of the running event loop."""
        for pools in list(self._pools.values()):
            await pools.aclose()

    def _pool(self, dsn: str) -> PerLoop[AsyncConnectionPool]:
        pools = self._pools.get(dsn)
        if pools is None:

            async def make() -> AsyncConnectionPool:
                from psycopg_pool import AsyncConnectionPool

                pool = AsyncConnectionPool(
                    dsn,
                    min_size=1,
                    max_size=self._max_connections,
                    timeout=self._connect_timeout,
                    kwargs={"connect_timeout": max(1, int(self._connect_timeout))},
                    open=False,
                )
                await pool.open(wait=False)
                return pool

            async def close(pool: AsyncConnectionPool) -> None:
                await pool.close()

            pools = self._pools.setdefault(dsn, PerLoop(make, close))
        return pools

    async def do(
        self, task_template: TaskTemplate, output_prefix: str, inputs: LiteralMap | None = None, **kwargs: Any
    ) -> Resource:
        """Run the statement and return its rows as the declared outputs."""
        import psycopg

        allow = caller_dsn_allowed() if self._allow_caller_dsn is None else self._allow_caller_dsn
        reach = self._output_reach or current_output_reach()
        try:
            settings = _Settings.from_template(task_template, allow)
            for name, var in task_template.interface.outputs.items():  # refused before the statement runs
                if var.type.HasField("structured_dataset_type"):
                    _output_target(reach, output_prefix, name)
            conninfo = None
            if settings.caller_dsn:
                conninfo = await checked_conninfo(settings.dsn, self._egress_policy, self._connect_timeout)
            params = inputs.to_python() if inputs is not None and inputs.literals else None
            result = await self._run(settings, params, conninfo)
            outputs = await _outputs(task_template, settings, output_prefix, result, reach)
        except (_TaskError, SecretNotFound) as e:
            return Resource(phase=Phase.FAILED, message=caller_text(f"PostgreSQL task failed: {e}"))
        except psycopg.Error as e:
            # The operator's database is the server's business: its address stays out of what the caller sees.
            text = _pg_message(e) if settings.caller_dsn else _without_hosts(_pg_message(e), settings.dsn)
            sqlstate = getattr(e, "sqlstate", None)
            if sqlstate is None or sqlstate in _TRANSIENT_SQLSTATES or sqlstate.startswith(_TRANSIENT_CLASSES):
                raise TransientError(f"PostgreSQL unavailable: {text}") from None
            return Resource(phase=Phase.FAILED, message=caller_text(f"PostgreSQL error: {text}"))
        return Resource(
            phase=Phase.SUCCEEDED,
            outputs=literals_pb2.LiteralMap(literals=outputs),
            message=f"{result.rowcount} row(s)",
        )

    async def _run(
        self, settings: _Settings, params: Mapping[str, Any] | None, conninfo: dict[str, str] | None
    ) -> _Result:
        import psycopg
        from psycopg.conninfo import make_conninfo
        from psycopg_pool import PoolTimeout

        if conninfo is not None:  # a caller's database: one checked connection for this task, closed after it
            timeout = max(1, int(min(self._connect_timeout, float(conninfo.get("connect_timeout") or "inf"))))
            checked = make_conninfo("", **{**conninfo, "connect_timeout": str(timeout)})
            async with await psycopg.AsyncConnection.connect(checked) as conn:
                return await _execute(conn, settings, params)
        pool = await self._pool(settings.dsn).get()
        try:
            async with pool.connection() as conn:
                return await _execute(conn, settings, params)
        except PoolTimeout:
            # The pool only says it waited; one direct attempt gives PostgreSQL's (or the network's) reason.
            reason = _without_hosts(await _connect_error(settings.dsn), settings.dsn)
            raise TransientError(
                f"PostgreSQL unavailable: no connection within {self._connect_timeout:g}s{reason}"
            ) from None


async def _execute(
    conn: psycopg.AsyncConnection[Any], settings: _Settings, params: Mapping[str, Any] | None
) -> _Result:
    async with conn.transaction(), conn.cursor() as cur:
        timeout_ms = str(max(1, int(settings.timeout_sec * 1000)))
        await cur.execute("SELECT set_config('statement_timeout', %s, true)", (timeout_ms,))
        await cur.execute(settings.statement.encode(), params)  # type: ignore[arg-type]
        if cur.description is None:  # INSERT/UPDATE/DDL: no rows, only a count
            return _Result([], [], max(cur.rowcount, 0), frozenset())
        columns = [c.name for c in cur.description]
        json_columns = frozenset(i for i, c in enumerate(cur.description) if c.type_code in _JSON_OIDS)
        rows = await cur.fetchall()
        return _Result(columns, rows, len(rows), json_columns)


async def _connect_error(dsn: str) -> str:
    import psycopg

    try:
        conn = await psycopg.AsyncConnection.connect(dsn, connect_timeout=2)
    except psycopg.Error as e:
        return f": {_pg_message(e)}"
    await conn.close()
    return " (the server accepts connections again)"


def _without_hosts(text: str, dsn: str) -> str:
    """``text`` with the hosts and addresses of the operator's ``dsn`` replaced by ``<database>``."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(dsn)
    except Exception:  # the pool already failed on it; the message must still not carry it
        return text
    names = {n for key in ("host", "hostaddr") for n in str(params.get(key) or "").split(",") if n}
    return scrub_endpoints(text, names, "<database>")


def _pg_message(e: psycopg.Error) -> str:
    diag = getattr(e, "diag", None)
    text = diag.message_primary if diag is not None else None
    if not text:
        lines = str(e).strip().splitlines()
        text = lines[0] if lines else type(e).__name__
    sqlstate = getattr(e, "sqlstate", None)
    return f"{text} (SQLSTATE {sqlstate})" if sqlstate else text


# ------------------------------------------------------------------------------------------------------------ outputs


def _output_target(reach: OutputReach, output_prefix: str, name: str) -> tuple[str, str]:
    """``(uri, path to write)`` of output ``name``, within the server's output reach; InvalidRequest otherwise."""
    uri = f"{output_prefix.rstrip('/')}/{name}"
    try:
        protocol, path = reach.check(uri)
    except ReachDenied as e:
        raise InvalidRequest(f"cannot write output {name!r} to {uri}: {e}") from None
    return (path, path) if protocol == LOCAL else (uri, path)


async def _outputs(
    template: TaskTemplate,
    settings: _Settings,
    output_prefix: str,
    result: _Result,
    reach: OutputReach,
) -> dict[str, literals_pb2.Literal]:
    rows = result.rows
    declared = template.interface.outputs
    out: dict[str, literals_pb2.Literal] = {}
    if not declared:
        if len(rows) <= settings.max_inline_rows:
            out[DEFAULT_OUTPUT] = dict_literal(_inline(result.columns, rows))
        else:
            out[DEFAULT_OUTPUT] = await _write(settings, reach, output_prefix, DEFAULT_OUTPUT, result, None)
        return out
    for name, var in declared.items():
        lt = var.type
        if name == "rowcount" and lt.simple == types_pb2.SimpleType.INTEGER:
            out[name] = literals_pb2.Literal(
                scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=result.rowcount))
            )
        elif lt.HasField("structured_dataset_type"):
            out[name] = await _write(settings, reach, output_prefix, name, result, lt.structured_dataset_type)
        else:
            if len(rows) > settings.max_inline_rows:
                raise _TaskError(
                    f"the query returned {len(rows)} rows, more than max_inline_rows={settings.max_inline_rows} "
                    f"for output {name!r}: declare it as a StructuredDataset to get the rows as a file"
                )
            out[name] = dict_literal(_inline(result.columns, rows))
    return out


def _inline(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    return [{c: _plain(v) for c, v in zip(columns, row, strict=True)} for row in rows]


def _decimal() -> type[decimal.Decimal]:
    import decimal  # psycopg has loaded it by the time rows exist: a dictionary lookup, kept off the entry point

    return decimal.Decimal


def _plain(value: Any) -> Any:
    """A database value as something msgpack (and JSON) can hold."""
    if value is None or isinstance(value, (bool, int, str, bytes)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, _decimal()):
        return float(value) if value.is_finite() else str(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)  # UUID, inet, ranges...: their text form


async def _write(
    settings: _Settings,
    reach: OutputReach,
    output_prefix: str,
    name: str,
    result: _Result,
    declared: types_pb2.StructuredDatasetType | None,
) -> literals_pb2.Literal:
    """Write the rows under ``<output_prefix>/<name>/`` and return the StructuredDataset literal pointing there."""
    uri, directory = _output_target(reach, output_prefix, name)
    fmt = settings.output_format
    if declared is not None and declared.format in ("parquet", "csv"):
        fmt = declared.format
    writer = _write_parquet if fmt == "parquet" else _write_csv
    try:
        # fsspec and pyarrow block: keep them off the event loop.
        await asyncio.to_thread(writer, directory, result)
    except Exception as e:  # storage refused or unreachable (botocore, gcsfs...): the server's endpoint stays out
        reason = scrub_endpoints(f"{type(e).__name__}: {e}")
        raise TransientError(f"cannot write output {name!r} to {uri}: {reason}") from None
    sd_type = types_pb2.StructuredDatasetType(format=fmt)
    if declared is not None:
        sd_type.columns.extend(declared.columns)
    # NOTE: built directly; switch to flyteconnect.literals' StructuredDataset helper once it exists.
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(
            structured_dataset=literals_pb2.StructuredDataset(
                uri=uri,
                metadata=literals_pb2.StructuredDatasetMetadata(structured_dataset_type=sd_type),
            )
        )
    )


def _open(path: str, mode: str) -> Any:
    import fsspec
    from fsspec.utils import get_protocol

    protocol = get_protocol(path)
    options = storage_options(protocol)
    if protocol in ("file", "local"):
        options["auto_mkdir"] = True
    return fsspec.open(path, mode, **options)


def _write_csv(directory: str, result: _Result) -> None:
    import csv

    with _open(f"{directory}/.csv", "w") as f:
        out = csv.writer(f)
        out.writerow(result.columns)
        for row in result.rows:
            out.writerow([_csv_cell(v) for v in row])


def _csv_cell(value: Any) -> Any:
    plain = _plain(value)
    if isinstance(plain, bytes):
        return base64.b64encode(plain).decode()
    if isinstance(plain, (dict, list)):
        import json

        return json.dumps(plain)
    return plain


def _write_parquet(directory: str, result: _Result) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = []
    for i, _ in enumerate(result.columns):
        values = [row[i] for row in result.rows]
        as_text = i in result.json_columns
        if not as_text:
            try:
                arrays.append(pa.array(values))
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                as_text = True  # uuid, inet, ranges...: stored as text rather than failing the task
        if as_text:
            arrays.append(pa.array([None if v is None else str(_csv_cell(v)) for v in values], type=pa.string()))
    table = pa.Table.from_arrays(arrays, names=result.columns)
    with _open(f"{directory}/00000", "wb") as f:
        pq.write_table(table, f)
