"""harness/observe.py: what the ledger says is running, submitted and done right now."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from harness.observe import (
    UNTAGGED,
    Observer,
    Running,
    Snapshot,
    in_flight_at,
    killed_mid_task,
    of_scenario,
    running,
    snapshot,
)
from queue_chaos_agent.ledger import LedgerWriter, encode, read_ledger


def test_empty_or_missing_ledger(tmp_path: Path) -> None:
    assert snapshot(tmp_path) == Snapshot()
    assert snapshot(tmp_path / "missing") == Snapshot()


def test_running_submitted_completed_and_ready(tmp_path: Path) -> None:
    harness = LedgerWriter(tmp_path, "harness")
    worker = LedgerWriter(tmp_path, "worker")
    worker.write("worker_ready", worker="worker1")
    worker.write("worker_ready", worker="worker2")
    for task, outcome in (("a", "ok"), ("b", "ok"), ("c", "ok"), ("d", "failed"),
                          ("e", "indeterminate")):
        harness.write("submission", task=task, outcome=outcome)
    worker.write("started", task="a", execution="ea", worker="worker1")
    worker.write("started", task="b", execution="eb", worker="worker1")
    worker.write("completed", task="a", execution="ea", worker="worker1")
    worker.write("started", task="c", execution="ec", worker="worker2")

    snap = snapshot(tmp_path)
    assert snap.started == 3
    assert snap.submitted_ok == {"a", "b", "c"}
    assert snap.completed == {"a"}
    assert snap.running == {"worker1": ["b"], "worker2": ["c"]}
    assert set(snap.ready) == {"worker1", "worker2"}
    assert snap.records == 2 + 5 + 4


def test_a_run_that_failed_has_ended_without_completing(tmp_path: Path) -> None:
    # A team's task that raised, or RQ's probe past its job timeout: the drain must not wait
    # for it as if it still ran, and it is not completed.
    worker = LedgerWriter(tmp_path, "worker")
    worker.write("worker_ready", worker="worker1")
    for end in ("failed", "retried", "revoked", "cancelled"):
        worker.write("started", task=end, execution=f"e-{end}", worker="worker1")
        worker.write(end, task=end, execution=f"e-{end}", worker="worker1")
    snap = snapshot(tmp_path)
    assert snap.running == {}
    assert snap.completed == set()
    records = read_ledger([tmp_path]).records
    assert in_flight_at(records, "worker1", t=1e12) == []
    assert killed_mid_task(records, "worker1", 1e12) == []


def test_worker_with_nothing_in_flight_is_not_listed(tmp_path: Path) -> None:
    worker = LedgerWriter(tmp_path, "worker")
    worker.write("worker_ready", worker="worker1")
    worker.write("started", task="a", execution="ea", worker="worker1")
    worker.write("completed", task="a", execution="ea", worker="worker1")
    snap = snapshot(tmp_path)
    assert snap.running == {}
    assert snap.completed == {"a"}


def test_executions_from_before_the_latest_worker_ready_died_with_the_old_process(
    tmp_path: Path,
) -> None:
    old_life = LedgerWriter(tmp_path, "worker")  # the process that gets SIGKILLed
    new_life = LedgerWriter(tmp_path, "worker")  # its restart
    other = LedgerWriter(tmp_path, "worker")
    old_life.write("worker_ready", worker="worker1", t=10.0)
    other.write("worker_ready", worker="worker2", t=10.0)
    old_life.write("started", task="x", execution="ex", worker="worker1", t=11.0)
    old_life.write("started", task="y", execution="ey", worker="worker1", t=12.0)
    other.write("started", task="w2", execution="ew2", worker="worker2", t=12.5)
    # killed here: x and y never complete; worker1 comes back
    new_life.write("worker_ready", worker="worker1", t=20.0)
    new_life.write("started", task="z", execution="ez", worker="worker1", t=21.0)
    new_life.write("started", task="x", execution="ex2", worker="worker1", t=22.0)  # redelivered

    snap = snapshot(tmp_path)
    assert snap.ready == {"worker1": 20.0, "worker2": 10.0}
    assert snap.running["worker1"] == ["z", "x"]  # the new life's runs only, in start order
    assert snap.running["worker2"] == ["w2"]  # another worker's restart does not touch it
    assert snap.started == 5  # every start still counts toward the fault threshold


def test_restart_with_nothing_running_since_leaves_the_worker_idle(tmp_path: Path) -> None:
    writer = LedgerWriter(tmp_path, "worker")
    writer.write("worker_ready", worker="worker1", t=1.0)
    writer.write("started", task="x", execution="ex", worker="worker1", t=2.0)
    assert snapshot(tmp_path).running == {"worker1": ["x"]}
    writer.write("worker_ready", worker="worker1", t=3.0)
    assert snapshot(tmp_path).running == {}


def test_execution_started_at_the_ready_instant_belongs_to_the_new_life(tmp_path: Path) -> None:
    writer = LedgerWriter(tmp_path, "worker")
    writer.write("worker_ready", worker="worker1", t=5.0)
    writer.write("started", task="x", execution="ex", worker="worker1", t=5.0)
    assert snapshot(tmp_path).running == {"worker1": ["x"]}


def test_worker_that_never_announced_ready_still_counts_its_runs(tmp_path: Path) -> None:
    writer = LedgerWriter(tmp_path, "worker")
    writer.write("started", task="x", execution="ex", worker="worker9", t=1.0)
    snap = snapshot(tmp_path)
    assert snap.running == {"worker9": ["x"]}
    assert snap.ready == {}


def test_damaged_records_are_skipped_by_the_snapshot(tmp_path: Path) -> None:
    writer = LedgerWriter(tmp_path, "worker")
    writer.write("worker_ready", worker="worker1", t=1.0)
    writer.write("started", task="x", execution="ex", worker="worker1", t=2.0)
    (path,) = tmp_path.glob("*.ledger")
    with path.open("ab") as f:
        f.write(b"0badf00d {\"kind\": \"completed\"")  # a writer killed mid-record
    assert snapshot(tmp_path).running == {"worker1": ["x"]}


# -- one scenario among several in a shared ledger ---------------------------------------------

A, B = "celery-redis.acks-late-prefetch-1.none", "celery-redis.acks-late-prefetch-1.sigkill-worker"


def test_of_scenario_keeps_untagged_records_and_the_prefixes() -> None:
    records: list[dict[str, Any]] = [
        {"kind": "worker_ready", "worker": "worker1", "t": 0.0},
        {"kind": "fault", "fault": "sigkill-worker", "task": None, "t": 0.5},
        {"kind": "submission", "task": f"{A}.00000", "outcome": "ok", "t": 1.0},
        {"kind": "submission", "task": f"{B}.00000", "outcome": "ok", "t": 2.0},
        {"kind": "started", "task": f"{B}.00000", "execution": "e", "t": 3.0},
    ]
    assert of_scenario(records, A) == records[:3]
    assert of_scenario(records, B) == [*records[:2], *records[3:]]
    assert of_scenario(records, "") == records  # no prefix: everything


def test_snapshot_of_a_prefix_ignores_other_scenarios(tmp_path: Path) -> None:
    harness = LedgerWriter(tmp_path, "harness")
    worker = LedgerWriter(tmp_path, "worker")
    worker.write("worker_ready", worker="worker1", t=1.0)
    # the previous scenario on the same (reused) worker
    harness.write("submission", task=f"{A}.00000", outcome="ok", t=2.0)
    worker.write("started", task=f"{A}.00000", execution="a0", worker="worker1", t=3.0)
    worker.write("started", task=f"{A}.00001", execution="a1", worker="worker1", t=3.5)
    worker.write("completed", task=f"{A}.00000", execution="a0", worker="worker1", t=4.0)
    # this scenario
    harness.write("submission", task=f"{B}.00000", outcome="ok", t=5.0)
    worker.write("started", task=f"{B}.00000", execution="b0", worker="worker1", t=6.0)

    snap = snapshot(tmp_path, B)
    assert snap.started == 1
    assert snap.submitted_ok == {f"{B}.00000"}
    assert snap.completed == set()
    assert snap.running == {"worker1": [f"{B}.00000"]}
    assert snap.ready == {"worker1": 1.0}  # worker_ready carries no task: kept
    whole = snapshot(tmp_path)
    assert whole.started == 3
    assert whole.running == {"worker1": [f"{A}.00001", f"{B}.00000"]}


def test_running_pids_are_those_of_the_executions_in_flight(tmp_path: Path) -> None:
    records = [
        {"kind": "worker_ready", "worker": "worker1", "t": 1.0},
        {"kind": "worker_ready", "worker": "worker2", "t": 1.0},
        {"kind": "started", "task": "a", "execution": "ea", "worker": "worker1", "pid": 11,
         "t": 2.0},
        {"kind": "started", "task": "b", "execution": "eb", "worker": "worker1", "pid": 12,
         "t": 2.1},
        {"kind": "started", "task": "c", "execution": "ec", "worker": "worker2", "pid": 21,
         "t": 2.2},
        {"kind": "started", "task": "d", "execution": "ed", "worker": "worker2", "pid": 22,
         "t": 2.3},
        {"kind": "completed", "task": "c", "execution": "ec", "worker": "worker2", "pid": 21,
         "t": 3.0},
    ]
    write_records(tmp_path, records)
    snap = snapshot(tmp_path)
    assert snap.running == {"worker1": ["a", "b"], "worker2": ["d"]}
    assert snap.running_pids == {"worker1": [11, 12], "worker2": [22]}


def test_running_pids_come_from_the_writers_own_pid(tmp_path: Path) -> None:
    writer = LedgerWriter(tmp_path, "worker")
    writer.write("started", task="x", execution="ex", worker="worker1")
    assert snapshot(tmp_path).running_pids == {"worker1": [os.getpid()]}


@pytest.mark.parametrize("ending", ["completed", "deduplicated", "crashing"])
def test_completed_deduplicated_or_crashing_ends_an_execution(tmp_path: Path,
                                                             ending: str) -> None:
    writer = LedgerWriter(tmp_path, "worker")
    writer.write("worker_ready", worker="worker1", t=1.0)
    writer.write("started", task="x", execution="ex", worker="worker1", t=2.0)
    writer.write("started", task="y", execution="ey", worker="worker1", t=2.5)
    writer.write(ending, task="x", execution="ex", worker="worker1", t=3.0)
    snap = snapshot(tmp_path)
    assert snap.running == {"worker1": ["y"]}
    assert snap.running_pids == {"worker1": [os.getpid()]}
    assert in_flight_at(read_ledger([tmp_path]).records, "worker1", 3.5) == ["y"]
    if ending != "crashing":  # done once its side effect, or its key, says so
        assert snap.completed == {"x"}


def write_records(directory: Path, records: list[dict[str, Any]]) -> None:
    """Records with fields of our choosing (pid included), in the ledger's own format."""
    (directory / "hand-written.ledger").write_bytes(b"".join(encode(r) for r in records))


