"""harness/schedule.py: seeded plans replay; a fault fires only mid-task, at a busy worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.observe import Snapshot
from harness.schedule import (
    FaultPlan,
    Trigger,
    choose_target,
    plan_fault,
    seeded,
    wait_for_trigger,
)
from harness.waits import WaitTimeout
from queue_chaos_agent.ledger import LedgerWriter

WORKERS = ["worker1", "worker2", "worker3"]


def draws(seed: int, scenario: str, n: int = 20) -> list[float]:
    rng = seeded(seed, scenario)
    return [rng.random() for _ in range(n)]


def test_seeded_is_deterministic_per_seed_and_scenario() -> None:
    assert draws(7, "celery-redis.a.none") == draws(7, "celery-redis.a.none")
    assert draws(7, "celery-redis.a.none") != draws(8, "celery-redis.a.none")
    assert draws(7, "celery-redis.a.none") != draws(7, "celery-redis.b.none")


def test_seeded_does_not_confuse_seed_and_scenario_boundaries() -> None:
    # "1" + "/2x" and "12" + "/x" must not be the same stream
    assert draws(1, "2/x") != draws(12, "x")


def test_plan_fault_replays_and_ignores_worker_order() -> None:
    plans = {plan_fault(seeded(3, "s"), "sigkill-worker", order, 8, 4.0)
             for order in (WORKERS, WORKERS[::-1], [WORKERS[1], WORKERS[2], WORKERS[0]])}
    assert len(plans) == 1
    (plan,) = plans
    assert plan.fault == "sigkill-worker"
    assert plan.preferred_target in WORKERS
    assert (plan.after_started, plan.window_s) == (8, 4.0)


def test_plan_fault_spreads_over_workers_across_seeds() -> None:
    targets = {plan_fault(seeded(s, "x"), "f", WORKERS, 1, 1.0).preferred_target
               for s in range(50)}
    assert targets == set(WORKERS)


PLAN = FaultPlan("sigkill-worker", "worker2", after_started=5, window_s=1.0)


def test_no_trigger_before_threshold() -> None:
    snap = Snapshot(started=4, running={"worker1": ["a"], "worker2": ["b"]})
    assert choose_target(PLAN, snap) is None


def test_preferred_worker_when_it_is_busy() -> None:
    snap = Snapshot(started=5, running={"worker1": ["x"], "worker2": ["c", "a", "b"]})
    assert choose_target(PLAN, snap) == Trigger("worker2", ["a", "b", "c"], 5)


@pytest.mark.parametrize(
    "running",
    [
        {"worker3": ["b"], "worker1": ["a", "z"]},  # preferred absent
        {"worker3": ["b"], "worker1": ["a", "z"], "worker2": []},  # preferred idle
    ],
)
def test_falls_back_to_first_busy_worker(running: dict[str, list[str]]) -> None:
    snap = Snapshot(started=9, running=running)
    assert choose_target(PLAN, snap) == Trigger("worker1", ["a", "z"], 9)


@pytest.mark.parametrize("running", [{}, {"worker1": [], "worker2": []}])
def test_no_trigger_when_nobody_runs_a_task(running: dict[str, list[str]]) -> None:
    assert choose_target(PLAN, Snapshot(started=100, running=running)) is None


def test_wait_for_trigger_reads_the_ledger(tmp_path: Path) -> None:
    ledger = LedgerWriter(tmp_path, "worker")
    plan = FaultPlan("sigkill-worker", "worker2", after_started=2, window_s=1.0)
    ledger.write("worker_ready", worker="worker1", t=1.0)
    ledger.write("worker_ready", worker="worker2", t=1.0)
    ledger.write("started", task="a", execution="ea", worker="worker1", t=2.0)
    ledger.write("started", task="b", execution="eb", worker="worker1", t=3.0)
    ledger.write("completed", task="b", execution="eb", worker="worker1", t=4.0)
    assert wait_for_trigger(plan, tmp_path, timeout_s=2.0) == Trigger("worker1", ["a"], 2)


def test_wait_for_trigger_times_out_saying_what_it_saw(tmp_path: Path) -> None:
    ledger = LedgerWriter(tmp_path, "worker")
    ledger.write("started", task="a", execution="ea", worker="worker1", t=2.0)
    plan = FaultPlan("sigkill-worker", "worker1", after_started=3, window_s=1.0)
    with pytest.raises(WaitTimeout) as raised:
        wait_for_trigger(plan, tmp_path, timeout_s=0.2)
    message = str(raised.value)
    assert "3 started executions and a worker with tasks in flight" in message
    assert "started=1" in message
    assert "'worker1': ['a']" in message


# -- a fixed target: the broker or the producer, not a worker ---------------------------------


def test_plan_fault_with_a_fixed_target() -> None:
    plan = plan_fault(seeded(3, "s"), "broker-sigkill", WORKERS, 8, 4.0, fixed_target="redis")
    assert plan == FaultPlan("broker-sigkill", "redis", 8, 4.0, fixed=True)
    assert not plan_fault(seeded(3, "s"), "sigkill-worker", WORKERS, 8, 4.0).fixed


def test_a_fixed_target_draws_the_same_from_the_seed() -> None:
    """The fixed target must not shift the seed's stream: what is drawn after the plan (and so
    the rest of the scenario) is the same with and without it."""
    plain, fixed = seeded(11, "s"), seeded(11, "s")
    plan_fault(plain, "sigkill-worker", WORKERS, 8, 4.0)
    plan_fault(fixed, "broker-sigkill", WORKERS, 8, 4.0, fixed_target="redis")
    assert [plain.random() for _ in range(5)] == [fixed.random() for _ in range(5)]


FIXED = FaultPlan("cut-producer-broker", "producer", after_started=5, window_s=1.0, fixed=True)


def test_fixed_target_fires_once_any_worker_is_busy() -> None:
    snap = Snapshot(started=5, running={"worker2": ["c", "a"], "worker1": ["b"], "worker3": []})
    assert choose_target(FIXED, snap) == Trigger("producer", ["a", "b", "c"], 5)


def test_fixed_target_waits_for_the_threshold_and_a_busy_worker() -> None:
    assert choose_target(FIXED, Snapshot(started=4, running={"worker1": ["a"]})) is None
    assert choose_target(FIXED, Snapshot(started=9, running={})) is None
    assert choose_target(FIXED, Snapshot(started=9, running={"worker1": []})) is None


def test_wait_for_trigger_with_a_fixed_target_reads_the_ledger(tmp_path: Path) -> None:
    ledger = LedgerWriter(tmp_path, "worker")
    ledger.write("worker_ready", worker="worker1", t=1.0)
    ledger.write("started", task="s.1", execution="e1", worker="worker1", t=2.0)
    ledger.write("started", task="other.1", execution="o1", worker="worker2", t=2.5)
    plan = FaultPlan("broker-sigkill", "redis", after_started=1, window_s=1.0, fixed=True)
    assert wait_for_trigger(plan, tmp_path, timeout_s=2.0, prefix="s.") == Trigger(
        "redis", ["s.1"], 1)
