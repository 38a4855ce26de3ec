"""Three replicas behind nginx sharing one Redis: any replica answers for any job, a callback received by one
replica completes the job for all, duplicate creates through different replicas start one job, and a replica killed
with -9 loses no job. (This module's tests share one cluster and run in file order; the kill comes last.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from flyteidl.core import execution_pb2

from .conftest import Cluster
from .flyte_calls import Client


@pytest.fixture
def balanced(cluster: Cluster) -> Iterator[Client]:
    client = Client(cluster.balancer.address)
    yield client
    client.close()


def test_the_balancer_spreads_calls_and_any_replica_answers_any_job(cluster: Cluster, balanced: Client) -> None:
    meta = balanced.create("spread")
    pollers = {balanced.get(meta).message for _ in range(9)}
    assert all(m.startswith("polled by pid ") for m in pollers)
    assert len(pollers) >= 2, pollers  # round robin over three replicas: more than one process answered
    for replica in cluster.replicas:  # and each replica, asked directly, answers for the job
        direct = Client(replica.address)
        try:
            assert direct.get(meta).phase == execution_pb2.TaskExecution.RUNNING
        finally:
            direct.close()


def job_of(cluster: Cluster, meta: bytes) -> dict[str, object]:
    """The job service's record of the job behind ``meta``."""
    return cluster.jobs.jobs[json.loads(meta)["job_id"]]


def test_a_callback_received_by_one_replica_completes_the_job_for_all(cluster: Cluster, balanced: Client) -> None:
    meta = balanced.create("callback")
    callback = job_of(cluster, meta)["callback"]
    assert isinstance(callback, str) and callback.startswith(cluster.balancer.callback_base + "/callback/")
    assert balanced.get(meta).phase == execution_pb2.TaskExecution.RUNNING
    token = callback.rsplit("/", 1)[1]
    replica_b = cluster.replicas[1]  # whichever replica created the job, B receives the callback
    reply = httpx.post(f"http://127.0.0.1:{replica_b.callback_port}/callback/{token}",
                       json={"phase": "SUCCEEDED", "message": "done by callback", "outputs": {"rows": 12}})  # fmt: skip
    assert reply.json() == {"recorded": True}
    for _ in range(6):  # through the balancer: every replica answers from the shared record
        answer = balanced.get(meta)
        assert answer.phase == execution_pb2.TaskExecution.SUCCEEDED and answer.message == "done by callback"
        assert answer.outputs.literals["rows"].scalar.primitive.integer == 12
    replay = httpx.post(callback, json={"phase": "SUCCEEDED", "message": "done by callback", "outputs": {"rows": 12}})
    assert replay.json() == {"recorded": False}  # through nginx's HTTP side to any replica: harmless


def test_duplicate_creates_through_different_replicas_start_one_job(cluster: Cluster) -> None:
    clients = [Client(r.address) for r in cluster.replicas]
    started = cluster.jobs.started
    try:
        with ThreadPoolExecutor(6) as pool:
            metas = list(pool.map(lambda c: c.create("duplicated", attempt=1), clients * 2))
    finally:
        for client in clients:
            client.close()
    assert len(set(metas)) == 1
    assert cluster.jobs.started == started + 1


def test_a_replica_killed_with_sigkill_loses_no_job(cluster: Cluster, balanced: Client) -> None:
    metas = [balanced.create(f"kill-{i}") for i in range(6)]
    cluster.replicas[0].kill()
    for _ in range(3):  # every job is still answered through the balancer, whichever replica created it
        for meta in metas:
            assert balanced.get(meta).phase == execution_pb2.TaskExecution.RUNNING
    started = cluster.jobs.started
    again = [balanced.create(f"kill-{i}") for i in range(6)]  # Propeller retrying its creates after the crash
    assert again == metas and cluster.jobs.started == started  # no second job for any of them
    late = balanced.create("after-kill")
    assert balanced.get(late).phase == execution_pb2.TaskExecution.RUNNING
