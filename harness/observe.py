"""Observed state, read from the ledger while a scenario runs (what the schedule and drain use).

The schedule polls every 50 ms and the drain every 200 ms, for the whole of every scenario, so
reading must cost nothing per task: each ledger directory has one ``LedgerTail`` that reads every
file from where its last read stopped, and each scenario's view (a ``_Fold``) folds only the
records it has not seen into a few sets and maps. A record is parsed once per run, never again
by later polls nor by later scenarios of reused workers. The tail keeps a slim tuple of each
record (the fields the views read), so that a later scenario's view can fold the directory from
its start without reading it again.
"""

from __future__ import annotations

import os
import sys
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from queue_chaos_agent.ledger import SUFFIX, decode

# The fields the live view needs; a record is kept as a tuple of them, a fraction of the whole
# record (the whole records are read once more, from disk, by the check).
_FIELDS = ("kind", "task", "execution", "worker", "pid", "t", "outcome", "killed_pid")
_Slim = tuple[Any, ...]
# Values several records repeat: kind, worker, outcome in all of them; a task id in its
# submission, start and completion; an execution in its start and end. One string each.
_SHARED = frozenset({"kind", "task", "execution", "worker", "outcome"})
# A prefix no task id has: a view of the untagged records only (worker_ready, process_killed).
UNTAGGED = "\x00untagged"
K = TypeVar("K")
V = TypeVar("V")
# Records that end an execution (``started`` opens it): the side effect done (``completed``,
# ``deduplicated``: done before), or a run that ended without it (``crashing`` after the effect
# is armed; a team's task, or RQ's probe past its job timeout, ``failed``, ``retried``,
# ``revoked``, ``cancelled``). An execution left open keeps the drain waiting for it.
_ENDED = ("completed", "deduplicated", "crashing", "failed", "retried", "revoked", "cancelled")
_DONE = ("completed", "deduplicated")  # the task's side effect happened


@dataclass
class Snapshot:
    """What the ledger says right now."""

    records: int = 0  # records of this view read so far
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


def _slim(record: dict[str, Any]) -> _Slim:
    """The fields the live view needs; the values records repeat (see ``_SHARED``) as one shared
    string each, not one per record."""
    return tuple(sys.intern(value) if name in _SHARED and isinstance(value, str) else value
                 for name, value in ((f, record.get(f)) for f in _FIELDS))


class LedgerTail:
    """A ledger directory read incrementally: per file, the offset read so far and the bytes of
    a line not yet complete (a writer may be mid-``write``). Damaged lines are counted, once."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.records: list[_Slim] = []
        self.corrupt = 0
        self._offsets: dict[str, int] = {}
        self._partial: dict[str, bytes] = {}

    def poll(self) -> int:
        """Read what was appended since the last poll; returns how many records are known."""
        try:
            entries = [e for e in os.scandir(self.directory)
                       if e.name.endswith(SUFFIX) and e.is_file()]
        except FileNotFoundError:
            return len(self.records)
        for entry in sorted(entries, key=lambda e: e.name):
            offset = self._offsets.get(entry.name, 0)
            if entry.stat().st_size <= offset:
                continue
            with open(entry.path, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
            self._offsets[entry.name] = offset + len(data)
            lines = (self._partial.pop(entry.name, b"") + data).split(b"\n")
            if lines[-1]:  # the writer may be mid-write: the rest of the line comes later
                self._partial[entry.name] = lines[-1]
            # Line by line, not through the ledger's parse_file: one whole record alive at a
            # time, slimmed at once. A batch of whole records, even a short-lived one, leaves
            # the allocator's arenas fragmented around the slim tuples that stay (`make bench`,
            # 1,000 -> 10,000 tasks: +25 MB resident this way, +29 MB through parse_file).
            for line in lines[:-1]:
                if not line:
                    continue
                record = decode(line)
                if record is None:
                    self.corrupt += 1
                else:
                    self.records.append(_slim(record))
        return len(self.records)


class _Fold:
    """One prefix's view of a tail, folded record by record."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.seen = 0  # index into the tail's records
        self.records = 0
        self.started = 0
        self.submitted_ok: set[str] = set()
        self.completed: set[str] = set()
        self.ready: dict[str, float] = {}
        self.open_runs: dict[str, tuple[str, str, float, int]] = {}
        self.killed: list[tuple[str, int, float]] = []  # (worker, pid, when) a fault killed

    def fold(self, records: list[_Slim]) -> None:
        for kind, task, execution, worker, pid, t, outcome, killed_pid in records[self.seen:]:
            if isinstance(task, str) and not task.startswith(self.prefix):
                continue
            self.records += 1
            if kind == "worker_ready":
                self.ready[worker] = max(self.ready.get(worker, 0.0), t)
            elif kind == "submission" and outcome == "ok":
                self.submitted_ok.add(task)
            elif kind == "started":
                self.started += 1
                self.open_runs[execution] = (worker, task, t, pid)
            elif kind in _ENDED:
                if kind in _DONE:
                    self.completed.add(task)
                self.open_runs.pop(execution, None)
            elif kind == "process_killed":
                self.killed.append((worker, killed_pid, t))
        self.seen = len(records)

    def snapshot(self) -> Snapshot:
        """Executions in flight are those started, not ended, on a worker's current life: an
        execution started before the worker's latest ``worker_ready`` died with its process."""
        running: dict[str, list[str]] = defaultdict(list)
        pids: dict[str, list[int]] = defaultdict(list)
        for worker, task, t, pid in self.open_runs.values():
            died = any(w == worker and p == pid and t <= when for w, p, when in self.killed)
            if t >= self.ready.get(worker, 0.0) and not died:
                running[worker].append(task)
                pids[worker].append(pid)
        return Snapshot(records=self.records, started=self.started,
                        submitted_ok=set(self.submitted_ok), completed=set(self.completed),
                        running=dict(running), running_pids=dict(pids), ready=dict(self.ready))


