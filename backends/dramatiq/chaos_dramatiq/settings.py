"""The built-in Dramatiq settings class: configuration only, from the CHAOS_DRAMATIQ_* knobs,
checked at import so a bad knob fails loudly and early.

The agent loads it in the workers and in the producer alike (``queue-chaos-agent worker |
producer`` with ``QUEUE_CHAOS_APP=chaos_dramatiq.settings:DramatiqSettings``): both build the
same broker from it (RedisBroker or RabbitmqBroker, by the URL's scheme). What Dramatiq does with
each of these under faults is stated, from its source, in harness/backends/dramatiq.py,
dramatiq_redis.py and dramatiq_rabbitmq.py; the harness hands the Redis broker's compressed
clocks (heartbeat_timeout, maintenance_chance) through the CHAOS_DRAMATIQ_* variables too.
"""

from __future__ import annotations

import os
from typing import ClassVar

from queue_chaos_agent.knobs import flag, number

# The broker URL: the compose file gives each client its own Toxiproxy proxy. redis:// picks
# dramatiq's RedisBroker, amqp:// its RabbitmqBroker.
BROKER_URL = os.environ.get("CHAOS_BROKER_URL", "redis://toxiproxy:26391/0")
# Worker threads per worker (dramatiq's CLI default is 8; two, like the other backends' pools).
THREADS = number("CHAOS_DRAMATIQ_THREADS", "2", minimum=1)
# RedisBroker(heartbeat_timeout=ms, maintenance_chance=n out of 1e6): compressed by the harness.
HEARTBEAT_TIMEOUT_MS = number("CHAOS_DRAMATIQ_HEARTBEAT_TIMEOUT_MS", "10000", minimum=1000)
MAINTENANCE_CHANCE = number("CHAOS_DRAMATIQ_MAINTENANCE_CHANCE", "1000000", minimum=0)
# RabbitmqBroker(confirm_delivery=...): publisher confirms on the producer's publishes.
CONFIRM_DELIVERY = flag("CHAOS_DRAMATIQ_CONFIRM_DELIVERY")


class DramatiqSettings:
    """Read by the agent (queue_chaos_agent/dramatiq.py names every attribute it reads)."""

    broker_url: ClassVar[str] = BROKER_URL
    queues: ClassVar[list[str]] = ["chaos"]
    threads: ClassVar[int] = THREADS
    heartbeat_timeout: ClassVar[int] = HEARTBEAT_TIMEOUT_MS
    maintenance_chance: ClassVar[int] = MAINTENANCE_CHANCE
    confirm_delivery: ClassVar[bool] = CONFIRM_DELIVERY
