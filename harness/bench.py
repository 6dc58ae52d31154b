"""The benchmark (``queue-chaos bench``, ``make bench``): what the harness itself costs, measured.

Speed is a number a benchmark prints, never an assertion in a timed test: a timed test fails on a
busy machine and passes on an idle one, and says nothing about either. This module runs real
scenarios (Celery on Redis, no fault, very short tasks, so the harness's share is as large as it
gets) at growing sizes in one process and one world, side by side in one run, and reads what the
harness spent from the kernel (``getrusage`` of this process: every thread of it, the workload's
submitters and the observer included; the containers are not this process) and from the ledger.

It writes ``reports/bench.md`` and ``bench.json`` beside the durability report: each target of
issue 12 with the figure measured here, or the figure of the artifact it comes from (the
full-matrix report's timings) when a benchmark run cannot measure it in minutes.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness import containers, images
from harness.matrix import CONFIGURATIONS, Settings
from harness.paths import RUNS
from harness.result import ReportError, RunReport
from harness.run import new_run_id
from harness.world import Ports, World
from queue_chaos_agent.ledger import LedgerWriter, read_ledger

SIZES = (100, 1_000, 10_000)
CONFIGURATION = "acks-late-prefetch-4"  # prefetch keeps 4 slots busy with short tasks


@dataclass
class Size:
    """One scenario of the benchmark: ``tasks`` tasks of 0-5 ms, no fault."""

    tasks: int
    wall_s: float
    cpu_s: float  # this process, user + system
    cpu_ms_per_task: float
    rss_mib: float  # resident after the scenario
    completed: int
    overhead_s: float  # the scenario's wall beyond its tasks, its quiet period and services up
    services_up_s: float  # (re)starting containers whose settings changed: none after the first
    phase_s: dict[str, float] = field(default_factory=dict)


@dataclass
class Bench:
    date: str
    run_id: str
    sizes: list[Size]
    provision_cached_s: float
    ledger_write_us: float  # one ledger record, appended as the workers append theirs
    instrumented_ratio: float  # throughput with the ledger / without, for the tasks measured
    matrix: dict[str, Any]  # from the committed full-matrix report


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _overhead(records: list[dict[str, Any]], wall_s: float, quiet_s: float) -> float:
    """Wall time the tasks did not need: the scenario's wall minus the span from its first
    submission to its last completion, minus the quiet period the drain waits on purpose."""
    sent = [r["t_sent"] for r in records if r.get("kind") == "submission" and "t_sent" in r]
    done = [r["t"] for r in records if r.get("kind") == "completed"]
    if not sent or not done:
        return wall_s
    return max(0.0, wall_s - (float(max(done)) - float(min(sent))) - quiet_s)


def ledger_write_us(directory: Path, records: int = 20_000) -> float:
    """Microseconds per record appended (one ``write(2)`` each, as a worker writes)."""
    writer = LedgerWriter(directory, "bench")
    started = time.perf_counter()
    for n in range(records):
        writer.write("started", task=f"bench.{n:05d}", execution=f"e{n}", worker="worker1")
    return (time.perf_counter() - started) / records * 1e6


def _matrix_figures(path: Path) -> dict[str, Any]:
    """The full-matrix run's wall time and per-scenario overhead, from its report."""
    try:
        report = RunReport.load(path)
    except ReportError as exc:
        return {"error": str(exc)}
    whole = {k: v for k, v in report.timings.items() if k.startswith("whole run")}
    ups = [r.phase_s.get("services_up", 0.0) for r in report.scenarios]
    return {"report": str(path), "run_id": report.run_id, "scenarios": len(report.scenarios),
            "whole_run_s": whole,
            "services_up_mean_s": round(sum(ups) / len(ups), 2) if ups else None}


