"""The PostgreSQL connector tried as a hostile caller would: a real server holding the entry-point connectors, the
real throwaway PostgreSQL cluster behind a counting TCP relay, real files for outputs, moto for S3.

Every "never connected" below is the relay's count: each connection to the database through it is counted, and the
test that allows a caller's DSN shows the count moving, so a zero can fail.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import s3fs
from connector_helpers import make_template
from flyteidl.core import interface_pb2, tasks_pb2, types_pb2

from flyteconnect import egress
from flyteconnect.connector import Phase
from flyteconnect.connectors.postgres import PostgresConnector
from flyteconnect.connectors.postgres_dsn import FORCED, DsnRefused, allow_caller_dsn, checked_conninfo
from flyteconnect.connectors.storage_reach import OutputReach, set_output_reach
from flyteconnect.errors import InvalidRequest, TransientError
from flyteconnect.literals import StructuredDataset
from flyteconnect.local.task import ConnectorTask
from flyteconnect.registry import discover_connectors
from flyteconnect.testing import ConnectorServer, FakePropeller, TaskResult

pytestmark = pytest.mark.postgres

PASSWORD = "hunter2-caller-pw"
EXPECTED_REFUSAL = (
    "custom.dsn refused: this server connects only to the databases its operator configured (a dsn_secret it "
    "holds); the operator can allow connection strings from tasks with `flyteconnect serve "
    "--postgres-allow-caller-dsn`"
)


class Relay:
    """A TCP relay on loopback to the database that counts the connections it accepts."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            server = socket.create_connection(("127.0.0.1", self.upstream))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            source.close()  # each socket is the source of exactly one pump

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture(scope="module")
def relay(postgres_server: Any) -> Iterator[Relay]:
    r = Relay(postgres_server.port)
    try:
        yield r
    finally:
        r.close()


def dsn_via(relay: Relay, user: str = "postgres", extra: str = "") -> str:
    return f"host=127.0.0.1 port={relay.port} dbname=postgres user={user} password={PASSWORD} {extra}".strip()


@pytest.fixture(scope="module")
def connector_server() -> Iterator[ConnectorServer]:
    """The entry-point connectors with the server's default settings (each test opens what it needs)."""
    found = discover_connectors()
    assert not found.failures, found.failures
    with ConnectorServer(*found.connectors) as server:
        yield server


@pytest.fixture
def operator_allows_caller_dsn() -> Iterator[None]:
    """What ``serve --postgres-allow-caller-dsn --egress-allow 127.0.0.1`` sets."""
    saved = egress.current_policy()
    allow_caller_dsn(True)
    egress.configure(egress.EgressPolicy.from_allow(["127.0.0.1"]))
    try:
        yield
    finally:
        allow_caller_dsn(None)
        egress.configure(saved)


def pg_task(custom: dict[str, Any], sql: str = "SELECT 1 AS one", **kw: Any) -> ConnectorTask:
    return ConnectorTask(f"q{uuid.uuid4().hex[:6]}", "postgres_query", custom=custom, sql=sql, **kw)


def refused(result: TaskResult) -> str:
    """The details of the one call that ran the task, which must have answered INVALID_ARGUMENT."""
    calls = [c for c in result.calls if c.method in ("ExecuteTaskSync", "CreateTask")]
    assert len(calls) == 1 and calls[0].code == "INVALID_ARGUMENT", [(c.method, c.code, c.details) for c in calls]
    return str(calls[0].details)


# ------------------------------------------------------------------------------------------- caller's DSN: refused


@pytest.mark.both_protocols
async def test_a_template_dsn_is_refused_by_default_and_never_connected(
    fake_propeller: FakePropeller, relay: Relay
) -> None:
    before = relay.accepted
    details = refused(await fake_propeller.run(pg_task({"dsn": dsn_via(relay)})))
    assert details.endswith(f"postgres_query_v0 (PostgreSQL Connector): {EXPECTED_REFUSAL}"), details
    assert PASSWORD not in details
    assert relay.accepted == before


