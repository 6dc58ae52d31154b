"""The checker: ledger records in, one outcome class per task and a verdict out.

A pure function of its inputs (no Docker, no broker, no clock), so every edge case is a unit test.
The vocabulary is the one in DESIGN.md: completed, duplicated, re-executed, lost, recovered,
unexpected, late, stuck.

Each task also carries its completion latency: its first completion's ``t`` minus its
submission's ``t_sent``. Both are CLOCK_MONOTONIC readings of one kernel (the workload on the host,
the agent inside containers, which share the host's clock), so they subtract as the heal time
already does. ``late`` stays what it always was, "first completed more than ``late_after_s``
after the fault healed", which includes whatever backlog the queue had anyway;
``harness/latency.py`` sets latencies against the no-fault control to tell the two apart.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Guarantee(StrEnum):
    """What a configuration claims about delivery."""

    AT_MOST_ONCE = "at-most-once"
    AT_LEAST_ONCE = "at-least-once"
    EFFECTIVELY_ONCE = "effectively-once"


class Verdict(StrEnum):
    HOLDS = "holds"
    VIOLATED = "VIOLATED"
    INCONCLUSIVE = "inconclusive"  # nothing broke the claim yet, but tasks were still stuck
    INVALID = "INVALID"  # the instrument saw something it cannot explain


class Outcome(StrEnum):
    COMPLETED = "completed"
    DUPLICATED = "duplicated"
    LOST = "lost"
    STUCK = "stuck"
    RECOVERED = "recovered"
    NOT_ENQUEUED = "not-enqueued"  # failed/indeterminate submission that never ran
    UNEXPECTED = "unexpected"


@dataclass(frozen=True)
class TaskResult:
    task: str
    submission: str | None  # ok / failed / indeterminate, None when never submitted
    outcome: Outcome
    starts: int
    completions: int
    first_completed_t: float | None
    re_executed: bool
    late: bool
    location: str | None  # where the broker still holds it, from forensics
    redelivered: bool = False  # re-executed, or a start the broker flagged as a redelivery
    # Submission (its t_sent, the moment the request went out) to first completion, seconds;
    # None when it never completed or was never submitted.
    latency_s: float | None = None


@dataclass
class Counts:
    submitted: int = 0
    acknowledged: int = 0  # submission outcome ok
    failed: int = 0
    indeterminate: int = 0
    completed: int = 0  # exactly one completed execution
    duplicated: int = 0
    extra_executions: int = 0  # completions beyond the first, over all tasks
    re_executed: int = 0
    redelivered: int = 0  # delivered again by the broker (flagged, or started more than once)
    lost: int = 0
    lost_unstarted: int = 0  # lost without a single started execution anywhere
    stuck: int = 0
    recovered: int = 0
    unexpected: int = 0
    late: int = 0  # completed more than late_after_s after heal: backlog included
    deduplicated_runs: int = 0  # runs an idempotency key stopped before the side effect
    crashed_runs: int = 0  # runs whose process exited right after the side effect
    truncated_records: int = 0
    corrupt_records: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class CheckResult:
    counts: Counts
    tasks: list[TaskResult] = field(default_factory=list)
    recovery_s: float | None = None  # heal -> last redelivered task completing
    stuck_locations: dict[str, int] = field(default_factory=dict)

    def latencies(self, ndigits: int = 3) -> list[float]:
        """Every completed task's latency (submission to first completion), sorted, rounded:
        what a scenario result keeps (``ScenarioResult.latencies_s``)."""
        return sorted(round(t.latency_s, ndigits) for t in self.tasks if t.latency_s is not None)


def check(
    records: Iterable[Mapping[str, Any]],
    *,
    healed_t: float | None = None,
    late_after_s: float = 5.0,
    in_broker: Mapping[str, str] | None = None,
    truncated: int = 0,
    corrupt: int = 0,
) -> CheckResult:
    """Classify every task seen in ``records``.

    ``healed_t`` is the monotonic moment the fault healed (None without a fault); a task whose first
    completion comes more than ``late_after_s`` after it is late (however long it waited behind
    other tasks: the backlog counts too). ``in_broker`` maps task ids the broker still holds at
    the drain deadline to where (queue, unacked, ...): those are stuck, not lost.
    """
    in_broker = in_broker or {}
    submissions: dict[str, str] = {}
    sent: dict[str, float] = {}
    starts: dict[str, int] = defaultdict(int)
    flagged: set[str] = set()
    deduplicated = crashed = 0
    completions: dict[str, list[float]] = defaultdict(list)
    for record in records:
        kind = record.get("kind")
        task = record.get("task")
        if not isinstance(task, str):
            continue
        if kind == "submission":
            submissions[task] = str(record["outcome"])
            # When the request went out; a ledger older than t_sent has the record's own time.
            when = record.get("t_sent", record.get("t"))
            if when is not None:
                sent[task] = float(when)
        elif kind == "started":
            starts[task] += 1
            if record.get("redelivered") is True:
                flagged.add(task)
        elif kind == "completed":
            completions[task].append(float(record["t"]))
        elif kind == "deduplicated":
            deduplicated += 1
        elif kind == "crashing":
            crashed += 1

    counts = Counts(truncated_records=truncated, corrupt_records=corrupt,
                    deduplicated_runs=deduplicated, crashed_runs=crashed)
    results: list[TaskResult] = []
    recovery_end: float | None = None
    for task in sorted(set(submissions) | set(starts) | set(completions)):
        submission = submissions.get(task)
        done = sorted(completions.get(task, []))
        n_starts = max(starts.get(task, 0), len(done))
        first = done[0] if done else None
        re_executed = n_starts > 1
        redelivered = re_executed or task in flagged
        late = bool(
            first is not None and healed_t is not None and first > healed_t + late_after_s
        )
        outcome = _classify(submission, len(done), task in in_broker)
        latency = None if first is None or task not in sent else first - sent[task]
        counts.late += late
        counts.redelivered += redelivered
        if redelivered and done and healed_t is not None:
            end = done[-1] - healed_t
            recovery_end = end if recovery_end is None else max(recovery_end, end)
        _tally(counts, submission, outcome, len(done), n_starts)
        results.append(
            TaskResult(task, submission, outcome, n_starts, len(done), first, re_executed, late,
                       in_broker.get(task), redelivered, latency)
        )
    stuck_locations: dict[str, int] = defaultdict(int)
    for result in results:
        if result.outcome is Outcome.STUCK and result.location:
            stuck_locations[result.location] += 1
    return CheckResult(counts, results, recovery_end, dict(stuck_locations))


def _classify(submission: str | None, completions: int, held: bool) -> Outcome:
    if submission is None:
        return Outcome.UNEXPECTED
    if submission != "ok":
        return Outcome.RECOVERED if completions else Outcome.NOT_ENQUEUED
    if completions == 1:
        return Outcome.COMPLETED
    if completions > 1:
        return Outcome.DUPLICATED
    return Outcome.STUCK if held else Outcome.LOST


def _tally(counts: Counts, submission: str | None, outcome: Outcome, done: int,
           starts: int) -> None:
    if submission is not None:
        counts.submitted += 1
        counts.acknowledged += submission == "ok"
        counts.failed += submission == "failed"
        counts.indeterminate += submission == "indeterminate"
    counts.re_executed += starts > 1
    counts.extra_executions += max(0, done - 1)
    # A recovered task that ran twice still did its side effect twice: count it duplicated too.
    twice = outcome is Outcome.DUPLICATED or (outcome is Outcome.RECOVERED and done > 1)
    counts.duplicated += twice
    counts.completed += outcome is Outcome.COMPLETED
    counts.lost += outcome is Outcome.LOST
    counts.lost_unstarted += outcome is Outcome.LOST and starts == 0
    counts.stuck += outcome is Outcome.STUCK
    counts.recovered += outcome is Outcome.RECOVERED
    counts.unexpected += outcome is Outcome.UNEXPECTED


def verdict(counts: Counts, guarantee: Guarantee) -> tuple[Verdict, str]:
    """Hold the observed counts against the claimed guarantee; the reason in one line."""
    if counts.unexpected or counts.corrupt_records:
        return Verdict.INVALID, (
            f"{counts.unexpected} executions of never-submitted tasks, "
            f"{counts.corrupt_records} corrupt ledger records"
        )
    dup_bad = guarantee in (Guarantee.AT_MOST_ONCE, Guarantee.EFFECTIVELY_ONCE)
    loss_bad = guarantee in (Guarantee.AT_LEAST_ONCE, Guarantee.EFFECTIVELY_ONCE)
    broken = []
    if dup_bad and counts.duplicated:
        broken.append(f"{counts.duplicated} duplicated")
    if loss_bad and counts.lost:
        broken.append(f"{counts.lost} lost")
    if broken:
        return Verdict.VIOLATED, f"{guarantee} claimed, " + " and ".join(broken)
    if loss_bad and counts.stuck:
        return Verdict.INCONCLUSIVE, f"{counts.stuck} tasks still held by the broker at deadline"
    return Verdict.HOLDS, f"{guarantee} holds"
