"""Broker forensics, one class per backend: is it ready, is it empty, and where does it still
hold a task that did not complete (and which timeout would release it)?

They read the broker directly on its published 127.0.0.1 port, never through a proxy, so a fault
on the proxies cannot blind them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol, cast
from urllib.parse import quote

import redis
import requests

REDIS_TIMEOUT_S = 5
HTTP_TIMEOUT_S = 5


class Broker(Protocol):
    def ready(self) -> bool: ...

    def reset(self, idle: bool = False) -> None:
        """Empty the broker between scenarios. ``idle``: none of its clients runs now (they
        start afterwards), so it may also drop what clients declare (queues)."""


    def empty(self) -> bool: ...

    def holdings(self, settings: Any) -> dict[str, str]: ...

    def close(self) -> None: ...


class _Redis:
    def __init__(self, port: int) -> None:
        self.client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=REDIS_TIMEOUT_S,
                                  socket_connect_timeout=REDIS_TIMEOUT_S)

    def ready(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def reset(self, idle: bool = False) -> None:
        self.client.flushall()

    def close(self) -> None:
        self.client.close()


def _celery_task_id(message: Any) -> str | None:
    if isinstance(message, dict):
        headers = message.get("headers") or {}
        task = headers.get("id") or (message.get("properties") or {}).get("correlation_id")
        return str(task) if task else None
    return None


class CeleryRedis(_Redis):
    """kombu's Redis transport: the queue's list (waiting) and the ``unacked`` hash (delivered,
    not acknowledged; restored once older than the visibility timeout by a live worker's sweep)."""

    QUEUE = "chaos"
    UNACKED = "unacked"

    def empty(self) -> bool:
        return (cast(int, self.client.llen(self.QUEUE)) == 0
                and cast(int, self.client.hlen(self.UNACKED)) == 0)

    def holdings(self, settings: Any) -> dict[str, str]:
        held: dict[str, str] = {}
        for raw in cast(list[bytes], self.client.lrange(self.QUEUE, 0, -1)):
            task = _celery_task_id(json.loads(raw))
            if task:
                held[task] = f"queued in list {self.QUEUE!r}"
        for raw in cast(list[bytes], self.client.hvals(self.UNACKED)):
            message, _exchange, _routing_key = json.loads(raw)
            task = _celery_task_id(message)
            if task:
                held[task] = (f"unacked (hash {self.UNACKED!r}): restored after "
                              f"visibility_timeout={settings.visibility_timeout_s}s by a live "
                              "worker's sweep")
        return held


class CeleryRabbit:
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

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/api"
        self.session = requests.Session()
        self.session.auth = self.USER
        self.vhost = quote(self.VHOST, safe="")
        self.unmapped_unacked = 0  # unacknowledged messages the last holdings() could not map

    def _queue_url(self, suffix: str = "") -> str:
        return f"{self.url}/queues/{self.vhost}/{self.QUEUE}{suffix}"

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
        found = [q for q in response.json() if q.get("name") == self.QUEUE]
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
            properties = message.get("properties") or {}
            headers = properties.get("headers") or {}
            task = headers.get("id") or properties.get("correlation_id")
            if task:
                held[str(task)] = f"queued (ready) in {queue.get('type', 'classic')} queue " \
                                  f"{self.QUEUE!r}: waiting for a consumer"
        return held

    def close(self) -> None:
        self.session.close()


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


class Arq(_Redis):
    """arq: a job stays in the ``arq:queue`` sorted set until it finishes; while one runs, an
    ``arq:in-progress:<id>`` key (with a TTL) keeps other workers off it, and its expiry is what
    lets another worker retry a job whose worker died."""

    QUEUE = "arq:queue"
    IN_PROGRESS = "arq:in-progress:"

    def empty(self) -> bool:
        return cast(int, self.client.zcard(self.QUEUE)) == 0

    def holdings(self, settings: Any) -> dict[str, str]:
        held: dict[str, str] = {}
        for raw in cast(list[bytes], self.client.zrange(self.QUEUE, 0, -1)):
            task = raw.decode()
            ttl = cast(int, self.client.pttl(self.IN_PROGRESS + task))
            if ttl >= 0:
                held[task] = (f"in progress (key {self.IN_PROGRESS}<id>, expires in "
                              f"{ttl / 1000:.0f}s: job_timeout plus arq's margin)")
            elif ttl == -1:
                held[task] = f"in progress (key {self.IN_PROGRESS}<id> without expiry)"
            else:
                held[task] = f"queued in sorted set {self.QUEUE!r}"
        return held


class InProcess:
    """FastAPI BackgroundTasks: no broker. Tasks not yet run live only in the app's memory, which
    the app lists on GET /pending; a dead app holds nothing."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def reset(self, idle: bool = False) -> None:
        return None

    def _pending(self) -> list[str] | None:
        try:
            response = requests.get(f"{self.url}/pending", timeout=5)
        except requests.RequestException:
            return None  # the app is down: it holds nothing
        return [str(t) for t in response.json().get("pending", [])]

    def empty(self) -> bool:
        return not self._pending()

    def holdings(self, settings: Any) -> dict[str, str]:
        return {t: "accepted by the app, not yet run (in its memory only)"
                for t in self._pending() or []}

    def close(self) -> None:
        return None


BROKERS: dict[str, Callable[[int], Broker]] = {
    "celery-redis": CeleryRedis, "celery-rabbitmq": CeleryRabbit, "arq": Arq,
    "fastapi": InProcess,
}
