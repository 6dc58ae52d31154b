"""The cost of safety: without faults, how fast each configuration drains a backlog and how long
a task waits at a steady load below capacity, measured in every control of a run, side by side.

Why in the control: its containers have just shown a clean run (nothing lost, run twice or
stuck), and every configuration of the matrix has one, so every configuration is measured in the
same run, on the same machine, minutes apart. The ratio to the fastest configuration of the same
backend is then the price of its safe settings (acks late, prefetch 1, Redis AOF always, quorum
queues, publisher confirms, a small arq ``max_jobs``), not of a busier machine or another day.
The phase runs after the control's check, with task ids of its own (``<prefix>~cost-pilot.<n>``,
``<prefix>~cost-tput.<n>``, ``<prefix>~cost-lat.<n>``, never under the control's ``<prefix>.``),
so the control's counts, verdict and timeline are its own tasks' alone.

Two figures, each from ledger records (host and containers share CLOCK_MONOTONIC):

* throughput: a backlog of zero-length tasks submitted while every worker process is stopped
  (SIGSTOP), so the submitting side cannot be what limits the rate, then resumed (SIGCONT; the
  moment is written to the ledger as ``backlog_resumed``). Tasks/s = tasks / (the last
  completion - the resume). The wait also needs the broker empty, so nothing of the phase is
  left for the next scenario; but the stopwatch is the ledger's, not the moment the broker was
  seen empty: polling adds its interval, and RabbitMQ's management API refreshes its queue
  totals only every 0.5 s. A pilot backlog of ``PILOT_TASKS`` first sizes the measured one to
  ``BACKLOG_S`` of the pilot's pace, at most ``cost_tasks``: Celery drains
  400 in half a second, arq with max_jobs=2 about 9 a second (each worker takes 2 jobs a poll,
  every 0.5 s), so one fixed size would be too short to time for one or a minute for the other.
* latency: zero-length tasks to running workers at ``cost_latency_rate``, or at ``LOAD`` of
  the measured throughput where that is lower (a load over capacity measures a growing queue,
  not a task's wait), for the same ``cost_latency_tasks / cost_latency_rate`` seconds; per task,
  its first completion minus its submission's ``t_sent`` (the producer's HTTP call and publish
  included, as a web app's task sees it); p50 and p99 by nearest rank.

A figure is a number only when every one of its tasks was submitted, acknowledged, started once
and completed exactly once (the checker's own classes): otherwise it is None and ``reason`` says
why. Every wait is bounded (submissions by their schedule + 60 s, completion by ``drain_s``).

FastAPI BackgroundTasks (``Capability.IN_PROCESS``) get latency only. The app that takes the
submissions runs the tasks itself: there is no broker to hold a backlog, SIGSTOP of the app would
stop the submissions too, and a backlog made by submitting faster than the app runs its tasks
would time the HTTP server as much as the tasks. Its latency is the same path as every other
backend's: submission to completion.

Pure functions below ``measure`` are what the report calls: ``rows`` (per configuration),
``tables`` (per backend, as markdown cells), ``throughputs`` and ``words``.
"""

from __future__ import annotations

import math
import signal
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.backend import Capability
from harness.checker import Counts, check
from harness.latency import percentile
from harness.observe import snapshot
from harness.waits import WaitTimeout, until
from harness.workload import TaskPlan, Workload, plan_tasks
from queue_chaos_agent.ledger import LedgerWriter, read_ledger

if TYPE_CHECKING:
    import random

    from harness.matrix import Settings
    from harness.result import ScenarioResult
    from harness.world import World

# The parts' task-id tags: <prefix>~cost-pilot.<n>, <prefix>~cost-tput.<n>, <prefix>~cost-lat.<n>
PILOT = "cost-pilot"
THROUGHPUT = "cost-tput"
LATENCY = "cost-lat"
PILOT_TASKS = 20  # the pilot backlog, which sizes the measured one
# The measured backlog: about this long at the pilot's pace, which reads about half what a long
# backlog reaches (the resume's fixed delay weighs on 20 tasks): about a second of draining.
BACKLOG_S = 2.0
LOAD = 0.5  # the latency's load: at most this share of the measured throughput
# A backlog is submitted as fast as the producer takes it: the highest rate Settings allows.
BACKLOG_RATE = 1_000.0
SUBMIT_SLACK_S = 60.0  # beyond a workload's schedule, as the scenario bounds its own
IN_PROCESS = ("throughput: the app runs its own tasks (no broker to hold a backlog, and SIGSTOP "
              "would stop the submissions too)")
