"""A team's RQ settings class, as the agent finds it: their queues, worker class and enqueue
options (a Retry, a job timeout)."""

from __future__ import annotations

from typing import ClassVar

from rq import Retry


class RqSettings:
    redis_url: ClassVar[str] = "redis://127.0.0.1:1/0"  # the harness's URL replaces it
    queues: ClassVar[list[str]] = ["sample", "other"]
    worker_class: ClassVar[str] = "rq.Worker"
    job_timeout: ClassVar[int] = 17
    retry: ClassVar[Retry | None] = Retry(max=2)
    job_monitoring_interval: ClassVar[int] = 2
    maintenance_interval: ClassVar[int] = 3


class NotSettings:
    job_timeout = 1
