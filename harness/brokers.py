"""Broker forensics, one class per backend: is it ready, is it empty, and where does it still
hold a task that did not complete (and which timeout would release it)?

They read the broker directly on its published 127.0.0.1 port, never through a proxy, so a fault
on the proxies cannot blind them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol, cast

import redis
import requests

REDIS_TIMEOUT_S = 5


class Broker(Protocol):
    def ready(self) -> bool: ...

    def reset(self) -> None: ...

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

    def reset(self) -> None:
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

    def reset(self) -> None:
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
    "celery-redis": CeleryRedis, "arq": Arq, "fastapi": InProcess,
}
