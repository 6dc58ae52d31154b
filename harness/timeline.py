"""Timeline pictures: what happened in a scenario, drawn the way Jepsen shades its nemesis.

A table says "2 lost, 1 duplicated"; a timeline shows why: where the fault hit, which
executions it cut, which tasks never ran and which ran twice. One PNG per scenario (a lane per
worker process, a bar per execution, the fault window shaded) and one per run (loss and
duplication per configuration and fault).

Pure rendering from ledger records and the result model: no Docker, no broker. The picture is
split in two so that what it claims can be tested without looking at pixels: ``build`` turns
records and a ``ScenarioResult`` into a ``Timeline`` (lanes, bars, marks, the fault window),
``draw`` only paints it. Drawing goes through matplotlib's Agg canvas directly (never pyplot, so
no display and no global backend is touched), under matplotlib's default style (so no local
matplotlibrc changes a picture), and the PNG carries no software or date metadata: the same
input gives the same bytes.
"""

from __future__ import annotations

import bisect
import itertools
import json
import logging
import math
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.style
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.transforms import blended_transform_factory

from harness import trials
from harness.faults import FAULTS
from harness.observe import of_scenario
from harness.result import ReportError, RunReport, ScenarioResult, attempt_prefix
from harness.shard import merge
from queue_chaos_agent.ledger import read_ledger

log = logging.getLogger(__name__)

TIMELINE_NAME = "timeline.png"  # in each scenario's directory, beside result.json
SUMMARY_NAME = "durability.png"  # in the run's directory, beside durability.json
DPI = 100

# How an execution ended. ``completed`` is the side effect; the others ended without it.
# ``crashing`` follows a ``completed`` of the same execution (the process exits right after its
# side effect): it ends no execution, it ends the process.
_ENDS = ("completed", "deduplicated", "failed", "retried", "revoked", "cancelled")
CUT = "cut"  # never ended: cut where its process died, or open at the end of the view

# A task's class, from the scenario's anomalies, most telling first: a task that is both
# duplicated and redelivered is drawn as duplicated.
CLASSES = ("unexpected", "lost", "duplicated", "stuck", "re-executed", "redelivered", "normal")
COLORS = {
    "normal": "#a7b1bc",
    "lost": "#d7191c",
    "duplicated": "#7b3294",
    "stuck": "#8c510a",
    "re-executed": "#0072b2",
    "redelivered": "#e69f00",
    "unexpected": "#000000",
}
LEGEND = {
    "normal": "ran once",
    "lost": "lost",
    "duplicated": "duplicated (side effect twice)",
    "stuck": "stuck (still in the broker)",
    "re-executed": "re-executed (started again, done once)",
    "redelivered": "redelivered by the broker (ran once)",
    "unexpected": "unexpected (never submitted)",
}
FAULT_COLOR = "#fdae61"
REFUSED_COLOR = "#b35806"  # a submission the producer did not get acknowledged

MAX_LANES = 28  # beyond this, a worker's processes share a lane (see ``_lane_level``)
MAX_ROWS = 24  # concurrent executions drawn side by side within one lane; more overlap
LABEL_AT_MOST = 30  # anomalous executions labelled with their task number up to this many
LINK_AT_MOST = 40  # anomalous tasks whose executions are joined by a dotted line


# --- the model ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lane:
    """One row of the picture: a worker process (one life of it: a restarted container reuses
    pids, so its processes are new lanes), or several when there are too many to draw apart."""

    label: str
    worker: str
    first_t: float  # its first execution's start
    end_t: float  # where it died, or the end of the view
    rows: int = 1  # executions it ran at once, side by side (threads, asyncio, many jobs)


@dataclass(frozen=True)
class Bar:
    """One execution: from its ``started`` record to its end (``CUT``: it never ended)."""

    task: str
    execution: str
    lane: int
    start: float
    end: float
    ended: str  # completed, deduplicated, failed, retried, revoked, cancelled, or CUT
    klass: str  # the task's class, one of CLASSES
    row: int = 0

    @property
    def cut(self) -> bool:
        return self.ended == CUT


@dataclass(frozen=True)
class Mark:
    """A task that never started anywhere, at its submission: lost, or stuck in the broker."""

    task: str
    t: float
    klass: str


@dataclass(frozen=True, order=True)
class Death:
    """A worker process dying: a kill's own record, a crash, or the restart the fault caused."""

    lane: int
    t: float


@dataclass(frozen=True)
class Window:
    """The fault's window: from when injecting began to when the harness healed it."""

    fault: str
    target: str
    start: float
    end: float


@dataclass(frozen=True)
class Timeline:
    """Everything the picture shows, in seconds since the scenario's first submission."""

    scenario: str
    title: tuple[str, ...]
    lanes: tuple[Lane, ...]
    bars: tuple[Bar, ...]
    marks: tuple[Mark, ...]
    deaths: tuple[Death, ...]
    submissions: tuple[tuple[float, str], ...]  # (when, outcome: ok, failed, indeterminate)
    window: Window | None
    end: float
    prefix: str = ""

    def of_task(self, task: str) -> list[Bar]:
        return [b for b in self.bars if b.task == task]


@dataclass
class _Run:
    """One execution as its records tell it, on the ledger's clock."""

    task: str
    worker: str
    pid: int
    start: float
    end: float | None = None  # None: it never ended
    ended: str = CUT
    crashed: float | None = None  # its process exited right after it (a ``crashing`` record)


@dataclass
class _Process:
    """One worker process as the records show it (the model's unit before lanes are drawn)."""

    worker: str
    pid: int
    life: int  # the worker's ``worker_ready`` records up to its first start: which container
    first_t: float
    last_t: float
    died_t: float | None = None
    executions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Fault:
    fault: str
    target: str
    start: float  # when injecting began (the record's ``fired``)
    end: float  # when it was healed


_Key = tuple[str, int, int]  # worker, life, pid


def prefix_of(result: ScenarioResult) -> str:
    """The task id prefix of the attempt a result reports (a re-run attempt tags its tasks
    ``<scenario>~attempt-N``: ``result.attempt_prefix``)."""
    return attempt_prefix(result.scenario, result.attempt)


