"""Observed state, read from the ledger while a scenario runs (what the schedule and drain use)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.ledger import read_ledger


@dataclass
class Snapshot:
    """What the ledger says right now."""

    records: list[dict[str, Any]] = field(default_factory=list)
    started: int = 0
    submitted_ok: set[str] = field(default_factory=set)
    completed: set[str] = field(default_factory=set)
    running: dict[str, list[str]] = field(default_factory=dict)  # worker -> tasks in flight
    ready: dict[str, float] = field(default_factory=dict)  # worker -> latest ready time


def snapshot(ledger_dir: Path) -> Snapshot:
    """Executions in flight are those started, not completed, on a worker's current life:
    an execution started before the worker's latest ``worker_ready`` died with its process."""
    contents = read_ledger([ledger_dir])
    snap = Snapshot(records=contents.records)
    open_runs: dict[str, tuple[str, str, float]] = {}
    for record in contents.records:
        kind = record.get("kind")
        if kind == "worker_ready":
            snap.ready[record["worker"]] = max(snap.ready.get(record["worker"], 0.0), record["t"])
        elif kind == "submission" and record.get("outcome") == "ok":
            snap.submitted_ok.add(record["task"])
        elif kind == "started":
            snap.started += 1
            open_runs[record["execution"]] = (record["worker"], record["task"], record["t"])
        elif kind == "completed":
            snap.completed.add(record["task"])
            open_runs.pop(record["execution"], None)
    running: dict[str, list[str]] = defaultdict(list)
    for worker, task, t in open_runs.values():
        if t >= snap.ready.get(worker, 0.0):
            running[worker].append(task)
    snap.running = dict(running)
    return snap


def in_flight_at(records: list[dict[str, Any]], worker: str, t: float) -> list[str]:
    """Tasks whose execution on ``worker`` had started before ``t`` and not completed by then.

    This is the ground truth of whether a fault fired at ``t`` landed mid-task: the schedule's
    trigger is read a moment earlier, and a task may finish in between.
    """
    started: dict[str, str] = {}
    finished: set[str] = set()
    for record in records:
        if record.get("worker") != worker or record.get("t", t) > t:
            continue
        if record.get("kind") == "started":
            started[record["execution"]] = record["task"]
        elif record.get("kind") == "completed":
            finished.add(record["execution"])
    return sorted(task for execution, task in started.items() if execution not in finished)