# What makes a cost task unfit for a figure, in the checker's own counts.
_WRONG = {"failed": "failed", "indeterminate": "indeterminate", "duplicated": "duplicated",
          "re_executed": "re-executed", "lost": "lost", "stuck": "stuck",
          "recovered": "recovered", "unexpected": "unexpected",
          "corrupt_records": "corrupt ledger records"}


def cost_prefix(prefix: str, part: str) -> str:
    """The task-id prefix of a cost part of the control tagged ``prefix``: ``<prefix>~<part>``,
    which neither the control's ``<prefix>.`` nor a re-run's ``<prefix>~attempt-N`` covers."""
    return f"{prefix}~{part}"


# -- measuring (containers) -----------------------------------------------------------------------


def submit(world: World, plans: list[TaskPlan], ledger: LedgerWriter) -> None:
    """Submit ``plans`` on their schedule and wait for every outcome, bounded (WaitTimeout)."""
    workload = Workload(world.producer_url, plans, ledger)
    workload.start()
    bound = (plans[-1].at if plans else 0.0) + SUBMIT_SLACK_S
    if not workload.join(bound):
        workload.stop()
        raise WaitTimeout(f"{len(plans)} submissions did not finish within {bound:.0f}s")


def backlog(world: World, plans: list[TaskPlan], ledger: LedgerWriter) -> float:
    """Submit ``plans`` while every process of every worker is stopped (SIGSTOP), then resume
    them all (SIGCONT), even when submitting failed; returns the world's clock at the resume,
    also written to the ledger (``backlog_resumed``).

    The queue fills at the producer's pace and drains at the workers' alone: the submitting side
    cannot be what limits a rate measured from the resume. Shared by the bench's throughput
    rounds and the cost phase's throughput.
    """
    try:
        for worker in world.workers:
            world.cluster.signal_all(worker, signal.SIGSTOP)
        submit(world, plans, ledger)
    finally:
        resumed = world.clock()
        for worker in world.workers:
            world.cluster.signal_all(worker, signal.SIGCONT)
    prefix = plans[0].task.rpartition(".")[0] if plans else ""
    ledger.write("backlog_resumed", resumed=resumed, prefix=prefix, tasks=len(plans),
                 workers=world.workers)
    return resumed


def _settle(world: World, ledger_dir: Path, prefix: str, timeout_s: float) -> bool:
    """Until every acknowledged task of ``prefix`` has completed, none runs and the broker is
    empty (so nothing of the phase is left for the next scenario); False at the bound."""
    broker = world.broker
    assert broker is not None

    def settled() -> bool:
        snap = snapshot(ledger_dir, prefix + ".")
        return (snap.submitted_ok <= snap.completed and not any(snap.running.values())
                and broker.empty())

    try:
        until(settled, what=f"the tasks {prefix}.* to complete", timeout_s=timeout_s,
              interval_s=0.02)
    except WaitTimeout:
        return False
    return True


def _records(ledger_dir: Path, prefix: str, planned: int) -> tuple[list[dict[str, Any]], str]:
    """The part's task records, and why they cannot make a figure ('' when they can)."""
    contents = read_ledger([ledger_dir], task_prefix=prefix + ".")
    records = [r for r in contents.records if isinstance(r.get("task"), str)]
    return records, judge(check(records, corrupt=contents.corrupt).counts, planned)


def _part(world: World, ledger: LedgerWriter, settings: Settings, plans: list[TaskPlan],
          stopped: bool) -> tuple[list[dict[str, Any]], float | None, str]:
    """Submit one part's ``plans`` (as a backlog to ``stopped`` workers, or on their schedule
    to running ones), wait until they settle (bounded), and check them: their records, the
    resume (a backlog's) and why they cannot make a figure ('' when they can)."""
    ledger_dir, part = ledger.directory, plans[0].task.rpartition(".")[0]
    resumed, trouble = None, ""
    try:
        if stopped:
            resumed = backlog(world, plans, ledger)
        else:
            submit(world, plans, ledger)
    except WaitTimeout as exc:
        trouble = str(exc)
    if not _settle(world, ledger_dir, part, settings.drain_s):
        trouble = "; ".join(t for t in (trouble, f"not settled within {settings.drain_s:g}s")
                            if t)
    records, problem = _records(ledger_dir, part, len(plans))
    return records, resumed, "; ".join(p for p in (trouble, problem) if p)


