"""Connectors for the policy tests: each counts the calls that reach it (the "external system")."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any, ClassVar

from flyteconnect import (
    AsyncConnectorBase,
    CallbacksUnavailable,
    Phase,
    Resource,
    ResourceMeta,
    callback_url,
)


@dataclass
class Job(ResourceMeta):
    """A job id."""

    job_id: str


class Counted(AsyncConnectorBase[Job]):
    """Creates numbered jobs; ``get`` answers from ``phases`` (job id -> list of answers, last one repeats)."""

    name = "Counted"
    task_type_name = "counted"
    metadata_type = Job
    server_settings: ClassVar[dict[str, Any]] = {}

    def __init__(self, **settings: Any) -> None:
        super().__init__()
        self.server_settings = settings  # per instance: each test says what it needs
        self.creates = 0
        self.gets = 0
        self.deletes = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.create_pause = 0.0
        self.fail_creates = 0
        self.answers: list[Resource] = [Resource(phase=Phase.RUNNING, message="running")]
        self.callback_urls: list[str | None] = []
        self.url_issued = threading.Event()

    async def create(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> Job:
        self.creates += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            try:
                self.callback_urls.append(callback_url())
                self.url_issued.set()
            except CallbacksUnavailable:
                self.callback_urls.append(None)
            if self.create_pause:
                await asyncio.sleep(self.create_pause)  # lets duplicates and other creates overlap this one
            if self.fail_creates:
                self.fail_creates -= 1
                raise ConnectionError("the external system refused the job")
            return Job(job_id=f"job-{self.creates}")
        finally:
            self.in_flight -= 1

    async def get(self, resource_meta: Job, **kwargs: Any) -> Resource:
        self.gets += 1
        return self.answers[min(self.gets - 1, len(self.answers) - 1)]

    async def delete(self, resource_meta: Job, **kwargs: Any) -> None:
        self.deletes += 1


class DefCreate(AsyncConnectorBase[Job]):
    """A connector whose ``create`` is a plain ``def`` (runs on the server's pool) and asks for a callback URL."""

    name = "Def Create"
    task_type_name = "def_create"
    metadata_type = Job

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.lock = threading.Lock()

    def create(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> Job:  # type: ignore[override]
        with self.lock:
            self.urls.append(callback_url())
            return Job(job_id=f"def-{len(self.urls)}")

    def get(self, resource_meta: Job, **kwargs: Any) -> Resource:  # type: ignore[override]
        return Resource(phase=Phase.RUNNING, message="polled")

    def delete(self, resource_meta: Job, **kwargs: Any) -> None:  # type: ignore[override]
        return None
