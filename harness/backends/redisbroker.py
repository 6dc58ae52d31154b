"""Redis as a broker, whichever library drives it: its readiness, its reset, and what a broker
kill does to what it held (the persistence settings decide)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis

if TYPE_CHECKING:
    from harness.result import ScenarioResult

REDIS_TIMEOUT_S = 5
BROKER_KIND = "broker"


class RedisForensics:
    """A client on the broker's published 127.0.0.1 port, never through a proxy, so a fault on
    the proxies cannot blind it; ``queue`` is the task queue's key (the built-in one, or a
    team's)."""

    QUEUE = ""

    def __init__(self, port: int, queue: str | None = None) -> None:
        self.queue = queue or self.QUEUE
        self.client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=REDIS_TIMEOUT_S,
                                  socket_connect_timeout=REDIS_TIMEOUT_S)

    def ready(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def reset(self, idle: bool = False) -> None:
        self.client.flushall()

    def account(self, lost: list[str]) -> tuple[dict[str, str], int]:
        return {}, 0

    def close(self) -> None:
        self.client.close()


def lost_to_broker_kill(r: ScenarioResult, n: int) -> str | None:
    """Loss under a broker kill or restart, as Redis's persistence settings explain it."""
    if r.fault_kind != BROKER_KIND:
        return None
    if r.knobs.get("redis_appendonly", "no") != "yes":
        return (f"{n} lost: Redis ran without persistence (appendonly no), so the messages it "
                "held (queued and unacknowledged) vanished with the process. `appendonly yes` "
                "keeps them; `appendfsync always` loses nothing acknowledged.")
    return (f"{n} lost: the broker lost messages it had accepted despite appendonly "
            "(the last second of writes with `appendfsync everysec`).")
