"""harness/checker.py: every outcome class and every verdict, from hand-written ledger records."""

from __future__ import annotations

from typing import Any

import pytest

from harness.checker import (
    CheckResult,
    Counts,
    Guarantee,
    Outcome,
    TaskResult,
    Verdict,
    check,
    verdict,
)

Record = dict[str, Any]


def submission(task: str, outcome: str = "ok", t: float = 0.0) -> Record:
    return {"kind": "submission", "task": task, "outcome": outcome, "t": t}


def started(task: str, t: float = 1.0, execution: str | None = None) -> Record:
    return {"kind": "started", "task": task, "execution": execution or f"{task}@{t}", "t": t,
            "worker": "worker1"}


def completed(task: str, t: float = 2.0, execution: str | None = None) -> Record:
    return {"kind": "completed", "task": task, "execution": execution or f"{task}@{t}", "t": t,
            "worker": "worker1"}


def run(task: str, start: float, end: float, outcome: str = "ok") -> list[Record]:
    """A task submitted, started and completed once."""
    return [submission(task, outcome), started(task, start), completed(task, end)]


def only(result: CheckResult, task: str) -> TaskResult:
    found = [r for r in result.tasks if r.task == task]
    assert len(found) == 1, f"{task}: {found}"
    return found[0]


# -- outcome classes --------------------------------------------------------------------------


def test_one_completion_is_completed() -> None:
    result = check(run("t1", 1.0, 2.0))
    task = only(result, "t1")
    assert task.outcome is Outcome.COMPLETED
    assert (task.submission, task.starts, task.completions) == ("ok", 1, 1)
    assert task.first_completed_t == 2.0
    assert not task.re_executed and not task.late and task.location is None
    c = result.counts
    assert (c.submitted, c.acknowledged, c.completed) == (1, 1, 1)
    assert (c.lost, c.duplicated, c.stuck, c.re_executed, c.extra_executions) == (0, 0, 0, 0, 0)
    assert result.recovery_s is None
    assert result.stuck_locations == {}


def test_kill_between_started_and_completed_is_lost() -> None:
    result = check([submission("t1"), started("t1", 1.0)])
    task = only(result, "t1")
    assert task.outcome is Outcome.LOST
    assert (task.starts, task.completions, task.first_completed_t) == (1, 0, None)
    assert task.location is None
    assert result.counts.lost == 1
    assert result.counts.stuck == 0
    assert result.counts.completed == 0
    assert result.stuck_locations == {}


def test_acknowledged_but_never_started_and_not_held_is_lost() -> None:
    result = check([submission("t1")])
    assert only(result, "t1").outcome is Outcome.LOST
    assert result.counts.lost == 1


def test_kill_between_started_and_completed_still_held_by_broker_is_stuck() -> None:
    records = [
        submission("t1"), started("t1", 1.0),  # started, then killed: unacked
        submission("t2"), started("t2", 1.5),
        submission("t3"),  # never started: still queued
        submission("t4"), started("t4", 1.7),  # killed, nowhere: lost
    ]
    held = {"t1": "unacked", "t2": "unacked", "t3": "queued"}
    result = check(records, in_broker=held)
    assert only(result, "t1").outcome is Outcome.STUCK
    assert only(result, "t1").location == "unacked"
    assert only(result, "t3").outcome is Outcome.STUCK
    assert only(result, "t3").location == "queued"
    assert only(result, "t4").outcome is Outcome.LOST
    assert result.counts.stuck == 3
    assert result.counts.lost == 1
    assert result.stuck_locations == {"unacked": 2, "queued": 1}


def test_completed_task_still_listed_by_broker_is_completed_not_stuck() -> None:
    # e.g. the ack was lost with the connection: the message is still in the unacked hash.
    result = check(run("t1", 1.0, 2.0), in_broker={"t1": "unacked"})
    task = only(result, "t1")
    assert task.outcome is Outcome.COMPLETED
    assert task.location == "unacked"  # forensics reported as seen
    assert result.counts.stuck == 0
    assert result.stuck_locations == {}