def task_classes(result: ScenarioResult) -> dict[str, str]:
    """Each anomalous task's class (the most telling of those it has); others are normal."""
    classes: dict[str, str] = {}
    for klass in reversed(CLASSES[:-1]):
        for task in result.anomalies.get(klass, []):
            classes[task] = klass
    return classes


def build(records: Iterable[Mapping[str, Any]], result: ScenarioResult) -> Timeline:
    """The timeline of one scenario from its ledger records (the scenario's own and the
    untagged ones: worker_ready, fault, healed, process_killed) and its result.

    The ledger directory is shared by the scenarios a world runs with the same workers, so
    untagged records are taken only where they belong: the fault of this scenario's name inside
    its span, the first heal after it, workers' restarts up to the end of the view.
    """
    prefix = prefix_of(result)
    tagged, untagged = _split(records, prefix)
    origin = _origin(tagged)
    fault = _fault(untagged, result, tagged)
    view_end = max([float(r["t"]) for r in tagged] + [fault.end if fault else -math.inf])
    readies = _readies(untagged, view_end)
    kills = [r for r in untagged if r.get("kind") == "process_killed"
             and origin <= float(r["t"]) <= view_end]
    runs = _executions(tagged)
    processes = _processes(runs, readies)
    _deaths(processes, runs, readies, kills, fault, view_end)
    lanes, lane_of = _lanes(processes, view_end)
    bars, rows = _pack(_bars(runs, processes, lane_of, task_classes(result), view_end))
    deaths = {Death(lane_of[key], p.died_t - origin)
              for key, p in processes.items() if p.died_t is not None}
    return Timeline(
        scenario=result.scenario,
        title=_title(result),
        lanes=tuple(replace(lane, rows=rows.get(i, 1), first_t=lane.first_t - origin,
                            end_t=lane.end_t - origin) for i, lane in enumerate(lanes)),
        bars=tuple(replace(b, start=b.start - origin, end=b.end - origin) for b in bars),
        marks=_marks(tagged, runs, task_classes(result), origin),
        deaths=tuple(sorted(deaths)),
        submissions=tuple(sorted((_sent(r) - origin, str(r.get("outcome")))
                                 for r in tagged if r.get("kind") == "submission")),
        window=None if fault is None else Window(fault.fault, fault.target,
                                                 fault.start - origin, fault.end - origin),
        end=view_end - origin,
        prefix=prefix,
    )


def _split(records: Iterable[Mapping[str, Any]],
           prefix: str) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """This scenario's task records and every untagged record (worker_ready, fault, ...)."""
    ours = prefix + "."
    tagged: list[Mapping[str, Any]] = []
    untagged: list[Mapping[str, Any]] = []
    for r in records:
        task = r.get("task")
        if not isinstance(r.get("t"), int | float):
            continue
        if not isinstance(task, str):
            untagged.append(r)
        elif task.startswith(ours):
            tagged.append(r)
    return tagged, untagged


def _sent(submission: Mapping[str, Any]) -> float:
    """When a task was submitted: when the producer sent it (``t_sent``), not when its answer
    came (``t``, seconds later for a submission that timed out against a dead broker)."""
    sent = submission.get("t_sent")
    return float(sent) if isinstance(sent, int | float) else float(submission["t"])


def _origin(tagged: list[Mapping[str, Any]]) -> float:
    """Time zero: the first submission (the first record at all, if none is left)."""
    submissions = [_sent(r) for r in tagged if r.get("kind") == "submission"]
    times = submissions or [float(r["t"]) for r in tagged]
    return min(times) if times else 0.0


def _fault(untagged: list[Mapping[str, Any]], result: ScenarioResult,
           tagged: list[Mapping[str, Any]]) -> _Fault | None:
    """The first ``fault`` record of this scenario's fault inside its span (a control has
    none), to the first ``healed`` after it (or the last record, when none was written)."""
    if result.fault == "none" or not tagged:
        return None
    first, last = min(float(r["t"]) for r in tagged), max(float(r["t"]) for r in tagged)
    faults = sorted(((float(r["t"]), r) for r in untagged if r.get("kind") == "fault"
                     and r.get("fault") == result.fault and first <= float(r["t"]) <= last),
                    key=lambda item: item[0])
    if not faults:
        return None
    t, record = faults[0]
    heals = sorted(float(r["t"]) for r in untagged
                   if r.get("kind") == "healed" and float(r["t"]) >= t)
    return _Fault(str(record.get("fault")), str(record.get("target") or ""),
                  float(record.get("fired") or t), heals[0] if heals else last)


def _readies(untagged: list[Mapping[str, Any]], view_end: float) -> dict[str, list[float]]:
    """Per worker, when it became ready (each one a container started, or started again)."""
    readies: dict[str, list[float]] = defaultdict(list)
    for r in untagged:
        if r.get("kind") == "worker_ready" and float(r["t"]) <= view_end:
            readies[str(r.get("worker"))].append(float(r["t"]))
    return {w: sorted(ts) for w, ts in readies.items()}


def _executions(tagged: list[Mapping[str, Any]]) -> dict[str, _Run]:
    """Per execution id, its run: the first end record counts. Ends without a start (a revoke
    sent in a worker's main process carries a fresh execution id) pair with nothing."""
    runs: dict[str, _Run] = {}
    for r in sorted(tagged, key=lambda r: float(r["t"])):
        execution, kind = r.get("execution"), r.get("kind")
        if not isinstance(execution, str):
            continue
        run = runs.get(execution)
        if kind == "started" and run is None:
            runs[execution] = _Run(str(r["task"]), str(r.get("worker")), int(r.get("pid") or 0),
                                   float(r["t"]))
        elif run is not None and kind in _ENDS and run.end is None:
            run.end, run.ended = float(r["t"]), str(kind)
        elif run is not None and kind == "crashing":
            run.crashed = float(r["t"])
    return runs


def _life(readies: Mapping[str, list[float]], worker: str, t: float) -> int:
    return bisect.bisect_right(readies.get(worker, []), t)


