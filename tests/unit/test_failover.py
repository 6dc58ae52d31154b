"""harness/failover.py: outages and acknowledged-then-lost tasks, from hand-written ledger records
shaped as the workload (``submission``) and the agent's task body (``started``, ``completed``)
write them."""

from __future__ import annotations

import time
from typing import Any

from harness.failover import cluster_view, consume_outage, measure, submit_outage
from harness.result import ScenarioResult

Record = dict[str, Any]
PREFIX = "celery-rabbitmq-cluster.quorum.kill-broker-node"


def task(n: int) -> str:
    return f"{PREFIX}.{n:05d}"


def submission(n: int, answered: float, outcome: str = "ok", sent: float | None = None) -> Record:
    """As harness/workload.py writes it: ``t`` when the answer came back, ``t_sent`` before."""
    return {"kind": "submission", "host": "harness", "pid": 1, "t": answered,
            "wall": 1.7e9 + answered, "task": task(n), "outcome": outcome,
            "detail": "" if outcome == "ok" else "connect timeout",
            "t_sent": answered - 0.05 if sent is None else sent, "duration": 1.0}


def execution(n: int, start: float, end: float | None = None, worker: str = "worker1",
              redelivered: bool = False) -> list[Record]:
    """As the agent's taskbody.Run writes it: ``started``, then ``completed`` (if it ended)."""
    fields = {"host": worker, "pid": 7, "task": task(n), "execution": f"{n}@{start}",
              "worker": worker}
    records = [{"kind": "started", "t": start, "wall": 1.7e9 + start, **fields,
                "redelivered": redelivered}]
    if end is not None:
        records.append({"kind": "completed", "t": end, "wall": 1.7e9 + end, **fields})
    return records


def untagged(fired: float) -> list[Record]:
    """Records of no task: a worker's ready record and the harness's fault record."""
    return [{"kind": "worker_ready", "host": "worker1", "pid": 7, "t": 0.0, "effective": {}},
            {"kind": "fault", "host": "harness", "pid": 1, "t": fired + 0.1, "task": None,
             "fault": "kill-broker-node", "target": "rabbit2", "in_flight": 1, "fired": fired}]


def steady(first: int, last: int, *, every: float = 0.5, start_after: float = 0.1,
           lost: frozenset[int] = frozenset()) -> list[Record]:
    """Tasks first..last submitted every ``every`` seconds (task n answered at n * every), each
    started ``start_after`` later and run for a second; ``lost`` ones acknowledged, never run."""
    records: list[Record] = []
    for n in range(first, last + 1):
        t = n * every
        records.append(submission(n, t))
        if n not in lost:
            records += execution(n, t + start_after, t + start_after + 1.0)
    return records


def in_order(records: list[Record]) -> list[Record]:
    """As read_ledger returns them: sorted by time."""
    return sorted(records, key=lambda r: (r["t"], r["kind"]))


def test_a_control_measures_no_failover() -> None:
    records = in_order(steady(0, 20))
    assert measure(records, None, None, []) == {}
    assert measure(records, None, None, [task(3)]) == {}


# A fault that wrote no cluster records (a leader watch, a settle): nothing the cluster said.
NO_CLUSTER_VIEW = {"down_s": None, "new_leader": None, "elected_s": None, "settled_s": None,
                   "unsettled": 0}


def test_a_clean_failover_costs_only_the_pace_of_the_workload() -> None:
    # 0.5 s between submissions, each started 0.1 s after its answer; fault at 5.2, healed 7.
    records = in_order(untagged(5.2) + steady(0, 20))
    assert measure(records, 5.2, 7.0, []) == {
        "submit_outage_s": 0.5, "submit_failed": 0, "consume_outage_s": 0.1,
        "acked_before_lost": [], "acked_during_lost": [], **NO_CLUSTER_VIEW}


def test_an_outage_with_failed_submissions_is_measured_from_the_fault() -> None:
    # Tasks 0-8 ok (answers 0-4 s); the fault at 4.2; tasks 9-13 answered failed or
    # indeterminate (4.5-6.5 s); ok again from task 14 (7.0 s). The consumers start nothing
    # between task 7's start (3.6) and 8.0, though task 8 waits from 4.0.
    records = untagged(4.2) + steady(0, 7)
    records += [submission(8, 4.0), *execution(8, 8.0, 9.0, worker="worker2")]
    records += [submission(9, 4.5, "failed"), submission(10, 5.0, "indeterminate"),
                submission(11, 5.5, "failed"), submission(12, 6.0, "indeterminate"),
                submission(13, 6.5, "failed")]
    for n in range(14, 20):
        records += [submission(n, n * 0.5), *execution(n, 8.0 + (n - 14) * 0.5, 12.0)]
    figures = measure(in_order(records), 4.2, 6.0, [])
    assert figures["submit_outage_s"] == 2.8  # 4.2 (the fault) -> 7.0 (the next ok)
    assert figures["submit_failed"] == 5
    assert figures["consume_outage_s"] == 3.8  # 4.2 (the fault; task 8 waited) -> 8.0
    assert figures["acked_before_lost"] == figures["acked_during_lost"] == []