def test_duplicate_completions_are_duplicated_with_extra_executions() -> None:
    records = [
        submission("twice"), started("twice", 1.0), started("twice", 5.0),
        completed("twice", 2.0), completed("twice", 6.0),
        submission("thrice"), *(started("thrice", t) for t in (1.0, 2.0, 3.0)),
        *(completed("thrice", t) for t in (4.0, 3.5, 5.0)),
        *run("once", 1.0, 2.0),
    ]
    result = check(records)
    twice, thrice = only(result, "twice"), only(result, "thrice")
    assert twice.outcome is Outcome.DUPLICATED
    assert (twice.starts, twice.completions, twice.re_executed) == (2, 2, True)
    assert thrice.outcome is Outcome.DUPLICATED
    assert (thrice.starts, thrice.completions) == (3, 3)
    assert thrice.first_completed_t == 3.5  # the earliest, not the first in record order
    c = result.counts
    assert c.duplicated == 2
    assert c.extra_executions == 1 + 2
    assert c.re_executed == 2
    assert c.completed == 1  # only "once": duplicated tasks are not also counted completed


def test_re_executed_without_duplicate() -> None:
    # The first run died before its side effect; the redelivery completed.
    records = [submission("t1"), started("t1", 1.0), started("t1", 20.0), completed("t1", 21.0)]
    result = check(records)
    task = only(result, "t1")
    assert task.outcome is Outcome.COMPLETED
    assert (task.starts, task.completions, task.re_executed) == (2, 1, True)
    c = result.counts
    assert (c.completed, c.re_executed, c.duplicated, c.extra_executions) == (1, 1, 0, 0)


def test_completion_without_started_record_counts_as_one_start() -> None:
    result = check([submission("t1"), completed("t1", 2.0)])
    task = only(result, "t1")
    assert task.outcome is Outcome.COMPLETED
    assert task.starts == 1
    assert not task.re_executed


@pytest.mark.parametrize("outcome", ["indeterminate", "failed"])
def test_unacknowledged_submission_that_completed_is_recovered(outcome: str) -> None:
    result = check(run("t1", 1.0, 2.0, outcome=outcome))
    task = only(result, "t1")
    assert task.outcome is Outcome.RECOVERED
    assert task.submission == outcome
    c = result.counts
    assert (c.recovered, c.submitted, c.acknowledged, c.completed, c.lost) == (1, 1, 0, 0, 0)
    assert c.indeterminate == (outcome == "indeterminate")
    assert c.failed == (outcome == "failed")


def test_recovered_task_that_ran_twice_is_also_duplicated() -> None:
    records = [submission("t1", "indeterminate"), started("t1", 1.0), started("t1", 3.0),
               completed("t1", 2.0), completed("t1", 4.0)]
    result = check(records)
    assert only(result, "t1").outcome is Outcome.RECOVERED
    assert result.counts.recovered == 1
    assert result.counts.duplicated == 1
    assert result.counts.extra_executions == 1
    assert verdict(result.counts, Guarantee.AT_MOST_ONCE)[0] is Verdict.VIOLATED


@pytest.mark.parametrize("outcome", ["failed", "indeterminate"])
def test_unacknowledged_submission_never_run_is_not_enqueued_not_lost(outcome: str) -> None:
    result = check([submission("t1", outcome)])
    task = only(result, "t1")
    assert task.outcome is Outcome.NOT_ENQUEUED
    c = result.counts
    assert (c.lost, c.stuck, c.recovered, c.completed) == (0, 0, 0, 0)
    assert c.submitted == 1
    assert c.acknowledged == 0
    assert verdict(c, Guarantee.EFFECTIVELY_ONCE)[0] is Verdict.HOLDS


def test_execution_of_never_submitted_id_is_unexpected_and_invalid() -> None:
    records = [*run("t1", 1.0, 2.0), started("ghost", 1.0), completed("ghost", 2.0)]
    result = check(records)
    ghost = only(result, "ghost")
    assert ghost.outcome is Outcome.UNEXPECTED
    assert ghost.submission is None
    assert result.counts.unexpected == 1
    assert result.counts.submitted == 1  # the ghost is not a submission
    for guarantee in Guarantee:
        judged, reason = verdict(result.counts, guarantee)
        assert judged is Verdict.INVALID
        assert "1 executions of never-submitted tasks" in reason