def _processes(runs: Mapping[str, _Run],
               readies: Mapping[str, list[float]]) -> dict[_Key, _Process]:
    """The worker processes that ran executions, keyed by (worker, life, pid): a restarted
    container reuses its pids, so the pid alone does not name a process."""
    processes: dict[_Key, _Process] = {}
    for execution, run in runs.items():
        key = (run.worker, _life(readies, run.worker, run.start), run.pid)
        last = max(t for t in (run.start, run.end, run.crashed) if t is not None)
        process = processes.get(key)
        if process is None:
            process = processes[key] = _Process(run.worker, run.pid, key[1], run.start, last)
        process.first_t = min(process.first_t, run.start)
        process.last_t = max(process.last_t, last)
        process.executions.append(execution)
    return processes


def _deaths(processes: Mapping[_Key, _Process], runs: Mapping[str, _Run],
            readies: Mapping[str, list[float]], kills: list[Mapping[str, Any]],
            fault: _Fault | None, view_end: float) -> None:
    """When each process died, where the records say so, most exact first: a kill's own
    ``process_killed`` record; the ``crashing`` record it wrote before exiting; else, when its
    worker was started again, the fault (if it targeted that worker), or at the latest the
    restart. A process with none of these lived to the end of the view."""
    for process in processes.values():
        worker, pid = process.worker, process.pid
        restart = next((t for t in readies.get(worker, []) if t > process.first_t), None)
        killed = sorted(float(k["t"]) for k in kills if k.get("worker") == worker
                        and k.get("killed_pid") == pid
                        and process.first_t <= float(k["t"]) <= (restart or view_end))
        crashed = sorted(c for c in (runs[e].crashed for e in process.executions)
                         if c is not None)
        if killed:
            process.died_t = killed[0]
        elif crashed:
            process.died_t = crashed[0]
        elif restart is not None:
            hit = (fault is not None and fault.target == worker
                   and process.first_t <= fault.start <= restart)
            process.died_t = max(fault.start, process.last_t) if hit and fault else restart


def _lane_level(processes: Mapping[_Key, _Process]) -> int:
    """How finely lanes are cut: 0, a lane per process; 1, per worker life; 2, per worker.
    The finest that stays within ``MAX_LANES`` (a pool that replaces its children often)."""
    for level in (0, 1):
        if len({_lane_key(k, level) for k in processes}) <= MAX_LANES:
            return level
    return 2


def _lane_key(key: _Key, level: int) -> _Key:
    worker, life, pid = key
    return (worker, life if level < 2 else 0, pid if level == 0 else 0)


def _lanes(processes: Mapping[_Key, _Process],
           view_end: float) -> tuple[list[Lane], dict[_Key, int]]:
    """The lanes, ordered by worker then first start, and which lane each process is in.
    A lane is labelled by worker and pid (or how many processes it holds), and says when its
    worker had been started again since the scenario began."""
    level = _lane_level(processes)
    groups: dict[_Key, list[_Key]] = defaultdict(list)
    for key in processes:
        groups[_lane_key(key, level)].append(key)
    first_life = {w: min(k[1] for k in processes if k[0] == w) for w, _, _ in processes}
    lanes: list[tuple[Lane, list[_Key]]] = []
    for (worker, life, pid), keys in groups.items():
        members = [processes[k] for k in keys]
        label = f"{worker} pid {pid}" if level == 0 else f"{worker} ({len(keys)} processes)"
        if level < 2 and life > first_life[worker]:
            label += " (restarted)"
        lanes.append((Lane(label, worker, min(p.first_t for p in members),
                           max(view_end if p.died_t is None else p.died_t for p in members)),
                      keys))
    lanes.sort(key=lambda item: (item[0].worker, item[0].first_t, item[0].label))
    lane_of = {key: i for i, (_, keys) in enumerate(lanes) for key in keys}
    return [lane for lane, _ in lanes], lane_of


def _bars(runs: Mapping[str, _Run], processes: Mapping[_Key, _Process],
          lane_of: Mapping[_Key, int], classes: Mapping[str, str], view_end: float) -> list[Bar]:
    """A bar per execution. One that never ended runs to its process's death (when that came
    after its start), else to the end of the view."""
    bars = []
    for key, process in processes.items():
        for execution in process.executions:
            run = runs[execution]
            end = run.end
            if end is None:
                died = process.died_t
                end = died if died is not None and died >= run.start else view_end
            bars.append(Bar(run.task, execution, lane_of[key], run.start, end, run.ended,
                            classes.get(run.task, "normal")))
    return sorted(bars, key=lambda b: (b.lane, b.start, b.end, b.execution))


def _pack(bars: list[Bar]) -> tuple[list[Bar], dict[int, int]]:
    """Executions a lane ran at once go side by side, each in the first row free at its start
    (at most ``MAX_ROWS``; beyond, in the row that frees first). Returns the bars with their
    rows and each lane's number of rows."""
    row_ends: dict[int, list[float]] = defaultdict(list)
    packed = []
    for bar in bars:
        ends = row_ends[bar.lane]
        row = next((i for i, end in enumerate(ends) if end <= bar.start), None)
        if row is None and len(ends) < MAX_ROWS:
            row = len(ends)
            ends.append(bar.end)
        elif row is None:
            row = min(range(len(ends)), key=lambda i: ends[i])
        ends[row] = max(ends[row], bar.end)
        packed.append(replace(bar, row=row))
    return packed, {lane: len(ends) for lane, ends in row_ends.items()}


def _marks(tagged: list[Mapping[str, Any]], runs: Mapping[str, _Run],
           classes: Mapping[str, str], origin: float) -> tuple[Mark, ...]:
    """Lost and stuck tasks that never started anywhere, at their (first) submission."""
    submitted: dict[str, float] = {}
    for r in tagged:
        if r.get("kind") == "submission":
            submitted.setdefault(str(r["task"]), _sent(r))
    started = {run.task for run in runs.values()}
    marks = [Mark(task, submitted.get(task, origin) - origin, klass)
             for task, klass in classes.items()
             if klass in ("lost", "stuck") and task not in started]
    return tuple(sorted(marks, key=lambda m: (m.t, m.task)))


