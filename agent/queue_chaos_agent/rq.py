"""RQ: the probe function, the worker built from a settings class, the ready record, and the
job id every enqueue uses.

RQ has no app object: a worker is a ``Worker`` (or ``SimpleWorker``) on a Redis connection and
some queues, and the options that decide what happens to a job that did not finish (``Retry``,
``job_timeout``) are given when it is enqueued. So the "app" the agent loads for RQ
(``QUEUE_CHAOS_APP=module:Class``) is a settings class holding both sides, read by the worker and
the producer alike (arq's WorkerSettings is the model): ``queues`` (required: the first is the
default), ``redis_url``, ``worker_class`` (an import path or class; ``rq.Worker`` forks a work
horse per job, ``rq.SimpleWorker`` runs it in its own process), ``worker_ttl``,
``job_monitoring_interval``, ``maintenance_interval`` (the Worker's arguments), and the enqueue
options ``job_timeout``, ``retry`` (an ``rq.Retry`` or None) and ``result_ttl``. What it does not
set is RQ's default (``DEFAULTS``).

The probe is a module-level function RQ imports by name in the work horse
(``queue_chaos_agent.rq.probe``); what it writes with is set in the worker's process before it
forks, so every horse inherits it (and a SimpleWorker runs it in that same process). A job's
``retries_left`` tells a retried run apart: RQ decrements it on every retry, whether the work
horse died, the StartedJobRegistry's cleanup found the job abandoned, or the job raised.

RQ is imported only inside the functions that need it: the harness imports this module for
``job_id_for`` / ``task_id_of`` without RQ installed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from queue_chaos_agent import ready, settingsclass, taskbody, versions
from queue_chaos_agent.config import Config
from queue_chaos_agent.ledger import LedgerWriter
from queue_chaos_agent.target import TargetError

PROBE = "queue_chaos_agent.rq.probe"
# RQ's own defaults (rq 2.12: queue.py Queue.DEFAULT_TIMEOUT, defaults.py), reported when the
# settings class does not set one.
DEFAULTS: dict[str, Any] = {"redis_url": "redis://localhost:6379/0", "worker_class": "rq.Worker",
                            "job_timeout": 180, "retry": None, "result_ttl": 500,
                            "worker_ttl": 420, "job_monitoring_interval": 30,
                            "maintenance_interval": 600}
# How long a starting worker keeps asking Redis before it gives up (the harness waits 60 s).
CONNECT_ATTEMPTS = 10
CONNECT_INTERVAL_S = 1.0
CONNECT_TIMEOUT_S = 2.0
# RQ accepts job ids of letters, digits, '_' and '-' only (job.py JOB_ID_PATTERN); the harness's
# task ids also hold '.' and '~'. Each is escaped, reversibly, so the forensics can tell which
# task a job id is.
_ESCAPES = {"_": "__", ".": "_d", "~": "_t"}
_UNESCAPES = {v[1]: k for k, v in _ESCAPES.items()}


def job_id_for(task_id: str) -> str:
    """The RQ job id of a task id: letters, digits and '-' as they are, '_', '.' and '~'
    escaped, anything else as ``_x`` and six hex digits."""
    out = []
    for ch in task_id:
        if ch.isascii() and (ch.isalnum() or ch == "-"):
            out.append(ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        else:
            out.append(f"_x{ord(ch):06x}")
    return "".join(out)


def task_id_of(job_id: str) -> str:
    """The task id a job id was made from (``job_id_for`` undone); an id the harness did not
    make comes back unchanged where it holds no escape."""
    out = []
    i = 0
    while i < len(job_id):
        ch = job_id[i]
        if ch == "_" and i + 1 < len(job_id):
            code = job_id[i + 1]
            if code in _UNESCAPES:
                out.append(_UNESCAPES[code])
                i += 2
                continue
            if code == "x" and i + 8 <= len(job_id):
                out.append(chr(int(job_id[i + 2:i + 8], 16)))
                i += 8
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def require_version() -> None:
    versions.require("rq", versions.version_of("rq"), *versions.RQ)


# What a settings class holds is read the same way for RQ and Dramatiq (settingsclass.py).
is_settings, queues, queue_name = (settingsclass.is_settings, settingsclass.queues,
                                   settingsclass.queue_name)


def setting(settings_cls: type, name: str) -> Any:
    return settingsclass.setting(settings_cls, name, DEFAULTS)


def check(settings_cls: type, config: Config) -> None:
    """Raise TargetError (one line) when the worker could not measure what the config names."""
    settingsclass.check_queues(settings_cls, config, "rq", "function")
    if retry_max(settings_cls) < 0:
        raise TargetError(f"QUEUE_CHAOS_APP={config.app!r}: retry must be an rq.Retry or None")


def retry_max(settings_cls: type) -> int:
    retry = setting(settings_cls, "retry")
    return int(getattr(retry, "max", 0)) if retry is not None else 0


def worker_class(settings_cls: type) -> type:
    """The worker class, imported when given as a path (as ``rq worker -w`` does)."""
    from rq.utils import import_attribute

    chosen = setting(settings_cls, "worker_class")
    cls: type = import_attribute(chosen) if isinstance(chosen, str) else chosen
    return cls


def forks(cls: type) -> bool:
    """Whether the worker runs each job in a work horse it forks (``rq.Worker`` and its
    subclasses) rather than in its own process (``rq.SimpleWorker``)."""
    from rq.worker import Worker

    return issubclass(cls, Worker)


def enqueue_options(settings_cls: type) -> dict[str, Any]:
    """What every enqueue passes RQ: the job's timeout, its Retry (None: none) and how long its
    result is kept."""
    return {"timeout": setting(settings_cls, "job_timeout"),
            "retry": setting(settings_cls, "retry"),
            "result_ttl": setting(settings_cls, "result_ttl")}


def effective(settings_cls: type, queue: str) -> dict[str, Any]:
    """The durability-relevant settings the worker and the producer run (RQ's defaults where the
    class sets none). ``worker_class`` says what the class does (Worker forks, SimpleWorker does
    not); ``worker_class_name`` which class it is."""
    cls = worker_class(settings_cls)
    retry = setting(settings_cls, "retry")
    return {
        "retry_max": retry_max(settings_cls),
        "retry_intervals": list(getattr(retry, "intervals", []) or []) if retry else [],
        "job_timeout": setting(settings_cls, "job_timeout"),
        "worker_class": "Worker" if forks(cls) else "SimpleWorker",
        "worker_class_name": f"{cls.__module__}.{cls.__qualname__}",
        "worker_ttl": setting(settings_cls, "worker_ttl"),
        "job_monitoring_interval": setting(settings_cls, "job_monitoring_interval"),
        "maintenance_interval": setting(settings_cls, "maintenance_interval"),
        "result_ttl": setting(settings_cls, "result_ttl"),
        "queue": queue,
        "task": PROBE,
    }


@dataclass
class _Probe:
    """What the probe writes with, set in the worker's process before it forks."""

    ledger: LedgerWriter
    ledger_dir: str
    idempotent: bool
    bare: bool
    retry_max: int