async def test_a_flyte2_connection_secret_is_the_callers_dsn(connector_server: ConnectorServer, relay: Relay) -> None:
    fp = FakePropeller(connector_server.address, protocol="v2")
    before = relay.accepted
    result = await fp.run(pg_task({}), connection={"secrets": {"postgres_dsn": dsn_via(relay)}})
    details = refused(result)
    assert "the request's own 'postgres_dsn' connection secret refused" in details and PASSWORD not in details
    assert relay.accepted == before


CALLER_KEY_REFUSALS = [
    ("sslkey=/root/.ssh/id_rsa", "refuses sslkey in a task's connection string"),
    ("sslcert=/etc/ssl/private/server.crt", "refuses sslcert"),
    ("passfile=/root/.pgpass", "refuses passfile"),
    ("service=prod", "refuses service"),
    ("sslcrl=/etc/shadow", "refuses sslcrl"),
    ("krbsrvname=x gssencmode=require", "refuses gssencmode, krbsrvname"),
    ("sslrootcert=/etc/ssl/certs/ca.pem", "allows only sslrootcert=system"),
    ("options='-c log_statement=all'", "refuses options"),
    ("sslmode=verify-ca", "sslmode=verify-ca needs a CA file"),
]


@pytest.mark.parametrize(("extra", "expected"), CALLER_KEY_REFUSALS)
async def test_file_and_credential_options_are_refused(
    fake_propeller: FakePropeller, relay: Relay, operator_allows_caller_dsn: None, extra: str, expected: str
) -> None:
    before = relay.accepted
    details = refused(await fake_propeller.run(pg_task({"dsn": dsn_via(relay, extra=extra)})))
    assert expected in details and PASSWORD not in details
    assert relay.accepted == before


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("host=/var/run/postgresql user=postgres", "refuses Unix sockets"),
        ("postgresql://postgres@%2Fvar%2Frun%2Fpostgresql/db", "refuses Unix sockets"),
        ("host=@abstract user=postgres", "refuses Unix sockets"),
        ("dbname=postgres user=postgres", "must name a host"),
        ("host=127.0.0.1 dbname=postgres", "must name a user"),
        ("host=localhost user=postgres", "egress policy refused localhost"),
        ("host=169.254.169.254 user=postgres", "egress policy refused 169.254.169.254"),
        ("host=10.0.0.5 user=postgres", "egress policy refused 10.0.0.5"),
        ("host=::ffff:127.0.0.1 user=postgres", "egress policy refused ::ffff:127.0.0.1"),
        ("host=8.8.8.8,127.0.0.1 user=postgres", "egress policy refused 127.0.0.1"),
        ("host=example.com hostaddr=127.0.0.1 user=postgres", "egress policy refused 127.0.0.1"),
        (f"host=127.0.0.1 user=postgres password={PASSWORD} junk", "does not parse"),
    ],
)
async def test_hosts_go_through_the_egress_policy(fake_propeller: FakePropeller, dsn: str, expected: str) -> None:
    """Operator allows callers' DSNs, default egress policy: loopback, metadata and private hosts stay refused."""
    allow_caller_dsn(True)
    try:
        details = refused(await fake_propeller.run(pg_task({"dsn": dsn})))
    finally:
        allow_caller_dsn(None)
    assert expected in details and PASSWORD not in details


# ----------------------------------------------------------------------------------------- caller's DSN: allowed


async def test_an_allowed_callers_dsn_reaches_its_database(
    fake_propeller: FakePropeller, relay: Relay, operator_allows_caller_dsn: None
) -> None:
    before = relay.accepted
    task = pg_task({"dsn": dsn_via(relay)}, "SELECT 41 + 1 AS answer", outputs={"results": list[dict]})
    result = await fake_propeller.run(task)
    result.assert_succeeded()
    assert result.outputs == {"results": [{"answer": 42}]}
    assert relay.accepted == before + 1  # one connection for the task, through the relay