class Observer:
    """The tails of the directories a run watches and the views of them that are in use, both
    bounded (an old scenario's directory or prefix is forgotten, and read afresh if asked)."""

    KEEP = 8

    def __init__(self) -> None:
        self._tails: OrderedDict[Path, LedgerTail] = OrderedDict()
        self._folds: OrderedDict[tuple[Path, str], _Fold] = OrderedDict()

    def snapshot(self, ledger_dir: Path, prefix: str = "") -> Snapshot:
        tail = _recent(self._tails, ledger_dir, LedgerTail, self.KEEP)
        tail.poll()
        view = _recent(self._folds, (ledger_dir, prefix), lambda key: _Fold(key[1]), self.KEEP)
        view.fold(tail.records)
        return view.snapshot()

    def forget(self, ledger_dir: Path, prefix: str) -> None:
        """A scenario has ended: drop its records and views. Reused workers keep appending to
        one directory scenario after scenario, and what the tail kept of an ended one is never
        read again (its check reads the files; a later prefix skips its records). Untagged
        records stay: the next scenario's view needs the workers' ``worker_ready``. The view of
        every task (prefix "") goes too, and is folded afresh from what stays if asked again."""
        if not prefix:
            return
        for key in [k for k in self._folds if k[0] == ledger_dir and k[1] in (prefix, "")]:
            del self._folds[key]
        tail = self._tails.get(ledger_dir)
        if tail is None:
            return
        keep = [not (isinstance(r[1], str) and r[1].startswith(prefix)) for r in tail.records]
        for (directory, _), view in self._folds.items():
            if directory == ledger_dir:  # its place in the records, counted in what stays
                view.seen = sum(keep[:view.seen])
        tail.records = [r for r, kept in zip(tail.records, keep, strict=True) if kept]


def _recent(cache: OrderedDict[K, V], key: K, make: Callable[[K], V], keep: int) -> V:
    """``cache[key]``, made if missing; the least recently used beyond ``keep`` are dropped."""
    if key not in cache:
        cache[key] = make(key)
        while len(cache) > keep:
            cache.popitem(last=False)
    cache.move_to_end(key)
    return cache[key]


_OBSERVER = Observer()


def snapshot(ledger_dir: Path, prefix: str = "") -> Snapshot:
    """What the ledger below ``ledger_dir`` says now about the tasks whose ids start with
    ``prefix`` (and the untagged records: worker_ready, process_killed), read incrementally."""
    return _OBSERVER.snapshot(Path(ledger_dir), prefix)


def forget(ledger_dir: Path, prefix: str) -> None:
    """The ended scenario ``prefix``'s records, no longer kept in memory (``Observer.forget``)."""
    _OBSERVER.forget(Path(ledger_dir), prefix)


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
        elif kind in _ENDED:
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
        elif record.get("kind") in _ENDED:
            finished.add(record["execution"])
    return sorted(task for execution, task in started.items() if execution not in finished)