def test_started_only_never_submitted_is_unexpected() -> None:
    result = check([started("ghost", 1.0)])
    assert only(result, "ghost").outcome is Outcome.UNEXPECTED
    assert result.counts.unexpected == 1


def test_records_without_a_task_id_are_not_tasks() -> None:
    records: list[Record] = [
        {"kind": "worker_ready", "worker": "worker1", "t": 0.5},
        {"kind": "fault", "fault": "sigkill-worker", "target": "worker1", "t": 3.0},
        {"kind": "healed", "fault": "sigkill-worker", "t": 4.0},
        {"kind": "started", "task": None, "t": 1.0},
        *run("t1", 1.0, 2.0),
    ]
    result = check(records)
    assert [t.task for t in result.tasks] == ["t1"]
    assert result.counts.unexpected == 0


def test_tasks_come_out_sorted_and_once_each() -> None:
    records = [*run("b", 1.0, 2.0), *run("a", 1.0, 2.0), started("b", 3.0)]
    assert [t.task for t in check(records).tasks] == ["a", "b"]


# -- idempotency keys and injected crashes ------------------------------------------------------


def deduplicated(task: str, t: float = 2.0, execution: str | None = None) -> Record:
    return {"kind": "deduplicated", "task": task, "execution": execution or f"{task}@{t}",
            "t": t, "worker": "worker1"}


def crashing(task: str, t: float = 2.0, execution: str | None = None) -> Record:
    return {"kind": "crashing", "task": task, "execution": execution or f"{task}@{t}", "t": t,
            "worker": "worker1"}


def test_deduplicated_and_crashed_runs_are_counted() -> None:
    records = [
        submission("a"), started("a", 1.0, "a1"), completed("a", 2.0, "a1"),
        crashing("a", 2.0, "a1"), started("a", 5.0, "a2"), deduplicated("a", 6.0, "a2"),
        submission("b"), started("b", 1.0, "b1"), completed("b", 2.0, "b1"),
        started("b", 3.0, "b2"), deduplicated("b", 4.0, "b2"),
        started("b", 5.0, "b3"), deduplicated("b", 6.0, "b3"),
        *run("c", 1.0, 2.0),
    ]
    c = check(records).counts
    assert (c.deduplicated_runs, c.crashed_runs) == (3, 1)
    assert check(run("c", 1.0, 2.0)).counts.deduplicated_runs == 0
    assert check(run("c", 1.0, 2.0)).counts.crashed_runs == 0


def test_completed_then_deduplicated_is_completed_and_re_executed_not_duplicated() -> None:
    # The first run did the side effect; its redelivery found the idempotency key taken.
    records = [submission("t1"), started("t1", 1.0, "e1"), completed("t1", 2.0, "e1"),
               started("t1", 20.0, "e2"), deduplicated("t1", 21.0, "e2")]
    result = check(records, healed_t=10.0)
    task = only(result, "t1")
    assert task.outcome is Outcome.COMPLETED
    assert (task.starts, task.completions, task.re_executed, task.redelivered) == (2, 1, True,
                                                                                    True)
    assert task.first_completed_t == 2.0
    c = result.counts
    assert (c.completed, c.duplicated, c.extra_executions, c.re_executed) == (1, 0, 0, 1)
    assert c.deduplicated_runs == 1
    assert verdict(c, Guarantee.EFFECTIVELY_ONCE)[0] is Verdict.HOLDS


def test_deduplicated_alone_is_no_completion() -> None:
    # Without a completed record the side effect never happened here: the task is lost.
    result = check([submission("t1"), started("t1", 1.0), deduplicated("t1", 2.0)])
    assert only(result, "t1").outcome is Outcome.LOST
    assert result.counts.deduplicated_runs == 1


def test_crash_after_effect_then_redelivery_is_duplicated() -> None:
    # acks late: the process died after the side effect, before the ack; the task ran again.
    records = [submission("t1"), started("t1", 1.0, "e1"), completed("t1", 2.0, "e1"),
               crashing("t1", 2.0, "e1"), started("t1", 20.0, "e2"), completed("t1", 21.0, "e2")]
    c = check(records).counts
    assert (c.duplicated, c.extra_executions, c.re_executed, c.crashed_runs) == (1, 1, 1, 1)
    assert verdict(c, Guarantee.AT_LEAST_ONCE)[0] is Verdict.HOLDS
    assert verdict(c, Guarantee.AT_MOST_ONCE)[0] is Verdict.VIOLATED