# -- in_flight_at: the ground truth of whether a fault at t landed mid-task ------------------

RECORDS = [
    {"kind": "worker_ready", "worker": "worker1", "t": 0.0},
    {"kind": "started", "task": "a", "execution": "ea", "worker": "worker1", "t": 1.0},
    {"kind": "started", "task": "b", "execution": "eb", "worker": "worker1", "t": 2.0},
    {"kind": "started", "task": "c", "execution": "ec", "worker": "worker2", "t": 2.5},
    {"kind": "completed", "task": "a", "execution": "ea", "worker": "worker1", "t": 3.0},
    {"kind": "started", "task": "a", "execution": "ea2", "worker": "worker1", "t": 4.0},
    {"kind": "completed", "task": "b", "execution": "eb", "worker": "worker1", "t": 5.0},
]


def test_in_flight_at_a_moment() -> None:
    assert in_flight_at(RECORDS, "worker1", 0.5) == []
    assert in_flight_at(RECORDS, "worker1", 2.5) == ["a", "b"]
    assert in_flight_at(RECORDS, "worker1", 3.0) == ["b"]  # completed at t: not in flight
    assert in_flight_at(RECORDS, "worker1", 4.5) == ["a", "b"]  # a's second execution
    assert in_flight_at(RECORDS, "worker1", 9.0) == ["a"]
    assert in_flight_at(RECORDS, "worker2", 9.0) == ["c"]
    assert in_flight_at(RECORDS, "worker3", 9.0) == []


