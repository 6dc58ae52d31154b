"""Observed state, read from the ledger while a scenario runs (what the schedule and drain use)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from queue_chaos_agent.ledger import read_ledger


@dataclass
class Snapshot:
    """What the ledger says right now."""

    records: list[dict[str, Any]] = field(default_factory=list)
    started: int = 0
    submitted_ok: set[str] = field(default_factory=set)
    completed: set[str] = field(default_factory=set)
    running: dict[str, list[str]] = field(default_factory=dict)  # worker -> tasks in flight
    running_pids: dict[str, list[int]] = field(default_factory=dict)  # worker -> their pids
    ready: dict[str, float] = field(default_factory=dict)  # worker -> latest ready time


def of_scenario(records: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """The records of one scenario (task ids carry its name) and the untagged ones (worker_ready):
    reused workers share a ledger directory across scenarios."""
    return [r for r in records if not isinstance(r.get("task"), str)
            or r["task"].startswith(prefix)]


def snapshot(ledger_dir: Path, prefix: str = "") -> Snapshot:
    """Executions in flight are those started, not ended, on a worker's current life: an
    execution started before the worker's latest ``worker_ready`` died with its process."""
    records = of_scenario(read_ledger([ledger_dir]).records, prefix)
    snap = Snapshot(records=records)
    open_runs: dict[str, tuple[str, str, float, int]] = {}
    killed: list[tuple[str, int, float]] = []  # (worker, pid, when) of processes a fault killed
    for record in records:
        kind = record.get("kind")
        if kind == "worker_ready":
            snap.ready[record["worker"]] = max(snap.ready.get(record["worker"], 0.0), record["t"])
        elif kind == "submission" and record.get("outcome") == "ok":
            snap.submitted_ok.add(record["task"])
        elif kind == "started":
            snap.started += 1
            open_runs[record["execution"]] = (record["worker"], record["task"], record["t"],
                                              record["pid"])
        elif kind in ("completed", "deduplicated"):
            snap.completed.add(record["task"])
            open_runs.pop(record["execution"], None)
        elif kind == "crashing":
            open_runs.pop(record["execution"], None)
        elif kind == "process_killed":
            killed.append((record["worker"], record["killed_pid"], record["t"]))
    running: dict[str, list[str]] = defaultdict(list)
    pids: dict[str, list[int]] = defaultdict(list)
    for worker, task, t, pid in open_runs.values():
        died = any(w == worker and p == pid and t <= when for w, p, when in killed)
        if t >= snap.ready.get(worker, 0.0) and not died:
            running[worker].append(task)
            pids[worker].append(pid)
    snap.running = dict(running)
    snap.running_pids = dict(pids)
    return snap


@dataclass
class Running:
    """What the workers say they run, from their latest ``worker_ready`` records: the
    durability-relevant settings read from the running app (``effective``), library versions,
    and whether the task body checks an idempotency key."""

    effective: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    idempotent: bool = False
    agree: bool = True  # every worker reported the same settings


def running(records: list[dict[str, Any]], workers: list[str]) -> Running:
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        if (record.get("kind") == "worker_ready" and record.get("worker") in workers
                and record["t"] >= latest.get(record["worker"], {}).get("t", float("-inf"))):
            latest[record["worker"]] = record
    if not latest:
        return Running()
    reports = [latest[w] for w in workers if w in latest]
    first = reports[0]
    settings = [(r.get("effective") or {}, bool(r.get("idempotent"))) for r in reports]
    return Running(effective=dict(first.get("effective") or {}),
                   versions=dict(first.get("versions") or {}),
                   idempotent=bool(first.get("idempotent")),
                   agree=all(s == settings[0] for s in settings))


def killed_mid_task(records: list[dict[str, Any]], worker: str, t: float,
                    pid: int | None = None) -> list[str]:
    """Tasks whose execution on ``worker`` (on its process ``pid`` only, if given) had started
    before ``t`` and never ended at all: a SIGKILL at ``t`` cut them.

    Stricter than ``in_flight_at`` for a kill: a task that was running when the trigger was read
    but wrote its ``completed`` record before the signal landed was not interrupted, and a kill
    that interrupted nothing measured nothing. A killed process writes nothing afterwards, so an
    execution of its with no end record anywhere is one the kill cut.
    """
    started: dict[str, str] = {}
    ended: set[str] = set()
    for record in records:
        kind = record.get("kind")
        if kind == "started" and record.get("worker") == worker and record.get("t", t) <= t \
                and (pid is None or record.get("pid") == pid):
            started[record["execution"]] = record["task"]
        elif kind in ("completed", "deduplicated", "crashing"):
            ended.add(record["execution"])
    return sorted(task for execution, task in started.items() if execution not in ended)


def in_flight_at(records: list[dict[str, Any]], worker: str | None, t: float) -> list[str]:
    """Tasks whose execution on ``worker`` (any worker: None) had started before ``t`` and not
    ended by then.

    This is the ground truth of whether a fault fired at ``t`` landed mid-task: the schedule's
    trigger is read a moment earlier, and a task may finish in between.
    """
    started: dict[str, str] = {}
    finished: set[str] = set()
    for record in records:
        if (worker is not None and record.get("worker") != worker) or record.get("t", t) > t:
            continue
        if record.get("kind") == "started":
            started[record["execution"]] = record["task"]
        elif record.get("kind") in ("completed", "deduplicated", "crashing"):
            finished.add(record["execution"])
    return sorted(task for execution, task in started.items() if execution not in finished)