_STATE: _Probe | None = None


def probe(task_id: str, duration: float) -> None:
    """The shared task body, run by the work horse (or the SimpleWorker itself). A job enqueued
    with ``Retry(max=N)`` starts with N retries left; fewer means RQ ran (or at least claimed)
    it before."""
    from rq import get_current_job

    state = _STATE
    if state is None:
        raise RuntimeError("queue_chaos_agent.rq.probe runs only in an instrumented worker")
    if state.bare:
        time.sleep(duration)
        return
    job = get_current_job()
    left = getattr(job, "retries_left", None)
    try_number = 1 + (state.retry_max - left if state.retry_max and left is not None else 0)
    run = taskbody.Run(state.ledger, state.ledger_dir, task_id, redelivered=try_number > 1,
                       job_try=try_number, retries_left=left)
    try:
        time.sleep(duration)
    except BaseException as exc:  # RQ's job timeout raises here (JobTimeoutException)
        run.end("failed", error=repr(exc)[:300])
        raise
    run.finish(state.idempotent)


def connect(url: str, socket_timeout: float | None = None) -> Any:
    """A Redis client on ``url`` whose connects are bounded, answering a ping (retried for a
    while: the broker may still be starting)."""
    from redis import Redis
    from redis.exceptions import RedisError

    connection = Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_S,
                                socket_timeout=socket_timeout)
    for attempt in range(CONNECT_ATTEMPTS):
        try:
            connection.ping()
            return connection
        except RedisError:
            if attempt == CONNECT_ATTEMPTS - 1:
                raise
            time.sleep(CONNECT_INTERVAL_S)
    return connection


def run_worker(settings_cls: type, queue: str, *, broker_url: str | None,
               ledger_dir: str = "/ledger", idempotent: bool = False, bare: bool = False) -> None:
    """The worker, in this process: their worker class on their queue with their Worker
    arguments; the ready record once Redis answers. ``bare``: the probe only sleeps."""
    global _STATE
    require_version()
    from rq import Queue

    ledger = LedgerWriter(ledger_dir, "worker")
    _STATE = _Probe(ledger, ledger_dir, idempotent, bare, retry_max(settings_cls))
    connection = connect(broker_url or setting(settings_cls, "redis_url"))
    cls = worker_class(settings_cls)
    worker = cls([Queue(queue, connection=connection)], connection=connection,
                 worker_ttl=setting(settings_cls, "worker_ttl"),
                 job_monitoring_interval=setting(settings_cls, "job_monitoring_interval"),
                 maintenance_interval=setting(settings_cls, "maintenance_interval"))
    ready.write(ledger, "rq", effective(settings_cls, queue), idempotent)
    worker.work(logging_level="INFO")