def test_in_flight_at_ignores_the_trigger_snapshot_when_the_task_finished_since(
    tmp_path: Path,
) -> None:
    # The schedule saw b running; b completed before the fault fired: it was not hit.
    writer = LedgerWriter(tmp_path, "worker")
    writer.write("started", task="b", execution="eb", worker="worker1", t=2.0)
    assert snapshot(tmp_path).running == {"worker1": ["b"]}
    writer.write("completed", task="b", execution="eb", worker="worker1", t=2.9)
    assert in_flight_at(read_ledger([tmp_path]).records, "worker1", 3.0) == []


def test_a_killed_process_ends_its_execution(tmp_path: Path) -> None:
    """A pool child SIGKILLed by a fault never writes completed: the harness's process_killed
    record ends its execution, so the drain does not wait for it (other processes unaffected)."""
    worker = LedgerWriter(tmp_path, "worker")
    worker.write("worker_ready", worker="w1")
    worker.write("started", task="s.1", execution="e1", worker="w1", pid=8)
    worker.write("started", task="s.2", execution="e2", worker="w1", pid=9)
    assert sorted(snapshot(tmp_path, "s.").running["w1"]) == ["s.1", "s.2"]
    LedgerWriter(tmp_path, "harness").write("process_killed", worker="w1", killed_pid=8)
    assert snapshot(tmp_path, "s.").running["w1"] == ["s.2"]


