"""harness/schedule.py: seeded plans replay; a fault fires only mid-task, at a busy worker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.observe import Snapshot
from harness.schedule import (
    FaultPlan,
    PopWindowHit,
    PopWindowWatch,
    Trigger,
    choose_target,
    plan_fault,
    seeded,
    stays_in_pop_window,
    wait_for_pop_window,
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


# -- the pop window: popped off the queue, recorded nowhere -----------------------------------


def test_a_task_enters_the_pop_window_when_it_leaves_the_queue_unrecorded() -> None:
    watch = PopWindowWatch(hold_s=1.0)
    assert watch.observe({"a", "b"}, set(), set(), now=0.0) is None
    # b popped and recorded (unacked), a popped and recorded nowhere: a is in the window ...
    assert watch.observe(set(), {"b"}, set(), now=0.5) is None
    assert watch.since == {"a": 0.5}
    # ... and once it has stayed there for the hold, the watch says so, with what it read.
    assert watch.observe(set(), {"b"}, set(), now=1.5) == PopWindowHit(["a"], 1.0, 0, 1, 3)


def test_a_task_recorded_before_the_hold_leaves_the_window() -> None:
    watch = PopWindowWatch(hold_s=1.0)
    watch.observe({"a"}, set(), set(), now=0.0)
    watch.observe(set(), set(), set(), now=0.1)  # popped: a healthy worker records it ...
    assert watch.observe(set(), {"a"}, set(), now=0.2) is None  # ... at once
    assert watch.since == {}
    # Seen in the window again later (acknowledged after it ran: started in the ledger), the
    # clock starts afresh, and a started task is never in the window.
    assert watch.observe(set(), set(), set(), now=5.0) is None
    assert watch.since == {"a": 5.0}
    assert watch.observe(set(), set(), {"a"}, now=7.0) is None


def test_only_a_task_seen_queued_can_be_in_the_window() -> None:
    """A task lost in an earlier scenario is in no key either, but was never seen leaving."""
    watch = PopWindowWatch(hold_s=0.5)
    watch.observe({"new"}, set(), set(), now=0.0)
    assert watch.observe(set(), {"new"}, set(), now=10.0) is None
    assert watch.seen_queued == {"new"} and watch.since == {}


def test_wait_for_pop_window_polls_the_broker_then_the_ledger() -> None:
    reads: Iterator[tuple[set[str], set[str]]] = iter(
        [({"a", "b"}, set()), ({"b"}, set()), ({"b"}, set()), ({"b"}, set())])
    times = iter([0.0, 0.25, 0.75, 1.5])
    watch = PopWindowWatch(hold_s=1.0)
    hit = wait_for_pop_window(lambda: next(reads), lambda: set(), watch, timeout_s=5.0,
                              interval_s=0.0, clock=lambda: next(times))
    assert hit == PopWindowHit(["a"], 1.25, 1, 0, 4)
    assert watch.since == {"a": 0.25}  # the watch goes on from there


def test_wait_for_pop_window_is_bounded_and_says_what_it_saw() -> None:
    with pytest.raises(WaitTimeout) as raised:
        wait_for_pop_window(lambda: ({"a"}, {"b"}), lambda: {"c"}, PopWindowWatch(1.0),
                            timeout_s=0.2, interval_s=0.01)
    message = str(raised.value)
    assert "a task popped from the queue and recorded nowhere for 1.0s" in message
    assert "1 tasks seen queued, in the window now (seconds): none" in message


def clocked(*times: float) -> Callable[[], float]:
    ticks = iter(times)
    return lambda: next(ticks)


def test_a_task_that_stays_in_the_window_is_confirmed() -> None:
    watch = PopWindowWatch(hold_s=0.2)
    watch.observe({"a", "b"}, set(), set(), now=0.0)
    watch.observe(set(), set(), set(), now=0.5)  # a and b both in the window
    # b is recorded during the span, a stays in the window all along: a is confirmed.
    reads: Iterator[tuple[set[str], set[str]]] = iter(
        [(set(), set()), (set(), {"b"}), (set(), {"b"})])
    kept = stays_in_pop_window(lambda: next(reads), lambda: set(), watch, ["a", "b"], 1.0,
                               interval_s=0.0, clock=clocked(1.0, 1.2, 1.6, 2.0))
    assert kept == PopWindowHit(["a"], 1.5, 0, 1, 5)


def test_a_task_recorded_during_the_span_is_not_confirmed() -> None:
    watch = PopWindowWatch(hold_s=0.2)
    watch.observe({"a"}, set(), set(), now=0.0)
    watch.observe(set(), set(), set(), now=0.5)
    # recorded, then in the window again (acknowledged): it left it, so it is not the one.
    reads: Iterator[tuple[set[str], set[str]]] = iter([(set(), {"a"}), (set(), set())])
    assert stays_in_pop_window(lambda: next(reads), lambda: set(), watch, ["a"], 1.0,
                               interval_s=0.0, clock=clocked(1.0, 1.1, 1.2)) is None
