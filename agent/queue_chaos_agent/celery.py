"""Celery: the probe task on the team's own app, their task's executions recorded through Celery's
signals, and the ready record from the running worker.

Imported only where Celery is installed (the images); the harness's environment never loads it.
Everything is added beside their configuration, never over it: the probe is registered on their
app (so it inherits their acks, prefetch, routing and transport options), and their task is
observed through extra signal receivers (their own receivers keep running; their code is never
edited).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any
from urllib.parse import urlparse

from celery import Celery, Task
from celery import signals as celery_signals

from queue_chaos_agent import ready, taskbody, versions
from queue_chaos_agent.config import Config, queues_in_args
from queue_chaos_agent.ledger import LedgerWriter
from queue_chaos_agent.target import TargetError

PROBE = "queue_chaos.probe"
REDIS_SCHEMES = ("redis", "rediss", "redis+socket")
# kombu's Redis transport's visibility timeout when broker_transport_options sets none.
KOMBU_REDIS_VISIBILITY_TIMEOUT = 3600
_DISPATCH = "queue-chaos-agent"


def require_version() -> None:
    versions.require("celery", versions.version_of("celery"), *versions.CELERY)


def is_app(obj: Any) -> bool:
    return isinstance(obj, Celery)


def redirect(app: Celery, url: str) -> None:
    """The broker (and a Redis result backend, to the same server) to the harness's URL."""
    app.conf.broker_url = url
    app.conf.broker_read_url = None
    app.conf.broker_write_url = None
    backend = app.conf.result_backend
    if isinstance(backend, str) and urlparse(backend).scheme in REDIS_SCHEMES and (
            urlparse(url).scheme in REDIS_SCHEMES):
        app.conf.result_backend = url


def default_queue(app: Celery) -> str:
    return str(app.conf.task_default_queue)


def declared_queues(app: Celery) -> list[str]:
    """The task queues the app declares (task_queues), or the default queue Celery makes."""
    queues = app.conf.task_queues
    if queues:
        return [str(q.name) for q in queues]
    return [default_queue(app)]


def check(app: Celery, config: Config) -> None:
    """Raise TargetError (one line) when the worker could not measure what the config names."""
    queue = config.queue or default_queue(app)
    declared = declared_queues(app)
    if queue not in declared and not app.conf.task_create_missing_queues:
        raise TargetError(f"QUEUE_CHAOS_QUEUE={queue!r} is not declared by the app and "
                          f"task_create_missing_queues is off; declared: {', '.join(declared)}")
    consumed = queues_in_args(config.worker_args)
    if consumed is not None and queue not in consumed:
        raise TargetError(f"QUEUE_CHAOS_QUEUE={queue!r} is not consumed by the worker: -Q in "
                          f"QUEUE_CHAOS_WORKER_ARGS names {', '.join(consumed) or 'nothing'}")
    if consumed is None and queue not in declared:
        raise TargetError(f"QUEUE_CHAOS_QUEUE={queue!r} is not consumed by the worker: with no -Q "
                          f"in QUEUE_CHAOS_WORKER_ARGS it consumes {', '.join(declared)}")
    if config.task is not None:
        names = registered(app)
        if config.task not in names:
            raise TargetError(f"QUEUE_CHAOS_TASK={config.task!r} is not a registered task; "
                              f"registered: {', '.join(names) or 'none'}")


def registered(app: Celery) -> list[str]:
    """Their task names (Celery's own celery.* left out), after the app's imports ran, as the
    worker runs them at start."""
    app.loader.import_default_modules()
    return sorted(name for name in app.tasks if not name.startswith("celery.") and name != PROBE)


class Executions:
    """Runs of their task in flight in this process, by Celery task id: the signals that end a
    run (success, failure, retry) carry no execution of ours, so the start's Run is kept here."""

    def __init__(self) -> None:
        self._runs: dict[str, taskbody.Run] = {}
        self._lock = threading.Lock()

    def start(self, task_id: str, run: taskbody.Run) -> None:
        with self._lock:
            self._runs[task_id] = run

    def pop(self, task_id: str) -> taskbody.Run | None:
        with self._lock:
            return self._runs.pop(task_id, None)


def instrument(app: Celery, queue: str, task_name: str | None = None, *,
               ledger_dir: str = "/ledger", idempotent: bool = False, bare: bool = False
               ) -> Task:
    """Add the probe task, observe ``task_name`` (one of theirs) and announce readiness.

    ``bare``: the probe only sleeps, writing nothing (the benchmark's baseline).
    Returns the probe task. Receivers are connected strongly (``weak=False``: they are closures
    nothing else holds) with a dispatch uid, so instrumenting twice connects them once.
    """
    require_version()
    ledger = LedgerWriter(ledger_dir, "worker")

    @app.task(name=PROBE, bind=True, queue=queue, shared=False)
    def probe(self: Task, task_id: str, duration: float) -> None:
        """The shared task body; the broker's redelivered flag tells a second delivery apart."""
        if bare:
            time.sleep(duration)
            return
        delivery = self.request.delivery_info or {}
        taskbody.perform(ledger, ledger_dir, task_id, duration, idempotent,
                         redelivered=delivery.get("redelivered"))

    if task_name is not None:
        _observe(task_name, ledger, ledger_dir)

    def announce(sender: Any = None, **_: Any) -> None:
        ready.write(ledger, "celery", effective(app, sender, queue, task_name), idempotent,
                    probe=task_name is None)

    celery_signals.worker_ready.connect(announce, weak=False, dispatch_uid=f"{_DISPATCH}-ready")
    return probe


