"""The schedule: when a fault fires and at whom, from a seed and from observed state.

A fault never fires on a blind timer: it waits until the ledger shows enough executions started
and the target worker has tasks in flight, so every fault lands mid-task. The seed picks the
preferred target; the observed state decides the moment (and the target, when the preferred one
happens to be idle at that moment).

One fault needs a finer moment than "tasks in flight": the pop window (``wait_for_pop_window``),
when the broker has handed a message to a worker (taken it off the queue's list) and nobody has
recorded it yet, neither the broker's unacknowledged record nor the ledger. It is observed on
the broker itself, read atomically, and held against the ledger.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
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


# -- the pop window: a message the broker has handed out that nobody has recorded yet -----------

BrokerRead = Callable[[], tuple[Collection[str], Collection[str]]]  # (queued, unacked), atomic


@dataclass(frozen=True)
class PopWindowHit:
    """Tasks observed in the pop window for at least the hold: gone from the queue's list, in
    neither the broker's unacknowledged record nor the ledger's started or completed ones."""

    tasks: list[str]
    held_s: float  # how long the longest of them had been in the window
    queued: int  # what the broker held at that read: messages in the queue's list ...
    unacked: int  # ... and in its unacknowledged record
    polls: int  # reads of the broker so far


@dataclass
class PopWindowWatch:
    """Which tasks are in the pop window, and since when, from successive reads.

    Only a task seen in the queue's list in an earlier read counts: a task lost in an earlier
    scenario (reused workers share a ledger directory) is nowhere either, but was never seen
    leaving the queue. A task that leaves the window (recorded at last) and enters it again
    (acknowledged, say) starts its clock afresh.
    """

    hold_s: float
    seen_queued: set[str] = field(default_factory=set)
    since: dict[str, float] = field(default_factory=dict)
    polls: int = 0
    now: float = 0.0  # the time of the latest read
    read: tuple[int, int] = (0, 0)  # (queued, unacked) at the latest read

    def observe(self, queued: Collection[str], unacked: Collection[str],
                started: Collection[str], now: float) -> PopWindowHit | None:
        """One read: ``queued`` and ``unacked`` from one atomic read of the broker, ``started``
        (every task with a started or completed record) read from the ledger afterwards, so
        a task recorded between the two reads is seen as recorded, never as in the window.
        Returns the tasks in the window for ``hold_s`` at least, if any."""
        self.polls += 1
        self.now = now
        self.read = (len(queued), len(unacked))
        self.seen_queued |= set(queued)
        window = self.seen_queued - set(queued) - set(unacked) - set(started)
        self.since = {task: self.since.get(task, now) for task in window}
        ripe = sorted(task for task, since in self.since.items() if now - since >= self.hold_s)
        return self.hit(ripe) if ripe else None

    def hit(self, tasks: list[str]) -> PopWindowHit:
        """What the watch knows now of ``tasks`` (each in the window)."""
        return PopWindowHit(tasks, round(max(self.now - self.since[t] for t in tasks), 3),
                            self.read[0], self.read[1], self.polls)

    def describe(self) -> str:
        """What the watch has seen, for a wait that ran out."""
        waiting = {t: round(self.now - s, 2) for t, s in sorted(self.since.items())}
        return (f"{self.polls} reads, {len(self.seen_queued)} tasks seen queued, in the window "
                f"now (seconds): {waiting or 'none'}")


def _probe(read: BrokerRead, started: Callable[[], Collection[str]], watch: PopWindowWatch,
           clock: Callable[[], float]) -> PopWindowHit | None:
    queued, unacked = read()
    return watch.observe(queued, unacked, started(), clock())


def wait_for_pop_window(
    read: BrokerRead,
    started: Callable[[], Collection[str]],
    watch: PopWindowWatch,
    timeout_s: float,
    interval_s: float = 0.05,
    clock: Callable[[], float] = time.monotonic,
) -> PopWindowHit:
    """Until a task has stayed in the pop window for the watch's hold (``read``: the broker's
    queued and unacknowledged tasks, atomically; ``started``: the ledger's started or
    completed tasks), polling every ``interval_s`` for at most ``timeout_s``. The watch keeps
    what it saw, so a later wait goes on from there."""
    return until(lambda: _probe(read, started, watch, clock),
                 what=f"a task popped from the queue and recorded nowhere for {watch.hold_s}s",
                 timeout_s=timeout_s, interval_s=interval_s, describe=watch.describe)


def stays_in_pop_window(
    read: BrokerRead,
    started: Callable[[], Collection[str]],
    watch: PopWindowWatch,
    tasks: list[str],
    for_s: float,
    interval_s: float = 0.05,
    clock: Callable[[], float] = time.monotonic,
) -> PopWindowHit | None:
    """Keep reading for ``for_s``: the tasks of ``tasks`` that stayed in the window all along
    (none of them left it, even for one read), as a hit; None as soon as none is left.

    A fixed span of observation, not a stand-in for a condition: what is awaited is that
    nothing happens to these tasks (that nobody records them) for that long.
    """
    entered = {task: watch.since[task] for task in tasks if task in watch.since}
    begun = clock()

    def kept() -> list[str]:
        return [t for t, since in entered.items() if watch.since.get(t) == since]

    def probe() -> PopWindowHit | bool | None:
        _probe(read, started, watch, clock)
        if not kept():
            return True  # done: none is left
        return watch.hit(kept()) if watch.now - begun >= for_s else None

    found = until(probe, what=f"{len(entered)} tasks to stay in the pop window for {for_s}s",
                  timeout_s=for_s + 10 * interval_s + 5.0, interval_s=interval_s,
                  describe=watch.describe)
    return found if isinstance(found, PopWindowHit) else None
