"""Forensics: where the broker still holds a task that did not complete, and what releases it.

For Celery on Redis (kombu's Redis transport) a message is in one of two places: the queue's list
(waiting for a consumer) or the ``unacked`` hash (delivered to a consumer, not yet acknowledged;
restored to the queue once older than the visibility timeout by a live consumer's sweep).
"""

from __future__ import annotations

import json
from typing import Any, cast

import redis

QUEUE = "chaos"
UNACKED = "unacked"


def _task_id(message: Any) -> str | None:
    if isinstance(message, dict):
        headers = message.get("headers") or {}
        task = headers.get("id") or (message.get("properties") or {}).get("correlation_id")
        return str(task) if task else None
    return None


def celery_redis_holdings(client: redis.Redis, visibility_timeout_s: int) -> dict[str, str]:
    """task id -> where Redis holds it (and which timeout would release it)."""
    held: dict[str, str] = {}
    for raw in cast(list[bytes], client.lrange(QUEUE, 0, -1)):
        task = _task_id(json.loads(raw))
        if task:
            held[task] = f"queued in list {QUEUE!r}"
    for raw in cast(list[bytes], client.hvals(UNACKED)):
        message, _exchange, _routing_key = json.loads(raw)
        task = _task_id(message)
        if task:
            held[task] = (f"unacked (hash {UNACKED!r}): restored after visibility_timeout="
                          f"{visibility_timeout_s}s by a live worker's sweep")
    return held


def celery_redis_empty(client: redis.Redis) -> bool:
    return cast(int, client.llen(QUEUE)) == 0 and cast(int, client.hlen(UNACKED)) == 0
