"""Celery on RabbitMQ: py-amqp through kombu, its forensics (the management HTTP API), what
RabbitMQ does under faults, and the built-in configurations that measure it.

RabbitMQ tracks a delivery itself until it is acknowledged and requeues it the moment the
channel or connection it went out on closes: there is no visibility timeout to wait for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

import requests

from harness.backend import Capability, Configuration
from harness.backends.celery import Celery, CeleryKnobs

if TYPE_CHECKING:
    from harness.brokers import Broker
    from harness.result import ScenarioResult

NAME = "celery-rabbitmq"
HTTP_TIMEOUT_S = 5
QUEUE_TYPES = ("classic", "quorum")


@dataclass(frozen=True)
class CeleryRabbitKnobs(CeleryKnobs):
    """Celery's settings plus the task queue's type and publisher confirms on the producer."""

    queue_type: str = "classic"
    confirm_publish: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.queue_type not in QUEUE_TYPES:
            raise ValueError(f"queue_type={self.queue_type!r}; valid: {', '.join(QUEUE_TYPES)}")


class CeleryRabbitForensics:
    """Celery on RabbitMQ, read through the management plugin's HTTP API (the broker's published
    port; user guest). The task queue ``chaos`` holds *ready* messages, waiting for a consumer,
    and *unacknowledged* ones, delivered on some consumer's channel (prefetched or running) and
    requeued by RabbitMQ at once when that channel or its connection closes: there is no
    visibility timeout to wait for.

    Limits of what the API shows. Its per-queue statistics lag by seconds (samples every 5 s),
    so the counts here are the queue totals without statistics (``disable_stats`` +
    ``enable_queue_totals``), which queues refresh every ``collect_statistics_interval`` (classic)
    or ``quorum_tick_interval`` (quorum): the compose file sets both to 0.5 s. Ready messages can
    be read (``get`` with ``ack_requeue_true``: fetched, then requeued, which sets their
    redelivered flag); unacknowledged ones cannot be listed at all, so they are counted, not
    mapped to task ids: a task held only as an unacked delivery at the deadline is not among
    ``holdings``; ``attribute_unacked`` places such tasks by count where it can (the scenario
    result reports how many messages stayed unmapped). The scenario's drain waits for them to
    be zero, which a live consumer with no task running makes them.
    """

    QUEUE = "chaos"
    VHOST = "/"
    USER = ("guest", "guest")

    def __init__(self, port: int, queue: str | None = None) -> None:
        self.queue = queue or self.QUEUE
        self.url = f"http://127.0.0.1:{port}/api"
        self.session = requests.Session()
        self.session.auth = self.USER
        self.vhost = quote(self.VHOST, safe="")
        self.unmapped_unacked = 0  # unacknowledged messages the last holdings() could not map

    def _queue_url(self, suffix: str = "") -> str:
        return f"{self.url}/queues/{self.vhost}/{self.queue}{suffix}"

    def ready(self) -> bool:
        """The API answers, the vhost exists, and the AMQP listener is up."""
        try:
            vhost = self.session.get(f"{self.url}/vhosts/{self.vhost}", timeout=HTTP_TIMEOUT_S)
            amqp = self.session.get(f"{self.url}/health/checks/port-listener/5672",
                                    timeout=HTTP_TIMEOUT_S)
        except requests.RequestException:
            return False
        return vhost.status_code == 200 and amqp.status_code == 200

    def _queue(self) -> dict[str, Any] | None:
        """The task queue with its message totals, or None when it does not exist."""
        response = self.session.get(
            f"{self.url}/queues/{self.vhost}",
            params={"disable_stats": "true", "enable_queue_totals": "true"},
            timeout=HTTP_TIMEOUT_S,
        )
        response.raise_for_status()
        found = [q for q in response.json() if q.get("name") == self.queue]
        return cast(dict[str, Any], found[0]) if found else None

    def reset(self, idle: bool = False) -> None:
        """With no client running, delete the task queue: the clients that start next declare
        it afresh with this scenario's queue type (RabbitMQ refuses to redeclare a classic queue
        as a quorum queue or back). With clients running (so with the queue's type unchanged),
        purge it. (``if-unused`` deletion cannot decide this: quorum queues refuse it.)"""
        if idle:
            response = self.session.delete(self._queue_url(), timeout=HTTP_TIMEOUT_S)
        else:
            response = self.session.delete(self._queue_url("/contents"), timeout=HTTP_TIMEOUT_S)
        if response.status_code != 404:
            response.raise_for_status()

    @staticmethod
    def _counts(queue: dict[str, Any]) -> tuple[int, int] | None:
        ready, unacked = queue.get("messages_ready"), queue.get("messages_unacknowledged")
        if ready is None or unacked is None:
            return None  # no statistics yet (a queue just declared, a broker just started)
        return int(ready), int(unacked)

    def empty(self) -> bool:
        try:
            queue = self._queue()
        except requests.RequestException:
            return False  # the broker does not answer: it may hold anything
        if queue is None:
            return True
        counts = self._counts(queue)
        return counts is not None and sum(counts) == 0

    def holdings(self, settings: Any) -> dict[str, str]:
        queue = self._queue()
        if queue is None:
            self.unmapped_unacked = 0
            return {}
        ready, unacked = self._counts(queue) or (0, 0)
        self.unmapped_unacked = unacked
        held: dict[str, str] = {}
        response = self.session.post(
            self._queue_url("/get"),
            json={"count": ready + unacked + 100, "ackmode": "ack_requeue_true",
                  "encoding": "auto", "truncate": 100},
            timeout=HTTP_TIMEOUT_S,
        )
        response.raise_for_status()
        for message in response.json():
            task = self.task_of(message)
            if task:
                held[str(task)] = f"queued (ready) in {queue.get('type', 'classic')} queue " \
                                  f"{self.queue!r}: waiting for a consumer"
        return held

    @staticmethod
    def task_of(message: Mapping[str, Any]) -> str | None:
        """The task id of a message the API's ``get`` returned: Celery's ``id`` header (protocol
        2) or its correlation id."""
        properties = message.get("properties") or {}
        headers = properties.get("headers") or {}
        task = headers.get("id") or properties.get("correlation_id")
        return str(task) if task else None

    def server_versions(self) -> dict[str, str]:
        """From ``/api/overview``, the node's own answer (best effort: {} if it does not)."""
        try:
            response = self.session.get(f"{self.url}/overview", timeout=HTTP_TIMEOUT_S)
            response.raise_for_status()
            return server_versions(response.json())
        except (requests.RequestException, ValueError):
            return {}

    def close(self) -> None:
        self.session.close()


    def account(self, lost: list[str]) -> tuple[dict[str, str], int]:
        """Tasks otherwise lost that the unacknowledged deliveries must hold, and how many of
        those deliveries stay unmapped."""
        inferred = attribute_unacked(lost, self.unmapped_unacked)
        return (inferred, 0) if inferred else ({}, self.unmapped_unacked)



def server_versions(overview: Any) -> dict[str, str]:
    """RabbitMQ's and its Erlang's versions in the management API's ``/api/overview``."""
    if not isinstance(overview, dict):
        return {}
    fields = (("rabbitmq-server", "rabbitmq_version"), ("erlang", "erlang_version"))
    return {name: str(overview[key]) for name, key in fields if overview.get(key)}


INFERRED_UNACKED = (
    "unacknowledged on a consumer's channel (inferred: the queue counted {unacked} "
    "unacknowledged messages, and no more tasks than that were unaccounted for); RabbitMQ "
    "requeues it when that channel closes, or after consumer_timeout (30 min by default) if it "
    "is never acknowledged"
)


def attribute_unacked(unaccounted: list[str], unacked: int) -> dict[str, str]:
    """Where RabbitMQ's unacknowledged deliveries, which its API counts but cannot list, put the
    tasks that are otherwise unaccounted for (acknowledged submission, no completion, not ready).

    The task queue is emptied before each scenario and each task is published once, so when the
    queue counts at least as many unacknowledged messages as there are such tasks, every one of
    them is among those messages: held, not lost. With fewer, which ones are held cannot be told,
    and nothing is attributed (they stay lost, and the report says how many messages remain).
    """
    if not unaccounted or len(unaccounted) > unacked:
        return {}
    return {task: INFERRED_UNACKED.format(unacked=unacked) for task in unaccounted}



class CeleryRabbit(Celery):
    name = NAME
    title = "Celery on RabbitMQ"
    broker = "rabbitmq"
    knobs_class = CeleryRabbitKnobs
    libraries = (*Celery.libraries, "amqp")  # kombu's amqp transport drives py-amqp
    capabilities = frozenset({Capability.BROKERED, Capability.REDELIVERS})

    def forensics(self, port: int, queue: str | None = None,
                  nodes: Mapping[str, int] | None = None) -> Broker:
        return CeleryRabbitForensics(port, queue)

    def read_knobs(self, effective: Mapping[str, Any], idempotent: bool) -> dict[str, Any]:
        types = effective.get("queue_types") or {}
        return {**super().read_knobs(effective, idempotent),
                "queue_type": str(types.get(effective.get("queue"), "classic")),
                "confirm_publish": bool(effective.get("confirm_publish"))}

    def broker_parts(self, knobs: Any) -> list[str]:
        parts = [("on RabbitMQ, quorum queue (x-queue-type=quorum; global QoS off)"
                  if knobs.queue_type == "quorum" else "on RabbitMQ, classic queue")]
        if knobs.confirm_publish:
            parts.append("publisher confirms (confirm_publish=True)")
        return parts

    def note(self, settings: Any) -> str:
        return ("RabbitMQ requeues a delivery the moment the channel or connection it went out "
                "on closes (no visibility timeout). The built-in configurations' queue is "
                "durable and their messages persistent (Celery's defaults).")

    def lost(self, r: ScenarioResult, n: int) -> str | None:
        if r.fault_kind == "broker":
            if r.knobs.get("confirm_publish"):
                return (f"{n} lost: RabbitMQ had confirmed them (publisher confirms) and still "
                        "did not deliver them after its restart.")
            return (f"{n} lost: without publisher confirms the producer's publish returns once "
                    "the message is written to the socket, before RabbitMQ has it on disk, so "
                    "the kill took what the broker still held in memory (and publishes on "
                    "connections it was dropping). `confirm_publish=True` makes the publish "
                    "wait for the broker's ack.")
        return super().lost(r, n)

    def duplicate_cause(self, r: ScenarioResult) -> str | None:
        said = super().duplicate_cause(r)
        if said:
            return said
        if r.fault_kind == "broker":
            return ("the first run finished while the broker was down, so its acknowledgement "
                    "went nowhere; RabbitMQ had the message on disk, unacknowledged, and "
                    "delivered it again after its restart")
        return ("RabbitMQ requeued the unacknowledged delivery at once when the worker's "
                "channel or connection closed (no visibility timeout), and another worker ran "
                "it while, or after, the first run did its side effect; the first run's "
                "acknowledgement then went nowhere (its delivery tag belonged to the dead "
                "channel)")

    def fresh_redeliveries(self, r: ScenarioResult, n: int) -> str | None:
        return (f"{n} redelivered before their first start: RabbitMQ requeued them at once "
                "(prefetched by a worker that lost its connection or shut down, or recovered "
                "from disk after a broker restart, which marks them redelivered).")


def _late(prefetch: int = 1, **knobs: Any) -> CeleryRabbitKnobs:
    return CeleryRabbitKnobs(acks_late=True, reject_on_worker_lost=True,
                                 prefetch_multiplier=prefetch, **knobs)


def _c(name: str, knobs: CeleryRabbitKnobs, meets: tuple[str, ...]) -> Configuration:
    return Configuration(NAME, name, knobs, meets)


CeleryRabbit.configurations = (
    _c("rabbit-acks-early", CeleryRabbitKnobs(prefetch_multiplier=1),
       ("sigkill-worker", "sigkill-pool-child", "sigterm-worker", "cut-worker-broker",
        "crash-after-effect")),
    _c("rabbit-acks-late", _late(1),
       ("sigkill-worker", "sigkill-pool-child", "sigterm-worker", "sigstop-worker",
        "broker-sigkill", "broker-restart", "cut-worker-broker", "blackhole-worker-broker",
        "latency-worker-broker", "cut-producer-broker", "crash-after-effect")),
    _c("rabbit-acks-late-prefetch-16", _late(16), ("sigkill-worker", "cut-worker-broker")),
    _c("rabbit-acks-late-quorum", _late(1, queue_type="quorum"),
       ("sigkill-worker", "sigkill-pool-child", "broker-sigkill", "crash-after-effect")),
    _c("rabbit-acks-late-confirms", _late(1, confirm_publish=True),
       ("broker-sigkill", "cut-producer-broker")),
    _c("rabbit-acks-late-idempotent", _late(1, idempotent=True),
       ("sigkill-worker", "cut-worker-broker", "crash-after-effect")),
)
BACKEND = CeleryRabbit()
