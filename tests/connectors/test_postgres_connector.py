"""The PostgreSQL connector against a real, throwaway PostgreSQL cluster."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgpack
import psycopg
import pyarrow.parquet as pq
import pytest
import s3fs
from connector_helpers import free_port, make_inputs, make_template
from flyteidl.core import interface_pb2, tasks_pb2, types_pb2

from flyteconnect.connector import Phase, Resource
from flyteconnect.connectors.postgres import PostgresConnector
from flyteconnect.connectors.storage_reach import OutputReach
from flyteconnect.egress import EgressPolicy
from flyteconnect.errors import TransientError
from flyteconnect.registry import ConnectorRegistry, discover_connectors
from flyteconnect.secrets import InvalidSecretName, request_secrets

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def table(postgres_server: Any) -> str:
    """A table with 2500 rows of assorted column types."""
    name = f"items_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {name} (id int PRIMARY KEY, label text, price numeric(8,2), seen timestamptz, "
            "tags text[], doc jsonb, uid uuid)"
        )
        conn.execute(
            f"INSERT INTO {name} SELECT i, 'item ' || i, i * 1.5, '2024-01-02T03:04:05Z'::timestamptz, "
            "ARRAY['a', 'b'], jsonb_build_object('k', i), md5(i::text)::uuid FROM generate_series(1, 2500) i"
        )
    return name


@pytest.fixture
async def pg(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PostgresConnector]:
    """As ``serve --postgres-allow-caller-dsn --egress-allow 127.0.0.1 --output-root <pytest's temp>`` sets it up:
    the tests' DSNs name the throwaway cluster on loopback, and results may be written under the temp directories."""
    connector = PostgresConnector(
        max_connections=4,
        connect_timeout_sec=2,
        allow_caller_dsn=True,
        egress_policy=EgressPolicy.from_allow(["127.0.0.1"]),
        output_reach=OutputReach(roots=(str(tmp_path_factory.getbasetemp()),)),
    )
    yield connector
    await connector.aclose()


def query(statement: str, custom: dict[str, Any] | None = None, outputs: dict[str, Any] | None = None) -> Any:
    interface = interface_pb2.TypedInterface(
        outputs=interface_pb2.VariableMap(
            variables={k: interface_pb2.Variable(type=t) for k, t in (outputs or {}).items()}
        )
    )
    return make_template("postgres_query", custom or {}, sql=tasks_pb2.Sql(statement=statement), interface=interface)


def rows_of(resource: Resource, name: str = "results") -> list[dict[str, Any]]:
    lit = resource.outputs.literals[name]
    return [msgpack.unpackb(item.scalar.binary.value) for item in lit.collection.literals]


LIST_OF_DICT = types_pb2.LiteralType(collection_type=types_pb2.LiteralType(simple=types_pb2.SimpleType.STRUCT))
DATASET = types_pb2.LiteralType(structured_dataset_type=types_pb2.StructuredDatasetType())


async def test_parameterised_query_returns_rows_inline(pg: PostgresConnector, postgres_server: Any, table: str) -> None:
    template = query(
        f"SELECT id, label, price, seen, tags, doc, uid FROM {table} WHERE id <= %(n)s AND label <> %(skip)s "
        "ORDER BY id",
        {"dsn": postgres_server.dsn},
        {"results": LIST_OF_DICT},
    )
    # The value is bound, never formatted into the SQL: a quote in it cannot break out.
    resource = await pg.do(template, "/unused", make_inputs(n=3, skip="x' OR '1'='1"))
    assert resource.phase == Phase.SUCCEEDED, resource.message
    rows = rows_of(resource)
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert rows[0] == {
        "id": 1,
        "label": "item 1",
        "price": 1.5,
        "seen": "2024-01-02T03:04:05+00:00",
        "tags": ["a", "b"],
        "doc": {"k": 1},
        "uid": str(uuid.UUID("c4ca4238a0b923820dcc509a6f75849b")),
    }
    assert resource.message == "3 row(s)"