def _drained(world: World, ledger: LedgerWriter, settings: Settings, rng: random.Random,
             prefix: str) -> tuple[dict[str, Any], str]:
    """The throughput part: a pilot backlog, then (for a configuration fast enough that the
    pilot's pace sizes a larger one) the backlog that pilot sizes; the figures of the
    last one drained, and why there are none ('' when there are)."""
    pilot = min(settings.cost_tasks, PILOT_TASKS)
    plans = plan_tasks(cost_prefix(prefix, PILOT), pilot, BACKLOG_RATE, 0.0, 0.0, rng)
    records, resumed, problem = _part(world, ledger, settings, plans, stopped=True)
    if problem or resumed is None:
        return {}, f"pilot backlog of {pilot}: {problem}"
    figures = {"pilot_tasks": pilot, **_throughput(records, resumed)}
    figures["pilot_tasks_per_s"] = figures["tasks_per_s"]
    size = backlog_size(figures["tasks_per_s"], settings.cost_tasks, pilot)
    if not size:  # a slow configuration: the pilot drained for as long as a backlog would
        return {**figures, "throughput_tasks": pilot}, ""
    plans = plan_tasks(cost_prefix(prefix, THROUGHPUT), size, BACKLOG_RATE, 0.0, 0.0, rng)
    records, resumed, problem = _part(world, ledger, settings, plans, stopped=True)
    if problem or resumed is None:
        return {}, f"backlog of {size}: {problem}"
    return {**figures, "throughput_tasks": size, **_throughput(records, resumed)}, ""


def measure(world: World, ledger_dir: Path, settings: Settings, rng: random.Random,
            prefix: str, capabilities: frozenset[Capability]) -> dict[str, Any]:
    """The cost phase of the control tagged ``prefix``, on its running containers after its
    check: the ``ScenarioResult.cost`` dict ({} when the settings turn both parts off)."""
    if not settings.cost_tasks and not settings.cost_latency_tasks:
        return {}
    ledger = LedgerWriter(ledger_dir, "harness-cost")
    problems: list[str] = []
    skipped: list[str] = []
    found: dict[str, Any] = {"throughput_tasks": 0, "throughput_s": None, "tasks_per_s": None,
                             "pilot_tasks": 0, "pilot_tasks_per_s": None, "latency_tasks": 0,
                             "latency_rate": 0.0, "p50_s": None, "p99_s": None}
    if Capability.IN_PROCESS in capabilities:
        skipped.append(IN_PROCESS)
    elif not settings.cost_tasks:
        skipped.append("throughput: cost_tasks=0")
    else:
        figures, problem = _drained(world, ledger, settings, rng, prefix)
        found.update(figures)
        if problem:
            problems.append(f"throughput: {problem}")
    if not settings.cost_latency_tasks:
        skipped.append("latency: cost_latency_tasks=0")
    else:
        rate, tasks = offered_load(settings, found["pilot_tasks_per_s"])
        found.update(latency_rate=round(rate, 2), latency_tasks=tasks)
        plans = plan_tasks(cost_prefix(prefix, LATENCY), tasks, rate, 0.0, 0.0, rng)
        records, _, problem = _part(world, ledger, settings, plans, stopped=False)
        if problem:
            problems.append(f"latency: {problem}")
        else:
            found.update(_latency(latencies(records)))
    return {**found, "valid": not problems, "reason": "; ".join(problems),
            "skipped": "; ".join(skipped)}


def backlog_size(pilot_tasks_per_s: float, largest: int, pilot: int) -> int:
    """The backlog a pilot's pace sizes: ``BACKLOG_S`` of it, at most
    ``largest``; 0 when that is no more than the pilot (which then is the figure). A fixed size
    would take a slow configuration (arq's max_jobs=2 polls 2 jobs a worker every 0.5 s) a
    minute, and a fast one (Celery, ~900 tasks/s here) too short a drain to time."""
    size = min(largest, math.floor(pilot_tasks_per_s * BACKLOG_S))
    return size if size > pilot else 0


def offered_load(settings: Settings, tasks_per_s: float | None) -> tuple[float, int]:
    """The latency part's (rate, tasks): ``cost_latency_rate``, or a ``LOAD`` share of the
    configuration's measured throughput where that is lower, so the load stays below its
    capacity (a latency over capacity measures a growing queue); over the same
    ``cost_latency_tasks / cost_latency_rate`` seconds either way."""
    rate = settings.cost_latency_rate
    if tasks_per_s:
        rate = min(rate, tasks_per_s * LOAD)
    return rate, max(1, math.ceil(settings.cost_latency_tasks * rate / settings.cost_latency_rate))


