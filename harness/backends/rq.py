"""RQ (python-rq) on Redis: its forensics, what it does under faults, and the built-in
configurations that measure it.

What RQ does with a job that did not finish, read in rq 2.12's source (the version the image
pins, ``backends/rq/requirements.txt``):

* A worker takes a job with ``BLMOVE rq:queue:<q> -> rq:queue:<q>:intermediate`` (queue.py
  ``Queue.lmove``), records an execution in the StartedJobRegistry (the sorted set
  ``rq:wip:<q>``, member ``<job id>:<execution id>``, scored by an expiry time) and, with the
  default ``Worker``, forks a *work horse* that runs the job (worker/worker_classes.py
  ``Worker.fork_work_horse``); ``SimpleWorker`` runs it in its own process.
* When the work horse dies, its worker sees it at once (``Worker.monitor_work_horse``: "Work-horse
  terminated unexpectedly") and calls ``handle_job_failure``: without ``Retry`` the job goes to
  the FailedJobRegistry (``rq:failed:<q>``) and is never run again; with ``Retry(max=N)`` and
  retries left it is enqueued again (``Job.retry``; scheduled in ``rq:scheduled:<q>`` when the
  Retry has an interval).
* When the whole worker dies (or loses Redis mid-job), nobody is watching: the execution stays in
  the StartedJobRegistry until its score passes, ``get_heartbeat_ttl`` =
  ``min(job_timeout, job_monitoring_interval) + 60`` s after its last heartbeat (the 60 is fixed
  in RQ; a SimpleWorker sends none while its job runs: ``job_timeout + 60`` after the start),
  and then until some worker's maintenance runs ``clean_registries`` (at start and every
  ``maintenance_interval``, 600 s by default, checked between dequeues).
  ``StartedJobRegistry.cleanup`` then retries the job if it has retries left (``job.retries_left
  > 0``: the same ``Job.retry``) and otherwise marks it failed into the FailedJobRegistry
  (AbandonedJobError). So the cleanup does retry, but only a job enqueued with ``Retry``.
* A job that outlives ``job_timeout`` is failed (``JobTimeoutException``; retried with Retry).
  The work horse's timer is a wall-clock SIGALRM (timeouts.py ``UnixSignalDeathPenalty``), so a
  worker stopped (SIGSTOP) for longer than job_timeout fails its job the moment it resumes.
* A job a dead worker had moved into the intermediate list but not started is failed (or
  retried) by the intermediate queue's cleanup once it has been seen there twice, a minute
  apart (intermediate_queue.py ``IntermediateQueue.cleanup``).

So RQ claims at most once without ``Retry`` (nothing ever runs a job again) and at least once
with it (a dead horse's or dead worker's job is enqueued again, up to N times). A job in the
FailedJobRegistry is not held for redelivery: RQ never moves it back by itself (only ``rq
requeue`` by hand), so the forensics count it as no longer held, i.e. lost; a StartedJobRegistry
or intermediate entry is held only when its job has retries left, since otherwise all its
cleanup will do is fail it.

RQ's ``Retry`` and ``job_timeout`` are enqueue options: the producer applies them. The producer
and the workers load one settings class (``backends/rq/chaos_rq/settings.py``) from the same
``CHAOS_RQ_*`` variables, and the workers report it in their ready record.

Scenarios compress RQ's clocks so that a dead worker's job comes back within a run: job_timeout
10 s (RQ's default 180 s), job_monitoring_interval 5 s (30 s), maintenance_interval 5 s (600 s)
and worker_ttl 20 s (420 s; a worker blocks in BLMOVE for worker_ttl - 15 s between maintenance
checks). The registry entry's fixed 60 s cannot be compressed, so configurations that wait for
the cleanup drain for longer (``drain_s`` 150).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from harness.backend import Backend, Capability, Clock, Configuration, Knobs, stall_clock
from harness.backends.redisbroker import RedisForensics, lost_to_broker_kill
from harness.checker import Guarantee
from queue_chaos_agent.rq import task_id_of

if TYPE_CHECKING:
    from harness.brokers import Broker
    from harness.result import ScenarioResult

NAME = "rq"
WORKER_CLASSES = ("Worker", "SimpleWorker")
# RQ's own defaults (rq 2.12): what production runs.
RQ_JOB_TIMEOUT_S = 180
RQ_MONITORING_INTERVAL_S = 30
RQ_MAINTENANCE_INTERVAL_S = 600
RQ_WORKER_TTL_S = 420
# Fixed in get_heartbeat_ttl: a StartedJobRegistry entry outlives its last heartbeat by this.
HEARTBEAT_MARGIN_S = 60
JOB_TIMEOUT_SOURCE = "rq/queue.py Queue.DEFAULT_TIMEOUT = 180"
MONITORING_SOURCE = "rq/defaults.py DEFAULT_JOB_MONITORING_INTERVAL = 30"
MAINTENANCE_SOURCE = ("rq/defaults.py DEFAULT_MAINTENANCE_TASK_INTERVAL = 600 (clean_registries, "
                      "checked between dequeues)")
WORKER_TTL_SOURCE = "rq/defaults.py DEFAULT_WORKER_TTL = 420 (BLMOVE blocks worker_ttl - 15 s)"
ENTRY_SOURCE = ("rq/worker/base.py get_heartbeat_ttl: min(job_timeout, job_monitoring_interval) "
                "+ 60 after the execution's last heartbeat, then StartedJobRegistry.cleanup at the "
                "next maintenance")
SIMPLE_ENTRY_SOURCE = ("rq/worker/worker_classes.py SimpleWorker.get_heartbeat_ttl: job_timeout "
                       "+ 60 after the job started, then StartedJobRegistry.cleanup at the next "
                       "maintenance")
# The scenario's compressed values of the worker's clocks (handed to the workers by
# ``scenario_env``; the compose file's defaults are the same).
SCENARIO_MONITORING_INTERVAL_S = 5
SCENARIO_MAINTENANCE_INTERVAL_S = 5
SCENARIO_WORKER_TTL_S = 20
# Long enough for a dead worker's job to come back: its entry (job_timeout 10 s: 65 s after it
# started) plus a maintenance interval and a dequeue block, after a fault window and a restart.
CLEANUP_DRAIN_S = "150"
WORKER_DEATH = "worker-death"
BROKER_KIND = "broker"
STALL = "stall"
# Faults whose job was left in the StartedJobRegistry by a worker that could not finish it
# (killed whole, or cut off from Redis), so its return waited for the entry and the cleanup.
ABANDONING_KINDS = (WORKER_DEATH, "link")
# Faults that kill only the work horse when the worker forks one: its worker handles it at once.
HORSE_FAULTS = ("sigkill-pool-child", "crash-after-effect")


@dataclass(frozen=True)
class RqKnobs(Knobs):
    """RQ's durability settings as the built-in settings class reads them (``CHAOS_RQ_*``).

    ``rq_retry_max`` is ``Retry(max=N)`` on every enqueue (0: no Retry, RQ's default);
    ``rq_job_timeout`` is a scenario size (RQ's default ``RQ_JOB_TIMEOUT_S``);
    ``rq_worker_class`` is ``Worker`` (forks a work horse per job, RQ's default) or
    ``SimpleWorker`` (runs the job in the worker's own process)."""

    rq_retry_max: int = 0
    rq_job_timeout: int = 10
    rq_worker_class: str = "Worker"
    idempotent: bool = False

    def __post_init__(self) -> None:
        if self.rq_worker_class not in WORKER_CLASSES:
            raise ValueError(f"rq_worker_class={self.rq_worker_class!r}; valid: "
                             f"{', '.join(WORKER_CLASSES)}")
        if self.rq_retry_max < 0:
            raise ValueError(f"rq_retry_max={self.rq_retry_max}; valid: 0 (no Retry) or more")
        if self.rq_job_timeout < 1:
            raise ValueError(f"rq_job_timeout={self.rq_job_timeout}; valid: 1 or more")


class RqForensics(RedisForensics):
    """RQ's keys for one queue, read raw (never through RQ's registry API, whose ``count`` and
    ``get_job_ids`` run the cleanup they would observe): the queue list, the intermediate list,
    the StartedJobRegistry, the ScheduledJobRegistry and each job's hash (its
    ``retries_left``)."""

    QUEUE = "chaos"
    # Job keys reset() clears between scenarios; the workers' own keys (rq:worker:*, rq:workers*)
    # stay, so reused workers stay registered.
    JOB_KEYS = ("rq:queue:*", "rq:wip:*", "rq:failed:*", "rq:scheduled:*", "rq:finished:*",
                "rq:deferred:*", "rq:canceled:*", "rq:job:*", "rq:execution*", "rq:results:*")

    @property
    def _list(self) -> str:
        return f"rq:queue:{self.queue}"

    @property
    def _intermediate(self) -> str:
        return f"rq:queue:{self.queue}:intermediate"

    @property
    def _started(self) -> str:
        return f"rq:wip:{self.queue}"

    @property
    def _scheduled(self) -> str:
        return f"rq:scheduled:{self.queue}"

    def reset(self, idle: bool = False) -> None:
        if idle:
            self.client.flushall()
            return
        for pattern in self.JOB_KEYS:
            keys = list(self.client.scan_iter(match=pattern, count=1000))
            if keys:
                self.client.delete(*keys)

    def _retries_left(self, job_id: str) -> int:
        raw = self.client.hget(f"rq:job:{job_id}", "retries_left")
        return int(cast(bytes, raw)) if raw else 0

    def _started_entries(self) -> list[tuple[str, float]]:
        """(job id, expiry as a unix time) of every StartedJobRegistry entry."""
        entries = cast(list[tuple[bytes, float]],
                       self.client.zrange(self._started, 0, -1, withscores=True))
        return [(member.decode().split(":")[0], score) for member, score in entries]

    def _ids(self, key: str) -> list[str]:
        return [raw.decode() for raw in cast(list[bytes], self.client.lrange(key, 0, -1))]

    def empty(self) -> bool:
        """Nothing RQ will still run: no queued or scheduled job, and no intermediate or
        StartedJobRegistry entry that its cleanup would retry (one without retries left will
        only be failed: waiting for it measures nothing)."""
        if cast(int, self.client.llen(self._list)) or cast(int, self.client.zcard(self._scheduled)):
            return False
        pending = [*self._ids(self._intermediate), *(j for j, _ in self._started_entries())]
        return not any(self._retries_left(job) > 0 for job in pending)

    def holdings(self, settings: Any) -> dict[str, str]:
        held: dict[str, str] = {}
        for job in self._ids(self._list):
            held[task_id_of(job)] = f"queued in list {self._list!r}"
        for raw in cast(list[bytes], self.client.zrange(self._scheduled, 0, -1)):
            held[task_id_of(raw.decode())] = (f"scheduled for a retry in {self._scheduled!r} "
                                              "(enqueued by a worker's scheduler when due)")
        for job in self._ids(self._intermediate):
            left = self._retries_left(job)
            if left > 0:
                held[task_id_of(job)] = (
                    f"dequeued into {self._intermediate!r} and never started; the intermediate "
                    f"queue's cleanup retries it after a minute ({left} retries left)")
        now = time.time()
        for job, expiry in self._started_entries():
            left = self._retries_left(job)
            if left > 0:
                held[task_id_of(job)] = (
                    f"in the StartedJobRegistry {self._started!r} with no live run; the entry "
                    f"expires in {max(0.0, expiry - now):.0f}s, then a worker's registry cleanup "
                    f"retries it ({left} retries left)")
        return held


class Rq(Backend):
    name = NAME
    title = "RQ on Redis"
    kind = "rq"
    broker = "redis"
    image = "rq"
    knobs_class = RqKnobs
    libraries = ("rq", "redis")
    capabilities = frozenset({Capability.BROKERED})

    def forensics(self, port: int, queue: str | None = None,
                  nodes: Mapping[str, int] | None = None) -> Broker:
        return RqForensics(port, queue)

    def capabilities_of(self, knobs: Any) -> frozenset[Capability]:
        """Retry is what brings a job back (after its registry entry expires, a lease); the
        forking Worker runs each job in a child process a fault can kill alone."""
        found = set(self.capabilities)
        if knobs.rq_retry_max > 0:
            found |= {Capability.REDELIVERS, Capability.LEASE}
        if knobs.rq_worker_class == "Worker":
            found.add(Capability.POOL_CHILDREN)
        return frozenset(found)

    def guarantee(self, knobs: Any) -> Guarantee:
        if knobs.rq_retry_max == 0:
            return Guarantee.AT_MOST_ONCE
        return Guarantee.EFFECTIVELY_ONCE if knobs.idempotent else Guarantee.AT_LEAST_ONCE

    def read_knobs(self, effective: Mapping[str, Any], idempotent: bool) -> dict[str, Any]:
        return {"rq_retry_max": int(effective["retry_max"]),
                "rq_job_timeout": int(effective["job_timeout"]),
                "rq_worker_class": str(effective["worker_class"]), "idempotent": idempotent}

    def describe(self, knobs: Any) -> str:
        retry = (f"Retry(max={knobs.rq_retry_max})" if knobs.rq_retry_max
                 else "no Retry (RQ's default)")
        worker = ("Worker (forks a work horse per job)" if knobs.rq_worker_class == "Worker"
                  else "SimpleWorker (the job runs in the worker's own process)")
        text = f"RQ {worker}, {retry}, job_timeout={knobs.rq_job_timeout}s"
        return text + (", idempotency key checked before the side effect"
                       if knobs.idempotent else "")

    def scenario_env(self, settings: Any) -> dict[str, str]:
        """The worker's compressed clocks (``clocks`` states them against RQ's defaults)."""
        return {"CHAOS_RQ_MONITORING_INTERVAL": str(SCENARIO_MONITORING_INTERVAL_S),
                "CHAOS_RQ_MAINTENANCE_INTERVAL": str(SCENARIO_MAINTENANCE_INTERVAL_S),
                "CHAOS_RQ_WORKER_TTL": str(SCENARIO_WORKER_TTL_S)}

    def clocks(self, settings: Mapping[str, Any]) -> tuple[Clock, ...]:
        """job_timeout as the built-in configurations run it (``RqKnobs``' default), the worker's
        clocks, and the StartedJobRegistry entry's lifetime and cleanup they make up."""
        timeout = float(RqKnobs().rq_job_timeout)
        job_timeout = _job_timeout(timeout)
        stall = stall_clock(settings, job_timeout)
        return (
            job_timeout,
            Clock("job_monitoring_interval", SCENARIO_MONITORING_INTERVAL_S,
                  RQ_MONITORING_INTERVAL_S, MONITORING_SOURCE),
            Clock("maintenance_interval", SCENARIO_MAINTENANCE_INTERVAL_S,
                  RQ_MAINTENANCE_INTERVAL_S, MAINTENANCE_SOURCE),
            Clock("worker_ttl", SCENARIO_WORKER_TTL_S, RQ_WORKER_TTL_S, WORKER_TTL_SOURCE),
            _abandoned(timeout),
            *((stall,) if stall else ()),
        )

    def recovery_clock(self, r: ScenarioResult) -> Clock | None:
        """The StartedJobRegistry entry's expiry and the cleanup after it, when the job's worker
        could not finish it and nobody watched it: the whole worker killed (or, with
        SimpleWorker, crashed), or cut off from Redis. After a SIGSTOP, job_timeout: the work
        horse's death penalty is a wall-clock alarm, which fires once it resumes if the stall
        outlasted it, and fails the job (retried with Retry). Not when only a forking Worker's
        work horse died (its worker retries it at once), nor after a warm shutdown (the job
        finishes), nor after a broker fault. A team's own app runs its own clocks."""
        if not self.built_in(r.configuration):
            return None
        if r.fault_kind == STALL:
            return _job_timeout(float(r.knobs.get("rq_job_timeout", RqKnobs().rq_job_timeout)))
        if r.fault_kind not in ABANDONING_KINDS:
            return None
        if r.fault == "sigterm-worker":
            return None
        if r.fault in HORSE_FAULTS and r.knobs.get("rq_worker_class", "Worker") == "Worker":
            return None
        return _abandoned(float(r.knobs.get("rq_job_timeout", RqKnobs().rq_job_timeout)),
                          r.knobs.get("rq_worker_class", "Worker") == "Worker")

    def must_lose(self, knobs: Any, fault_kind: str, fault: str) -> bool:
        """Without Retry nothing runs a job again: a job whose worker or work horse is killed
        mid-run is failed, certainly lost."""
        return knobs.rq_retry_max == 0 and fault in ("sigkill-worker", "sigkill-pool-child")

    def note(self, settings: Any) -> str:
        entry = _abandoned(float(RqKnobs().rq_job_timeout))
        return ("A dead work horse's job is failed by its worker at once (retried with Retry); a "
                "dead worker's job waits in the StartedJobRegistry until its entry expires and a "
                f"worker's registry cleanup fails or retries it ({entry.scenario_s:g}s here, "
                f"up to {entry.production_s:g}s with RQ's defaults).")

    def lost(self, r: ScenarioResult, n: int) -> str | None:
        said = lost_to_broker_kill(r, n)
        if said:
            return said
        if r.knobs.get("rq_retry_max"):
            return None
        horse = (r.fault in HORSE_FAULTS
                 and r.knobs.get("rq_worker_class", "Worker") == "Worker")
        if horse:
            return (f"{n} lost: the work horse died mid-job and its worker, without Retry, moved "
                    "the job to the FailedJobRegistry (work-horse terminated unexpectedly), from "
                    "which RQ never runs it again. `Retry(max=N)` on enqueue re-enqueues it.")
        if r.fault_kind == STALL:
            timeout = r.knobs.get("rq_job_timeout")
            return (f"{n} lost: the worker was stopped for longer than job_timeout ({timeout}s); "
                    "the work horse's death penalty is a wall-clock alarm (SIGALRM), so once it "
                    "resumed the job was failed (JobTimeoutException) into the FailedJobRegistry, "
                    "and without Retry RQ never runs it again. A job_timeout longer than any "
                    "stall (RQ's default is 180 s), or `Retry(max=N)`, keeps it.")
        if r.fault_kind in ABANDONING_KINDS:
            return (f"{n} lost: their worker died (or lost Redis) mid-job, leaving them in the "
                    "StartedJobRegistry; without Retry its cleanup only moves them to the "
                    "FailedJobRegistry (AbandonedJobError), from which RQ never runs them "
                    "again. `Retry(max=N)` on enqueue makes the cleanup re-enqueue them.")
        return None

    def lost_unstarted(self, r: ScenarioResult, count: str) -> str | None:
        """Jobs a dead worker had moved into its queue's intermediate list (BLMOVE) but not
        started: the intermediate queue's cleanup fails them, or retries them with Retry."""
        if r.fault_kind not in (WORKER_DEATH, "link"):
            return None
        return (f"{count} lost before their first start: {r.fault_target} had moved them into "
                "the queue's intermediate list (BLMOVE) and died before running them; RQ's "
                "intermediate-queue cleanup fails such jobs after a minute, and retries them only "
                "with Retry.")

    def duplicate_cause(self, r: ScenarioResult) -> str | None:
        horse = (r.fault in HORSE_FAULTS
                 and r.knobs.get("rq_worker_class", "Worker") == "Worker")
        if horse:
            return ("the work horse exited after the side effect but before RQ recorded the job "
                    "finished; its worker saw the horse die (work-horse terminated unexpectedly) "
                    "and, with Retry, enqueued the job again")
        if r.fault_kind == "link":
            return ("the job ran to its side effect while its worker was cut off from Redis, so "
                    "RQ never recorded it finished; its StartedJobRegistry entry expired and a "
                    "worker's registry cleanup, with Retry, enqueued it again")
        if r.fault_kind == STALL:
            return ("the worker was stopped for longer than the job's StartedJobRegistry entry "
                    "lived; another worker's cleanup, with Retry, enqueued it again, and the "
                    "stopped worker finished its own run after SIGCONT")
        return ("the job's StartedJobRegistry entry expired and a worker's registry cleanup, with "
                "Retry, enqueued it again though its first run had done its side effect")

    def fresh_redeliveries(self, r: ScenarioResult, n: int) -> str | None:
        return (f"{n} retried before their first start: a dead worker had dequeued them (the "
                "intermediate list) without running them, and RQ's cleanup enqueued them again "
                "(Retry), counting a retry.")

    def retried(self) -> str:
        return "retried it (Retry)"


def _job_timeout(scenario_s: float) -> Clock:
    return Clock("job_timeout", scenario_s, RQ_JOB_TIMEOUT_S, JOB_TIMEOUT_SOURCE)


def _abandoned(job_timeout_s: float, forks: bool = True) -> Clock:
    """How long a dead worker's job waits before a cleanup can fail or retry it: its registry
    entry's lifetime after it started (``Worker.get_heartbeat_ttl``: ``min(job_timeout,
    job_monitoring_interval) + 60``; ``SimpleWorker``, which sends no heartbeat while its job
    runs: ``job_timeout + 60``) and one maintenance interval more (the dequeue block adds up to
    worker_ttl - 15 s on an idle worker, left out)."""
    if forks:
        scenario = min(job_timeout_s, SCENARIO_MONITORING_INTERVAL_S) + HEARTBEAT_MARGIN_S
        production = min(RQ_JOB_TIMEOUT_S, RQ_MONITORING_INTERVAL_S) + HEARTBEAT_MARGIN_S
    else:
        scenario = job_timeout_s + HEARTBEAT_MARGIN_S
        production = RQ_JOB_TIMEOUT_S + HEARTBEAT_MARGIN_S
    return Clock("abandoned-job cleanup (StartedJobRegistry entry + maintenance interval)",
                 scenario + SCENARIO_MAINTENANCE_INTERVAL_S,
                 production + RQ_MAINTENANCE_INTERVAL_S,
                 ENTRY_SOURCE if forks else SIMPLE_ENTRY_SOURCE)


def _c(name: str, knobs: RqKnobs, meets: tuple[str, ...], **kw: Any) -> Configuration:
    return Configuration(NAME, name, knobs, meets, **kw)


# With Retry a dead worker's job comes back only after its registry entry (at least 60 s):
# those configurations drain for longer, so that the recovery is seen rather than called stuck.
_CLEANUP = (("drain_s", CLEANUP_DRAIN_S),)

Rq.configurations = (
    # RQ's defaults: the forking Worker, no Retry; job_timeout is a scenario size (RqKnobs).
    _c("rq-no-retry", RqKnobs(),
       ("sigkill-worker", "sigkill-pool-child", "sigterm-worker", "sigstop-worker",
        "cut-worker-broker", "crash-after-effect")),
    _c("rq-retry-3", RqKnobs(rq_retry_max=3),
       ("sigkill-worker", "sigkill-pool-child", "sigterm-worker", "sigstop-worker",
        "broker-sigkill", "cut-worker-broker", "cut-producer-broker", "crash-after-effect"),
       overrides=_CLEANUP),
    _c("rq-retry-3-idempotent", RqKnobs(rq_retry_max=3, idempotent=True),
       ("sigkill-worker", "crash-after-effect"), overrides=_CLEANUP),
    _c("rq-simple-worker-retry-3", RqKnobs(rq_retry_max=3, rq_worker_class="SimpleWorker"),
       ("sigkill-worker", "crash-after-effect"), overrides=_CLEANUP),
)
BACKEND = Rq()