async def test_dsn_from_the_secret_source_and_writes_commit(pg: PostgresConnector, postgres_server: Any) -> None:
    name = f"t_{uuid.uuid4().hex[:8]}"
    with request_secrets({"postgres_dsn": postgres_server.dsn}):
        created = await pg.do(query(f"CREATE TABLE {name} (v int)"), "/o")
        assert created.phase == Phase.SUCCEEDED, created.message
        insert = query(f"INSERT INTO {name} VALUES (%(a)s), (%(b)s)", outputs={"rowcount": _INT})
        inserted = await pg.do(insert, "/o", make_inputs(a=1, b=2))
    assert inserted.phase == Phase.SUCCEEDED, inserted.message
    assert inserted.outputs.literals["rowcount"].scalar.primitive.integer == 2
    with psycopg.connect(postgres_server.dsn) as conn:
        assert conn.execute(f"SELECT sum(v) FROM {name}").fetchone() == (3,)


_INT = types_pb2.LiteralType(simple=types_pb2.SimpleType.INTEGER)


async def test_large_results_are_written_as_parquet(
    pg: PostgresConnector, postgres_server: Any, table: str, tmp_path: Path
) -> None:
    template = query(f"SELECT id, label, price, doc, uid FROM {table} ORDER BY id", {"dsn": postgres_server.dsn})
    resource = await pg.do(template, str(tmp_path))  # no declared outputs: 2500 > 1000 rows spill to a file
    assert resource.phase == Phase.SUCCEEDED, resource.message
    sd = resource.outputs.literals["results"].scalar.structured_dataset
    assert sd.uri == f"{tmp_path}/results"
    assert sd.metadata.structured_dataset_type.format == "parquet"
    data = pq.read_table(f"{sd.uri}/00000")  # the file name flytekit's parquet decoder reads
    assert data.num_rows == 2500
    assert data.column("label")[2499].as_py() == "item 2500"
    assert str(data.column("price")[0].as_py()) == "1.50"  # numeric stays exact in Parquet
    assert data.column("doc")[0].as_py() == '{"k": 1}'  # jsonb stored as its JSON text


@pytest.mark.s3
async def test_declared_dataset_as_csv_on_s3(
    pg: PostgresConnector, postgres_server: Any, table: str, s3_server: Any
) -> None:
    bucket = f"pg-{uuid.uuid4().hex[:8]}"
    s3_server.create_bucket(bucket)
    template = query(
        f"SELECT id, label FROM {table} WHERE id <= 5 ORDER BY id",
        {"dsn": postgres_server.dsn, "output_format": "csv"},
        {"table": DATASET},
    )
    resource = await pg.do(template, f"s3://{bucket}/run/0")
    assert resource.phase == Phase.SUCCEEDED, resource.message
    sd = resource.outputs.literals["table"].scalar.structured_dataset
    assert sd.uri == f"s3://{bucket}/run/0/table"
    assert sd.metadata.structured_dataset_type.format == "csv"
    text = s3fs.S3FileSystem(**s3_server.storage_options).cat(f"{sd.uri}/.csv").decode()
    assert list(csv.reader(io.StringIO(text)))[:3] == [["id", "label"], ["1", "item 1"], ["2", "item 2"]]


async def test_too_many_rows_for_inline_output_fail(pg: PostgresConnector, postgres_server: Any, table: str) -> None:
    custom = {"dsn": postgres_server.dsn, "max_inline_rows": 10}
    template = query(f"SELECT id FROM {table}", custom, {"rows": LIST_OF_DICT})
    resource = await pg.do(template, "/o")
    assert resource.phase == Phase.FAILED
    assert "returned 2500 rows, more than max_inline_rows=10" in (resource.message or "")