def run(sizes: tuple[int, ...] = SIZES, matrix_report: Path = Path("reports/durability.json"),
        say: Callable[[str], None] = print) -> Bench:
    from harness.scenario import run_scenario  # the scenario machinery, only when measuring

    engine = containers.client()
    configuration = CONFIGURATIONS[CONFIGURATION]
    started = time.monotonic()
    variables, _ = images.provision(engine, os.environ.get("CHAOS_IMAGES", "local"),
                                    [], {configuration.owner.image})
    provision_cached_s = time.monotonic() - started
    run_id = new_run_id()
    directory = RUNS / run_id
    world = World(engine, run_id, variables, Ports.from_env())
    measured: list[Size] = []
    try:
        world.up()
        for attempt, tasks in enumerate(sizes, 1):
            settings = Settings(tasks=tasks, submit_rate=min(400.0, tasks / 2), task_min_s=0.0,
                                task_max_s=0.005, fault_after_started=1, quiet_s=1.0,
                                drain_s=600.0, late_after_s=600.0)
            say(f"bench: {tasks} tasks ...")
            cpu, wall = _cpu_s(), time.monotonic()
            # One run directory for every size, as a run has: the services started for the first
            # size are reused by the next, as the matrix reuses them between scenarios. Each size
            # is an attempt of its own, so its task ids are its own.
            result = run_scenario(world, configuration, "none", settings, seed=tasks,
                                  run_dir=directory, replay="make bench", attempt=attempt)
            prefix = result.scenario + ("" if attempt == 1 else f"~attempt-{attempt}") + "."
            wall, cpu = time.monotonic() - wall, _cpu_s() - cpu
            gc.collect()  # what the harness keeps, not garbage not yet collected
            rss = _rss_mib()
            up = result.phase_s.get("services_up", 0.0)
            records = [r for r in read_ledger([result.ledger_dir]).records
                       if str(r.get("task", "")).startswith(prefix)]
            size = Size(tasks=tasks, wall_s=round(wall, 2), cpu_s=round(cpu, 3),
                        cpu_ms_per_task=round(cpu / tasks * 1000, 3), rss_mib=round(rss, 1),
                        completed=result.counts["completed"],
                        overhead_s=round(_overhead(records, wall - up, settings.quiet_s), 2),
                        services_up_s=up, phase_s=result.phase_s)
            say(f"bench: {tasks} tasks: {size.cpu_ms_per_task} ms CPU a task, "
                f"{size.rss_mib} MiB resident, {size.wall_s}s")
            measured.append(size)
    finally:
        world.down()
    write_us = ledger_write_us(directory / "ledger-write")
    # Each execution appends two records (started, completed); for the shortest tasks measured
    # (mean 2.5 ms) that is the share of a slot's time the ledger takes.
    task_s = 0.0025
    ratio = task_s / (task_s + 2 * write_us / 1e6)
    return Bench(date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), run_id=run_id,
                 sizes=measured, provision_cached_s=round(provision_cached_s, 2),
                 ledger_write_us=round(write_us, 1), instrumented_ratio=round(ratio, 4),
                 matrix=_matrix_figures(matrix_report))


def render(bench: Bench) -> str:
    by = {s.tasks: s for s in bench.sizes}
    cpu = " / ".join(f"{by[n].cpu_ms_per_task:.2f}" if n in by else "-" for n in SIZES)
    growth = (f"{by[10_000].rss_mib - by[1_000].rss_mib:+.1f} MB"
              if 1_000 in by and 10_000 in by else "not measured (needs sizes 1,000 and 10,000)")
    overheads = [s.overhead_s for s in bench.sizes]
    matrix = bench.matrix
    whole = ", ".join(f"{k}: {v / 60:.1f} min" for k, v in matrix.get("whole_run_s", {}).items())
    if "error" in matrix:
        whole = f"not read: {matrix['error']}"
    rows = [
        ("default matrix, wall", whole or "no timing in the report",
         f"from {matrix.get('report')} (run {matrix.get('run_id')}, "
         f"{matrix.get('scenarios')} scenarios)"),
        ("harness CPU per task, 100 / 1,000 / 10,000 tasks", f"{cpu} ms",
         "this process's user + system CPU over the scenario, divided by its tasks"),
        ("harness memory, 1,000 -> 10,000 tasks", growth, "resident set after each scenario"),
        ("per-scenario overhead beyond tasks and deliberate waits",
         " / ".join(f"{o:.2f}" for o in overheads) + " s",
         "wall minus first-submission-to-last-completion, the quiet period and services up. "
         "Services up (containers started afresh because a configuration's settings changed): "
         + " / ".join(f"{s.services_up_s:.2f}" for s in bench.sizes) + " s here, "
         f"{matrix.get('services_up_mean_s')} s a scenario on average over the matrix report"),
        ("instrumented vs bare throughput", f"{bench.instrumented_ratio:.4f}",
         f"computed, not run bare: a ledger record costs {bench.ledger_write_us} µs, two per "
         "execution, against the bench's mean task of 2.5 ms"),
        ("provisioning, cached", f"{bench.provision_cached_s:.2f} s",
         "every image found by its content hash"),
    ]
    lines = [
        "# What the harness costs",
        "",
        f"Measured {bench.date}, run `{bench.run_id}`, by `make bench` (harness/bench.py): "
        f"Celery on Redis ({CONFIGURATION}), no fault, tasks of 0-5 ms, one world, this "
        "process's CPU from the kernel.",
        "",
        "| measure | figure | how |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
        "## Per size",
        "",
        "| tasks | wall | CPU | CPU a task | resident | completed | overhead | phases (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
        *[f"| {s.tasks:,} | {s.wall_s:.1f} s | {s.cpu_s:.2f} s | {s.cpu_ms_per_task:.2f} ms | "
          f"{s.rss_mib:.0f} MiB | {s.completed:,} | {s.overhead_s:.2f} s | "
          + ", ".join(f"{k} {v:.1f}" for k, v in s.phase_s.items()) + " |"
          for s in bench.sizes],
        "",
    ]
    return "\n".join(lines)


def write(bench: Bench, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "bench.json").write_text(json.dumps(asdict(bench), indent=2) + "\n")
    path = directory / "bench.md"
    path.write_text(render(bench))
    return path
