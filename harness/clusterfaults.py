"""Faults on a clustered broker (Jepsen's nemesis against a cluster): the node leading the task
queue killed, cut off from its peers, or frozen past the cluster's failure detector; every node
restarted in turn, as an upgrade does.

The target is picked at the moment the fault fires, from what the cluster itself says
(``World.leader``: a quorum queue's leader, a classic queue's home node, Sentinel's primary),
never from a name in a list. Each fault holds its node out for ``partition_window_s``, longer
than the failure detector (RabbitMQ with ``net_ticktime`` 10 s; Sentinel's
``down-after-milliseconds`` 2 s), so that the cluster does react: a failover, a pause of the
minority, a promotion. Healing waits, bounded, until the cluster says it is whole again
(``Clustered.settled``), and records how long that took or that it never did: a cluster that
stays split is a finding, not a harness error.

Every service of the backend starts afresh in the next scenario: a healed cluster can keep a
partition record, a demoted primary or Sentinel's rewritten view, which no other scenario should
inherit.

These faults need ``Capability.CLUSTERED``: only the cluster profile's backends have it, and no
configuration of the default matrix meets them (``make durability PROFILE=clusters``).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from harness.backend import Capability
from harness.failover import LEADER_CHANGED, SETTLED, TARGET_DOWN, UNSETTLED
from harness.fault import Fault
from harness.waits import WaitTimeout, until
from harness.world import World


class ClusterFault(Fault):
    kind = "cluster"
    target = "leader"
    needs = frozenset({Capability.CLUSTERED})
    in_matrix = False  # the cluster profile's configurations meet them (PROFILE=clusters)
    SETTLE_S: ClassVar[float] = 120.0  # a RabbitMQ node rejoins in ~5 s, a rolling step ~13 s
    # The leader watch of the fault in progress (one scenario at a time per world).
    _watch: tuple[threading.Thread, threading.Event] | None = None

    # A fault the cluster must be seen to feel (a partition, a freeze): valid only once the
    # rest of the cluster counted its node out while it lasted; a kill is felt by construction.
    must_be_felt: ClassVar[bool] = False

    def window(self, settings: Any) -> float:
        return float(settings.partition_window_s)

    def validity(self, counts: dict[str, int], records: Sequence[Mapping[str, Any]] = (),
                 fired_t: float | None = None) -> str | None:
        if not self.must_be_felt:
            return None
        felt = any(r.get("kind") == TARGET_DOWN and (fired_t is None or r["t"] >= fired_t)
                   for r in records)
        return None if felt else ("the rest of the cluster never counted the node out while "
                                  "the fault lasted: it cut nothing the cluster noticed")

    def touches(self, world: World, target: str) -> set[str]:
        assert world.backend is not None
        return {s.name for s in world.topology.of_backend(world.backend)}

    def take_out(self, world: World, target: str) -> None:
        """Take the node out (kill, cut, freeze)."""
        raise NotImplementedError

    def bring_back(self, world: World, target: str) -> None:
        """Undo ``take_out`` (start, connect, thaw)."""
        raise NotImplementedError

    def inject(self, world: World, target: str) -> None:
        self.take_out(world, target)
        self.watch_leader(world, target)

    def heal(self, world: World, target: str) -> None:
        self.stop_watch()
        self.bring_back(world, target)
        self.settle(world, target)

    def watch_leader(self, world: World, target: str) -> None:
        """While the fault lasts, ask the cluster every 0.2 s which node leads the task queue
        and whether it counts ``target`` out; record the first leader that is not ``target``
        (``leader_changed``: the cluster's own failover time) and the first moment it counts
        the target out (``target_down``: the proof a partition or a freeze was felt). In a
        thread, stopped by ``heal`` (``stop_watch``): the fault's window is the scenario's."""
        broker, start = world.clustered(), world.clock()
        stop = threading.Event()

        def ask(question: Callable[[], Any]) -> Any:
            try:
                return question()
            except Exception:  # a node down or cut off may answer nothing for a while
                return None

        def watch() -> None:
            changed = down = False
            while not stop.is_set() and not (changed and down):
                now = ask(broker.leader) if not changed else None
                if now is not None and now != target:
                    changed = True
                    world.note(LEADER_CHANGED, fault=self.name, old=target, new=now,
                               after_s=round(world.clock() - start, 2))
                if not down and ask(lambda: broker.sees_down(target)):
                    down = True
                    world.note(TARGET_DOWN, fault=self.name, node=target,
                               after_s=round(world.clock() - start, 2))
                stop.wait(0.2)

        thread = threading.Thread(target=watch, name=f"{self.name}-leader-watch", daemon=True)
        thread.start()
        self._watch = (thread, stop)

    def stop_watch(self) -> None:
        if self._watch is not None:
            thread, stop = self._watch
            stop.set()
            thread.join(timeout=10)  # one pending leader() call, each bounded by its timeouts
            self._watch = None

    def settle(self, world: World, after: str) -> bool:
        """Until the cluster says it is whole again, at most ``SETTLE_S``; a record either
        way (how long it took, or that it did not within the bound)."""
        broker = world.clustered()
        start = world.clock()
        try:
            until(broker.settled, what="the cluster to settle", timeout_s=self.SETTLE_S,
                  interval_s=0.5)
        except WaitTimeout:
            world.note(UNSETTLED, fault=self.name, after=after, bound_s=self.SETTLE_S)
            return False
        world.note(SETTLED, fault=self.name, after=after,
                   settled_s=round(world.clock() - start, 2))
        return True


class LeaderKill(ClusterFault):
    name = "leader-sigkill"
    description = ("SIGKILL of the broker node leading the task queue (a quorum queue's leader, "
                   "a classic queue's home node, the Redis primary), started again after the "
                   "partition window; then the cluster is awaited whole")

    def take_out(self, world: World, target: str) -> None:
        world.cluster.signal(target, "SIGKILL")

    def bring_back(self, world: World, target: str) -> None:
        world.cluster.restart(target)


class LeaderPartition(ClusterFault):
    name = "leader-partition"
    must_be_felt = True
    description = ("the node leading the task queue cut off from its cluster's network (Docker "
                   "network disconnect: no reset, its peers stop hearing it) for the partition "
                   "window, past the failure detector, then connected again with its address; "
                   "then the cluster is awaited whole")

    def take_out(self, world: World, target: str) -> None:
        world.cluster.disconnect(target, world.topology.services[target].network)

    def bring_back(self, world: World, target: str) -> None:
        world.cluster.connect(target, world.topology.services[target].attachments[0])


class LeaderPause(ClusterFault):
    name = "leader-sigstop"
    must_be_felt = True
    description = ("every process of the node leading the task queue frozen (SIGSTOP) for the "
                   "partition window, past the failure detector, then thawed (SIGCONT): it "
                   "wakes up believing it still leads, the classic split-brain maker")

    def take_out(self, world: World, target: str) -> None:
        world.cluster.signal_all(target, signal.SIGSTOP)

    def bring_back(self, world: World, target: str) -> None:
        world.cluster.signal_all(target, signal.SIGCONT)


class RollingRestart(ClusterFault):
    name = "rolling-restart"
    description = ("every data node restarted in turn, the leader last, as an upgrade does: "
                   "SIGTERM, wait for the exit, start it again, wait until the cluster is whole, "
                   "then the next node")

    def window(self, settings: Any) -> float:
        return 0.0  # the series ends by itself, with every node back

    def inject(self, world: World, target: str) -> None:
        nodes = world.clustered().nodes()
        order = [n for n in nodes if n != target] + [target]
        for step, node in enumerate(order, start=1):
            world.note("rolling_restart", node=node, step=step, of=len(order))
            world.cluster.signal(node, "SIGTERM")
            world.wait_exited(node)
            world.cluster.restart(node)
            if not self.settle(world, node):
                break  # not whole: restarting another node would only take more down

    def heal(self, world: World, target: str) -> None:
        return None  # every node is back (or the series stopped at one that did not settle)


CLUSTER_FAULTS: tuple[Fault, ...] = (LeaderKill(), LeaderPartition(), LeaderPause(),
                                     RollingRestart())