def _title(result: ScenarioResult) -> tuple[str, ...]:
    """The scenario, its verdict against its claim, and what was counted."""
    c = result.counts
    counts = [f"{c.get('submitted', 0)} submitted", f"{c.get('completed', 0)} completed once",
              f"{c.get('lost', 0)} lost", f"{c.get('duplicated', 0)} duplicated"]
    if c.get("re_executed"):
        counts.append(f"{c['re_executed']} re-executed")
    if c.get("stuck"):
        counts.append(f"{c['stuck']} stuck")
    verdict = (result.reason or result.verdict) if result.verdict == "holds" else (
        f"{result.verdict}: {result.reason}" if result.reason else result.verdict)
    summary = result.configuration_summary
    return (result.scenario, f"{verdict}  ·  {' · '.join(counts)}",
            summary if len(summary) <= 140 else summary[:139] + "…")


# --- drawing a timeline ---------------------------------------------------------------------

_WIDTH_IN = 12.0
_LEFT_IN, _RIGHT_IN, _TOP_IN, _BOTTOM_IN = 1.95, 0.25, 1.0, 0.85
_LANE_IN = 0.34  # a lane of one row; lanes running many executions at once are taller
_BAND = 0.8  # of a lane's height: the rest is the gap between lanes
_LABEL_PX = 8.0  # a bar at least this tall (pixels) is tall enough to carry its task number


@dataclass(frozen=True)
class _Layout:
    """Where the picture's rows sit on the y axis (top to bottom, in lane units): the
    submissions, the lanes, then "never ran" when some task did. A lane's height grows with
    the executions it ran at once, so that a process running twenty keeps readable bars."""

    labels: tuple[str, ...]
    centers: tuple[float, ...]
    heights: tuple[float, ...]
    never: int | None  # the never-ran row's index

    @property
    def total(self) -> float:
        return sum(self.heights)

    def lane(self, index: int) -> tuple[float, float]:
        """(center, height) of lane ``index``."""
        return self.centers[index + 1], self.heights[index + 1]


def _layout(timeline: Timeline) -> _Layout:
    labels = ["submitted", *(lane.label for lane in timeline.lanes)]
    heights = [1.0, *(1.0 if lane.rows <= 3 else min(4.0, 1.0 + 0.25 * (lane.rows - 3))
                      for lane in timeline.lanes)]
    never = None
    if timeline.marks:
        never = len(labels)
        stuck = any(m.klass == "stuck" for m in timeline.marks)
        labels.append("never ran (lost / stuck)" if stuck else "lost (never ran)")
        heights.append(1.0)
    centers, top = [], 0.0
    for height in heights:
        centers.append(top + height / 2)
        top += height
    return _Layout(tuple(labels), tuple(centers), tuple(heights), never)


def _style() -> AbstractContextManager[None]:
    """matplotlib's default style, whatever the local matplotlibrc says: stable pictures."""
    return matplotlib.style.context("default")


def _new_figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas: headless, no pyplot, no global backend."""
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> Path:
    """The PNG with no metadata that changes between runs (no Software, no date)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, format="png", metadata={"Software": None})
    return path


def draw(timeline: Timeline, path: Path) -> Path:
    """Paint the timeline to ``path`` (a PNG) and return it."""
    layout = _layout(timeline)
    plot_in = min(8.0, max(1.6, _LANE_IN * layout.total))
    height = _TOP_IN + plot_in + _BOTTOM_IN
    with _style():
        figure = _new_figure(_WIDTH_IN, height)
        ax = figure.add_axes((_LEFT_IN / _WIDTH_IN, _BOTTOM_IN / height,
                              1 - (_LEFT_IN + _RIGHT_IN) / _WIDTH_IN, plot_in / height))
        px = (plot_in * DPI / layout.total,  # pixels per lane unit, per second
              (_WIDTH_IN - _LEFT_IN - _RIGHT_IN) * DPI / _x_span(timeline))
        _axes(ax, timeline, layout)
        _draw_window(ax, timeline.window)
        _draw_submissions(ax, timeline.submissions, layout)
        _draw_lanes(ax, timeline, layout)
        _draw_bars(ax, timeline, layout, px[1])
        _draw_links(ax, timeline, layout)
        _draw_marks(ax, timeline, layout)
        _label_bars(ax, timeline, layout, px)
        _draw_title(figure, timeline.title, height)
        if not timeline.bars and not timeline.submissions:
            ax.text(0.5, 0.5, "no records of this scenario in its ledger", ha="center",
                    va="center", transform=ax.transAxes, fontsize=9, color="#555555")
        _draw_legend(figure, timeline, height)
        return _save(figure, path)


def _x_limits(timeline: Timeline) -> tuple[float, float]:
    span = max(timeline.end, 1.0)
    return -0.015 * span, span * 1.045  # room on the right for the last bars' labels


def _x_span(timeline: Timeline) -> float:
    low, high = _x_limits(timeline)
    return high - low