# -- pure: from ledger records to figures ---------------------------------------------------------


def judge(counts: Counts, planned: int) -> str:
    """Why a part's tasks cannot make a figure: '' when each of the ``planned`` tasks was
    submitted, acknowledged and completed exactly once, started once, and nothing else ran."""
    wrong = [f"{n} {words}" for name, words in _WRONG.items() if (n := getattr(counts, name))]
    if counts.completed != planned:
        wrong.insert(0, f"{counts.completed} of {planned} completed exactly once")
    return ", ".join(wrong)


def latencies(records: Iterable[Mapping[str, Any]]) -> list[float]:
    """Per task, its first completion minus its submission's ``t_sent``, sorted ascending."""
    records = list(records)
    sent = {r["task"]: float(r["t_sent"]) for r in records
            if r.get("kind") == "submission" and "t_sent" in r}
    first: dict[str, float] = {}
    for r in records:
        task = r.get("task")
        if r.get("kind") == "completed" and isinstance(task, str) and task in sent:
            first[task] = min(first.get(task, math.inf), float(r["t"]))
    return sorted(t - sent[task] for task, t in first.items())


def _throughput(records: Iterable[Mapping[str, Any]], resumed: float) -> dict[str, Any]:
    done = [float(r["t"]) for r in records if r.get("kind") == "completed"]
    span = max(max(done) - resumed, 0.001)  # workers stopped until the resume: never below
    return {"throughput_s": round(span, 3), "tasks_per_s": round(len(done) / span, 1)}


def _latency(values: list[float]) -> dict[str, Any]:
    return {"p50_s": round(percentile(values, 50), 4), "p99_s": round(percentile(values, 99), 4)}


# -- pure: what the report shows ------------------------------------------------------------------


@dataclass(frozen=True)
class CostRow:
    """One configuration's cost without faults. Several controls of one configuration (trials,
    merged shards) give the median of each figure; any invalid one makes the row invalid, with
    no figures (a figure is never a number its ledger did not check)."""

    backend: str
    configuration: str
    summary: str
    claim: str
    tasks_per_s: float | None
    p50_s: float | None
    p99_s: float | None
    ratio: float | None  # tasks/s over the fastest configuration of the same backend
    valid: bool
    reason: str = ""  # why invalid
    skipped: str = ""  # what was not measured, and why
    throughput_tasks: int = 0
    latency_tasks: int = 0
    latency_rate: float = 0.0
    measurements: int = 1


@dataclass(frozen=True)
class CostTable:
    """One backend's rows as markdown cells; ``note``: what was not measured, and why."""

    backend: str
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


def _median(values: Iterable[Any]) -> float | None:
    found = [float(v) for v in values if v is not None]
    return round(statistics.median(found), 4) if found else None


def _row(results: list[ScenarioResult]) -> CostRow:
    first, costs = results[0], [r.cost for r in results]
    invalid = [str(c.get("reason") or "invalid") for c in costs if not c.get("valid")]
    reason = ""
    if invalid:
        reason = "; ".join(dict.fromkeys(invalid))
        if len(costs) > 1:
            reason = f"{len(invalid)} of {len(costs)} measurements: {reason}"
    tasks_per_s = None if invalid else _median(c.get("tasks_per_s") for c in costs)
    return CostRow(
        backend=first.backend, configuration=first.configuration,
        summary=first.configuration_summary, claim=first.guarantee,
        tasks_per_s=None if tasks_per_s is None else round(tasks_per_s, 1),
        p50_s=None if invalid else _median(c.get("p50_s") for c in costs),
        p99_s=None if invalid else _median(c.get("p99_s") for c in costs),
        ratio=None, valid=not invalid, reason=reason,
        skipped="; ".join(dict.fromkeys(str(c["skipped"]) for c in costs if c.get("skipped"))),
        throughput_tasks=int(costs[0].get("throughput_tasks") or 0),
        latency_tasks=int(costs[0].get("latency_tasks") or 0),
        latency_rate=float(costs[0].get("latency_rate") or 0.0), measurements=len(costs))


