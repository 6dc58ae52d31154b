"""The arq worker settings and its one instrumented job (the shared body in chaos_taskbody).

Run as ``arq chaos_arq.worker.WorkerSettings``. ``completed`` *is* the side effect whose count the
harness checks (once = fine, twice = duplicated, never = lost).

What arq does that matters under faults (arq 0.28, read from its worker.py):

* A worker claims a job by setting ``arq:in-progress:<id>`` with a lifetime of job_timeout + 10 s
  and leaves the job in the ``arq:queue`` sorted set until it finishes. A SIGKILLed worker's jobs
  therefore come back by themselves, but only once that key expires.
* Every run increments ``arq:retry:<id>`` before it starts, so ``job_try`` > 1 means the job
  was run (or at least claimed) before: the redelivery flag the checker records.
* SIGTERM cancels running jobs at once (job_completion_wait is 0); a cancelled job is put back
  for another run, without waiting for the in-progress key to expire.
* A job that outlives job_timeout fails for good: it is not retried.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import time
from typing import Any, ClassVar

from arq.connections import RedisSettings
from chaos_ledger import LedgerWriter
from chaos_taskbody import Run

from chaos_arq import settings

ledger = LedgerWriter(settings.LEDGER_DIR, "worker")


def redis_settings() -> RedisSettings:
    """The broker from CHAOS_BROKER_URL, with connects bounded so a cut shows up quickly."""
    return dataclasses.replace(
        RedisSettings.from_dsn(settings.BROKER_URL),
        conn_timeout=settings.CONNECT_TIMEOUT_S,
        conn_retries=settings.CONNECT_RETRIES,
        conn_retry_delay=settings.CONNECT_RETRY_DELAY_S,
    )


async def work(ctx: dict[str, Any], task_id: str, duration: float) -> None:
    """One execution; ``await asyncio.sleep`` so the event loop (and arq's polling) runs on."""
    job_try: int = ctx["job_try"]
    run = Run(ledger, settings.LEDGER_DIR, task_id, redelivered=job_try > 1, job_try=job_try)
    await asyncio.sleep(duration)
    run.finish(settings.IDEMPOTENT)


async def announce_ready(ctx: dict[str, Any]) -> None:
    """The harness waits for this record, not for a log line or a sleep.

    arq calls on_startup after its pool has answered a ping, so the worker can reach Redis.
    """
    ledger.write(
        "worker_ready",
        worker=socket.gethostname(),
        main_pid=os.getpid(),
        job_timeout=settings.JOB_TIMEOUT,
        max_tries=settings.MAX_TRIES,
        max_jobs=settings.MAX_JOBS,
        keep_result=settings.KEEP_RESULT_S,
        idempotent=settings.IDEMPOTENT,
        started_at=time.monotonic(),
    )


class WorkerSettings:
    """Read by arq's CLI: each class attribute named like a ``Worker`` argument is passed to it."""

    functions: ClassVar[list[Any]] = [work]
    redis_settings: ClassVar[RedisSettings] = redis_settings()
    on_startup: ClassVar[Any] = announce_ready
    job_timeout: ClassVar[int] = settings.JOB_TIMEOUT
    max_tries: ClassVar[int] = settings.MAX_TRIES
    max_jobs: ClassVar[int] = settings.MAX_JOBS
    keep_result: ClassVar[int] = settings.KEEP_RESULT_S
