"""The schedule: when a fault fires and at whom, from a seed and from observed state.

A fault never fires on a blind timer: it waits until the ledger shows enough executions started
and the target worker has tasks in flight, so every fault lands mid-task. The seed picks the
preferred target; the observed state decides the moment (and the target, when the preferred one
happens to be idle at that moment).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from harness.observe import Snapshot, snapshot
from harness.waits import until


@dataclass(frozen=True)
class FaultPlan:
    fault: str
    preferred_target: str  # a worker; or the broker / producer itself, when fixed
    after_started: int
    window_s: float
    fixed: bool = False  # the target is not a worker: fire once any worker runs a task


@dataclass(frozen=True)
class Trigger:
    target: str
    in_flight: list[str]
    started: int


def seeded(seed: int, scenario: str) -> random.Random:
    """One generator per (seed, scenario): the same seed replays the same scenario."""
    return random.Random(f"{seed}/{scenario}")


def plan_fault(
    rng: random.Random, fault: str, workers: list[str], after_started: int, window_s: float,
    fixed_target: str | None = None,
) -> FaultPlan:
    preferred = rng.choice(sorted(workers))  # drawn always, so the seed's stream stays the same
    if fixed_target is not None:
        return FaultPlan(fault, fixed_target, after_started, window_s, fixed=True)
    return FaultPlan(fault, preferred, after_started, window_s)


def choose_target(plan: FaultPlan, snap: Snapshot) -> Trigger | None:
    """The trigger, once the observed state allows it."""
    if snap.started < plan.after_started:
        return None
    busy = {w: tasks for w, tasks in snap.running.items() if tasks}
    if plan.fixed and busy:
        every = sorted(t for tasks in busy.values() for t in tasks)
        return Trigger(plan.preferred_target, every, snap.started)
    if plan.fixed:
        return None
    if plan.preferred_target in busy:
        target = plan.preferred_target
    elif busy:
        target = sorted(busy)[0]
    else:
        return None
    return Trigger(target, sorted(busy[target]), snap.started)


def wait_for_trigger(
    plan: FaultPlan, ledger_dir: Path, timeout_s: float, prefix: str = ""
) -> Trigger:
    last: list[Snapshot] = []

    def probe() -> Trigger | None:
        last[:] = [snapshot(ledger_dir, prefix)]
        return choose_target(plan, last[0])

    return until(
        probe,
        what=f"{plan.after_started} started executions and a worker with tasks in flight",
        timeout_s=timeout_s,
        interval_s=0.05,
        describe=lambda: f"started={last[0].started}, running={last[0].running}" if last else "",
    )