# -- late and recovery ------------------------------------------------------------------------


def test_late_only_after_heal_plus_threshold() -> None:
    healed = 100.0
    records = [
        *run("early", 90.0, 101.0),
        *run("edge", 99.0, 105.0),  # exactly heal + threshold: not late
        *run("late", 104.0, 105.5),
    ]
    result = check(records, healed_t=healed, late_after_s=5.0)
    assert not only(result, "early").late
    assert not only(result, "edge").late
    assert only(result, "late").late
    assert result.counts.late == 1


def test_latency_is_first_completion_minus_t_sent() -> None:
    records = [{**submission("t1", t=10.4), "t_sent": 10.0}, started("t1", 11.0),
               started("t1", 20.0), completed("t1", 12.5), completed("t1", 21.0)]
    task = only(check(records), "t1")
    assert task.latency_s == pytest.approx(2.5)  # the first completion, from when it was sent


def test_latency_falls_back_to_the_submission_time_of_older_ledgers() -> None:
    records = [submission("t1", t=10.0), started("t1", 11.0), completed("t1", 13.0)]
    assert only(check(records), "t1").latency_s == pytest.approx(3.0)


def test_no_latency_without_a_completion_or_a_submission() -> None:
    records = [submission("lost"), started("lost", 1.0), started("ghost", 1.0),
               completed("ghost", 2.0)]
    result = check(records)
    assert only(result, "lost").latency_s is None
    assert only(result, "ghost").latency_s is None  # unexpected: never submitted
    assert result.latencies() == []


def test_latencies_are_sorted_and_rounded_for_the_result() -> None:
    records = [*[{**r, "t_sent": 0.0} if r["kind"] == "submission" else r
                 for r in run("slow", 1.0, 4.12345)],
               *[{**r, "t_sent": 0.0} if r["kind"] == "submission" else r
                 for r in run("fast", 1.0, 1.5)],
               submission("lost")]
    assert check(records).latencies() == [1.5, 4.123]


def test_late_counts_backlog_too_and_latency_does_not_change_it() -> None:
    # Submitted after the heal, it waited its turn: late by the threshold, though the fault did
    # nothing to it. latency.delayed (against the control) is what tells the two apart.
    records = [{**submission("queued", t=101.0), "t_sent": 101.0}, started("queued", 108.0),
               completed("queued", 109.0)]
    task = only(check(records, healed_t=100.0, late_after_s=5.0), "queued")
    assert task.late and task.latency_s == pytest.approx(8.0)


def test_late_uses_first_completion() -> None:
    # Completed in time once; the duplicate came much later. The task was not late.
    records = [submission("t1"), started("t1", 1.0), started("t1", 50.0),
               completed("t1", 101.0), completed("t1", 200.0)]
    result = check(records, healed_t=100.0, late_after_s=5.0)
    assert not only(result, "t1").late
    assert result.counts.late == 0


def test_nothing_is_late_without_a_fault() -> None:
    result = check(run("t1", 1.0, 10_000.0), healed_t=None, late_after_s=0.0)
    assert not only(result, "t1").late
    assert result.counts.late == 0


def test_late_threshold_is_a_parameter() -> None:
    records = run("t1", 99.0, 103.0)
    assert check(records, healed_t=100.0, late_after_s=5.0).counts.late == 0
    assert check(records, healed_t=100.0, late_after_s=2.0).counts.late == 1


def test_late_count_agrees_with_late_tasks() -> None:
    records = [*run("acked", 99.0, 110.0), *run("indet", 99.0, 110.0, outcome="indeterminate")]
    result = check(records, healed_t=100.0, late_after_s=5.0)
    assert result.counts.late == sum(t.late for t in result.tasks)


