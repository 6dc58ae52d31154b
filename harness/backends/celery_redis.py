"""Celery on Redis: kombu's Redis transport, its forensics, what it does under faults, and the
built-in configurations that measure it.

kombu's Redis transport emulates acknowledgements: a worker takes a message off the queue's list
with BRPOP, then records it in the ``unacked`` hash; a live worker's sweep restores entries older
than the visibility timeout (kombu/transport/redis.py). Both facts explain what the runs show.
Between the two steps the message is in no key of Redis at all (the BRPOP window,
``KOMBU_BRPOP_WINDOW``; docs/kombu-brpop-window.md): the ``brpop-window-kill`` fault widens that
window and kills a worker inside it, and ``CeleryRedisForensics.handover`` is how it sees a
message there.

Scenarios compress kombu's clocks so that a redelivery happens inside a run: a visibility timeout
of 15 s where kombu's default is an hour, a restore sweep every 2 s where kombu's is about every
100 s. ``clocks`` states both (and a SIGSTOP window that outlasts the timeout) with kombu's
defaults; ``recovery_clock`` says when the visibility timeout is what a recovery waited for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, cast

from harness.backend import Capability, Clock, Configuration, stall_clock
from harness.backends.celery import (
    GROUP_SIGTERM,
    WARM_RESTARTS,
    WARM_SHUTDOWNS,
    WORKER_DEATH,
    Celery,
    CeleryKnobs,
)
from harness.backends.redisbroker import Handover, RedisForensics, lost_to_broker_kill

if TYPE_CHECKING:
    from harness.brokers import Broker
    from harness.result import ScenarioResult

NAME = "celery-redis"
LINK_KINDS = ("link", "stall")
# kombu's Redis transport defaults (kombu/transport/redis.py, Channel): what production runs.
KOMBU_VISIBILITY_TIMEOUT_S = 3600
KOMBU_VISIBILITY_SOURCE = "kombu/transport/redis.py Channel.visibility_timeout = 3600"
# The periodic restore_visible sweep: a 10 s timer that scans Redis on every 10th call
# (unacked_restore_interval 10 x unacked_restore_throttle 10 in kombu's main branch; a fixed
# 10 s timer and restore_visible(interval=10) in 5.6).
KOMBU_SWEEP_S = 100
KOMBU_SWEEP_SOURCE = ("kombu/transport/redis.py: a restore_visible call every 10 s, scanning on "
                      "every 10th (unacked_restore_interval x unacked_restore_throttle)")
# Faults whose task died with its pool child while the worker's main process, holding the
# connection, lived on: it acknowledges or requeues the message at once (WorkerLostError;
# task_reject_on_worker_lost requeues), never through the visibility timeout.
POOL_CHILD_FAULTS = ("sigkill-pool-child", "crash-after-effect")
# The BRPOP window, in kombu 5.7.0 (the wheel the Celery image installs): Channel._brpop_start
# sends BRPOP (kombu/transport/redis.py:1459-1474) and Redis removes the message from the list
# when it answers; Channel._brpop_read parses the reply and hands the message to
# Transport._deliver (redis.py:1476-1491, virtual/base.py:1016-1027), whose basic_consume
# callback calls QoS.append (virtual/base.py:640-648), which only then writes the
# unacked_index and unacked entries (redis.py:476-491). restore_visible restores only what the
# unacked_index holds (redis.py:523-549), so a message lost between the pop and that write
# (the worker killed, the reply lost) is in no key at all, whatever acks late says.
KOMBU_BRPOP_WINDOW = ("kombu/transport/redis.py Channel._brpop_start sends BRPOP; the message is "
                      "recorded in 'unacked' only later, by QoS.append, after _brpop_read has "
                      "read the reply")
BRPOP_WINDOW_FAULT = "brpop-window-kill"


@dataclass(frozen=True)
class CeleryRedisKnobs(CeleryKnobs):
    """Celery's settings plus the Redis broker's persistence."""

    redis_appendonly: str = "no"
    redis_appendfsync: str = "everysec"


def _celery_task_id(message: Any) -> str | None:
    if isinstance(message, dict):
        headers = message.get("headers") or {}
        task = headers.get("id") or (message.get("properties") or {}).get("correlation_id")
        return str(task) if task else None
    return None



class CeleryRedisForensics(RedisForensics):
    """kombu's Redis transport: the queue's list (waiting) and the ``unacked`` hash (delivered,
    not acknowledged; restored once older than the visibility timeout by a live worker's sweep)."""

    QUEUE = "chaos"
    UNACKED = "unacked"

    def empty(self) -> bool:
        return (cast(int, self.client.llen(self.queue)) == 0
                and cast(int, self.client.hlen(self.UNACKED)) == 0)

    def holdings(self, settings: Any) -> dict[str, str]:
        held: dict[str, str] = {}
        for task in _queued_tasks(cast(list[bytes], self.client.lrange(self.queue, 0, -1))):
            held[task] = f"queued in list {self.queue!r}"
        for task in _unacked_tasks(cast(list[bytes], self.client.hvals(self.UNACKED))):
            held[task] = (f"unacked (hash {self.UNACKED!r}): restored after "
                          f"visibility_timeout={settings.visibility_timeout_s}s by a live "
                          "worker's sweep")
        return held

    def handover(self) -> Handover:
        """The tasks in the queue's list and in the ``unacked`` hash, read in one MULTI/EXEC, so
        that no message moving from one to the other (a healthy worker's pop and record) can
        look as if it were in neither."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.lrange(self.queue, 0, -1)
            pipe.hvals(self.UNACKED)
            queued, unacked = cast(list[list[bytes]], pipe.execute())
        return Handover(frozenset(_queued_tasks(queued)), frozenset(_unacked_tasks(unacked)))


def _queued_tasks(raws: list[bytes]) -> list[str]:
    """The task ids of the messages in kombu's queue list (each one a JSON message)."""
    return [task for raw in raws if (task := _celery_task_id(json.loads(raw)))]


def _unacked_tasks(raws: list[bytes]) -> list[str]:
    """The task ids of the entries of kombu's ``unacked`` hash ([message, exchange, key])."""
    return [task for raw in raws if (task := _celery_task_id(json.loads(raw)[0]))]



class CeleryRedis(Celery):
    name = NAME
    title = "Celery on Redis"
    broker = "redis"
    knobs_class = CeleryRedisKnobs
    libraries = (*Celery.libraries, "redis")  # kombu's Redis transport drives redis-py
    capabilities = frozenset({Capability.BROKERED, Capability.REDELIVERS,
                              Capability.VISIBILITY_TIMEOUT})
    # Where its transport pops a message before recording it as unacknowledged: what the
    # brpop-window-kill fault needs of a backend (harness/faults.py, BrpopWindowKill).
    pop_window: ClassVar[str] = KOMBU_BRPOP_WINDOW

    def forensics(self, port: int, queue: str | None = None,
                  nodes: Mapping[str, int] | None = None) -> Broker:
        return CeleryRedisForensics(port, queue)

    def broker_parts(self, knobs: Any) -> list[str]:
        if knobs.redis_appendonly == "yes":
            return [f"Redis appendonly yes, appendfsync {knobs.redis_appendfsync}"]
        return []

    def clocks(self, settings: Mapping[str, Any]) -> tuple[Clock, ...]:
        visibility = _visibility(float(settings["visibility_timeout_s"]))
        sweep = Clock("restore sweep period", float(settings["restore_interval_s"]),
                      KOMBU_SWEEP_S, KOMBU_SWEEP_SOURCE)
        stall = stall_clock(settings, visibility)
        return (visibility, sweep, *((stall,) if stall else ()))

    def recovery_clock(self, r: ScenarioResult) -> Clock | None:
        """The visibility timeout, when a message came back only through the sweep: its
        worker died whole (SIGKILL of the worker; a crash of the solo or threads pool's only
        process), stalled, or lost its link, leaving it in the ``unacked`` hash. Not after a warm
        shutdown, one or a series, even one whose pool children died with it (the main process
        closes its channel, and kombu restores a closing channel's unacked messages at once),
        nor when only a pool child died (the main process requeues or acknowledges it at once),
        nor after a broker fault (a reconnecting channel may restore them at once, or the sweep
        later: not established, so no clock is claimed). A team's own app runs its own timeout,
        which is its production one: nothing was compressed."""
        if not self.built_in(r.configuration):
            return None
        if r.fault_kind in LINK_KINDS:
            governed = True
        elif r.fault_kind == WORKER_DEATH:
            child_only = (r.fault in POOL_CHILD_FAULTS
                          and r.knobs.get("pool", "prefork") == "prefork")
            governed = r.fault not in WARM_SHUTDOWNS and not child_only
        else:
            governed = False
        if not governed:
            return None
        ran = r.effective.get("visibility_timeout") or r.settings.get("visibility_timeout_s")
        return _visibility(float(ran)) if ran else None

    def note(self, settings: Any) -> str:
        visibility, sweep = self.clocks(settings)[:2]
        return (f"Redis visibility timeout {visibility.scenario_s:g}s, swept every "
                f"{sweep.scenario_s:g}s (production defaults: {visibility.production_s:g}s, "
                f"~{sweep.production_s:g}s).")

    def lost(self, r: ScenarioResult, n: int) -> str | None:
        said = lost_to_broker_kill(r, n) or super().lost(r, n)
        if said:
            return said
        if r.fault == GROUP_SIGTERM:
            return (f"{n} lost: SIGTERM reached {r.fault_target}'s pool children with its main "
                    "process, so the children died mid-task (WorkerLostError, signal 15) while "
                    "the main process was in its warm shutdown, and their unacknowledged "
                    "messages were neither requeued nor restored to the queue (kombu#1836).")
        if r.fault_kind in LINK_KINDS:
            return (f"{n} lost: Redis had handed them to the stopped or cut-off worker (popped "
                    "from the queue) without their ever reaching the unacked hash, so no "
                    "visibility timeout could bring them back.")
        return None

    def lost_unstarted(self, r: ScenarioResult, count: str) -> str | None:
        """The BRPOP window: the message leaves the queue with BRPOP and only afterwards does
        kombu, in the worker, record it in the unacked hash (kombu/transport/redis.py
        ``_brpop_read``, then the virtual transport's consume callback), so a kill in between
        loses it whatever acks early or late says."""
        if r.fault_kind != WORKER_DEATH:
            return None
        if r.fault == WARM_RESTARTS:
            return (f"{count} lost before their first start across warm restarts of "
                    f"{r.fault_target}: Redis answered the stopping worker's pending BRPOP (the "
                    "message left the queue's list) and the worker exited without recording "
                    "it in the unacked hash, so nothing could restore it (celery#4354, "
                    "celery#7950; kombu#1733 was meant to close this).")
        if r.fault == BRPOP_WINDOW_FAULT:
            return (f"{count} lost before their first start: the BRPOP window, reproduced. "
                    f"With Redis's replies to {r.fault_target} throttled by Toxiproxy, Redis "
                    "had taken the message off the queue's list (BRPOP) while kombu had not yet "
                    "recorded it in the unacked hash; the harness saw it there on the broker, "
                    "froze the worker, saw it stay there, and killed the worker, so no "
                    "visibility timeout could bring it back: acks late does not close this "
                    "window (docs/kombu-brpop-window.md).")
        return (f"{count} lost before their first start: Redis had handed them to "
                f"{r.fault_target} "
                "(BRPOP takes a message off the queue) and the kill came before kombu recorded "
                "them in the unacked hash, so no visibility timeout could bring them back; acks "
                "late does not close this window (RabbitMQ, which tracks a delivery itself until "
                "it is acknowledged, has none).")

    def duplicate_cause(self, r: ScenarioResult) -> str | None:
        vt = r.settings.get("visibility_timeout_s")
        if r.fault_kind == "stall":
            return (f"while the worker was stopped, a live worker's sweep restored the messages "
                    f"it held unacknowledged (older than the visibility timeout, {vt}s) and ran "
                    "them; after SIGCONT the stopped worker ran its own copies too")
        said = super().duplicate_cause(r)
        if said:
            return said
        if r.fault_kind == "link":
            return ("the worker finished tasks while cut off from the broker, so their "
                    "acknowledgements were lost; Redis restored them after the visibility "
                    f"timeout ({vt}s) and another worker ran them again")
        return (f"a redelivery after the visibility timeout ({vt}s) ran a task whose first run "
                "had already done its side effect")

    def fresh_redeliveries(self, r: ScenarioResult, n: int) -> str | None:
        if r.fault in WARM_SHUTDOWNS:
            return (f"{n} redelivered before their first start: the worker had prefetched them "
                    "(reserved, unacknowledged) and gave them back to Redis at warm shutdown "
                    "(kombu restores a channel's unacknowledged messages when it closes), so "
                    "another worker ran them without waiting for the visibility timeout.")
        return (f"{n} redelivered before their first start: the worker had prefetched them "
                "(reserved, unacknowledged) when it lost them; Redis restored them only after "
                f"the visibility timeout ({r.settings.get('visibility_timeout_s')}s). A lower "
                "`worker_prefetch_multiplier` holds fewer such tasks.")


def _visibility(scenario_s: float) -> Clock:
    return Clock("visibility timeout", scenario_s, KOMBU_VISIBILITY_TIMEOUT_S,
                 KOMBU_VISIBILITY_SOURCE)


def _late(prefetch: int = 1, **knobs: Any) -> CeleryRedisKnobs:
    return CeleryRedisKnobs(acks_late=True, reject_on_worker_lost=True,
                                prefetch_multiplier=prefetch, **knobs)


def _c(name: str, knobs: CeleryRedisKnobs, meets: tuple[str, ...], **kw: Any) -> Configuration:
    return Configuration(NAME, name, knobs, meets, **kw)


CeleryRedis.configurations = (
    _c("acks-early-prefetch-1", CeleryRedisKnobs(prefetch_multiplier=1),
       ("sigkill-worker", "sigkill-pool-child", "crash-after-effect")),
    _c("acks-early-prefetch-4", CeleryRedisKnobs(prefetch_multiplier=4),
       ("sigkill-worker", "sigterm-worker", "sigstop-worker", "cut-worker-broker",
        "blackhole-worker-broker")),
    # brpop-window-kill: the BRPOP window reproduced (docs/kombu-brpop-window.md), one scenario
    # of about 20 s that keeps watching whether a kombu release closes it.
    _c("acks-late-prefetch-1", _late(1),
       ("sigkill-worker", "sigkill-pool-child", "sigstop-worker", "broker-sigkill",
        "broker-restart", "cut-worker-broker", "cut-producer-broker", "crash-after-effect",
        BRPOP_WINDOW_FAULT)),
    _c("acks-late-prefetch-4", _late(4),
       ("sigkill-worker", "sigterm-worker", "cut-worker-broker", "blackhole-worker-broker",
        "latency-worker-broker")),
    _c("acks-late-prefetch-16", _late(16), ("sigkill-worker",)),
    _c("acks-late-no-reject", CeleryRedisKnobs(acks_late=True, prefetch_multiplier=1),
       ("sigkill-pool-child",)),
    _c("acks-late-threads", _late(1, pool="threads"), ("sigkill-worker",)),
    _c("acks-early-concurrency-4", CeleryRedisKnobs(prefetch_multiplier=1, concurrency=4),
       ("sigkill-worker",)),
    _c("acks-late-solo", _late(1, pool="solo", concurrency=1),
       ("sigkill-worker", "sigterm-worker", "crash-after-effect")),
    _c("acks-late-vt-120", _late(1), ("sigkill-worker",),
       overrides=(("visibility_timeout_s", "120"),),
       note="a visibility timeout longer than the drain deadline"),
    _c("acks-late-idempotent", _late(1, idempotent=True),
       ("sigkill-worker", "sigkill-pool-child", "crash-after-effect")),
    _c("acks-late-aof-everysec", _late(1, redis_appendonly="yes", redis_appendfsync="everysec"),
       ("broker-sigkill", "broker-restart")),
    _c("acks-late-aof-always", _late(1, redis_appendonly="yes", redis_appendfsync="always"),
       ("broker-sigkill",)),
)
BACKEND = CeleryRedis()
