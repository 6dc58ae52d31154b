"""A team's arq WorkerSettings, as the agent finds it: their own function and startup hook."""

from __future__ import annotations

from typing import Any, ClassVar

from arq.connections import RedisSettings


async def add(ctx: dict[str, Any], x: int, y: int) -> int:
    return x + y


async def startup(ctx: dict[str, Any]) -> None:
    ctx["theirs"] = True  # their on_startup runs before the agent's ready record


class WorkerSettings:
    functions: ClassVar[list[Any]] = [add]
    on_startup = startup
    redis_settings = RedisSettings(host="127.0.0.1", port=1)
    job_timeout = 17
    max_tries = 3
    max_jobs = 4
    keep_result = 5
    queue_name = "sample:queue"