def test_recovery_is_heal_to_last_re_executed_completion() -> None:
    records = [
        # re-executed, redelivery completed 12 s after the heal
        submission("a"), started("a", 90.0), started("a", 110.0), completed("a", 112.0),
        # re-executed, completed 8 s after (duplicated: last completion counts)
        submission("b"), started("b", 90.0), started("b", 100.5),
        completed("b", 95.0), completed("b", 108.0),
        # not re-executed, completes much later: does not count
        *run("c", 125.0, 130.0),
        # re-executed, never completed: does not count
        submission("d"), started("d", 90.0), started("d", 120.0),
    ]
    result = check(records, healed_t=100.0)
    assert result.recovery_s == pytest.approx(12.0)


def test_broker_flagged_redelivery_counts_without_a_second_start() -> None:
    # A prefetched message lost with its worker, restored and run once: redelivered, not
    # re-executed, and its completion bounds the recovery time.
    flagged = {**started("a", 110.0), "redelivered": True}
    records = [
        submission("a"), flagged, completed("a", 111.0),
        submission("b"), {**started("b", 1.0), "redelivered": False}, completed("b", 2.0),
        submission("c"), {**started("c", 1.0), "redelivered": "true"}, completed("c", 2.0),
        submission("d"), started("d", 1.0), started("d", 105.0), completed("d", 106.0),
    ]
    result = check(records, healed_t=100.0)
    a, b, c, d = (only(result, t) for t in "abcd")
    assert a.redelivered and not a.re_executed
    assert not b.redelivered
    assert not c.redelivered  # only a JSON true counts
    assert d.redelivered and d.re_executed
    assert result.counts.redelivered == 2
    assert result.counts.re_executed == 1
    assert result.recovery_s == pytest.approx(11.0)


def test_no_recovery_without_fault_or_without_re_execution() -> None:
    re_run = [submission("a"), started("a", 1.0), started("a", 2.0), completed("a", 3.0)]
    assert check(re_run, healed_t=None).recovery_s is None
    assert check(run("b", 1.0, 200.0), healed_t=100.0).recovery_s is None


# -- damaged ledger records -------------------------------------------------------------------


def test_truncated_and_corrupt_counts_pass_through() -> None:
    result = check(run("t1", 1.0, 2.0), truncated=2, corrupt=3)
    assert result.counts.truncated_records == 2
    assert result.counts.corrupt_records == 3
    assert result.counts.as_dict()["truncated_records"] == 2
    assert result.counts.as_dict()["corrupt_records"] == 3


def test_corrupt_records_make_the_verdict_invalid() -> None:
    counts = check(run("t1", 1.0, 2.0), corrupt=1).counts
    for guarantee in Guarantee:
        judged, reason = verdict(counts, guarantee)
        assert judged is Verdict.INVALID
        assert "1 corrupt ledger records" in reason


def test_truncated_records_alone_do_not_invalidate() -> None:
    # A writer killed mid-write damages its own last line: expected under SIGKILL.
    counts = check(run("t1", 1.0, 2.0), truncated=1).counts
    assert verdict(counts, Guarantee.EFFECTIVELY_ONCE)[0] is Verdict.HOLDS


def test_empty_ledger() -> None:
    result = check([])
    assert result.tasks == []
    assert result.counts == Counts()
    assert verdict(result.counts, Guarantee.EFFECTIVELY_ONCE)[0] is Verdict.HOLDS


# -- verdicts ---------------------------------------------------------------------------------

DUP = Counts(submitted=2, acknowledged=2, duplicated=1, extra_executions=1, completed=1)
LOSS = Counts(submitted=2, acknowledged=2, lost=1, completed=1)
STUCK = Counts(submitted=2, acknowledged=2, stuck=1, completed=1)
BOTH = Counts(submitted=2, acknowledged=2, lost=1, duplicated=1, extra_executions=1)
LOSS_AND_STUCK = Counts(submitted=2, acknowledged=2, lost=1, stuck=1)
CLEAN = Counts(submitted=2, acknowledged=2, completed=2)


