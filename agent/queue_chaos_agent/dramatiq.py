"""Dramatiq: the broker built from a settings class, the probe actor, the worker, the ready
record.

Dramatiq has no app object either: a worker is a ``dramatiq.Worker`` on a broker and its
declared actors, and the broker's constructor holds what decides what happens to a message that
did not finish (the Redis broker's ``heartbeat_timeout`` and ``maintenance_chance``, the
RabbitMQ broker's ``confirm_delivery``). So, as for RQ, the "app" the agent loads
(``QUEUE_CHAOS_APP=module:Class``) is a settings class the worker and the producer both read:
``queues`` (required: the first is the default), ``broker_url`` (``redis://`` builds a
``RedisBroker``, ``amqp://`` a ``RabbitmqBroker``), ``threads`` (the Worker's
``worker_threads``), ``heartbeat_timeout`` (ms) and ``maintenance_chance`` (out of
``MAINTENANCE_SCALE``) for Redis, ``confirm_delivery`` for RabbitMQ. What it does not set is
Dramatiq's default (``DEFAULTS``).

The worker runs in the agent's own process (``dramatiq.Worker``, as the ``dramatiq`` command's
worker process builds it in dramatiq/cli.py ``worker_process``), not under the ``dramatiq``
command: the command's main process only forks worker processes and, when one of them exits
unexpectedly, stops the others and exits itself (cli.py ``main``: "Worker with PID %r exited
unexpectedly ... Shutting down..."), so for a fault a killed worker process and a killed
``dramatiq`` command end the same way: no worker consuming until the container restarts. SIGTERM
stops it as the command's worker process does: ``Worker.stop`` lets running messages finish,
requeues the prefetched ones and closes the consumers.

The probe is an actor the agent declares on the broker (``PROBE``); the message id is the
harness's task id (``Message.message_id``), so the forensics can read it out of the broker.
Dramatiq's ``Retries`` middleware counts retries in the message's ``retries`` option, and the
RabbitMQ broker passes on the delivery's redelivered flag: together they tell a repeat run.

dramatiq is imported only inside the functions that need it: the harness imports this module
for ``PROBE`` without dramatiq installed.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from queue_chaos_agent import ready, settingsclass, taskbody, versions
from queue_chaos_agent.config import Config
from queue_chaos_agent.ledger import LedgerWriter
from queue_chaos_agent.target import TargetError

PROBE = "queue_chaos_probe"
# Dramatiq's own defaults (2.2.1: brokers/redis.py DEFAULT_HEARTBEAT_TIMEOUT,
# DEFAULT_MAINTENANCE_CHANCE; cli.py --threads; brokers/rabbitmq.py confirm_delivery=False),
# reported when the settings class does not set one.
DEFAULTS: dict[str, Any] = {"broker_url": "redis://localhost:6379/0", "threads": 8,
                            "heartbeat_timeout": 60000, "maintenance_chance": 1000,
                            "confirm_delivery": False}
REDIS_SCHEMES = ("redis", "rediss")
AMQP_SCHEMES = ("amqp", "amqps")
# Bounds on the Redis client: a blackholed link must raise, not hang a fetch or an ack forever
# (dramatiq's consumer restarts after a connection error; its ack is retried until it lands).
REDIS_TIMEOUT_S = 5.0
# pika's heartbeat on the RabbitMQ connection, so a silent peer is noticed in seconds, not at the
# server's default of 60 s (a compressed clock: harness/backends/dramatiq_rabbitmq.py); and
# bounded connects. Appended to a broker URL that has no query of its own.
AMQP_HEARTBEAT_S = 10
AMQP_OPTIONS = (f"heartbeat={AMQP_HEARTBEAT_S}&socket_timeout=5&blocked_connection_timeout=10"
                "&connection_attempts=1")
# How long a stopping worker lets running messages finish (dramatiq's --worker-shutdown-timeout
# default is 600000 ms; the harness's tasks last a second or two).
SHUTDOWN_TIMEOUT_MS = 30000
STOP_CHECK_S = 0.5


def require_version() -> None:
    versions.require("dramatiq", versions.version_of("dramatiq"), *versions.DRAMATIQ)


# What a settings class holds is read the same way for RQ and Dramatiq (settingsclass.py).
is_settings, queues, queue_name = (settingsclass.is_settings, settingsclass.queues,
                                   settingsclass.queue_name)


def setting(settings_cls: type, name: str) -> Any:
    return settingsclass.setting(settings_cls, name, DEFAULTS)


def broker_kind(url: str) -> str:
    """``redis`` or ``rabbitmq``, by the URL's scheme."""
    scheme = urlparse(url).scheme
    if scheme in REDIS_SCHEMES:
        return "redis"
    if scheme in AMQP_SCHEMES:
        return "rabbitmq"
    raise TargetError(f"broker URL {url!r}: expected redis:// or amqp://")


