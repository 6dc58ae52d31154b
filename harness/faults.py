"""Faults (Jepsen's nemesis): each one injects at a target and heals it, with real signals, real
container kills and real Toxiproxy toxics.

Every fault fires from observed state (harness/schedule.py): a worker fault when its target runs
a task, the others when some worker does. ``inject`` and ``heal`` must each return within the
scenario's bounds; the time between them is the fault's window (a scenario setting), except where
the fault ends by itself (a SIGTERMed worker exiting) and the harness waits for that instead.

To add a fault: a subclass of ``Fault`` registered in ``FAULTS``; say what it targets, which
capabilities it needs of a backend (never backend names: a new backend with those capabilities
meets it at once) and its kind (which explanations and settings apply).
"""

from __future__ import annotations

import contextlib
import signal
import time
from typing import Any, ClassVar

from harness.backend import Capability, Configuration
from harness.observe import in_flight_at, killed_mid_task
from harness.world import World
from queue_chaos_agent import taskbody

# What a fault is, for the explanations: a worker process dying (or shutting down), a worker
# frozen, a worker's broker link broken or slowed, the broker down, the producer's link broken.
KINDS = ("none", "worker-death", "stall", "link", "broker", "producer-link")


class Fault:
    name: ClassVar[str]
    description: ClassVar[str]
    kind: ClassVar[str] = "worker-death"
    target: ClassVar[str] = "worker"  # worker | broker | producer
    needs: ClassVar[frozenset[Capability]] = frozenset()  # of the configuration's backend
    control: ClassVar[bool] = False  # the no-fault control: nothing is injected

    def applies(self, configuration: Configuration) -> bool:
        return self.needs <= configuration.capabilities

    def unmet(self, configuration: Configuration) -> str:
        """Why the fault does not apply, in words."""
        missing = ", ".join(sorted(self.needs - configuration.capabilities))
        return (f"fault {self.name} needs {missing}, which configuration {configuration.name} "
                f"(backend {configuration.backend}) does not have")

    def validity(self, counts: dict[str, int]) -> str | None:
        """What makes a scenario of this fault invalid beyond firing at an idle target."""
        return None

    def interrupted(self, records: list[dict[str, Any]], target: str | None,
                    fired_t: float) -> list[str]:
        """The tasks the fault caught mid-task (``target`` None: on any worker); none means the
        scenario measured nothing and is run again."""
        return in_flight_at(records, target, fired_t)

    def window(self, settings: Any) -> float:
        return float(settings.fault_window_s)

    def inject(self, world: World, target: str) -> None:
        raise NotImplementedError

    def heal(self, world: World, target: str) -> None:
        return None

    def touches(self, world: World, target: str) -> set[str]:
        """Services to start afresh in the next scenario."""
        return {target}


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

    def validity(self, counts: dict[str, int]) -> str | None:
        if not counts.get("crashed_runs"):
            return "no task crashed after its side effect within the fault window"
        return None


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        NoFault(), SigkillWorker(), SigkillPoolChild(), SigtermWorker(), SigstopWorker(),
        BrokerKill(), BrokerRestart(), CutWorkerBroker(), BlackholeWorkerBroker(),
        SlowWorkerBroker(), CutProducerBroker(), CrashAfterEffect(),
    )
}


def sleep_window(seconds: float) -> None:
    """The fault window is a scenario setting, not a stand-in for an observable condition."""
    time.sleep(seconds)