def rows(results: Iterable[ScenarioResult]) -> list[CostRow]:
    """One row per configuration whose control measured a cost, in run order, with its
    throughput's ratio to the fastest configuration of the same backend."""
    grouped: dict[tuple[str, str], list[ScenarioResult]] = {}
    for r in results:
        if r.cost:
            grouped.setdefault((r.backend, r.configuration), []).append(r)
    made = [_row(rs) for rs in grouped.values()]
    fastest: dict[str, float] = {}
    for row in made:
        if row.tasks_per_s:
            fastest[row.backend] = max(fastest.get(row.backend, 0.0), row.tasks_per_s)
    return [replace(row, ratio=round(row.tasks_per_s / fastest[row.backend], 3))
            if row.tasks_per_s else row for row in made]


def throughputs(results: Iterable[ScenarioResult]) -> dict[str, float]:
    """Tasks/s without faults by configuration, where measured and valid (a tie-break)."""
    return {r.configuration: r.tasks_per_s for r in rows(results) if r.tasks_per_s is not None}


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1000
    return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"


def _fastest(mine: list[CostRow]) -> CostRow | None:
    return max((r for r in mine if r.tasks_per_s), key=lambda r: r.tasks_per_s or 0.0,
               default=None)


def words(results: Iterable[ScenarioResult], configuration: str) -> str | None:
    """A configuration's cost in one phrase (None: its control measured none), e.g. "480
    tasks/s draining a backlog of 400, 0.83 of its backend's fastest (acks-early-prefetch-4,
    580 tasks/s); latency p50 12 ms, p99 50 ms at 50 tasks/s"."""
    made = rows(results)
    row = next((r for r in made if r.configuration == configuration), None)
    if row is None:
        return None
    if not row.valid:
        return f"not measured: {row.reason}"
    said = []
    if row.tasks_per_s is not None:
        text = f"{row.tasks_per_s:,.0f} tasks/s draining a backlog of {row.throughput_tasks:,}"
        fastest = _fastest([r for r in made if r.backend == row.backend])
        if fastest is not None and fastest is not row:
            text += (f", {row.ratio:.2f} of its backend's fastest ({fastest.configuration}, "
                     f"{fastest.tasks_per_s:,.0f} tasks/s)")
        elif sum(1 for r in made if r.backend == row.backend and r.tasks_per_s) > 1:
            text += ", its backend's fastest"
        said.append(text)
    if row.p50_s is not None:
        said.append(f"latency p50 {_ms(row.p50_s)}, p99 {_ms(row.p99_s)} at "
                    f"{row.latency_rate:g} tasks/s")
    return "; ".join(said) or None


HEADER = ["configuration", "claims", "tasks/s", "vs fastest", "latency p50", "latency p99"]


def _cells(row: CostRow, sizes: bool, rates: bool) -> list[str]:
    """The row's cells; ``sizes``/``rates``: say its backlog's size / its load's rate (they
    differ within the backend, so the title cannot)."""
    if not row.valid:
        return [row.configuration, row.claim, f"invalid: {row.reason}", "-", "-", "-"]
    tput = "not measured" if row.tasks_per_s is None else f"{row.tasks_per_s:,.0f}"
    if sizes and row.tasks_per_s is not None:
        tput += f" (backlog of {row.throughput_tasks:,})"
    ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
    p50 = _ms(row.p50_s) + (f" (at {row.latency_rate:g} tasks/s)"
                            if rates and row.p50_s is not None else "")
    return [row.configuration, row.claim, tput, ratio, p50, _ms(row.p99_s)]


def tables(results: Iterable[ScenarioResult]) -> list[CostTable]:
    """Per backend, in run order: a table of its configurations' costs (``HEADER``), titled
    with the backend's name and what was measured (the backlog's size, the latency's rate)."""
    from harness.backends import REGISTRY  # the registry's titles; the figures need none

    made = rows(results)
    found = []
    for backend in dict.fromkeys(r.backend for r in made):
        mine = [r for r in made if r.backend == backend]
        title = REGISTRY[backend].title if backend in REGISTRY else backend
        sizes = {r.throughput_tasks for r in mine if r.throughput_tasks}
        rates = {r.latency_rate for r in mine if r.latency_tasks}
        measured = [f"a backlog of {next(iter(sizes)):,} tasks" if len(sizes) == 1 else "",
                    f"latency at {next(iter(rates)):g} tasks/s" if len(rates) == 1 else ""]
        if any(measured):
            title += " (" + ", ".join(m for m in measured if m) + ")"
        note = "; ".join(dict.fromkeys(r.skipped for r in mine if r.skipped))
        cells = [_cells(r, len(sizes) > 1, len(rates) > 1) for r in mine]
        found.append(CostTable(backend, title, list(HEADER), cells,
                               f"Not measured: {note}." if note else ""))
    return found
