"""Faults (Jepsen's nemesis): each one injects at a target and heals it, with real signals, real
container kills and real Toxiproxy toxics.

Every fault fires from observed state (harness/schedule.py): a worker fault when its target runs
a task, the others when some worker does. ``inject`` and ``heal`` must each return within the
scenario's bounds; the time between them is the fault's window (a scenario setting), except where
the fault ends by itself (a SIGTERMed worker exiting) and the harness waits for that instead.

To add a fault: a subclass of ``Fault`` (harness/fault.py) registered in ``FAULTS``; say what it
targets, which capabilities it needs of a backend (never backend names: a new backend with those
capabilities meets it at once) and its kind (which explanations and settings apply). Faults on a
clustered broker's nodes live in harness/clusterfaults.py.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Mapping, Sequence
from typing import Any

from harness.backend import Capability, Configuration
from harness.backends.redisbroker import AckEmulation
from harness.clusterfaults import CLUSTER_FAULTS
from harness.fault import Fault
from harness.observe import in_flight_at, killed_mid_task, snapshot
from harness.schedule import PopWindowHit, PopWindowWatch, stays_in_pop_window, wait_for_pop_window
from harness.waits import WaitTimeout, until
from harness.world import World
from queue_chaos_agent import taskbody


class NoFault(Fault):
    name = "none"
    description = "no fault: the control run"
    kind = "none"
    control = True

    def inject(self, world: World, target: str) -> None:
        return None

    def touches(self, world: World, target: str) -> set[str]:
        return set()


class SigkillWorker(Fault):
    name = "sigkill-worker"
    description = ("SIGKILL of a whole worker (main process and any pool children) mid-task; "
                   "started again after the fault window, as a supervisor would")

    def inject(self, world: World, target: str) -> None:
        world.cluster.signal(target, "SIGKILL")

    def interrupted(self, records: list[dict[str, Any]], target: str | None,
                    fired_t: float) -> list[str]:
        # Only what never ended: a task that finished before the signal landed was not caught.
        return killed_mid_task(records, target, fired_t) if target else []


class SigkillPoolChild(Fault):
    name = "sigkill-pool-child"
    description = ("SIGKILL of the one prefork pool child running a task, while the worker's "
                   "main process lives on")
    needs = frozenset({Capability.POOL_CHILDREN})

    def inject(self, world: World, target: str) -> None:
        pid = world.pid_running(target)
        world.cluster.kill_process(target, pid, signal.SIGKILL)
        # Its execution will never end: say so, or the drain would wait for it.
        world.note("process_killed", worker=target, killed_pid=pid)

    def interrupted(self, records: list[dict[str, Any]], target: str | None,
                    fired_t: float) -> list[str]:
        # Only the killed child's own unfinished execution: the main process and the other
        # children live on, and the child may have finished its task just before the signal.
        kills = [r for r in records if r.get("kind") == "process_killed"
                 and r.get("worker") == target]
        return sorted({task for kill in kills for task in killed_mid_task(
            records, kill["worker"], kill["t"], kill["killed_pid"])})


class SigtermWorker(Fault):
    name = "sigterm-worker"
    description = ("SIGTERM (warm shutdown) of a worker with tasks in flight; the harness waits "
                   "for it to exit, then starts it again")

    def inject(self, world: World, target: str) -> None:
        world.cluster.signal(target, "SIGTERM")

    def window(self, settings: Any) -> float:
        return 0.0  # the shutdown takes as long as it takes: heal waits for the exit

    def heal(self, world: World, target: str) -> None:
        world.wait_exited(target)


class SigtermWorkerGroup(Fault):
    """SIGTERM to every process of a worker at once: its main process and each pool child.

    ``sigterm-worker`` signals the main process only, which then shuts its pool down in order
    (a warm shutdown: running tasks finish). A container stopped without an init (``docker
    stop`` of a process group, a Kubernetes pod's termination, ``kill -TERM -<pgid>``) delivers
    the signal to the children as well, so they die mid-task (billiard's ``WorkerLostError:
    Worker exited prematurely: signal 15 (SIGTERM)``) while the main process is still in its
    warm shutdown: what kombu#1836 reports. Only a backend whose tasks run in pool children has
    anything more to signal than ``sigterm-worker`` does, hence ``POOL_CHILDREN``.
    """

    name = "sigterm-worker-group"
    description = ("SIGTERM to a worker's main process and every pool child at the same moment "
                   "mid-task, as docker stop or a pod's termination delivers it to a process "
                   "group without an init (kill -TERM -<pgid>); the harness waits for the "
                   "worker to exit, then starts it again")
    needs = frozenset({Capability.POOL_CHILDREN})
    in_matrix = False  # run by the kombu-1836 reproduction (harness/reproductions.py)

    def unmet(self, configuration: Configuration) -> str:
        return (f"{super().unmet(configuration)}: its tasks run in the worker's main process, "
                "where this fault is sigterm-worker")

    def inject(self, world: World, target: str) -> None:
        world.cluster.signal_all(target, signal.SIGTERM)

    def window(self, settings: Any) -> float:
        return 0.0  # as sigterm-worker: heal waits for the exit, however long it takes

    def heal(self, world: World, target: str) -> None:
        world.wait_exited(target)

    def interrupted(self, records: list[dict[str, Any]], target: str | None,
                    fired_t: float) -> list[str]:
        # The children die: what they ran never ends (a task the warm shutdown let finish, or
        # one that ended just before the signal, was not interrupted).
        return killed_mid_task(records, target, fired_t) if target else []


class WarmRestarts(Fault):
    """Warm restarts of one worker in a row while the producer keeps enqueuing (celery#4354,
    #7950): SIGTERM, wait for the worker to exit, start it again, wait until it is ready and
    runs a task again, ``RESTARTS`` times.

    A warm shutdown finishes the tasks it runs and gives back what it reserved, so no task
    should be lost; what the threads report is the shutdown racing the consumer's pending fetch
    (kombu's BRPOP answered while the worker stops, the message taken off the queue and never
    recorded). One shutdown rarely lands in that race; a series of them, each mid-task with
    submissions arriving, gives it many chances (celery#4354's reporter needed up to 20
    restarts). Each restart waits for the worker to run a task again (observed in the ledger,
    never a timer), for at most ``BUSY_S``: past it the submissions are over and the series ends
    early.
    The whole series is bounded by ``TOTAL_S``; each step by the world's own waits.

    Each restart is a ``warm_restart`` record (when the SIGTERM went, what was in flight);
    ``interrupted`` is every task in flight at any of them. Applies to a brokered backend: the
    race is a consumer's fetch from a broker.
    """

    name = "warm-restarts"
    description = ("warm restarts of a worker in a row (SIGTERM, wait for the exit, start it "
                   "again, wait until it runs a task again) while the producer keeps enqueuing, "
                   "at most 20")
    needs = frozenset({Capability.BROKERED})
    in_matrix = False  # a series of restarts: run by celery-4354 and celery-7950 only
    RESTARTS = 20  # celery#4354's reporter: up to 20 restarts were often enough to see it
    BUSY_S = 15.0  # a restarted worker runs a task again within it while submissions last
    TOTAL_S = 300.0  # 20 restarts of about 5 s each, with room to spare
    RECORD = "warm_restart"

    def window(self, settings: Any) -> float:
        return 0.0  # the series ends by itself; the worker is running again when it does

    def inject(self, world: World, target: str) -> None:
        ledger_dir = world.ledger_dir
        assert ledger_dir is not None
        deadline = time.monotonic() + self.TOTAL_S

        def busy() -> list[str]:
            return snapshot(ledger_dir).running.get(target, [])

        done, reason = 0, f"all {self.RESTARTS} done"
        for restart in range(1, self.RESTARTS + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                reason = f"the series' bound of {self.TOTAL_S:g}s ran out"
                break
            if restart > 1:
                try:  # mid-task again, as the first one was (the schedule's trigger)
                    until(lambda: bool(busy()), what=f"{target} to run a task again",
                          timeout_s=min(self.BUSY_S, left), interval_s=0.05)
                except WaitTimeout:
                    reason = f"{target} ran no task within {self.BUSY_S:g}s of its restart"
                    break
            world.note(self.RECORD, worker=target, restart=restart, in_flight=sorted(busy()))
            world.cluster.signal(target, "SIGTERM")
            world.wait_exited(target)
            since = world.clock()
            world.cluster.restart(target)
            world.wait_worker_ready(target, since)
            done = restart
        world.note("warm_restarts_ended", worker=target, restarts=done, reason=reason)

    def interrupted(self, records: list[dict[str, Any]], target: str | None,
                    fired_t: float) -> list[str]:
        """Every task in flight on ``target`` at any of its restarts since ``fired_t``."""
        restarts = [float(r["t"]) for r in records
                    if r.get("kind") == self.RECORD and r.get("worker") == target
                    and float(r["t"]) >= fired_t]
        return sorted({task for t in restarts for task in in_flight_at(records, target, t)})


class SigstopWorker(Fault):
    name = "sigstop-worker"
    description = ("SIGSTOP of every process of a worker for longer than the backend's "
                   "visibility timeout or lease, then SIGCONT")
    kind = "stall"

    def window(self, settings: Any) -> float:
        return float(settings.stop_window_s)

    def inject(self, world: World, target: str) -> None:
        world.cluster.signal_all(target, signal.SIGSTOP)

    def heal(self, world: World, target: str) -> None:
        world.cluster.signal_all(target, signal.SIGCONT)


class BrokerKill(Fault):
    name = "broker-sigkill"
    description = "SIGKILL of the broker mid-task, restarted after the fault window"
    kind = "broker"
    target = "broker"
    needs = frozenset({Capability.BROKERED})

    def inject(self, world: World, target: str) -> None:
        world.cluster.signal(target, "SIGKILL")

    def heal(self, world: World, target: str) -> None:
        world.restart_broker()

    def touches(self, world: World, target: str) -> set[str]:
        return {target, *world.workers, world.producer_service()}


class BrokerRestart(BrokerKill):
    name = "broker-restart"
    description = ("graceful restart of the broker (SIGTERM, wait for it to exit) mid-task, "
                   "started again after the fault window")

    def inject(self, world: World, target: str) -> None:
        world.cluster.signal(target, "SIGTERM")
        world.wait_exited(target)


class _WorkerLink(Fault):
    kind = "link"
    needs = frozenset({Capability.BROKERED})

    def heal(self, world: World, target: str) -> None:
        world.proxies.clear(world.proxy_of(target))


class CutWorkerBroker(_WorkerLink):
    name = "cut-worker-broker"
    description = ("the worker's connection to the broker cut through Toxiproxy (proxy "
                   "disabled: connections reset, new ones refused), then healed")

    def inject(self, world: World, target: str) -> None:
        world.proxies.cut(world.proxy_of(target))


class BlackholeWorkerBroker(_WorkerLink):
    name = "blackhole-worker-broker"
    description = ("the worker's link to the broker silently blackholed in both directions "
                   "(Toxiproxy timeout toxic, timeout=0: bytes dropped, nothing closed); healing "
                   "removes the toxic, and Toxiproxy then closes the connections it held")

    def inject(self, world: World, target: str) -> None:
        world.proxies.blackhole(world.proxy_of(target))


class SlowWorkerBroker(_WorkerLink):
    name = "latency-worker-broker"
    description = ("latency with jitter on the worker's link to the broker, both directions "
                   "(Toxiproxy latency toxic), then healed")

    def inject(self, world: World, target: str) -> None:
        world.proxies.slow(world.proxy_of(target), latency_ms=800, jitter_ms=400)


class CutProducerBroker(Fault):
    name = "cut-producer-broker"
    description = ("the producer's connection to the broker cut through Toxiproxy while it "
                   "enqueues, then healed: submissions become indeterminate or fail")
    kind = "producer-link"
    target = "producer"
    needs = frozenset({Capability.BROKERED})

    def inject(self, world: World, target: str) -> None:
        world.proxies.cut(world.proxy_of(target))

    def heal(self, world: World, target: str) -> None:
        world.proxies.clear(world.proxy_of(target))


class CrashAfterEffect(Fault):
    name = "crash-after-effect"
    description = ("a task's process exits right after its side effect, before the task returns "
                   "to the queue library (the window in which late acknowledgement duplicates)")

    def inject(self, world: World, target: str) -> None:
        assert world.ledger_dir is not None
        taskbody.arm_crash(world.ledger_dir)

    def heal(self, world: World, target: str) -> None:
        assert world.ledger_dir is not None
        with contextlib.suppress(FileNotFoundError):
            taskbody.crash_marker(world.ledger_dir).unlink()  # never fired: disarm

    def touches(self, world: World, target: str) -> set[str]:
        return set(world.workers)

    def validity(self, counts: dict[str, int], records: Sequence[Mapping[str, Any]] = (),
                 fired_t: float | None = None) -> str | None:
        if not counts.get("crashed_runs"):
            return "no task crashed after its side effect within the fault window"
        return None


class BrpopWindowKill(Fault):
    """The BRPOP window of kombu's Redis transport, reproduced on purpose, every time.

    kombu takes a message off the queue's list with BRPOP and records it in the ``unacked``
    hash only once the whole reply has reached the worker (``CeleryRedis.pop_window``;
    docs/kombu-brpop-window.md). A worker that dies in between takes the message with it, and
    no visibility timeout brings it back, since the sweep restores only what is recorded.

    A window of microseconds is hit by chance (the matrix's kills and link faults did, now and
    then); this fault widens it and fires inside it, observed, in three steps:

    1. Widen: a Toxiproxy bandwidth toxic on the target worker's downstream link (Redis ->
       worker) at ``RATE_KBPS``: a reply carrying a message (about 1.2 KB) trickles in for
       about a second after Redis has popped it, while the short replies the worker waits for
       otherwise (acknowledgements, the restore sweep, its heartbeats' PUBLISH) pass in
       milliseconds. Latency would slow those too: with 3 s on every reply the worker's event
       loop fell behind its own timers and never popped again in 30 s (measured).
    2. See: the broker read directly on its published port (list and hash in one MULTI/EXEC)
       and the ledger; a task seen in the list and since in neither, nor started, for
       ``HOLD_S`` is a candidate.
    3. Prove, then kill: every process of the worker is frozen (SIGSTOP), so it can record
       nothing more; if the candidate then stays in the window for ``CONFIRM_S`` it is the
       frozen worker's (any other worker would record it within milliseconds), and the worker
       is SIGKILLed. Otherwise (another worker's, or recorded just before the freeze) the
       worker is thawed and the watch goes on, at most ``MAX_FREEZES`` times, within
       ``WATCH_S`` in all.

    Once the worker is gone the broker is read again and a ``brpop_window`` record is written
    per task, with ``lost_at_kill`` (still in no key). The check then shows that task lost
    before its first start (``lost_unstarted``).

    Applies to a backend whose transport has such a window (``pop_window``) and whose forensics
    can read both keys at once (``AckEmulation``): kombu's Redis transport, the built-in
    Celery-on-Redis configurations. Not to a team's target: the watch waits for the worker to
    pop a message while the toxic lasts, which a team's own task (of any length) does not
    promise within its bound.
    """

    name = "brpop-window-kill"
    description = ("SIGKILL of a worker while a message is in kombu's BRPOP window: Redis's "
                   "replies to the worker throttled to 1 KB/s (Toxiproxy bandwidth, downstream), "
                   "the worker frozen once the broker shows a message popped off the queue's "
                   "list that is neither in the unacked hash nor started, and killed if it stays "
                   "there 1 s; started again after the fault window")
    needs = frozenset({Capability.BROKERED})
    RATE_KBPS = 1  # Toxiproxy's lowest rate: a 1.2 KB message takes 1.2 s to arrive
    HOLD_S = 0.2  # in the window this long before the freeze (within the 1.2 s)
    CONFIRM_S = 1.0  # ... and this long with the worker frozen before the kill
    WATCH_S = 30.0  # the worker finishes a task, acknowledges it and pops again within it
    MAX_FREEZES = 5
    EXIT_S = 10.0  # for the killed worker's container to be gone
    TOXIC = "brpop_window_bandwidth"
    RECORD = "brpop_window"

    def applies(self, configuration: Configuration) -> bool:
        return (super().applies(configuration) and configuration.target is None
                and bool(getattr(configuration.owner, "pop_window", "")))

    def unmet(self, configuration: Configuration) -> str:
        if not super().applies(configuration):
            return super().unmet(configuration)
        if configuration.target is not None:
            return (f"fault {self.name} reproduces kombu's BRPOP window on the built-in "
                    f"Celery-on-Redis configurations only, not on a team's target "
                    f"({configuration.name}): its watch relies on the probe task's durations")
        return (f"fault {self.name} needs a transport that pops a message off the queue before "
                f"recording it as unacknowledged (kombu's Redis transport), which configuration "
                f"{configuration.name} (backend {configuration.backend}) does not use")

    def inject(self, world: World, target: str) -> None:
        broker, ledger_dir = world.broker, world.ledger_dir
        if not isinstance(broker, AckEmulation) or ledger_dir is None:
            raise TypeError(f"fault {self.name}: the {world.backend} broker's forensics cannot "
                            "read the queue and the unacknowledged record at once")
        proxy = world.proxies.proxy(world.proxy_of(target))
        proxy.add_toxic(name=self.TOXIC, type="bandwidth", stream="downstream",
                        attributes={"rate": self.RATE_KBPS})
        if self.TOXIC not in proxy.toxics():
            raise RuntimeError(f"Toxiproxy did not add {self.TOXIC} to {proxy.name}")

        def started() -> set[str]:
            snap = snapshot(ledger_dir)
            return snap.completed | {t for tasks in snap.running.values() for t in tasks}

        watch = PopWindowWatch(self.HOLD_S)
        deadline = time.monotonic() + self.WATCH_S
        missed: list[str] = []
        for freeze in range(1, self.MAX_FREEZES + 1):
            try:
                seen = wait_for_pop_window(broker.handover, started, watch,
                                           max(0.0, deadline - time.monotonic()))
            except WaitTimeout as exc:
                missed.append(str(exc))
                break
            world.cluster.signal_all(target, signal.SIGSTOP)
            frozen_t = world.clock()
            try:
                kept = stays_in_pop_window(broker.handover, started, watch, seen.tasks,
                                           self.CONFIRM_S)
            except BaseException:  # never leave a worker frozen behind a failed read
                world.cluster.signal_all(target, signal.SIGCONT)
                raise
            if kept is None:  # recorded after all: not in the frozen worker's window
                world.cluster.signal_all(target, signal.SIGCONT)
                missed.append(f"freeze {freeze}: {seen.tasks} recorded within "
                              f"{self.CONFIRM_S}s of the freeze")
                continue
            self._kill(world, broker, target, kept, freeze, world.clock() - frozen_t)
            return
        # Nothing to kill for: the scenario caught nothing (``interrupted``) and runs again.
        world.note("brpop_window_missed", worker=target, reason="; ".join(missed))

    def _kill(self, world: World, broker: AckEmulation, target: str, kept: PopWindowHit,
              freezes: int, frozen_s: float) -> None:
        """SIGKILL the frozen worker; once it is gone, record each task it took with it."""
        world.cluster.signal(target, "SIGKILL")
        killed_t = world.clock()
        until(lambda: not world.cluster.is_running(target), what=f"{target} to die",
              timeout_s=self.EXIT_S, interval_s=0.05)
        # Dead, it can record nothing more: what is still in neither key now is lost for good.
        after = broker.handover()
        for task in kept.tasks:
            world.note(self.RECORD, task=task, worker=target, killed_t=killed_t,
                       held_s=kept.held_s, frozen_s=round(frozen_s, 3), freezes=freezes,
                       rate_kbps=self.RATE_KBPS, polls=kept.polls, queued=kept.queued,
                       unacked=kept.unacked,
                       lost_at_kill=task not in after.queued and task not in after.unacked)

    def interrupted(self, records: list[dict[str, Any]], target: str | None,
                    fired_t: float) -> list[str]:
        """The tasks the kill caught in the window (recorded lost at the kill), with those it cut
        mid-execution; none when no window was seen (the scenario runs again)."""
        caught = window_records(records, target, fired_t)
        if not caught:
            return []
        killed_t = max(float(r["killed_t"]) for r in caught)
        cut = killed_mid_task(records, caught[0]["worker"], killed_t)
        return sorted({str(r["task"]) for r in caught} | set(cut))


def window_records(records: list[dict[str, Any]], target: str | None,
                   since: float) -> list[dict[str, Any]]:
    """The ``brpop_window`` records of a kill of ``target`` (any worker: None) at or after
    ``since`` whose task was still in no key of the broker once the worker was dead."""
    return [r for r in records
            if r.get("kind") == BrpopWindowKill.RECORD and r.get("lost_at_kill") is True
            and (target is None or r.get("worker") == target) and float(r["t"]) >= since]


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        NoFault(), SigkillWorker(), SigkillPoolChild(), SigtermWorker(), SigstopWorker(),
        BrokerKill(), BrokerRestart(), CutWorkerBroker(), BlackholeWorkerBroker(),
        SlowWorkerBroker(), CutProducerBroker(), CrashAfterEffect(), BrpopWindowKill(),
        SigtermWorkerGroup(), WarmRestarts(), *CLUSTER_FAULTS,
    )
}


def sleep_window(seconds: float) -> None:
    """The fault window is a scenario setting, not a stand-in for an observable condition."""
    time.sleep(seconds)
