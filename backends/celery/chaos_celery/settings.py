"""Configuration from the environment, checked at start so a bad knob fails loudly and early."""

from __future__ import annotations

import os

from queue_chaos_agent.knobs import flag, number

BROKER_URL = os.environ.get("CHAOS_BROKER_URL", "redis://toxiproxy:26380/0")
ACKS_LATE = flag("CHAOS_ACKS_LATE")
REJECT_ON_WORKER_LOST = flag("CHAOS_REJECT_ON_WORKER_LOST")
PREFETCH_MULTIPLIER = number("CHAOS_PREFETCH_MULTIPLIER", "4")
# Redis transport only: its emulation of acknowledgements.
VISIBILITY_TIMEOUT = number("CHAOS_VISIBILITY_TIMEOUT", "3600")
RESTORE_INTERVAL = number("CHAOS_RESTORE_INTERVAL", "10")
# AMQP (RabbitMQ) only: the task queue's type, and publisher confirms on the producer's publish.
QUEUE_TYPE = os.environ.get("CHAOS_QUEUE_TYPE", "classic").strip().lower()
if QUEUE_TYPE not in ("classic", "quorum"):
    raise ValueError(f"CHAOS_QUEUE_TYPE={QUEUE_TYPE!r}: expected classic or quorum")
CONFIRM_PUBLISH = flag("CHAOS_CONFIRM_PUBLISH")
# The task queue the harness's forensics read (QUEUE_CHAOS_QUEUE in the compose file).
QUEUE = "chaos"
# Redis through Sentinel (kombu's sentinel:// transport, the cluster profile): the Sentinels'
# URLs, ;-separated, and the name they know the primary by.
SENTINEL = BROKER_URL.startswith("sentinel://")
SENTINEL_MASTER = os.environ.get("CHAOS_SENTINEL_MASTER", "")
if SENTINEL and not SENTINEL_MASTER:
    raise ValueError("CHAOS_BROKER_URL is a sentinel:// URL: CHAOS_SENTINEL_MASTER must name "
                     "the primary Sentinel monitors")
REDIS = SENTINEL or BROKER_URL.startswith(("redis://", "rediss://", "redis+socket://"))
