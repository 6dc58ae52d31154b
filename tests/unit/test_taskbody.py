"""queue_chaos_agent/taskbody.py: the one task body every backend runs, against a real ledger."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from queue_chaos_agent import taskbody
from queue_chaos_agent.ledger import LedgerWriter, read_ledger


def records(ledger_dir: Path) -> list[dict[str, Any]]:
    contents = read_ledger([ledger_dir])
    assert (contents.truncated, contents.corrupt) == (0, 0)
    return contents.records


def kinds(ledger_dir: Path, task: str) -> list[str]:
    return [r["kind"] for r in records(ledger_dir) if r.get("task") == task]


def test_perform_writes_started_then_completed(tmp_path: Path) -> None:
    ledger = LedgerWriter(tmp_path, "worker")
    taskbody.perform(ledger, str(tmp_path), "t1", 0.01, redelivered=False, job_try=1)
    started, completed = records(tmp_path)
    assert (started["kind"], completed["kind"]) == ("started", "completed")
    assert started["task"] == completed["task"] == "t1"
    assert started["execution"] == completed["execution"]
    assert started["worker"] == completed["worker"]
    assert started["pid"] == completed["pid"] == os.getpid()
    assert completed["t"] - started["t"] >= 0.01  # the task's duration lies between them
    assert (started["redelivered"], started["job_try"]) == (False, 1)  # delivery, on started
    assert "redelivered" not in completed


def test_each_run_is_its_own_execution(tmp_path: Path) -> None:
    ledger = LedgerWriter(tmp_path, "worker")
    taskbody.perform(ledger, str(tmp_path), "t1", 0.0)
    taskbody.perform(ledger, str(tmp_path), "t1", 0.0)
    executions = {r["execution"] for r in records(tmp_path)}
    assert len(executions) == 2
    assert kinds(tmp_path, "t1") == ["started", "completed", "started", "completed"]


def test_idempotent_twice_completes_once_and_deduplicates_once(tmp_path: Path) -> None:
    ledger = LedgerWriter(tmp_path, "worker")
    taskbody.perform(ledger, str(tmp_path), "t1", 0.0, idempotent=True)
    taskbody.perform(ledger, str(tmp_path), "t1", 0.0, idempotent=True)
    assert kinds(tmp_path, "t1") == ["started", "completed", "started", "deduplicated"]
    # another task id has its own key
    taskbody.perform(ledger, str(tmp_path), "t2", 0.0, idempotent=True)
    assert kinds(tmp_path, "t2") == ["started", "completed"]


def test_without_idempotency_a_repeat_completes_again(tmp_path: Path) -> None:
    ledger = LedgerWriter(tmp_path, "worker")
    taskbody.perform(ledger, str(tmp_path), "t1", 0.0, idempotent=True)
    taskbody.perform(ledger, str(tmp_path), "t1", 0.0)
    assert kinds(tmp_path, "t1").count("completed") == 2


def _perform_in_child(ledger_dir: Path, task: str) -> int:
    """perform() in a forked child; returns the child's exit status."""
    pid = os.fork()
    if pid == 0:  # the child must never return into pytest
        code = 0
        try:
            taskbody.perform(LedgerWriter(ledger_dir, "worker"), str(ledger_dir), task, 0.0)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status), status
    return os.WEXITSTATUS(status)


def test_armed_crash_exits_the_process_right_after_the_side_effect(tmp_path: Path) -> None:
    taskbody.arm_crash(tmp_path)
    marker = taskbody.crash_marker(tmp_path)
    assert marker.is_file()
    assert _perform_in_child(tmp_path, "t1") == 70
    assert kinds(tmp_path, "t1") == ["started", "completed", "crashing"]
    crashing = records(tmp_path)[-1]
    assert crashing["execution"] == records(tmp_path)[0]["execution"]
    assert not marker.exists()  # consumed: one run crashes, not every run
    # the next run goes through
    assert _perform_in_child(tmp_path, "t2") == 0
    assert kinds(tmp_path, "t2") == ["started", "completed"]
    taskbody.perform(LedgerWriter(tmp_path, "worker"), str(tmp_path), "t3", 0.0)
    assert kinds(tmp_path, "t3") == ["started", "completed"]


def test_unarmed_child_exits_normally(tmp_path: Path) -> None:
    assert _perform_in_child(tmp_path, "t1") == 0
    assert kinds(tmp_path, "t1") == ["started", "completed"]


def test_a_deduplicated_run_does_not_take_the_crash(tmp_path: Path) -> None:
    ledger = LedgerWriter(tmp_path, "worker")
    taskbody.perform(ledger, str(tmp_path), "t1", 0.0, idempotent=True)
    taskbody.arm_crash(tmp_path)
    taskbody.perform(ledger, str(tmp_path), "t1", 0.0, idempotent=True)  # returns: no side effect
    assert kinds(tmp_path, "t1") == ["started", "completed", "started", "deduplicated"]
    assert taskbody.crash_marker(tmp_path).exists()  # still armed for the next side effect


def test_arm_crash_is_idempotent(tmp_path: Path) -> None:
    taskbody.arm_crash(tmp_path)
    taskbody.arm_crash(tmp_path)
    assert taskbody.crash_marker(tmp_path) == tmp_path / taskbody.CONTROL / taskbody.CRASH_MARKER
    assert taskbody.crash_marker(tmp_path).is_file()