# -- killed_mid_task: what a SIGKILL actually cut ---------------------------------------------

KILLS = [
    {"kind": "started", "task": "a", "execution": "ea", "worker": "w1", "pid": 8, "t": 1.0},
    {"kind": "started", "task": "b", "execution": "eb", "worker": "w1", "pid": 7, "t": 1.5},
    {"kind": "completed", "task": "a", "execution": "ea", "worker": "w1", "pid": 8, "t": 2.9},
    {"kind": "started", "task": "c", "execution": "ec", "worker": "w1", "pid": 8, "t": 3.5},
    {"kind": "started", "task": "d", "execution": "ed", "worker": "w2", "pid": 8, "t": 1.0},
]


def test_a_task_that_finished_before_the_kill_landed_was_not_cut() -> None:
    # The trigger read a running at t=2.8; it completed at 2.9, the kill landed at 3.0.
    assert in_flight_at(KILLS, "w1", 2.8) == ["a", "b"]
    assert killed_mid_task(KILLS, "w1", 3.0, pid=8) == []  # the killed child ran nothing
    assert killed_mid_task(KILLS, "w1", 3.0) == ["b"]  # the whole worker: b never ended
    assert killed_mid_task(KILLS, "w1", 4.0, pid=8) == ["c"]
    assert killed_mid_task(KILLS, "w2", 4.0) == ["d"]


def test_running_is_what_the_current_workers_last_reported() -> None:
    ready = [
        {"kind": "worker_ready", "worker": "w1", "t": 1.0, "effective": {"a": 1},
         "versions": {"celery": "5.7.0"}, "idempotent": False},
        {"kind": "worker_ready", "worker": "w1", "t": 5.0, "effective": {"a": 2},
         "versions": {"celery": "5.7.0"}, "idempotent": True},
        {"kind": "worker_ready", "worker": "w2", "t": 2.0, "effective": {"a": 2},
         "versions": {"celery": "5.7.0"}, "idempotent": True},
        {"kind": "worker_ready", "worker": "old", "t": 9.0, "effective": {"a": 3}},
    ]
    seen = running(ready, ["w1", "w2"])
    assert seen.effective == {"a": 2} and seen.idempotent and seen.agree
    assert seen.versions == {"celery": "5.7.0"}
    assert not running([*ready, {**ready[2], "t": 6.0, "effective": {"a": 4}}],
                       ["w1", "w2"]).agree
    assert running([], ["w1"]) == Running()


# -- read incrementally --------------------------------------------------------------------------


def test_records_appended_between_polls_are_seen_and_earlier_ones_not_read_again(
        tmp_path: Path) -> None:
    worker = LedgerWriter(tmp_path, "worker")
    worker.write("worker_ready", worker="worker1", t=1.0)
    worker.write("started", task="a", execution="ea", worker="worker1", t=2.0)
    observer = Observer()
    assert observer.snapshot(tmp_path).running == {"worker1": ["a"]}
    worker.write("completed", task="a", execution="ea", worker="worker1", t=3.0)
    LedgerWriter(tmp_path, "harness").write("submission", task="b", outcome="ok")
    snap = observer.snapshot(tmp_path)
    assert snap.running == {}
    assert snap.completed == {"a"}
    assert snap.submitted_ok == {"b"}
    assert snap.records == 4
    (tail,) = observer._tails.values()
    assert len(tail.records) == 4  # each record parsed once, not once per poll


