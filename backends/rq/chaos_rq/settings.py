"""The built-in RQ settings class: configuration only, from the CHAOS_RQ_* knobs, checked at
import so a bad knob fails loudly and early.

The agent loads it in the workers and in the producer alike (``queue-chaos-agent worker |
producer`` with ``QUEUE_CHAOS_APP=chaos_rq.settings:RqSettings``): the workers build their
Worker from it, the producer enqueues with its job_timeout and Retry, so both run one
configuration. What RQ does with each of these under faults is stated, from RQ's source, in
harness/backends/rq.py; the harness hands the compressed clocks (job monitoring, maintenance,
worker TTL) through the CHAOS_RQ_* variables too.
"""

from __future__ import annotations

import os
from typing import ClassVar

from rq import Retry

from queue_chaos_agent.knobs import choice, number

# The broker URL: the compose file gives each client its own Toxiproxy proxy.
BROKER_URL = os.environ.get("CHAOS_BROKER_URL", "redis://toxiproxy:26389/0")
# Retry(max=N) on every enqueue; 0: none (RQ's default: a failed or abandoned job is failed).
RETRY_MAX = number("CHAOS_RQ_RETRY_MAX", "0", minimum=0)
# The job's timeout (RQ kills a horse that outlives it); it also bounds the StartedJobRegistry
# entry's lifetime, min(job_timeout, job_monitoring_interval) + 60 s.
JOB_TIMEOUT = number("CHAOS_RQ_JOB_TIMEOUT", "10", minimum=1)
WORKER_CLASS = choice("CHAOS_RQ_WORKER_CLASS", ("worker", "simpleworker"), "worker")
WORKER_TTL = number("CHAOS_RQ_WORKER_TTL", "20", minimum=16)
MONITORING_INTERVAL = number("CHAOS_RQ_MONITORING_INTERVAL", "5", minimum=1)
MAINTENANCE_INTERVAL = number("CHAOS_RQ_MAINTENANCE_INTERVAL", "5", minimum=1)
# Results are not what the harness checks (the ledger is): kept briefly so Redis holds little.
RESULT_TTL_S = 60


class RqSettings:
    """Read by the agent (queue_chaos_agent/rq.py names every attribute it reads)."""

    redis_url: ClassVar[str] = BROKER_URL
    queues: ClassVar[list[str]] = ["chaos"]
    worker_class: ClassVar[str] = "rq.SimpleWorker" if WORKER_CLASS == "simpleworker" \
        else "rq.Worker"
    job_timeout: ClassVar[int] = JOB_TIMEOUT
    retry: ClassVar[Retry | None] = Retry(max=RETRY_MAX) if RETRY_MAX else None
    result_ttl: ClassVar[int] = RESULT_TTL_S
    worker_ttl: ClassVar[int] = WORKER_TTL
    job_monitoring_interval: ClassVar[int] = MONITORING_INTERVAL
    maintenance_interval: ClassVar[int] = MAINTENANCE_INTERVAL
