"""Dramatiq on Redis: its RedisBroker's keys read raw, what it does under faults, its compressed
clocks, and the built-in configurations that measure it.

Read in dramatiq 2.2.1 (brokers/redis.py and the Lua script brokers/redis/dispatch.lua every
broker command runs):

* Every command (enqueue, fetch, ack, nack, requeue) is one call of ``dispatch.lua``, which
  first records the caller's heartbeat: ``ZADD dramatiq:__heartbeats__ <now> <broker id>``
  (each broker instance has a random ``broker_id``, so a restarted worker is a new one).
* ``fetch`` is atomic: in one script it ``LPOP``s message ids off ``dramatiq:<queue>`` and
  ``SADD``s each to the worker's acks set ``dramatiq:__acks__.<broker id>.<queue>``; the message
  itself stays in the hash ``dramatiq:<queue>.msgs`` until ``ack`` removes it. So, unlike
  kombu's BRPOP, no message is ever in no key at all.
* A dead worker's acks set comes back only through *maintenance*, which a command runs with
  probability ``maintenance_chance`` / ``MAINTENANCE_SCALE`` (1000 / 1000000 by default; never
  on ack or nack): it takes every broker id whose heartbeat is older than ``heartbeat_timeout``
  (60000 ms by default), pushes its acked-but-unfinished ids for the command's queue back onto
  the queue (those still in the ``.msgs`` hash) and deletes its acks set. Nothing else requeues
  them: RedisBroker 2.2.1 takes no requeue deadline or interval (its constructor's options are
  namespace, maintenance_chance, heartbeat_timeout, dead_message_ttl and the client's).
* ``nack`` moves a message to the dead-letter sorted set ``dramatiq:<queue>.XQ`` (+ ``.XQ.msgs``):
  never run again automatically. A delayed message (a Retries backoff) waits in
  ``dramatiq:<queue>.DQ``.

So a SIGSTOPped or cut-off worker whose heartbeat goes stale longer than heartbeat_timeout has
its messages run again by another worker while it still holds them: a duplicate, which at least
once allows. A busy worker keeps its heartbeat with every ack and fetch (the idle poll is at most
``worker_timeout``, 1000 ms, apart), so a heartbeat timeout far above a task's length is safe.

Scenarios compress both clocks so that a dead worker's messages come back within a run:
heartbeat_timeout 10 s (Dramatiq's 60 s) and maintenance on every command (1000000 of
1000000, Dramatiq's 1000).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from harness.backend import Capability, Clock, Configuration, stall_clock
from harness.backends.dramatiq import LINK, STALL, WORKER_DEATH, Dramatiq, DramatiqKnobs
from harness.backends.redisbroker import RedisForensics, lost_to_broker_kill

if TYPE_CHECKING:
    from harness.brokers import Broker
    from harness.result import ScenarioResult

NAME = "dramatiq-redis"
NAMESPACE = "dramatiq"
# Dramatiq's own defaults (2.2.1, brokers/redis.py): what production runs.
DRAMATIQ_HEARTBEAT_TIMEOUT_MS = 60000
MAINTENANCE_SCALE = 1000000
DRAMATIQ_MAINTENANCE_CHANCE = 1000
HEARTBEAT_SOURCE = "dramatiq/brokers/redis.py DEFAULT_HEARTBEAT_TIMEOUT = 60000 (ms)"
# The expected wait for maintenance: 1 in 1000 commands; idle workers send about four commands a
# second between them (a fetch per consumer per worker_timeout, 1000 ms; a queue and its delay
# queue each, two workers), so about 250 s; busier workers run it sooner.
MAINTENANCE_SOURCE = ("dramatiq/brokers/redis.py DEFAULT_MAINTENANCE_CHANCE = 1000 of "
                      "MAINTENANCE_SCALE = 1000000 commands: ~1000 commands, ~250 s at two idle "
                      "workers' 4 fetches a second (worker.py worker_timeout 1000 ms)")
DRAMATIQ_MAINTENANCE_WAIT_S = 250.0
# The scenario's compressed values (handed to the workers by ``scenario_env``; the compose
# file's defaults are the same).
SCENARIO_HEARTBEAT_TIMEOUT_MS = 10000
SCENARIO_MAINTENANCE_CHANCE = MAINTENANCE_SCALE
# With maintenance on every command, the next one comes within the idle poll (1000 ms).
SCENARIO_MAINTENANCE_WAIT_S = 1.0
# Faults after which a worker's acks set waited for its heartbeat to go stale.
ABANDONING_KINDS = (WORKER_DEATH, LINK, STALL)


@dataclass(frozen=True)
class DramatiqRedisKnobs(DramatiqKnobs):
    """Dramatiq's settings plus the Redis broker's: its persistence, and ``heartbeat_timeout``
    (RedisBroker's, in ms), the clock that decides both how long a dead worker's fetched
    messages wait and whether a stalled worker's are run twice. Its default is the scenario's
    compressed 10 s (Dramatiq's is 60 s); a configuration may set it longer than a stall."""

    redis_appendonly: str = "no"
    dramatiq_heartbeat_timeout_ms: int = SCENARIO_HEARTBEAT_TIMEOUT_MS

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dramatiq_heartbeat_timeout_ms < 1000:
            raise ValueError(f"dramatiq_heartbeat_timeout_ms={self.dramatiq_heartbeat_timeout_ms}"
                             "; valid: 1000 or more")


def _message_id(raw: bytes | str | None) -> str | None:
    """The Dramatiq message id (the harness's task id) in a stored message's JSON."""
    if raw is None:
        return None
    try:
        found = json.loads(raw).get("message_id")
    except (ValueError, AttributeError):
        return None
    return str(found) if found else None


class DramatiqRedisForensics(RedisForensics):
    """The RedisBroker's keys for one queue, read raw: the queue list (redis message ids), the
    ``.msgs`` hash (redis message id -> message JSON, whose ``message_id`` is the task id), every
    worker's acks set, the heartbeats, the delay queue and the dead-letter queue."""

    QUEUE = "chaos"

    def _key(self, suffix: str = "") -> str:
        return f"{NAMESPACE}:{self.queue}{suffix}"

    def _acks_sets(self) -> list[str]:
        """Every worker's acks set for the queue (the delay queue's too)."""
        found = []
        for suffix in ("", ".DQ"):
            pattern = f"{NAMESPACE}:__acks__.*.{self.queue}{suffix}"
            found += [k.decode() for k in cast(list[bytes],
                                                list(self.client.scan_iter(match=pattern,
                                                                           count=1000)))
                      if k.decode().endswith(f".{self.queue}{suffix}")]
        return found

    def _messages(self, suffix: str = "") -> dict[str, str | None]:
        """redis message id -> task id of the messages the ``.msgs`` hash still holds."""
        raw = cast(dict[bytes, bytes], self.client.hgetall(self._key(f"{suffix}.msgs")))
        return {k.decode(): _message_id(v) for k, v in raw.items()}

    def empty(self) -> bool:
        """Nothing Dramatiq will still run: the queue's and the delay queue's hashes are empty
        (an acked message leaves its hash; a dead-lettered one moves to ``.XQ.msgs``)."""
        return not (cast(int, self.client.hlen(self._key(".msgs")))
                    or cast(int, self.client.hlen(self._key(".DQ.msgs"))))

    def holdings(self, settings: Any) -> dict[str, str]:
        held: dict[str, str] = {}
        messages = self._messages()
        delayed = self._messages(".DQ")
        queued = {raw.decode() for raw in cast(list[bytes],
                                                self.client.lrange(self._key(), 0, -1))}
        for rid in queued:
            task = messages.get(rid)
            if task:
                held[task] = f"queued in list {self._key()!r}"
        heartbeats = {k.decode(): score for k, score in cast(
            list[tuple[bytes, float]],
            self.client.zrange(f"{NAMESPACE}:__heartbeats__", 0, -1, withscores=True))}
        for key in self._acks_sets():
            worker = key[len(f"{NAMESPACE}:__acks__."):].rsplit(f".{self.queue}", 1)[0]
            beat = heartbeats.get(worker)
            age = (f"{max(0.0, time.time() - beat / 1000):.0f}s ago" if beat is not None
                   else "gone")
            for raw in cast(set[bytes], self.client.smembers(key)):
                rid = raw.decode()
                task = messages.get(rid) or delayed.get(rid)
                if task and rid not in queued:
                    held[task] = (
                        f"fetched into {key!r} (unacknowledged; its worker's last heartbeat "
                        f"{age}): maintenance requeues it once that heartbeat is older than "
                        "heartbeat_timeout")
        for task in delayed.values():
            if task and task not in held:
                held[task] = f"delayed in {self._key('.DQ')!r} (a Retries backoff)"
        return held


class DramatiqRedis(Dramatiq):
    name = NAME
    title = "Dramatiq on Redis"
    broker = "redis"
    knobs_class = DramatiqRedisKnobs
    libraries = (*Dramatiq.libraries, "redis")
    capabilities = frozenset({Capability.BROKERED, Capability.REDELIVERS,
                              Capability.VISIBILITY_TIMEOUT})

    def forensics(self, port: int, queue: str | None = None,
                  nodes: Mapping[str, int] | None = None) -> Broker:
        return DramatiqRedisForensics(port, queue)

    def broker_parts(self, knobs: Any) -> list[str]:
        return ["on Redis (RedisBroker)"]

    def scenario_env(self, settings: Any) -> dict[str, str]:
        """The broker's compressed maintenance (``clocks`` states it against Dramatiq's); its
        heartbeat_timeout is a knob (``DramatiqRedisKnobs``), compressed by default."""
        return {"CHAOS_DRAMATIQ_MAINTENANCE_CHANCE": str(SCENARIO_MAINTENANCE_CHANCE)}

    def read_knobs(self, effective: Mapping[str, Any], idempotent: bool) -> dict[str, Any]:
        read = super().read_knobs(effective, idempotent)
        if "heartbeat_timeout" in effective:
            read["dramatiq_heartbeat_timeout_ms"] = int(effective["heartbeat_timeout"])
        return read

    def clocks(self, settings: Mapping[str, Any]) -> tuple[Clock, ...]:
        heartbeat = _heartbeat()
        stall = stall_clock(settings, heartbeat)
        return (heartbeat,
                Clock("maintenance (expected wait for a command that runs it)",
                      SCENARIO_MAINTENANCE_WAIT_S, DRAMATIQ_MAINTENANCE_WAIT_S,
                      MAINTENANCE_SOURCE),
                _abandoned(),
                *((stall,) if stall else ()))

    def recovery_clock(self, r: ScenarioResult) -> Clock | None:
        """A worker that died, was cut off or was stopped leaves its fetched messages in its
        acks set until its heartbeat is stale and maintenance runs; not after a warm shutdown
        (it requeues its prefetched messages itself) nor a broker fault. A team's own app runs
        its own clocks."""
        if not self.built_in(r.configuration) or r.fault_kind not in ABANDONING_KINDS:
            return None
        if r.fault == "sigterm-worker":
            return None
        return _abandoned(int(r.knobs.get("dramatiq_heartbeat_timeout_ms",
                                          SCENARIO_HEARTBEAT_TIMEOUT_MS)))

    def note(self, settings: Any) -> str:
        entry = _abandoned()
        return ("A worker that dies or stops heart-beating leaves its fetched messages in its "
                "acks set until its heartbeat is older than heartbeat_timeout and a command runs "
                f"maintenance ({entry.scenario_s:g}s here, about {entry.production_s:g}s with "
                "Dramatiq's defaults).")

    def lost(self, r: ScenarioResult, n: int) -> str | None:
        said = lost_to_broker_kill(r, n)
        if said:
            return said
        return (f"{n} lost: neither queued, fetched into an acks set nor delayed at the end: "
                "Dramatiq no longer held them (dead-lettered into .XQ by a nack, or acked).")

    def duplicate_cause(self, r: ScenarioResult) -> str | None:
        said = super().duplicate_cause(r)
        if said:
            return said
        if r.fault_kind == STALL:
            return ("the worker was stopped for longer than heartbeat_timeout; another worker's "
                    "maintenance found its heartbeat stale and requeued its fetched messages, and "
                    "the stopped worker finished its own run after SIGCONT (its late ack found "
                    "the acks set gone)")
        return ("the worker's heartbeat went stale (it died, or lost Redis) while its run had "
                "done the side effect unacknowledged; maintenance requeued the message and "
                "another worker ran it again")

    def fresh_redeliveries(self, r: ScenarioResult, n: int) -> str | None:
        return (f"{n} run by another worker before their first start: a worker had fetched them "
                "into its acks set and died (or went silent) before running them; maintenance "
                "requeued them once its heartbeat was stale.")


def _heartbeat() -> Clock:
    return Clock("heartbeat_timeout", SCENARIO_HEARTBEAT_TIMEOUT_MS / 1000,
                 DRAMATIQ_HEARTBEAT_TIMEOUT_MS / 1000, HEARTBEAT_SOURCE)


def _abandoned(heartbeat_ms: int = SCENARIO_HEARTBEAT_TIMEOUT_MS) -> Clock:
    """How long a dead worker's fetched messages wait: its heartbeat going stale, then the
    next command that runs maintenance (``heartbeat_ms``: the configuration's timeout). In
    production that is Dramatiq's 60 s for the compressed default, and the configuration's own
    timeout for one that sets it (a setting a team makes, not a compressed clock); maintenance
    is compressed either way."""
    production_ms = (DRAMATIQ_HEARTBEAT_TIMEOUT_MS if heartbeat_ms == SCENARIO_HEARTBEAT_TIMEOUT_MS
                     else heartbeat_ms)
    return Clock("abandoned-message requeue (heartbeat_timeout + maintenance)",
                 heartbeat_ms / 1000 + SCENARIO_MAINTENANCE_WAIT_S,
                 production_ms / 1000 + DRAMATIQ_MAINTENANCE_WAIT_S,
                 "dramatiq/brokers/redis/dispatch.lua: maintenance requeues the acks sets of "
                 "broker ids whose heartbeat is older than heartbeat_timeout")


def _c(name: str, knobs: DramatiqRedisKnobs, meets: tuple[str, ...]) -> Configuration:
    return Configuration(NAME, name, knobs, meets)


DramatiqRedis.configurations = (
    # Dramatiq's defaults but the compressed clocks (scenario_env) and two threads.
    _c("dramatiq-redis", DramatiqRedisKnobs(),
       ("sigkill-worker", "sigterm-worker", "sigstop-worker", "broker-sigkill",
        "cut-worker-broker", "blackhole-worker-broker", "cut-producer-broker",
        "crash-after-effect")),
    _c("dramatiq-redis-idempotent", DramatiqRedisKnobs(idempotent=True),
       ("sigkill-worker", "sigstop-worker", "crash-after-effect")),
    # heartbeat_timeout longer than the scenario's stall (25 s): a stopped worker's messages
    # stay its own, and a dead one's wait longer. The trade between duplicates and recovery.
    _c("dramatiq-redis-heartbeat-30", DramatiqRedisKnobs(dramatiq_heartbeat_timeout_ms=30000),
       ("sigkill-worker", "sigstop-worker")),
)
BACKEND = DramatiqRedis()