def _axes(ax: Axes, timeline: Timeline, layout: _Layout) -> None:
    ax.set_xlim(*_x_limits(timeline))
    ax.set_ylim(layout.total, 0.0)
    ax.set_yticks(layout.centers, layout.labels, fontsize=8)
    ax.tick_params(axis="y", length=0)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_xlabel("seconds since the first submission", fontsize=8)
    ax.grid(axis="x", color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)
    edge = 0.0
    for height in layout.heights[:-1]:  # faint separators between rows
        edge += height
        ax.axhline(edge, color="#eeeeee", linewidth=0.6, zorder=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _draw_window(ax: Axes, window: Window | None) -> None:
    """The fault's window shaded over every lane, named at its top edge."""
    if window is None:
        return
    ax.axvspan(window.start, max(window.end, window.start + 1e-3), color=FAULT_COLOR,
               alpha=0.35, linewidth=0, zorder=0.5)
    ax.axvline(window.start, color="#d95f02", linewidth=1.0, zorder=0.6)
    top = blended_transform_factory(ax.transData, ax.transAxes)
    target = f" → {window.target}" if window.target else ""
    ax.text(window.start, 1.01, f"{window.fault}{target}", transform=top, fontsize=8,
            color="#a63603", ha="left", va="bottom", fontweight="bold")


def _draw_submissions(ax: Axes, submissions: Sequence[tuple[float, str]],
                      layout: _Layout) -> None:
    """A tick per submission; one the producer did not get acknowledged (failed or
    indeterminate: never enqueued, so neither lost nor run) is drawn short and dark orange."""
    center = layout.centers[0]
    many = len(submissions) > 200
    ok = [t for t, outcome in submissions if outcome == "ok"]
    refused = [t for t, outcome in submissions if outcome != "ok"]
    if ok:
        ax.vlines(ok, center - 0.3, center + 0.3, color="#6b7785", linewidth=0.6,
                  alpha=0.35 if many else 1.0)
    if refused:
        ax.vlines(refused, center - 0.12, center + 0.3, color=REFUSED_COLOR, linewidth=0.9)


def _draw_lanes(ax: Axes, timeline: Timeline, layout: _Layout) -> None:
    """Each lane's process life as a thin line, and a black tick where a process died."""
    for i, lane in enumerate(timeline.lanes):
        center, _ = layout.lane(i)
        ax.plot([lane.first_t, lane.end_t], [center, center], color="#c8cdd3",
                linewidth=0.8, zorder=1)
    for death in timeline.deaths:
        center, height = layout.lane(death.lane)
        reach = height * _BAND / 2 + 0.06
        ax.plot([death.t, death.t], [center - reach, center + reach], color="black",
                linewidth=2.4, solid_capstyle="butt", zorder=4)


def _bar_box(bar: Bar, timeline: Timeline, layout: _Layout) -> tuple[float, float]:
    """(top, height) of a bar: its row's share of the lane's band, drawn thin."""
    center, lane_height = layout.lane(bar.lane)
    band = lane_height * _BAND
    share = band / timeline.lanes[bar.lane].rows
    top = center - band / 2 + share * bar.row
    return top + share * 0.12, share * 0.76


def _middle(bar: Bar, timeline: Timeline, layout: _Layout) -> float:
    top, height = _bar_box(bar, timeline, layout)
    return top + height / 2


def _draw_bars(ax: Axes, timeline: Timeline, layout: _Layout, px_per_second: float) -> None:
    """Normal executions first and plain; anomalous ones over them in their class's color,
    at least two pixels wide so that one in thousands still shows. Solid: ended with its
    side effect; hollow: ended without it; hatched: never ended."""
    few = len(timeline.bars) <= 300
    least = {"normal": 1.0 / px_per_second, "other": 2.0 / px_per_second}
    groups: dict[tuple[str, str, float, float], list[tuple[float, float]]] = defaultdict(list)
    for bar in timeline.bars:
        top, height = _bar_box(bar, timeline, layout)
        style = "cut" if bar.cut else ("done" if bar.ended == "completed" else "hollow")
        shortest = least["normal" if bar.klass == "normal" else "other"]
        groups[(bar.klass, style, top, height)].append(
            (bar.start, max(bar.end - bar.start, shortest)))
    order = {k: n for n, k in enumerate(reversed(CLASSES))}
    for (klass, style, top, height), spans in sorted(groups.items(),
                                                     key=lambda g: (order[g[0][0]], g[0])):
        color = COLORS[klass]
        z = 2 if klass == "normal" else 3
        if style == "done":
            ax.broken_barh(spans, (top, height), facecolors=color, zorder=z,
                           edgecolors="white" if few else "none", linewidth=0.5 if few else 0)
        elif style == "hollow":
            ax.broken_barh(spans, (top, height), facecolors="white", edgecolors=color,
                           linewidth=0.9, zorder=z)
        else:
            ax.broken_barh(spans, (top, height), facecolors="white", edgecolors=color,
                           hatch="/////", linewidth=0.9, zorder=z)


def _short(task: str, prefix: str) -> str:
    """A task's number as a label: ``#5`` for ``<prefix>.00005``."""
    tail = task[len(prefix) + 1:] if prefix and task.startswith(prefix + ".") else task
    return f"#{int(tail)}" if tail.isdigit() else tail


def _numbers(tasks: Iterable[str], prefix: str, at_most: int = 12) -> str:
    """Task numbers as ranges, ``#3, #5, #8–#11``, at most ``at_most`` of them then ``…``."""
    numbers = sorted({int(s[1:]) for s in (_short(t, prefix) for t in tasks)
                      if s.startswith("#")})
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    parts = [f"#{r[0]}" if len(r) == 1 else f"#{r[0]}–#{r[-1]}" for r in runs]
    return ", ".join(parts[:at_most]) + (", …" if len(parts) > at_most else "")


def _anomalous(timeline: Timeline) -> list[Bar]:
    return [b for b in timeline.bars if b.klass != "normal"]


def _label_bars(ax: Axes, timeline: Timeline, layout: _Layout,
                px: tuple[float, float]) -> None:
    """Anomalous executions named by task number when few enough to read and tall enough to
    carry the text: inside a solid bar wide enough to hold it (so that the next bar does not
    cover it), else just right of its end."""
    bars = _anomalous(timeline)
    if not bars or len(bars) > LABEL_AT_MOST:
        return
    per_unit, per_second = px
    for bar in bars:
        top, height = _bar_box(bar, timeline, layout)
        if height * per_unit < _LABEL_PX:
            continue
        label = _short(bar.task, timeline.prefix)
        inside = bar.ended == "completed" and (bar.end - bar.start) * per_second >= (
            5 * len(label) + 6)
        if inside:
            ax.annotate(label, (bar.start, top + height / 2), xytext=(2, 0),
                        textcoords="offset points", fontsize=6.5, color="white", ha="left",
                        va="center", zorder=6, annotation_clip=False)
        else:
            ax.annotate(label, (bar.end, top + height / 2), xytext=(6 if bar.cut else 2, 0),
                        textcoords="offset points", fontsize=6.5, color=COLORS[bar.klass],
                        ha="left", va="center", zorder=6, annotation_clip=False,
                        bbox={"boxstyle": "square,pad=0.1", "facecolor": "white",
                              "edgecolor": "none", "alpha": 0.85})


def _draw_links(ax: Axes, timeline: Timeline, layout: _Layout) -> None:
    """A dotted line joining the executions of each anomalous task, at the moment the next
    one starts: from the end of the one before (it ran again later) or straight across (both
    ran at once, as a stalled worker's and the redelivery's do)."""
    by_task: dict[str, list[Bar]] = defaultdict(list)
    for bar in _anomalous(timeline):
        by_task[bar.task].append(bar)
    multi = {t: sorted(bs, key=lambda b: (b.start, b.execution))
             for t, bs in by_task.items() if len(bs) > 1}
    if not multi or len(multi) > LINK_AT_MOST:
        return
    for task in sorted(multi):
        bars = multi[task]
        for a, b in itertools.pairwise(bars):
            x0 = min(a.end, b.start)
            ax.plot([x0, b.start], [_middle(a, timeline, layout), _middle(b, timeline, layout)],
                    linestyle=(0, (1, 1.5)), linewidth=1.0, color=COLORS[a.klass], zorder=2.5)


def _draw_marks(ax: Axes, timeline: Timeline, layout: _Layout) -> None:
    """Lost tasks: a red x at the end of the execution that was cut, or at their submission
    in the never-ran row; stuck ones that never started: a brown square at submission. The
    never-ran row names its tasks."""
    cut_lost = [b for b in timeline.bars if b.klass == "lost" and b.cut]
    if cut_lost:
        ax.scatter([b.end for b in cut_lost], [_middle(b, timeline, layout) for b in cut_lost],
                   marker="x", s=40 if len(cut_lost) <= 50 else 14, linewidths=1.6,
                   color=COLORS["lost"], zorder=5)
    if layout.never is None:
        return
    y = layout.centers[layout.never]
    text = []
    for klass, marker in (("lost", "x"), ("stuck", "s")):
        marks = [m for m in timeline.marks if m.klass == klass]
        if marks:
            ax.scatter([m.t for m in marks], [y] * len(marks), marker=marker,
                       s=36 if len(marks) <= 100 else 12, linewidths=1.5,
                       color=COLORS[klass], zorder=5)
            text.append(f"{len(marks)} {klass}: "
                        f"{_numbers((m.task for m in marks), timeline.prefix)}")
    last = max(m.t for m in timeline.marks)
    ax.annotate("   ".join(text), (last, y), xytext=(10, 0), textcoords="offset points",
                fontsize=7, color=COLORS["lost"], va="center", ha="left", zorder=6,
                annotation_clip=False)


def _draw_title(figure: Figure, title: Sequence[str], height: float) -> None:
    top = 1 - 0.1 / height
    figure.text(0.01, top, title[0], fontsize=11, fontweight="bold", va="top")
    for n, line in enumerate(title[1:], 1):
        figure.text(0.01, top - (0.08 + 0.2 * n) / height, line, va="top",
                    fontsize=8.5 if n == 1 else 7.5, color="black" if n == 1 else "#555555")


def _draw_legend(figure: Figure, timeline: Timeline, height: float) -> None:
    """Only what the picture holds, in one or two lines below the axis."""
    present = {b.klass for b in timeline.bars}
    handles: list[Any] = [Patch(facecolor=COLORS[k], label=LEGEND[k])
                          for k in CLASSES if k in present]
    if any(b.cut for b in timeline.bars):
        handles.append(Patch(facecolor="white", edgecolor="#444444", hatch="/////",
                             label="never ended (cut)"))
    if any(not b.cut and b.ended != "completed" for b in timeline.bars):
        handles.append(Patch(facecolor="white", edgecolor="#444444",
                             label="ended without its side effect"))
    if timeline.deaths:
        handles.append(Line2D([], [], color="black", linewidth=2.4, label="process died"))
    if any(m.klass == "lost" for m in timeline.marks) or any(
            b.klass == "lost" and b.cut for b in timeline.bars):
        handles.append(Line2D([], [], color=COLORS["lost"], marker="x", linestyle="none",
                              markeredgewidth=1.6, label="lost task"))
    if any(outcome != "ok" for _, outcome in timeline.submissions):
        handles.append(Line2D([], [], color=REFUSED_COLOR, linewidth=1.2,
                              label="submission not acknowledged"))
    if timeline.window is not None:
        handles.append(Patch(facecolor=FAULT_COLOR, alpha=0.35, label="fault window"))
    if not handles:
        return
    figure.legend(handles=handles, loc="lower left", ncol=min(len(handles), 5), fontsize=7.5,
                  frameon=False, bbox_to_anchor=(_LEFT_IN / _WIDTH_IN - 0.01, 0.02 / height),
                  handlelength=1.8, columnspacing=1.6, borderaxespad=0.0)


# --- the run's summary ----------------------------------------------------------------------

_Grid = tuple[tuple[int | None, ...], ...]
_Flags = tuple[tuple[bool, ...], ...]
# What each count breaks: a loss an at-least-once claim, a duplicate an at-most-once one.
_BREAKS = {"lost": ("at-least-once", "effectively-once"),
           "duplicated": ("at-most-once", "effectively-once")}


@dataclass(frozen=True)
class Summary:
    """Loss and duplication per configuration (rows) and fault (columns); None: not run.
    ``lost_breaks``/``duplicated_breaks``: that count broke the configuration's claim."""

    rows: tuple[str, ...]
    faults: tuple[str, ...]
    lost: _Grid
    duplicated: _Grid
    submitted: _Grid
    lost_breaks: _Flags
    duplicated_breaks: _Flags
    run_id: str = ""


def summarize(report: RunReport) -> Summary:
    """The summary's cells: configurations in the order the run met them (the report is in the
    registry's order), faults in the catalogue's. A case run in several trials shows its worst:
    the most tasks any trial lost (or duplicated), outlined if any trial's count broke the
    claim."""
    rows = list(dict.fromkeys(f"{s.backend} · {s.configuration}" for s in report.scenarios))
    order = list(FAULTS)  # the catalogue's order, as the report's tables have it
    faults = sorted(dict.fromkeys(s.fault for s in report.scenarios),
                    key=lambda f: order.index(f) if f in order else len(order))
    cells = {(f"{c.backend} · {c.configuration}", c.fault): c for c in trials.cells(
        report.scenarios)}

    def grid(count: str) -> _Grid:
        return tuple(tuple(max(int(s.counts.get(count, 0)) for s in cells[(r, f)].results)
                           if (r, f) in cells else None for f in faults) for r in rows)

    def breaks(count: str) -> _Flags:
        return tuple(tuple(any(s.counts.get(count, 0) and s.guarantee in _BREAKS[count]
                               for s in cells[(r, f)].results) if (r, f) in cells else False
                           for f in faults) for r in rows)

    return Summary(tuple(rows), tuple(faults), grid("lost"), grid("duplicated"),
                   grid("submitted"), breaks("lost"), breaks("duplicated"), report.run_id)


def draw_summary(summary: Summary, path: Path) -> Path:
    """Two heatmaps side by side, lost and duplicated: each cell's count written in it, its
    color the share of the scenario's submitted tasks, a count that broke the claim outlined."""
    n_rows, n_cols = max(len(summary.rows), 1), max(len(summary.faults), 1)
    cell_w, cell_h, label_w, top_in, bottom_in, gap_in = 0.5, 0.26, 2.9, 0.85, 1.25, 0.35
    # Wide enough for the title and the legend line even with few faults.
    width = max(label_w + 2 * n_cols * cell_w + gap_in + 0.2, 9.0)
    height = top_in + n_rows * cell_h + bottom_in
    with _style():
        figure = _new_figure(width, height)
        panels = (("lost", "Reds", summary.lost, summary.lost_breaks),
                  ("duplicated", "Purples", summary.duplicated, summary.duplicated_breaks))
        for n, (name, cmap, values, broke) in enumerate(panels):
            left = label_w + n * (n_cols * cell_w + gap_in)
            ax = figure.add_axes((left / width, bottom_in / height, n_cols * cell_w / width,
                                  n_rows * cell_h / height))
            _heatmap(ax, summary, values, broke, cmap, labels=n == 0)
            ax.set_title(f"tasks {name}", fontsize=9, fontweight="bold", pad=4)
        run = f" — run {summary.run_id}" if summary.run_id else ""
        figure.text(0.01, 1 - 0.1 / height, f"Loss and duplication per configuration and "
                    f"fault{run}", fontsize=11, fontweight="bold", va="top")
        figure.text(0.01, 1 - 0.34 / height, "the number in a cell: tasks lost or duplicated "
                    "in that scenario (the most in any trial); its color: their share of the "
                    "tasks submitted (darkest at half or more);\noutlined: that count broke the "
                    "configuration's claim; grey: not run", fontsize=7.5, color="#555555",
                    va="top")
        return _save(figure, path)


def _heatmap(ax: Axes, summary: Summary, values: _Grid, broke: _Flags, cmap: str, *,
             labels: bool) -> None:
    """One panel: none lost (or duplicated) is white, not run is grey."""
    n_rows, n_cols = len(summary.rows), len(summary.faults)
    shares = [[math.nan if v is None or s is None else (v / s if s else 0.0)
               for v, s in zip(row, subs, strict=True)]
              for row, subs in zip(values, summary.submitted, strict=True)]
    colormap = matplotlib.colormaps[cmap].with_extremes(bad="#d9d9d9", under="white")
    # A square-root scale: one task in forty (2.5%) still shows, half or more is darkest.
    norm = PowerNorm(0.5, vmin=1e-9, vmax=0.5, clip=False)
    ax.imshow(shares or [[math.nan]], cmap=colormap, norm=norm, aspect="auto",
              interpolation="nearest")
    for r in range(n_rows):
        for c in range(n_cols):
            value = values[r][c]
            if value:
                ax.text(c, r, str(value), ha="center", va="center", fontsize=7,
                        color="white" if shares[r][c] >= 0.18 else "black")
            if broke[r][c]:
                ax.add_patch(Rectangle((c - 0.46, r - 0.42), 0.92, 0.84, fill=False,
                                       edgecolor="black", linewidth=1.4, zorder=3))
    ax.set_xticks(range(n_cols), summary.faults, rotation=55, ha="right", fontsize=7)
    ax.set_yticks(range(n_rows), summary.rows if labels else [""] * n_rows, fontsize=7)
    ax.tick_params(length=0)
    ax.set_xticks([c - 0.5 for c in range(1, n_cols)], minor=True)
    ax.set_yticks([r - 0.5 for r in range(1, n_rows)], minor=True)
    ax.grid(which="minor", color="#bbbbbb", linewidth=0.5)
    ax.tick_params(which="minor", length=0)
    for spine in ax.spines.values():
        spine.set_color("#bbbbbb")


# --- a run's pictures -----------------------------------------------------------------------


def has_anomaly(result: ScenarioResult) -> bool:
    """Whether a scenario is worth a picture: some task lost, duplicated, stuck, re-executed
    or otherwise out of the ordinary (the anomalies its result lists, or counts of them)."""
    counts = result.counts
    return any(result.anomalies.values()) or any(
        counts.get(k, 0) for k in ("lost", "duplicated", "stuck", "re_executed", "unexpected"))


def records_of(result: ScenarioResult) -> list[dict[str, Any]]:
    """The scenario's records read back from its ledger directory: its own tasks' and the
    untagged ones (worker_ready, fault, healed, process_killed), as its check read them."""
    prefix = prefix_of(result)
    contents = read_ledger([result.ledger_dir], task_prefix=prefix + ".")
    return of_scenario(contents.records, prefix)


def render_scenario(result: ScenarioResult, path: Path,
                    records: Iterable[Mapping[str, Any]] | None = None) -> Path:
    """A scenario's timeline PNG at ``path`` (its records read from its ledger if not given)."""
    return draw(build(records_of(result) if records is None else records, result), path)


def scenario_dir(run_dir: Path, result: ScenarioResult) -> Path:
    """Where a scenario's result.json lives: under the run directory given, or beside the
    ledger it names (a run in worlds keeps each world's scenarios under ``<run>-wK/``)."""
    here = run_dir / result.scenario
    if here.is_dir() or not result.ledger_dir:
        return here
    beside = Path(result.ledger_dir).parent.parent / result.scenario
    return beside if beside.is_dir() else here


def render_run(run_dir: Path, report: RunReport, *, everything: bool = False,
               out: Path | None = None) -> list[Path]:
    """The timelines of a run's scenarios with an anomaly (every scenario with
    ``everything``), each as ``<scenario dir>/timeline.png``, and the summary as
    ``<run dir>/durability.png``; with ``out``, all of them in that folder instead
    (``<scenario>.png``, ``<scenario>~trial-<k>.png`` for a later trial). A scenario whose
    ledger is not on this machine is skipped, said in the log. Returns the paths written, the
    summary last."""
    written = []
    for result in report.scenarios:
        if not (everything or has_anomaly(result)):
            continue
        if not result.ledger_dir or not Path(result.ledger_dir).is_dir():
            log.warning("%s: no ledger at %r; no timeline", result.scenario, result.ledger_dir)
            continue
        target = (out / f"{result.key}.png" if out is not None
                  else scenario_dir(run_dir, result) / TIMELINE_NAME)
        written.append(render_scenario(result, target))
    written.append(draw_summary(summarize(report), (out or run_dir) / SUMMARY_NAME))
    return written


def report_pictures(results: list[ScenarioResult], folder: Path, run_id: str = ""
                    ) -> dict[str, str]:
    """The pictures a report embeds, drawn into ``folder`` (beside the report, so it can be
    committed with it): the summary, and the timeline of every scenario with an anomaly whose
    ledger is on this machine (with trials, of its most telling trial). Returns each picture's
    path relative to the report's folder, by result key (``ScenarioResult.key``: the scenario
    id, ``<scenario>~trial-<k>`` for a later trial; "" for the summary); what was drawn before
    in ``folder`` goes first, so a picture of a scenario no longer in the report does not
    linger."""
    if folder.is_dir():
        for old in folder.glob("*.png"):
            old.unlink()
    drawn: dict[str, str] = {}
    summary = RunReport(measurement_valid=True, scenarios=results, run_id=run_id)
    drawn[""] = _relative(draw_summary(summarize(summary), folder / SUMMARY_NAME), folder)
    for result in _telling(results):
        if has_anomaly(result) and result.ledger_dir and Path(result.ledger_dir).is_dir():
            path = render_scenario(result, folder / f"{result.key}.png")
            drawn[result.key] = _relative(path, folder)
    return drawn


def _telling(results: list[ScenarioResult]) -> list[ScenarioResult]:
    """One result per scenario: with trials, the one that shows the most (the worst verdict,
    then the most tasks lost, duplicated or stuck, then the first trial). A report of N trials
    would otherwise carry N pictures of much the same thing (the committed one: 225 pictures,
    12 MB, against 74 for one trial); every trial's timeline stays one command away
    (``queue-chaos timeline RUN_DIR``)."""
    return [max(cell.results, key=_shows) for cell in trials.cells(results)]


def _shows(r: ScenarioResult) -> tuple[int, int]:
    return (trials.rank(trials.verdict_of(r)),
            sum(int(r.counts.get(k, 0)) for k in trials.SEEN))


def _relative(path: Path, folder: Path) -> str:
    return f"{folder.name}/{path.relative_to(folder).as_posix()}"


def find_report(run_dir: Path) -> RunReport:
    """A run's report: its ``durability.json``; a run in worlds, its worlds' reports
    (``world-K/durability.json``) as one; else its scenarios' ``result.json`` files (a run cut
    short before its report). A path to a report file is read as it is."""
    if run_dir.is_file():
        return RunReport.load(run_dir)
    own = run_dir / "durability.json"
    if own.is_file():
        return RunReport.load(own)
    worlds = sorted(run_dir.glob("world-*/durability.json"))
    if worlds:  # one copy of each scenario, as `merge` makes the run's report
        parts = [RunReport.load(p) for p in worlds]
        return replace(parts[0], run_id=run_dir.name, scenarios=merge(parts))
    results = [_reported(d) for d in sorted(p for p in run_dir.iterdir() if p.is_dir())
               ] if run_dir.is_dir() else []
    scenarios = [r for r in results if r is not None]
    if not scenarios:
        raise ReportError(f"{run_dir}: no durability.json, world reports or scenario results")
    return RunReport(measurement_valid=False, scenarios=scenarios, run_id=run_dir.name)


def _reported(directory: Path) -> ScenarioResult | None:
    """The result a report would hold for a scenario directory: its first valid attempt
    (``result.json``, then ``attempt-N/result.json``), else its last."""
    paths = [directory / "result.json",
             *sorted(directory.glob("attempt-*/result.json"),
                     key=lambda p: int(p.parent.name.split("-")[-1])
                     if p.parent.name.split("-")[-1].isdigit() else 0)]
    results = []
    for path in paths:
        if path.is_file():
            try:
                results.append(ScenarioResult.from_dict(json.loads(path.read_text())))
            except (ValueError, TypeError):
                continue
    valid = [r for r in results if r.valid]
    if valid:
        return valid[0]
    return results[-1] if results else None


def command(run_dir: Path, *, everything: bool = False, out: Path | None = None) -> int:
    """``queue-chaos timeline RUN_DIR [--all] [--out DIR]``: exit 0 when pictures were
    written, 2 when no report of that run could be read."""
    try:
        report = find_report(run_dir)
    except (ValueError, OSError) as exc:  # ReportError, ShardError (worlds of two runs)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    base = run_dir.parent if run_dir.is_file() else run_dir
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for path in render_run(base, report, everything=everything, out=out):
        print(f"written: {path}")
    return 0
