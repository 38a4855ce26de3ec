"""Three replicas behind nginx sharing one Redis: any replica answers for any job, and a replica killed with -9
loses no job. (This module's tests share one cluster and run in file order; the kill comes last.)"""

from __future__ import annotations

from collections.abc import Iterator

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


def test_a_replica_killed_with_sigkill_loses_no_job(cluster: Cluster, balanced: Client) -> None:
    metas = [balanced.create(f"kill-{i}") for i in range(6)]
    cluster.replicas[0].kill()
    for _ in range(3):  # every job is still answered through the balancer, whichever replica created it
        for meta in metas:
            assert balanced.get(meta).phase == execution_pb2.TaskExecution.RUNNING
    late = balanced.create("after-kill")
    assert balanced.get(late).phase == execution_pb2.TaskExecution.RUNNING
