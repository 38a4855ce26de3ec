"""Three ``flyteconnect serve`` replicas sharing one Redis behind nginx (``grpc_pass``), and the external system
their connector drives: a job service on loopback. Everything runs as real processes on loopback ports."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from support import free_port, wait_for_port

HERE = Path(__file__).resolve().parent
CALLBACK_KEY = "replica-tests-signing-key-0123456789"


# ----------------------------------------------------------------------------------------------------- job service


@dataclass
class JobService:
    """The external system: ``POST /jobs`` starts a job (remembering its callback URL), ``GET /jobs/<id>`` knows
    only whether a job exists, ``DELETE /jobs/<id>`` stops it."""

    url: str = ""
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def started(self) -> int:
        """Jobs started so far."""
        return len(self.jobs)


def _job_handler(service: JobService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            with service.lock:
                job_id = f"job-{len(service.jobs) + 1}"
                service.jobs[job_id] = {"callback": body.get("callback"), "deleted": False}
            self._reply(201, {"id": job_id})

        def do_GET(self) -> None:
            job = service.jobs.get(self.path.rsplit("/", 1)[-1])
            self._reply(200 if job else 404, {"exists": job is not None})

        def do_DELETE(self) -> None:
            job = service.jobs.get(self.path.rsplit("/", 1)[-1])
            if job:
                job["deleted"] = True
            self._reply(200, {})

    return Handler


@pytest.fixture(scope="module")
def job_service() -> Iterator[JobService]:
    """The job service on a free loopback port."""
    port = free_port()
    service = JobService(f"http://127.0.0.1:{port}")
    httpd = ThreadingHTTPServer(("127.0.0.1", port), _job_handler(service))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield service
    httpd.shutdown()
    httpd.server_close()


# -------------------------------------------------------------------------------------------------------- replicas


@dataclass
class Replica:
    """One ``flyteconnect serve`` process."""

    port: int
    callback_port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def address(self) -> str:
        """Its own gRPC address, bypassing the balancer."""
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


def start_replica(redis_url: str, job_service: JobService, callback_base: str, tmp: Path, index: int) -> Replica:
    """A replica on free loopback ports, serving ``replica_connector`` with the shared Redis state."""
    port, callback_port = free_port(), free_port()
    env = {
        **os.environ,
        "JOB_SERVICE_URL": job_service.url,
        "FLYTECONNECT_CALLBACK_KEYS": CALLBACK_KEY,
        "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path]),
    }
    command = [
        sys.executable, "-m", "flyteconnect", "serve", "--no-entry-points", "-m", "replica_connector",
        "--host", "127.0.0.1", "--port", str(port), "--metrics-port", "0", "--protocol", "v1",
        "--state-url", redis_url, "--callback-port", str(callback_port), "--callback-host", "127.0.0.1",
        "--callback-url-base", callback_base, "--grace", "1",
    ]  # fmt: skip
    log = tmp / f"replica-{index}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    replica = Replica(port, callback_port, process, log)
    try:
        wait_for_port(port)
        wait_for_port(callback_port)
    except TimeoutError:
        process.kill()
        raise RuntimeError(f"replica {index} did not start:\n{log.read_text()}") from None
    return replica


# ---------------------------------------------------------------------------------------------------------- nginx


NGINX_CONF = """
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    # A replica that refuses connections is skipped for a while; a request it never received goes to the next one.
    upstream replicas {{
{grpc_servers}
    }}
    upstream callbacks {{
{http_servers}
    }}
    server {{
        listen 127.0.0.1:{grpc_port} http2;
        location / {{
            grpc_pass grpc://replicas;
            grpc_next_upstream error timeout;
        }}
    }}
    server {{
        listen 127.0.0.1:{http_port};
        location / {{
            proxy_pass http://callbacks;
            proxy_next_upstream error timeout;
        }}
    }}
}}
"""


def nginx_binary() -> str:
    """nginx from PATH or Debian's /usr/sbin."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if found is None:
        raise RuntimeError("nginx is not installed (Debian: apt-get install nginx)")
    return found


@dataclass
class Balancer:
    """nginx in front of the replicas: gRPC on ``grpc_port``, callbacks (HTTP) on ``http_port``."""

    grpc_port: int
    http_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """gRPC address of the balancer."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def callback_base(self) -> str:
        """The callback URL base replicas hand out: the balancer's HTTP side."""
        return f"http://127.0.0.1:{self.http_port}"


def start_nginx(balancer: Balancer, replicas: list[Replica], tmp: Path) -> None:
    """Write the config for ``replicas`` and run nginx in the foreground of its own process."""
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / sub).mkdir(exist_ok=True)
        (tmp / sub).chmod(0o777)  # nginx's workers drop root privileges to nobody
    conf = tmp / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            tmp=tmp,
            grpc_port=balancer.grpc_port,
            http_port=balancer.http_port,
            grpc_servers="\n".join(f"        server {r.address} max_fails=1 fail_timeout=60s;" for r in replicas),
            http_servers="\n".join(f"        server 127.0.0.1:{r.callback_port};" for r in replicas),
        )
    )
    binary = nginx_binary()
    check = subprocess.run([binary, "-t", "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "nginx-error.log")],
                           capture_output=True, text=True)  # fmt: skip
    if check.returncode != 0:
        raise RuntimeError(f"nginx refused its config: {check.stderr}")
    balancer.process = subprocess.Popen(
        [binary, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "nginx-error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(balancer.grpc_port)
    wait_for_port(balancer.http_port)


@dataclass
class Cluster:
    """Three replicas, their balancer, the shared Redis and the job service."""

    balancer: Balancer
    replicas: list[Replica]
    jobs: JobService
    redis_url: str


@pytest.fixture(scope="module")
def cluster(redis_server: Any, job_service: JobService) -> Iterator[Cluster]:
    """Three replicas behind nginx, sharing ``redis_server`` (flushed first); stopped after the module."""
    redis_server.flush()
    tmp = Path(tempfile.mkdtemp(prefix="flyteconnect-replicas-"))
    tmp.chmod(0o755)
    balancer = Balancer(free_port(), free_port())
    replicas: list[Replica] = []
    try:
        for index in range(3):
            replicas.append(start_replica(redis_server.url, job_service, balancer.callback_base, tmp, index))
        start_nginx(balancer, replicas, tmp)
        yield Cluster(balancer, replicas, job_service, redis_server.url)
    finally:
        if balancer.process is not None:
            balancer.process.terminate()
            balancer.process.wait(10)
        for replica in replicas:
            if replica.process.poll() is None:
                replica.process.terminate()
                replica.process.wait(15)
        shutil.rmtree(tmp, ignore_errors=True)