def _observe(task_name: str, ledger: LedgerWriter, ledger_dir: str) -> None:
    runs = Executions()

    def ours(task: Any) -> bool:
        return getattr(task, "name", None) == task_name

    def prerun(sender: Any = None, task_id: str | None = None, **_: Any) -> None:
        if not ours(sender) or task_id is None:
            return
        delivery = getattr(sender.request, "delivery_info", None) or {}
        runs.start(task_id, taskbody.Run(ledger, ledger_dir, task_id,
                                         redelivered=delivery.get("redelivered")))

    def success(sender: Any = None, **_: Any) -> None:
        if ours(sender) and (run := runs.pop(str(sender.request.id))) is not None:
            run.finish()  # completed, then the crash-after-effect marker if armed

    def failure(sender: Any = None, task_id: str | None = None, exception: Any = None,
                **_: Any) -> None:
        if ours(sender) and task_id and (run := runs.pop(task_id)) is not None:
            run.end("failed", error=repr(exception)[:300])

    def retry(sender: Any = None, request: Any = None, reason: Any = None, **_: Any) -> None:
        task_id = getattr(request, "id", None)
        if ours(sender) and task_id and (run := runs.pop(task_id)) is not None:
            run.end("retried", reason=repr(reason)[:300])

    def revoked(sender: Any = None, request: Any = None, terminated: Any = None,
                **_: Any) -> None:
        # Sent in the worker's main process, where no run of ours was started: the record
        # carries a fresh execution (it pairs with none) and says whether it was terminated.
        task_id = getattr(request, "id", None)
        if ours(sender) and task_id:
            run = runs.pop(task_id)
            if run is None:
                ledger.write("revoked", task=task_id, worker=socket.gethostname(),
                             terminated=bool(terminated))
            else:
                run.end("revoked", terminated=bool(terminated))

    for signal, receiver in ((celery_signals.task_prerun, prerun),
                             (celery_signals.task_success, success),
                             (celery_signals.task_failure, failure),
                             (celery_signals.task_retry, retry),
                             (celery_signals.task_revoked, revoked)):
        signal.connect(receiver, weak=False, dispatch_uid=f"{_DISPATCH}-{signal.name}")


def effective(app: Celery, consumer: Any, queue: str, task_name: str | None) -> dict[str, Any]:
    """The durability-relevant settings the running worker uses, read from it and its app.

    ``consumer`` is worker_ready's sender (the worker's Consumer); its controller is the
    WorkController the command-line options (pool, concurrency, prefetch) were applied to.
    """
    conf = app.conf
    controller = getattr(consumer, "controller", None)
    measured = app.tasks.get(task_name or PROBE)
    scheme = urlparse(str(conf.broker_url or "")).scheme
    # sentinel: kombu's Redis transport, finding the primary through Sentinel.
    transport = "redis" if scheme in (*REDIS_SCHEMES, "sentinel") else (
        "amqp" if scheme in ("amqp", "amqps", "pyamqp") else scheme)
    options = dict(conf.broker_transport_options or {})
    queues = app.amqp.queues
    consume_from = getattr(queues, "consume_from", None) or queues
    pool_cls = getattr(controller, "pool_cls", None) or conf.worker_pool
    pool = pool_cls if isinstance(pool_cls, str) else pool_cls.__module__.rsplit(".", 1)[-1]
    return {
        "task_acks_late": bool(getattr(measured, "acks_late", conf.task_acks_late)),
        "task_reject_on_worker_lost": bool(getattr(measured, "reject_on_worker_lost", None)
                                           or conf.task_reject_on_worker_lost),
        "worker_prefetch_multiplier": getattr(controller, "prefetch_multiplier",
                                              conf.worker_prefetch_multiplier),
        "pool": pool,
        "concurrency": getattr(controller, "concurrency", conf.worker_concurrency),
        "broker_transport": transport,
        "visibility_timeout": options.get("visibility_timeout", KOMBU_REDIS_VISIBILITY_TIMEOUT)
        if transport == "redis" else None,
        "confirm_publish": bool(options.get("confirm_publish", False))
        if transport == "amqp" else None,
        "queue_types": {name: (q.queue_arguments or {}).get("x-queue-type", "classic")
                        for name, q in queues.items()},
        "queues_consumed": sorted(consume_from.keys()),
        "queue": queue,
        "task": task_name or PROBE,
    }