@pytest.mark.parametrize(
    ("statement", "custom", "expected"),
    [
        ("SELEC 1", {}, 'syntax error at or near "SELEC" (SQLSTATE 42601)'),
        ("SELECT * FROM no_such_table", {}, 'relation "no_such_table" does not exist (SQLSTATE 42P01)'),
        ("SELECT pg_sleep(5)", {"timeout_sec": 0.2}, "canceling statement due to statement timeout (SQLSTATE 57014)"),
        ("SELECT 1/0", {}, "division by zero (SQLSTATE 22012)"),
    ],
)
async def test_sql_errors_fail_with_postgres_message(
    pg: PostgresConnector, postgres_server: Any, statement: str, custom: dict[str, Any], expected: str
) -> None:
    resource = await pg.do(query(statement, {"dsn": postgres_server.dsn, **custom}), "/o")
    assert resource.phase == Phase.FAILED
    assert resource.message == f"PostgreSQL error: {expected}"


async def test_task_errors_fail_clearly(pg: PostgresConnector, postgres_server: Any) -> None:
    no_sql = make_template("postgres_query", {"dsn": postgres_server.dsn})
    assert (await pg.do(no_sql, "/o")).message == "PostgreSQL task failed: the task has no sql.statement"
    bad = await pg.do(query("SELECT 1", {"dsn": postgres_server.dsn, "output_format": "xml"}), "/o")
    assert bad.phase == Phase.FAILED and "output_format must be 'parquet' or 'csv'" in (bad.message or "")
    missing = await pg.do(query("SELECT 1", {"dsn_secret": "no_such_dsn_secret"}), "/o")
    assert missing.phase == Phase.FAILED and "no_such_dsn_secret" in (missing.message or "")


async def test_a_dsn_secret_that_is_a_path_is_the_callers_error(pg: PostgresConnector) -> None:
    with pytest.raises(InvalidSecretName, match=r"invalid secret key '/etc/passwd'"):
        await pg.do(query("SELECT 1", {"dsn_secret": "/etc/passwd"}), "/o")


async def test_unreachable_server_is_transient(pg: PostgresConnector) -> None:
    template = query("SELECT 1", {"dsn": f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"})
    with pytest.raises(TransientError, match=r"PostgreSQL unavailable: .*127\.0\.0\.1.*refused"):
        await pg.do(template, "/o")  # the caller's own database: its address may be named


async def test_the_operators_unreachable_server_is_transient_and_unnamed(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("_FSEC_POSTGRES_DSN", f"postgresql://postgres@127.0.0.1:{port}/postgres")
    connector = PostgresConnector(max_connections=1, connect_timeout_sec=1)
    try:
        with pytest.raises(TransientError, match=r"PostgreSQL unavailable: no connection within 1s: .*refused") as e:
            await connector.do(query("SELECT 1"), "/o")
    finally:
        await connector.aclose()
    assert "127.0.0.1" not in str(e.value) and str(port) in str(e.value)
    assert "<database>" in str(e.value)  # the operator's database is the server's business


async def test_one_pool_reused_and_discovered_by_entry_point(
    postgres_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("_FSEC_POSTGRES_DSN", postgres_server.dsn)  # the operator's DSN: pooled
    found = discover_connectors()
    assert not found.failures, found.failures
    connector = ConnectorRegistry(found.connectors).get_connector("postgres_query")
    assert isinstance(connector, PostgresConnector) and connector.is_sync
    assert found.sources["postgres_query_v0"] == "postgres = flyteconnect.connectors.postgres:PostgresConnector"
    try:
        template = query("SELECT pg_backend_pid() AS pid")
        assert rows_of(await connector.do(template, "/o"))[0]["pid"] > 0
        pool = await connector._pool(postgres_server.dsn).get()
        assert rows_of(await connector.do(template, "/o"))[0]["pid"] > 0
        assert await connector._pool(postgres_server.dsn).get() is pool  # one pool, made once, reused
        assert len(connector._pools) == 1 and pool.get_stats()["requests_num"] == 2
    finally:
        for c in found.connectors:
            if hasattr(c, "aclose"):
                await c.aclose()
