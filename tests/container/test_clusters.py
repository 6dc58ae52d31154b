"""The cluster profile on real containers: one small scenario per topology, each killing the node
that leads the task queue, as the cluster itself named it.

A 3-node RabbitMQ cluster with a quorum queue and publisher confirms must elect another leader
and lose no confirmed task (RabbitMQ's documented promise); Redis with Sentinel must promote the
replica. Both must come back whole after the heal, and the failover must be measured from the
ledger (harness/failover.py). The full profile is ``make durability PROFILE=clusters``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.result import ScenarioResult
from harness.run import Run
from harness.world import World
from tests.container.conftest import SMALL, run_until_valid

pytestmark = pytest.mark.container

# Past both failure detectors (a quorum queue elects in under a second after a kill; Sentinel
# fails over ~3-4 s after it), shorter than the profile's 20 s to keep CI short.
CLUSTER_SMALL = replace(SMALL, partition_window_s=10.0)


def run_cluster(world: World, chaos_run: Run, configuration: str, fault: str) -> ScenarioResult:
    return run_until_valid(world, chaos_run, CLUSTER_SMALL, configuration, fault)


def test_rabbitmq_cluster_keeps_confirmed_tasks_when_the_quorum_leader_dies(
        world: World, chaos_run: Run) -> None:
    result = run_cluster(world, chaos_run, "rabbit-cluster-quorum-confirms", "leader-sigkill")
    nodes = {"rabbitmq1", "rabbitmq2", "rabbitmq3"}
    assert result.fault_target in nodes
    failover = result.failover
    assert failover["new_leader"] in nodes - {result.fault_target}, failover
    assert failover["unsettled"] == 0 and failover["settled_s"] is not None, failover
    assert result.counts["lost"] == 0, result.anomalies  # confirmed, on a majority: kept
    assert result.counts["submitted"] == CLUSTER_SMALL.tasks


def test_sentinel_promotes_the_replica_when_the_primary_dies(
        world: World, chaos_run: Run) -> None:
    result = run_cluster(world, chaos_run, "sentinel-acks-late", "leader-sigkill")
    assert result.fault_target == "redis-primary"
    failover = result.failover
    assert failover["new_leader"] == "redis-replica", failover
    assert failover["elected_s"] < CLUSTER_SMALL.partition_window_s
    assert failover["unsettled"] == 0 and failover["settled_s"] is not None, failover
    # Clients find the new primary through Sentinel: work gets in and runs again afterwards.
    assert failover["submit_outage_s"] is not None and failover["consume_outage_s"] is not None
    assert result.counts["completed"] > 0