@pytest.fixture(scope="module")
def password_role(postgres_server: Any) -> str:
    """A role that must authenticate with a password from loopback (the cluster trusts everyone else)."""
    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE pw_user LOGIN PASSWORD '{PASSWORD}'")
        hba = conn.execute("SHOW hba_file").fetchone()
        assert hba is not None
        path = Path(hba[0])
        path.write_text(f"host all pw_user 127.0.0.1/32 scram-sha-256\n{path.read_text()}")
        conn.execute("SELECT pg_reload_conf()")
    return "pw_user"


async def test_the_servers_pg_environment_never_completes_a_callers_dsn(
    postgres_server: Any, password_role: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"*:*:*:{password_role}:{PASSWORD}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    monkeypatch.setenv("PGAPPNAME", "from-the-servers-env")
    base = f"host=127.0.0.1 port={postgres_server.port} dbname=postgres user={password_role}"
    statement = "SELECT current_setting('application_name') AS app"
    connector = PostgresConnector(allow_caller_dsn=True, egress_policy=egress.EgressPolicy.from_allow(["127.0.0.1"]))
    try:
        # The operator's DSN (a server secret) uses the server's environment, as libpq always does...
        monkeypatch.setenv("_FSEC_POSTGRES_DSN", base)
        ok = await connector.do(make_template("postgres_query", {}, sql=tasks_pb2.Sql(statement=statement)), "/o")
        assert ok.phase == Phase.SUCCEEDED, ok.message
        # ...a caller's DSN without a password gets neither $PGPASSWORD nor the password file,
        template = make_template("postgres_query", {"dsn": base}, sql=tasks_pb2.Sql(statement=statement))
        with pytest.raises(TransientError, match="no password supplied"):
            await connector.do(template, "/o")
        # and with its own password it connects, without the server's application_name.
        template = make_template(
            "postgres_query", {"dsn": f"{base} password={PASSWORD}"}, sql=tasks_pb2.Sql(statement=statement)
        )
        theirs = await connector.do(template, "/o")
        assert theirs.phase == Phase.SUCCEEDED, theirs.message
        assert theirs.outputs is not None and ok.outputs is not None
        assert ok.outputs != theirs.outputs  # "from-the-servers-env" only on the operator's connection
    finally:
        await connector.aclose()
    assert b"from-the-servers-env" in ok.outputs.literals["results"].SerializeToString()
    assert b"from-the-servers-env" not in theirs.outputs.literals["results"].SerializeToString()


async def test_checked_conninfo_pins_addresses_and_sets_every_file_option_to_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGSSLKEY", "/root/.ssh/id_rsa")
    monkeypatch.setenv("PGOPTIONS", "-c role=admin")
    policy = egress.EgressPolicy.from_allow(["127.0.0.0/8", "localhost"])
    info = await checked_conninfo("postgresql://app:pw@localhost:6543,127.0.0.2/db?sslmode=require", policy)
    assert info["host"].split(",")[-1] == "127.0.0.2" and info["host"].startswith("localhost")
    assert all(a for a in info["hostaddr"].split(",")) and len(info["hostaddr"].split(",")) == len(
        info["host"].split(",")
    )
    assert info["port"].split(",")[0] == "6543" and info["port"].split(",")[-1] == "5432"
    assert {k: info[k] for k in FORCED} == FORCED and info["sslrootcert"] == "/dev/null/none"
    assert info["options"] == ""  # $PGOPTIONS replaced by libpq's built-in default
    monkeypatch.setenv("PGSERVICE", "prod")
    with pytest.raises(DsnRefused, match="unset it"):
        await checked_conninfo("host=127.0.0.1 user=u", policy)


# ------------------------------------------------------------------------------------------------------- outputs

DATASET = types_pb2.LiteralType(structured_dataset_type=types_pb2.StructuredDatasetType(format="csv"))


def dataset_task(table: str) -> ConnectorTask:
    """Inserts a row and returns the table as a dataset: the row shows whether the statement ran."""
    return pg_task({}, f"INSERT INTO {table} VALUES (1) RETURNING v", outputs={"rows": StructuredDataset})


@pytest.fixture
def operator_table(postgres_server: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"out_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {name} (v int)")
    monkeypatch.setenv("_FSEC_POSTGRES_DSN", postgres_server.dsn)
    return name


def rows_in(postgres_server: Any, table: str) -> int:
    with psycopg.connect(postgres_server.dsn) as conn:
        found = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert found is not None
    return int(found[0])


@pytest.mark.both_protocols
async def test_outputs_outside_the_output_roots_are_refused_and_nothing_written(
    fake_propeller: FakePropeller, postgres_server: Any, operator_table: str, tmp_path: Path
) -> None:
    root, outside = tmp_path / "root", tmp_path / "ssh"
    root.mkdir()
    outside.mkdir()
    previous = set_output_reach(OutputReach(roots=(str(root),)))
    policy = "the server's output policy"
    try:
        for prefix, expected in [
            (str(outside), f"{policy} refuses local paths outside the server's output roots"),
            (f"file://{outside}", f"{policy} refuses local paths outside the server's output roots"),
            (f"{root}/../ssh", f"{policy} refuses local paths outside the server's output roots"),
            ("memory://x", f"{policy} does not allow memory:// paths"),
            ("http://127.0.0.1:9/x", f"{policy} does not allow http:// paths"),
            ("relative/dir", f"{policy} refuses relative local paths"),
        ]:
            result = await fake_propeller.run(dataset_task(operator_table), output_prefix=prefix)
            details = refused(result)
            assert f"): cannot write output 'rows' to {prefix}/rows: {expected}" in details, details
        assert list(outside.iterdir()) == [] and list(root.iterdir()) == []
        assert rows_in(postgres_server, operator_table) == 0  # refused before the statement ran
        inside = await fake_propeller.run(dataset_task(operator_table), output_prefix=str(root / "run"))
        inside.assert_succeeded()
        assert (root / "run" / "rows").is_dir()
    finally:
        set_output_reach(previous)


async def test_no_output_root_means_no_local_file(operator_table: str, tmp_path: Path) -> None:
    connector = PostgresConnector(output_reach=OutputReach())
    interface = interface_pb2.TypedInterface(
        outputs=interface_pb2.VariableMap(variables={"../../escape": interface_pb2.Variable(type=DATASET)})
    )
    template = make_template("postgres_query", {}, sql=tasks_pb2.Sql(statement="SELECT 1 AS v"), interface=interface)
    try:
        with pytest.raises(InvalidRequest, match="refuses local paths: the operator named no output roots"):
            await connector.do(template, str(tmp_path / "a" / "b"))
        within = PostgresConnector(output_reach=OutputReach(roots=(str(tmp_path / "a"),)))
        with pytest.raises(InvalidRequest, match="refuses local paths outside the server's output roots"):
            await within.do(template, str(tmp_path / "a" / "b"))  # the output's own name may not climb out
    finally:
        await connector.aclose()
    assert sorted(os.listdir(tmp_path)) == []


@pytest.mark.s3
async def test_s3_outputs_stay_allowed_by_default(
    fake_propeller: FakePropeller, s3_server: Any, operator_table: str
) -> None:
    bucket = f"pg-out-{uuid.uuid4().hex[:6]}"
    s3_server.create_bucket(bucket)
    previous = set_output_reach(OutputReach())
    try:
        result = await fake_propeller.run(dataset_task(operator_table), output_prefix=f"s3://{bucket}/run")
    finally:
        set_output_reach(previous)
    result.assert_succeeded()
    written = s3fs.S3FileSystem(**s3_server.storage_options, skip_instance_cache=True).ls(f"{bucket}/run/rows")
    assert written and written[0].startswith(f"{bucket}/run/rows/")


def test_the_relay_counts_connections(relay: Relay, postgres_server: Any) -> None:
    """The 'never connected' assertions above can fail: a real connection through the relay is counted."""
    before = relay.accepted
    with psycopg.connect(postgres_server.dsn.replace(f":{postgres_server.port}/", f":{relay.port}/")):
        pass
    assert relay.accepted == before + 1
