"""Celery on Redis with Sentinel: the cluster profile's Celery-on-Redis backend.

``redis-primary``, ``redis-replica`` and ``sentinel1-3`` (harness/backends/sentinel.py has the
topology, what Redis promises, and the forensics that follow Sentinel's primary). Celery finds
the primary through kombu's Sentinel transport (``sentinel://sentinel1:26379;...`` with
``master_name``; backends/celery/chaos_celery/app.py), the same Celery image and app as Celery
on Redis.

Configurations: late acknowledgement as on a single Redis, without and with
``min-replicas-to-write 1``. Both claim at least once (what Celery claims with acks late); what
the broker loses underneath is what the report shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.backend import CLUSTER_FAULTS, Capability, Configuration
from harness.backends import sentinel
from harness.backends.celery_redis import CeleryRedis, CeleryRedisForensics, CeleryRedisKnobs

if TYPE_CHECKING:
    from harness.result import ScenarioResult

NAME = "celery-redis-sentinel"


@dataclass(frozen=True)
class CeleryRedisSentinelKnobs(CeleryRedisKnobs):
    """Celery on Redis's settings plus the data nodes' ``min-replicas-to-write`` (0: off,
    Redis's default)."""

    min_replicas_to_write: int = 0


class CeleryRedisSentinelForensics(sentinel.SentinelReads, CeleryRedisForensics):
    """kombu's Redis transport (the queue's list, the ``unacked`` hash) on Sentinel's primary."""


class CeleryRedisSentinel(sentinel.SentinelBackend, CeleryRedis):
    name = NAME
    title = "Celery on Redis with Sentinel (primary, replica, 3 Sentinels)"
    knobs_class = CeleryRedisSentinelKnobs
    forensics_class = CeleryRedisSentinelForensics
    client = ("Celery", "kombu's sentinel:// transport")
    capabilities = frozenset({Capability.CLUSTERED, Capability.REDELIVERS,
                              Capability.VISIBILITY_TIMEOUT})
    pop_window = ""  # the BRPOP-window fault needs Toxiproxy, which Sentinel's clients bypass

    def broker_parts(self, knobs: Any) -> list[str]:
        return [*sentinel.parts(knobs), *super().broker_parts(knobs)]

    def duplicate_cause(self, r: ScenarioResult) -> str | None:
        if r.fault_kind != "cluster":
            return super().duplicate_cause(r)
        return ("the task's unacknowledged record came back through the visibility timeout "
                "on the new primary (kombu's unacked hash, replicated), and another worker ran "
                "it again")


def _c(name: str, meets: tuple[str, ...], **knobs: Any) -> Configuration:
    return Configuration(NAME, name, CeleryRedisSentinelKnobs(
        acks_late=True, reject_on_worker_lost=True, prefetch_multiplier=1, **knobs), meets)


CeleryRedisSentinel.configurations = (
    _c("sentinel-acks-late", CLUSTER_FAULTS),
    _c("sentinel-min-replicas-1", CLUSTER_FAULTS, min_replicas_to_write=1),
)
BACKEND = CeleryRedisSentinel()
