"""Configuration from the environment, checked at import so a bad knob fails loudly and early.

The agent's worker and producer both import it (through chaos_arq.worker); the producer only
needs the broker URL, so every other knob has a default that the compose file overrides for the
workers.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from queue_chaos_agent.knobs import number

BROKER_SCHEMES = ("redis", "rediss")


def broker_url(name: str, default: str) -> str:
    """A redis:// URL with a host, or Sentinels as ``sentinel://host:port;sentinel://...``
    (the cluster profile); arq's own parser would only say 'invalid DSN scheme'."""
    value = os.environ.get(name, default).strip()
    sentinels = value.startswith("sentinel://")
    for part in value.split(";") if sentinels else [value]:
        parsed = urlparse(part)
        if parsed.scheme not in (("sentinel",) if sentinels else BROKER_SCHEMES) \
                or not parsed.hostname:
            raise ValueError(f"{name}={value!r}: expected redis://host:port/db or "
                             "sentinel://host:port;sentinel://host:port...")
        try:
            parsed.port  # noqa: B018 - urlparse checks the port only when it is read
        except ValueError:
            raise ValueError(f"{name}={value!r}: the port is not a number") from None
    return value


BROKER_URL = broker_url("CHAOS_BROKER_URL", "redis://toxiproxy:26383/0")
# Sentinel's name of the primary, for a sentinel:// BROKER_URL.
SENTINEL_MASTER = os.environ.get("CHAOS_SENTINEL_MASTER", "mymaster")
# arq cancels a job that runs longer than this and fails it for good (no retry). It also sets the
# in-progress key's lifetime (job_timeout + 10 s): how long a job of a SIGKILLed worker stays
# invisible before another worker may take it. At least 1: 0 would time every job out at once.
JOB_TIMEOUT = number("CHAOS_ARQ_JOB_TIMEOUT", "10", minimum=1)
# How many runs a job gets, counted by arq per job id across workers (the arq:retry:<id> key).
MAX_TRIES = number("CHAOS_ARQ_MAX_TRIES", "5", minimum=1)
# How many jobs one worker process runs at a time (asyncio tasks in one event loop).
MAX_JOBS = number("CHAOS_ARQ_MAX_JOBS", "2", minimum=1)
# Results are not what the harness checks (the ledger is); keep them briefly so Redis holds
# little, and so a resubmitted id is still refused as a duplicate for a short while after it ran.
KEEP_RESULT_S = 60
# A cut broker connection must fail fast instead of hanging a connect: arq's defaults (1 s, 5
# retries, 1 s apart) are close; these bound a worker's or producer's start to ~10 s.
CONNECT_TIMEOUT_S = 2
CONNECT_RETRIES = 3
CONNECT_RETRY_DELAY_S = 1
