"""The shop's arq worker: its settings class, its own startup hook, its job."""

import asyncio
import os
import sqlite3
import time
from typing import Any, ClassVar

from arq.connections import RedisSettings

DB = os.environ.get("SHOP_DB", "/tmp/shop-arq.db")


async def startup(ctx: dict[str, Any]) -> None:
    """The shop's own hook: open its store once per worker."""
    connection = sqlite3.connect(DB, timeout=10, check_same_thread=False)
    connection.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER, at REAL)")
    ctx["store"] = connection


async def shutdown(ctx: dict[str, Any]) -> None:
    ctx["store"].close()


async def record_order(ctx: dict[str, Any], order_id: int) -> None:
    """Check the order (takes a moment), then record it."""
    await asyncio.sleep(0.8)
    with ctx["store"] as connection:
        connection.execute("INSERT INTO orders VALUES (?, ?)", (order_id, time.time()))


class WorkerSettings:
    functions: ClassVar[list[Any]] = [record_order]
    redis_settings = RedisSettings.from_dsn(os.environ.get("SHOP_REDIS_URL",
                                                           "redis://localhost:6379/0"))
    on_startup = startup
    on_shutdown = shutdown
    # A dead worker's job comes back once its lease (job_timeout + 10 s) expires.
    job_timeout = 10
    max_tries = 5
    max_jobs = 4
