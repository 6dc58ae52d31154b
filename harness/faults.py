"""Faults (Jepsen's nemesis): each one injects at a target and heals it.

To add a fault: a class with ``inject`` and ``heal`` taking the world and a worker's service name,
registered in ``FAULTS`` under the name scenarios use (also listed in harness/matrix.py).
"""

from __future__ import annotations

from typing import Protocol

from harness.world import World


class Fault(Protocol):
    name: str
    description: str

    def inject(self, world: World, target: str) -> None: ...

    def heal(self, world: World, target: str) -> None: ...


class NoFault:
    name = "none"
    description = "no fault: the control run"

    def inject(self, world: World, target: str) -> None:
        return None

    def heal(self, world: World, target: str) -> None:
        return None


class SigkillWorker:
    name = "sigkill-worker"
    description = ("SIGKILL of a whole worker (main process and pool children) mid-task; "
                   "restarted after the fault window, as a supervisor would")

    def inject(self, world: World, target: str) -> None:
        world.cluster.signal(target, "SIGKILL")

    def heal(self, world: World, target: str) -> None:
        since = world.clock()
        world.cluster.restart(target)
        world.wait_worker_ready(target, since)


class CutWorkerBroker:
    name = "cut-worker-broker"
    description = ("the worker's connection to the broker cut through Toxiproxy (proxy "
                   "disabled: connections reset, new ones refused), then healed")

    def inject(self, world: World, target: str) -> None:
        world.proxies.cut(world.proxy_of(target))

    def heal(self, world: World, target: str) -> None:
        world.proxies.heal(world.proxy_of(target))


FAULTS: dict[str, Fault] = {f.name: f for f in (NoFault(), SigkillWorker(), CutWorkerBroker())}