def test_submissions_still_failing_when_the_workload_stopped_are_an_outage_to_its_end() -> None:
    records = [submission(0, 1.0), submission(1, 2.0, "failed"), submission(2, 9.0, "failed")]
    assert submit_outage({r["task"]: (r["outcome"], r["t"]) for r in records}, 1.5) == (7.5, 2)


def test_lost_tasks_acknowledged_before_and_during_the_fault() -> None:
    # Redis Sentinel promotes a replica that had not received tasks 3 and 4 (acknowledged
    # before the fault at 2.7) nor task 7 (acknowledged during it); task 12 is lost after the
    # heal at 5.0, and task 9 was never acknowledged (its loss is no broken promise).
    records = untagged(2.7) + steady(0, 15, lost=frozenset({3, 4, 7, 9, 12}))
    records = [r for r in records if r.get("task") != task(9)] + [submission(9, 4.5, "failed")]
    lost = [task(12), task(7), task(4), task(3)]
    figures = measure(in_order(records), 2.7, 5.0, lost)
    assert figures["acked_before_lost"] == [task(3), task(4)]
    assert figures["acked_during_lost"] == [task(7)]
    assert figures["submit_failed"] == 1
    # Lost tasks never started: no waiting is counted for them, so the consumers' outage is the
    # gap from the fault to the next start while a task that did start was waiting.
    assert figures["consume_outage_s"] == 0.1


def test_an_idle_gap_is_no_consume_outage() -> None:
    # Nothing waits between task 1's start (0.6) and task 2's acknowledgement (9.0): the gap
    # from the fault to task 2's start counts only from 9.0.
    records = in_order([*steady(0, 1), submission(2, 9.0), *execution(2, 9.3, 10.0)])
    assert measure(records, 2.0, 3.0, [])["consume_outage_s"] == 0.3


def test_a_task_started_before_its_answer_came_back_never_waited() -> None:
    acked = {"a": 5.0, "b": 1.0}
    assert consume_outage(acked, {"a": 4.0, "b": 1.2}, [1.2, 4.0], 2.0) == 0.0


def test_a_redelivery_is_a_start_and_a_task_waits_until_its_first() -> None:
    # Task 0 starts at 1.0 on worker1 and again at 6.0 (redelivered); task 1 waits from 2.0 to
    # 8.0. The redelivery at 6.0 is consumer work: the outage is 2.0 -> 6.0, not 2.0 -> 8.0.
    records = in_order([submission(0, 0.5), *execution(0, 1.0), submission(1, 2.0),
                        *execution(0, 6.0, 7.0, worker="worker2", redelivered=True),
                        *execution(1, 8.0, 9.0)])
    assert measure(records, 1.5, 3.0, [])["consume_outage_s"] == 4.0


def test_nothing_after_the_fault_to_measure() -> None:
    records = in_order(steady(0, 3))
    assert measure(records, 10.0, 12.0, []) == {
        "submit_outage_s": None, "submit_failed": 0, "consume_outage_s": None,
        "acked_before_lost": [], "acked_during_lost": [], **NO_CLUSTER_VIEW}


def test_ten_thousand_tasks_are_measured_in_a_blink() -> None:
    records = in_order(steady(0, 10_000, every=0.01, start_after=0.5))
    began = time.perf_counter()
    figures = measure(records, 30.0, 40.0, [])
    assert time.perf_counter() - began < 2.0
    assert figures["submit_outage_s"] == 0.01


def test_a_result_written_before_failover_was_measured_loads_with_none() -> None:
    data: dict[str, Any] = {
        "scenario": "s", "backend": "celery", "configuration": "c", "configuration_summary": "",
        "guarantee": "at-least-once", "fault": "none", "fault_description": "", "seed": 1,
        "valid": True, "validity": "", "verdict": "holds", "reason": "", "counts": {},
        "recovery_s": None, "stuck_locations": {}}
    assert ScenarioResult.from_dict(data).failover == {}
    figures = {"submit_outage_s": 1.5, "submit_failed": 2, "consume_outage_s": None,
               "acked_before_lost": ["x.00001"], "acked_during_lost": []}
    back = ScenarioResult.from_dict({**data, "failover": figures}).as_dict()
    assert back["failover"] == figures


def test_the_cluster_view_is_what_the_fault_recorded_after_it_fired() -> None:
    records = [
        {"kind": "leader_changed", "t": 1.0, "new": "rabbitmq9", "after_s": 0.1},  # before
        {"kind": "leader_changed", "t": 5.5, "new": "rabbitmq2", "after_s": 0.456},
        {"kind": "leader_changed", "t": 6.0, "new": "rabbitmq3", "after_s": 1.0},
        {"kind": "target_down", "t": 7.0, "node": "rabbitmq1", "after_s": 2.0},
        {"kind": "cluster_settled", "t": 9.0, "settled_s": 3.2},
        {"kind": "cluster_settled", "t": 19.0, "settled_s": 12.75},
    ]
    assert cluster_view(records, 5.0) == {"down_s": 2.0, "new_leader": "rabbitmq2",
                                          "elected_s": 0.46, "settled_s": 12.75, "unsettled": 0}


def test_a_cluster_that_never_settled_is_counted() -> None:
    records = [{"kind": "cluster_unsettled", "t": 30.0, "bound_s": 120.0}]
    assert cluster_view(records, 5.0) == {**NO_CLUSTER_VIEW, "unsettled": 1}
