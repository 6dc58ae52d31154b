"""A team's Dramatiq settings class, as the agent finds it: their queues, threads and the Redis
broker's clocks (short, so a dead worker's message comes back within the test)."""

from __future__ import annotations

from typing import ClassVar


class DramatiqSettings:
    broker_url: ClassVar[str] = "redis://127.0.0.1:1/0"  # the harness's URL replaces it
    queues: ClassVar[list[str]] = ["sample", "other"]
    threads: ClassVar[int] = 3
    heartbeat_timeout: ClassVar[int] = 2000
    maintenance_chance: ClassVar[int] = 1000000


class NotSettings:
    threads = 1