def check(settings_cls: type, config: Config) -> None:
    """Raise TargetError (one line) when the worker could not measure what the config names."""
    settingsclass.check_queues(settings_cls, config, "dramatiq", "actor")
    broker_kind(config.broker_url or setting(settings_cls, "broker_url"))


def _amqp_url(url: str) -> str:
    return url if "?" in url else f"{url}?{AMQP_OPTIONS}"


def make_broker(settings_cls: type, url: str | None, queue: str) -> Any:
    """The settings' broker on ``url`` (None: theirs), with the probe actor declared on
    ``queue`` and the CurrentMessage middleware the probe reads its message from."""
    import dramatiq
    from dramatiq.middleware import CurrentMessage

    url = url or setting(settings_cls, "broker_url")
    broker: Any
    if broker_kind(url) == "redis":
        from dramatiq.brokers.redis import RedisBroker
        from redis import Redis

        client = Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_S,
                                socket_connect_timeout=REDIS_TIMEOUT_S)
        broker = RedisBroker(client=client,
                             heartbeat_timeout=setting(settings_cls, "heartbeat_timeout"),
                             maintenance_chance=setting(settings_cls, "maintenance_chance"))
    else:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=_amqp_url(url),
                                confirm_delivery=bool(setting(settings_cls, "confirm_delivery")))
    broker.add_middleware(CurrentMessage())
    dramatiq.set_broker(broker)
    dramatiq.actor(probe, actor_name=PROBE, queue_name=queue, broker=broker)
    return broker


def effective(settings_cls: type, queue: str, url: str) -> dict[str, Any]:
    """The durability-relevant settings the worker and the producer run (Dramatiq's defaults
    where the class sets none)."""
    kind = broker_kind(url)
    found: dict[str, Any] = {"broker": kind, "threads": setting(settings_cls, "threads"),
                             "queue": queue, "task": PROBE}
    if kind == "redis":
        found |= {"heartbeat_timeout": setting(settings_cls, "heartbeat_timeout"),
                  "maintenance_chance": setting(settings_cls, "maintenance_chance")}
    else:
        found["confirm_delivery"] = bool(setting(settings_cls, "confirm_delivery"))
    return found


@dataclass
class _Probe:
    """What the probe writes with, set before the worker starts."""

    ledger: LedgerWriter
    ledger_dir: str
    idempotent: bool
    bare: bool


_STATE: _Probe | None = None


def probe(task_id: str, duration: float) -> None:
    """The shared task body, run by a worker thread. A message's ``retries`` option (set by the
    Retries middleware) or a RabbitMQ delivery's redelivered flag marks a repeat."""
    from dramatiq.middleware import CurrentMessage

    state = _STATE
    if state is None:
        raise RuntimeError("queue_chaos_agent.dramatiq.probe runs only in an instrumented worker")
    if state.bare:
        time.sleep(duration)
        return
    message = CurrentMessage.get_current_message()
    retries = int((getattr(message, "options", None) or {}).get("retries", 0))
    redelivered = bool(getattr(message, "redelivered", False)) or retries > 0
    run = taskbody.Run(state.ledger, state.ledger_dir, task_id, redelivered=redelivered,
                       job_try=retries + 1)
    time.sleep(duration)
    run.finish(state.idempotent)


def run_worker(settings_cls: type, queue: str, *, broker_url: str | None,
               ledger_dir: str = "/ledger", idempotent: bool = False, bare: bool = False) -> None:
    """The worker, in this process, until SIGTERM or SIGINT; then a graceful stop."""
    global _STATE
    require_version()
    from dramatiq import Worker

    url = broker_url or setting(settings_cls, "broker_url")
    ledger = LedgerWriter(ledger_dir, "worker")
    _STATE = _Probe(ledger, ledger_dir, idempotent, bare)
    broker = make_broker(settings_cls, url, queue)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    broker.emit_after("process_boot")
    worker = Worker(broker, queues={queue}, worker_threads=int(setting(settings_cls, "threads")))
    worker.start()
    ready.write(ledger, "dramatiq", effective(settings_cls, queue, url), idempotent)
    while not stop.wait(STOP_CHECK_S):
        pass
    worker.stop(timeout=SHUTDOWN_TIMEOUT_MS)
    broker.close()


def ping(broker: Any, queue: str) -> None:
    """Raise unless the broker answers: Redis's PING; on RabbitMQ, the queue declared as the
    workers declare it (dramatiq does that once per broker) and this thread's connection
    processing its events, dropped on an error so the next call connects afresh."""
    client = getattr(broker, "client", None)
    if client is not None:
        client.ping()
        return
    try:
        broker.declare_queue(queue, ensure=True)
        broker.connection.process_data_events(time_limit=0)
    except Exception:
        del broker.connection
        raise