def test_a_line_completed_after_a_poll_is_read_whole_and_not_counted_damaged(
        tmp_path: Path) -> None:
    line = encode({"kind": "started", "task": "x", "execution": "ex", "worker": "worker1",
                   "pid": 7, "t": 2.0})
    path = tmp_path / "worker-w-1-abc.ledger"
    path.write_bytes(line[:10])  # the writer is mid-record
    observer = Observer()
    assert observer.snapshot(tmp_path).started == 0
    with path.open("ab") as f:
        f.write(line[10:])
    snap = observer.snapshot(tmp_path)
    assert snap.started == 1
    assert snap.running_pids == {"worker1": [7]}
    (tail,) = observer._tails.values()
    assert tail.corrupt == 0


def test_a_second_prefix_on_the_same_directory_folds_from_the_start(tmp_path: Path) -> None:
    writer = LedgerWriter(tmp_path, "worker")
    writer.write("worker_ready", worker="worker1", t=1.0)
    writer.write("started", task=f"{A}.0", execution="e1", worker="worker1", t=2.0)
    writer.write("started", task=f"{B}.0", execution="e2", worker="worker1", t=3.0)
    observer = Observer()
    assert observer.snapshot(tmp_path, A).running == {"worker1": [f"{A}.0"]}
    assert observer.snapshot(tmp_path, B).running == {"worker1": [f"{B}.0"]}
    assert observer.snapshot(tmp_path).started == 2


def test_the_observer_forgets_old_directories_and_reads_them_afresh(tmp_path: Path) -> None:
    observer = Observer()
    for n in range(Observer.KEEP + 2):
        LedgerWriter(tmp_path / str(n), "worker").write("started", task="t", execution="e",
                                                        worker="w", t=1.0)
        observer.snapshot(tmp_path / str(n))
    assert len(observer._tails) == Observer.KEEP
    assert observer.snapshot(tmp_path / "0").started == 1


def test_forgetting_an_ended_scenario_keeps_untagged_records_and_other_views(
        tmp_path: Path) -> None:
    writer = LedgerWriter(tmp_path, "worker")
    writer.write("worker_ready", worker="worker1", t=1.0)
    writer.write("started", task=f"{A}.0", execution="e1", worker="worker1", t=2.0)
    writer.write("started", task=f"{B}.0", execution="e2", worker="worker1", t=3.0)
    observer = Observer()
    observer.snapshot(tmp_path, A)
    assert observer.snapshot(tmp_path, B).started == 1
    observer.forget(tmp_path, A)
    (tail,) = observer._tails.values()
    assert [r[1] for r in tail.records] == [None, f"{B}.0"]
    writer.write("completed", task=f"{B}.0", execution="e2", worker="worker1", t=4.0)
    after = observer.snapshot(tmp_path, B)  # the view of B, moved to its place in what stays
    assert (after.started, after.completed, after.running) == (1, {f"{B}.0"}, {})
    assert observer.snapshot(tmp_path, A).started == 0  # read afresh: A's records are gone
    assert observer.snapshot(tmp_path, UNTAGGED).ready == {"worker1": 1.0}
    assert observer.snapshot(tmp_path, UNTAGGED).started == 0
    observer.forget(tmp_path, "")  # no prefix: nothing is dropped
    assert len(tail.records) == 3


def test_a_task_id_read_in_several_records_is_kept_once(tmp_path: Path) -> None:
    writer = LedgerWriter(tmp_path, "worker")
    writer.write("started", task=f"{A}.0", execution="e1", worker="worker1", t=2.0)
    writer.write("completed", task=f"{A}.0", execution="e1", worker="worker1", t=3.0)
    observer = Observer()
    observer.snapshot(tmp_path, A)
    (tail,) = observer._tails.values()
    first, second = tail.records
    assert first[1] is second[1] and first[2] is second[2]
