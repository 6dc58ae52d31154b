"""Bounded waits and least privilege, on the real topology.

A stuck broker or proxy ends in a clear failure carrying the containers' last log lines, within a
bound; workers frozen mid-task leave their tasks *stuck* (still in the broker, with the timeout
that would release them) at the drain deadline, never a hang.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.fault import Fault
from harness.faults import FAULTS
from harness.matrix import CONFIGURATIONS, Settings
from harness.scenario import ScenarioError, run_scenario
from harness.world import World

pytestmark = pytest.mark.container


def test_stuck_proxy_fails_clearly(world: World, tmp_path: Path) -> None:
    world.begin_scenario("celery-redis", {}, tmp_path)  # the backend's services up
    container = world.cluster.container("toxiproxy")
    assert container is not None
    container.pause()
    started = time.monotonic()
    try:
        with pytest.raises(ScenarioError) as failure:
            run_scenario(world, CONFIGURATIONS["acks-late-prefetch-1"], "none",
                         Settings(tasks=4, fault_after_started=1, ready_s=15), 1, tmp_path,
                         "replay-command")
    finally:
        container.unpause()
    message = str(failure.value)
    assert "last 30 log lines of toxiproxy" in message
    assert "replay-command" in message
    assert time.monotonic() - started < 90


class _FreezeBroker(Fault):
    name = "freeze-broker"
    description = "the broker frozen mid-scenario (cgroup freezer) and left frozen"
    target = "broker"

    def inject(self, world: World, target: str) -> None:
        container = world.cluster.container(target)
        assert container is not None
        container.pause()

    def touches(self, world: World, target: str) -> set[str]:
        return {target, *world.workers, world.producer_service()}


def test_stuck_broker_fails_clearly(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(FAULTS, "freeze-broker", _FreezeBroker())
    started = time.monotonic()
    with pytest.raises(ScenarioError) as failure:
        run_scenario(world, CONFIGURATIONS["acks-late-prefetch-1"], "freeze-broker",
                     Settings(tasks=8, fault_after_started=1, fault_window_s=0.5, ready_s=15),
                     1, tmp_path, "replay-command")
    message = str(failure.value)
    assert "last 30 log lines of redis" in message and "replay-command" in message
    assert time.monotonic() - started < 120
    # The frozen broker is replaced before the next scenario runs.
    after = run_scenario(world, CONFIGURATIONS["acks-late-prefetch-1"], "none",
                         Settings(tasks=6, fault_after_started=1), 1, tmp_path, "n/a")
    assert after.valid and after.counts["completed"] == 6


class _FreezeWorkers(Fault):
    name = "freeze-workers"
    description = "every worker frozen (cgroup freezer) and left frozen"

    def inject(self, world: World, target: str) -> None:
        for name in world.workers:
            container = world.cluster.container(name)
            assert container is not None
            container.pause()

    def heal(self, world: World, target: str) -> None:
        return None  # left frozen: the drain must end by its deadline

    def touches(self, world: World, target: str) -> set[str]:
        return set(world.workers)


def test_frozen_workers_leave_tasks_stuck(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(FAULTS, "freeze-workers", _FreezeWorkers())
    settings = Settings(tasks=16, submit_rate=16, fault_after_started=2, fault_window_s=0.5,
                        drain_s=8)
    result = run_scenario(world, CONFIGURATIONS["acks-late-prefetch-1"], "freeze-workers",
                          settings, 3, tmp_path, "n/a")
    assert not result.drained
    counts = result.counts
    assert counts["stuck"] >= 1
    assert counts["completed"] + counts["stuck"] + counts["lost"] == counts["acknowledged"]
    # A frozen worker may hold a message Redis no longer has (popped by BRPOP, not yet recorded
    # as unacked): from the broker's side that task is gone, and the checker says lost.
    assert result.verdict in ("inconclusive", "VIOLATED")
    assert any("visibility_timeout" in where or "queued" in where
               for where in result.stuck_locations)
    # The frozen workers are replaced before the next scenario runs.
    after = run_scenario(world, CONFIGURATIONS["acks-late-prefetch-1"], "none",
                         Settings(tasks=6, fault_after_started=1), 3, tmp_path, "n/a")
    assert after.valid and after.counts["completed"] == 6


def test_least_privilege(world: World, tmp_path: Path) -> None:
    world.begin_scenario("celery-redis", {}, tmp_path)
    for name in ("redis", "toxiproxy", "producer", *world.workers):
        container = world.cluster.container(name)
        assert container is not None
        host = container.attrs["HostConfig"]
        assert host["Privileged"] is False
        assert host["CapDrop"] == ["ALL"]
        assert set(host.get("CapAdd") or []) <= set(world.topology.services[name].cap_add)
        assert "no-new-privileges" in host["SecurityOpt"]
        for bindings in (host.get("PortBindings") or {}).values():
            assert all(b["HostIp"] == "127.0.0.1" for b in bindings), bindings
    network = world.cluster.engine.networks.get(world.cluster.network_name)
    assert network.attrs["Options"]["com.docker.network.bridge.enable_ip_masquerade"] == "false"