@pytest.mark.parametrize(
    ("counts", "guarantee", "expected"),
    [
        (CLEAN, Guarantee.AT_MOST_ONCE, Verdict.HOLDS),
        (DUP, Guarantee.AT_MOST_ONCE, Verdict.VIOLATED),
        (LOSS, Guarantee.AT_MOST_ONCE, Verdict.HOLDS),
        (STUCK, Guarantee.AT_MOST_ONCE, Verdict.HOLDS),
        (BOTH, Guarantee.AT_MOST_ONCE, Verdict.VIOLATED),
        (CLEAN, Guarantee.AT_LEAST_ONCE, Verdict.HOLDS),
        (DUP, Guarantee.AT_LEAST_ONCE, Verdict.HOLDS),
        (LOSS, Guarantee.AT_LEAST_ONCE, Verdict.VIOLATED),
        (STUCK, Guarantee.AT_LEAST_ONCE, Verdict.INCONCLUSIVE),
        (LOSS_AND_STUCK, Guarantee.AT_LEAST_ONCE, Verdict.VIOLATED),
        (BOTH, Guarantee.AT_LEAST_ONCE, Verdict.VIOLATED),
        (CLEAN, Guarantee.EFFECTIVELY_ONCE, Verdict.HOLDS),
        (DUP, Guarantee.EFFECTIVELY_ONCE, Verdict.VIOLATED),
        (LOSS, Guarantee.EFFECTIVELY_ONCE, Verdict.VIOLATED),
        (STUCK, Guarantee.EFFECTIVELY_ONCE, Verdict.INCONCLUSIVE),
        (BOTH, Guarantee.EFFECTIVELY_ONCE, Verdict.VIOLATED),
    ],
)
def test_verdict_table(counts: Counts, guarantee: Guarantee, expected: Verdict) -> None:
    judged, reason = verdict(counts, guarantee)
    assert judged is expected, reason
    assert reason


def test_verdict_reasons_name_what_broke() -> None:
    judged, reason = verdict(BOTH, Guarantee.EFFECTIVELY_ONCE)
    assert judged is Verdict.VIOLATED
    assert reason == "effectively-once claimed, 1 duplicated and 1 lost"
    assert verdict(DUP, Guarantee.AT_MOST_ONCE)[1] == "at-most-once claimed, 1 duplicated"
    assert verdict(LOSS, Guarantee.AT_LEAST_ONCE)[1] == "at-least-once claimed, 1 lost"
    assert "1 tasks still held by the broker" in verdict(STUCK, Guarantee.AT_LEAST_ONCE)[1]
    assert verdict(CLEAN, Guarantee.AT_LEAST_ONCE)[1] == "at-least-once holds"


def test_invalid_takes_precedence_over_violation() -> None:
    counts = Counts(submitted=1, acknowledged=1, lost=1, duplicated=1, unexpected=1)
    for guarantee in Guarantee:
        assert verdict(counts, guarantee)[0] is Verdict.INVALID


def test_verdicts_from_checked_records() -> None:
    """End to end through check(): the kill cases against each claim."""
    lost = check([*run("a", 1.0, 2.0), submission("b"), started("b", 1.0)]).counts
    dup = check([*run("a", 1.0, 2.0), started("a", 3.0), completed("a", 4.0)]).counts
    stuck = check([submission("a"), started("a", 1.0)], in_broker={"a": "unacked"}).counts
    assert verdict(lost, Guarantee.AT_MOST_ONCE)[0] is Verdict.HOLDS
    assert verdict(lost, Guarantee.AT_LEAST_ONCE)[0] is Verdict.VIOLATED
    assert verdict(dup, Guarantee.AT_MOST_ONCE)[0] is Verdict.VIOLATED
    assert verdict(dup, Guarantee.AT_LEAST_ONCE)[0] is Verdict.HOLDS
    assert verdict(dup, Guarantee.EFFECTIVELY_ONCE)[0] is Verdict.VIOLATED
    assert verdict(stuck, Guarantee.AT_LEAST_ONCE)[0] is Verdict.INCONCLUSIVE
    assert verdict(stuck, Guarantee.AT_MOST_ONCE)[0] is Verdict.HOLDS


def test_lost_tasks_that_never_started_are_counted_apart() -> None:
    records = [
        submission("ran"), started("ran", 1.0),  # started, then lost with its worker
        submission("popped"),  # acknowledged to the producer, never started anywhere
        *run("fine", 1.0, 2.0),
    ]
    c = check(records).counts
    assert (c.lost, c.lost_unstarted) == (2, 1)
    assert check([submission("held")], in_broker={"held": "queue"}).counts.lost_unstarted == 0
