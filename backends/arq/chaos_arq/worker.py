"""The built-in arq worker settings: configuration only, from the CHAOS_ARQ_* knobs.

Its one job comes from the agent (``queue-chaos-agent worker`` with
``QUEUE_CHAOS_APP=chaos_arq.worker:WorkerSettings``), which builds a new settings class around
this one with its probe function and ready record, as it does for a team's own WorkerSettings.

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

import dataclasses
from typing import Any, ClassVar

from arq.connections import RedisSettings

from chaos_arq import settings
from queue_chaos_agent.arq import from_url


def redis_settings() -> RedisSettings:
    """The broker from CHAOS_BROKER_URL (a Redis, or its Sentinels), with connects bounded so a
    cut shows up quickly (arq applies the bound to a plain Redis only: queue_chaos_agent.arq)."""
    return dataclasses.replace(
        from_url(settings.BROKER_URL, settings.SENTINEL_MASTER),
        conn_timeout=settings.CONNECT_TIMEOUT_S,
        conn_retries=settings.CONNECT_RETRIES,
        conn_retry_delay=settings.CONNECT_RETRY_DELAY_S,
    )


class WorkerSettings:
    """Read by arq: each class attribute named like a ``Worker`` argument is passed to it.

    No functions of its own: the agent adds its probe.
    """

    functions: ClassVar[list[Any]] = []
    redis_settings: ClassVar[RedisSettings] = redis_settings()
    job_timeout: ClassVar[int] = settings.JOB_TIMEOUT
    max_tries: ClassVar[int] = settings.MAX_TRIES
    max_jobs: ClassVar[int] = settings.MAX_JOBS
    keep_result: ClassVar[int] = settings.KEEP_RESULT_S
