"""Redis as a broker, whichever library drives it: its readiness, its reset, its server's
version, and what a broker kill does to what it held (the persistence settings decide)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, cast, runtime_checkable

import redis

if TYPE_CHECKING:
    from harness.result import ScenarioResult

REDIS_TIMEOUT_S = 5
BROKER_KIND = "broker"


class Handover(NamedTuple):
    """The tasks a Redis broker holds at one instant, read in one MULTI/EXEC: those waiting in
    the queue's list, and those its client library recorded as delivered, unacknowledged."""

    queued: frozenset[str]
    unacked: frozenset[str]


@runtime_checkable
class AckEmulation(Protocol):
    """Forensics of a Redis broker whose client library emulates acknowledgements with a record
    of its own beside the queue's list (kombu: the ``unacked`` hash). A message between the two
    (popped off the list, not yet recorded) is in no key at all: ``handover`` is how the
    pop-window fault sees one there."""

    def handover(self) -> Handover: ...


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

    def empty(self) -> bool:
        """The task queue and whatever the library keeps of deliveries are empty (each
        library's forensics say where it keeps them)."""
        raise NotImplementedError

    def holdings(self, settings: Any) -> dict[str, str]:
        raise NotImplementedError

    def account(self, lost: list[str]) -> tuple[dict[str, str], int]:
        return {}, 0

    def server_versions(self) -> dict[str, str]:
        """From ``INFO server``, the server's own answer (best effort: {} if it does not)."""
        try:
            info = cast(dict[str, Any], self.client.info("server"))
        except redis.RedisError:
            return {}
        return server_versions(info)

    def close(self) -> None:
        self.client.close()


def server_versions(info: Mapping[str, Any]) -> dict[str, str]:
    """The server's versions in its ``INFO server`` section. Valkey answers there as Redis too:
    its ``redis_version`` is the Redis version it is compatible with (7.2.4 for every Valkey so
    far), so a Valkey (``server_name:valkey``, ``valkey_version``) is named by its own version.
    """
    if info.get("server_name") == "valkey" or "valkey_version" in info:
        version = info.get("valkey_version")
        return {"valkey-server": str(version)} if version is not None else {}
    version = info.get("redis_version")
    return {"redis-server": str(version)} if version is not None else {}


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
