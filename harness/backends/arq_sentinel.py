"""arq on Redis with Sentinel: the cluster profile's arq backend.

``arq-redis-primary``, ``arq-redis-replica`` and ``arq-sentinel1-3``, the same topology as Celery's
(harness/backends/sentinel.py has it, what Redis promises, and the forensics that follow
Sentinel's primary). arq finds the primary through its own Sentinel settings
(``RedisSettings(host=[(sentinel, 26379), ...], sentinel=True, sentinel_master=...)``; the agent
turns the harness's ``sentinel://`` URLs into them, queue_chaos_agent.arq.from_url), the same arq
image and worker settings as arq on Redis.

One difference from a single Redis that matters under these faults, from arq 0.28's source
(arq/connections.py, ``create_pool``): with ``sentinel=True`` the pool is redis-py's
``Sentinel(...).master_for(...)`` with no socket timeout, so ``conn_timeout`` does not apply and
a worker or producer talking to a frozen or cut-off primary waits as long as TCP does.

Configuration: arq's retries as on a single Redis (``max_tries`` 5), claiming at least once.
"""

from __future__ import annotations

from typing import Any, ClassVar

from harness.backend import CLUSTER_FAULTS, Capability, Configuration
from harness.backends import sentinel
from harness.backends.arq import Arq, ArqForensics, ArqKnobs

NAME = "arq-sentinel"


class ArqSentinelForensics(sentinel.SentinelReads, ArqForensics):
    """arq's queue (the ``arq:queue`` sorted set, in-progress keys) on Sentinel's primary."""


class ArqSentinel(sentinel.SentinelBackend, Arq):
    name = NAME
    title = "arq on Redis with Sentinel (primary, replica, 3 Sentinels)"
    forensics_class = ArqSentinelForensics
    client = ("arq", "its Sentinel settings; conn_timeout does not apply there")
    former_names: ClassVar[tuple[str, ...]] = ()  # none: arq on Redis's former names are its own
    capabilities = frozenset({Capability.CLUSTERED, Capability.REDELIVERS, Capability.LEASE})

    def describe(self, knobs: Any) -> str:
        return (f"{super().describe(knobs)}, through Sentinel (quorum 2, down-after 2 s), one "
                "replica")


ArqSentinel.configurations = (
    Configuration(NAME, "arq-sentinel-max-tries-5", ArqKnobs(arq_max_tries=5), CLUSTER_FAULTS),
)
BACKEND = ArqSentinel()
