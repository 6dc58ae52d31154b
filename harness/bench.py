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
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any

from harness import containers, images
from harness.matrix import CONFIGURATIONS, Settings
from harness.paths import RUNS
from harness.provenance import image_mode
from harness.result import ReportError, RunReport, attempt_prefix
from harness.run import new_run_id
from harness.world import Ports, World
from queue_chaos_agent.ledger import LedgerWriter, read_ledger

SIZES = (100, 1_000, 10_000)
CONFIGURATION = "acks-late-prefetch-4"  # prefetch keeps 4 slots busy with short tasks
# Throughput with and without the ledger: this many tasks per round, rounds alternating
# instrumented and bare so a drift of the machine falls on both alike.
THROUGHPUT_TASKS = 3_000
THROUGHPUT_ROUNDS = 5


@dataclass
class Size:
    """One scenario of the benchmark: ``tasks`` tasks of 0-5 ms, no fault."""

    tasks: int
    wall_s: float
    cpu_s: float  # this process, user + system
    cpu_ms_per_task: float
    rss_mib: float  # resident after the scenario
    peak_mib: float  # the process's highest resident set so far (ru_maxrss): the check's peak
    completed: int
    overhead_s: float  # the scenario's wall beyond its tasks, its quiet period and services up
    services_up_s: float  # (re)starting containers whose settings changed: none after the first
    phase_s: dict[str, float] = field(default_factory=dict)


@dataclass
class Throughput:
    """One round of the throughput comparison: the backlog of ``tasks`` drained by workers whose
    task body writes the ledger (instrumented) or only sleeps (bare)."""

    bare: bool
    tasks: int
    drain_s: float  # workers resumed -> the broker first seen empty (nothing queued or unacked)
    tasks_per_s: float
    completed_in_ledger: int | None = None  # instrumented rounds: the ledger's own count
    ledger_last_s: float | None = None  # instrumented: the last completion, after resuming
    runtime_ms: float | None = None  # the mean task runtime the workers' own logs give


@dataclass
class Cold:
    """Every image provisioned from nothing: a build directory of its own, no pip or Go cache,
    image names of a repository of their own (removed afterwards)."""

    date: str
    wall_s: float
    steps: dict[str, float]  # step -> seconds, from the provisioning's own log lines
    log: str  # where that log is kept


@dataclass
class Bench:
    date: str
    run_id: str
    sizes: list[Size]
    provision_cached_s: float
    provision_built: list[str]  # images the provisioning before the bench had to build
    ledger_write_us: float  # one ledger record, appended as the workers append theirs
    task_body_us: float  # what the instrumented body adds to one execution (task_body_us)
    instrumented_ratio: float  # throughput with the ledger / without: medians of the rounds
    matrix: dict[str, Any]  # from the committed full-matrix report
    throughput: list[Throughput] = field(default_factory=list)
    cold: Cold | None = None  # measured with --cold, else carried over from the last bench.json


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


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


def ratio(rounds: list[Throughput]) -> float:
    """Instrumented over bare throughput: the median round of each (one odd round of either
    cannot move it), 0.0 when either was not measured."""
    def median(bare: bool) -> float:
        rates = sorted(r.tasks_per_s for r in rounds if r.bare == bare)
        return rates[len(rates) // 2] if rates else 0.0

    bare = median(True)
    return round(median(False) / bare, 4) if bare else 0.0


def throughput_round(world: World, bare: bool, tasks: int, seed: int, run_dir: Path,
                     attempt: int) -> Throughput:
    """The same workers' throughput with the task body writing the ledger or only sleeping.

    The backlog is made first, with the workers stopped (SIGSTOP of every process of theirs:
    ``cost.backlog``, which the cost phase of every control shares), so the submitting side (the
    producer, this process) cannot be what limits the rate; then they resume and the stopwatch
    runs until the broker holds nothing, queued or unacknowledged. The
    configuration acknowledges late, so an empty broker means every task has returned: the
    same stopwatch for both modes, which the ledger cannot be (a bare task writes nothing). In
    the instrumented rounds the ledger checks the stopwatch: every task completed, the last
    before the broker was seen empty.
    """
    from harness.cost import BACKLOG_RATE, backlog
    from harness.schedule import seeded
    from harness.waits import until
    from harness.workload import plan_tasks

    configuration = CONFIGURATIONS[CONFIGURATION]
    assert getattr(configuration.knobs, "acks_late", False), "the stopwatch needs acks late"
    settings = configuration.settings(Settings(tasks=tasks, submit_rate=BACKLOG_RATE,
                                               task_min_s=0.0,
                                               task_max_s=0.005))
    variables = {**configuration.variables(settings, world.variables),
                 "CHAOS_BARE": "true" if bare else "false"}
    ledger_dir = world.begin_scenario(configuration.backend, variables, run_dir)
    prefix = f"bench.throughput-{attempt}"
    plans = plan_tasks(prefix, tasks, settings.submit_rate, 0.0, 0.005, seeded(seed, prefix))
    assert world.broker is not None
    broker = world.broker
    resumed = backlog(world, plans, LedgerWriter(ledger_dir, "harness"))
    until(lambda: broker.empty(), what="the broker empty after the backlog",
          timeout_s=300.0, interval_s=0.01)
    drain_s = world.clock() - resumed
    logs = run_dir / prefix / "logs"
    world.end_scenario(logs, set(world.workers))
    runtimes = celery_runtimes(logs.glob("worker*.log"))
    round_ = Throughput(bare=bare, tasks=tasks, drain_s=round(drain_s, 3),
                        tasks_per_s=round(tasks / drain_s, 1),
                        runtime_ms=round(fmean(runtimes) * 1000, 3) if runtimes else None)
    if not bare:
        done = [r["t"] for r in read_ledger([ledger_dir], task_prefix=prefix + ".").records
                if r.get("kind") == "completed"]
        round_.completed_in_ledger = len(done)
        round_.ledger_last_s = round(max(done) - resumed, 3) if done else None
    return round_


_SUCCEEDED = re.compile(r"succeeded in ([0-9.]+)s")


def celery_runtimes(logs: Iterable[Path]) -> list[float]:
    """Each task's runtime as Celery's worker logs it (``Task ... succeeded in 0.0029s``): the
    time inside the task call, body included, measured by the worker itself. Where the
    instrumented and the bare rounds differ in throughput, this says whether the task call is
    where the time went."""
    return [float(m[1]) for path in logs for m in _SUCCEEDED.finditer(path.read_text())]


_STEP = re.compile(r"^(\S+(?: \S+)?)\s+\S+ \((?:cached|built), ([\d.]+)s\)$")


def provision_cold(log_path: Path, say: Callable[[str], None] = print) -> Cold:
    """Time ``queue-chaos images`` as a new machine runs it: in a child process whose build
    directory, pip and Go caches are empty and whose image names are a repository of their own,
    so nothing built before is found and nothing in use is touched; its images are removed
    afterwards. The apt mirror and PyPI are the network's; the child's log is kept."""
    repo = f"{images.repository()}-cold"
    engine = containers.client()
    # a previous measurement interrupted before its cleanup
    images.prune(engine, (), repo, everything=True)
    with tempfile.TemporaryDirectory(prefix="queue-chaos-cold-") as tmp:
        env = {**os.environ, "QUEUE_CHAOS_HOME": tmp, images.REPOSITORY_VARIABLE: repo,
               "PIP_NO_CACHE_DIR": "1", "GOCACHE": f"{tmp}/go-cache",
               "GOMODCACHE": f"{tmp}/go-mod", "GOPATH": f"{tmp}/go",
               # module cache files are read-only unless asked: the temporary directory must go
               "GOFLAGS": (os.environ.get("GOFLAGS", "") + " -modcacherw").strip()}
        say("bench: provisioning every image from nothing (minutes) ...")
        started = time.monotonic()
        try:
            done = subprocess.run([sys.executable, "-m", "harness", "images"], env=env,
                                  capture_output=True, text=True, timeout=1800, check=False)
        finally:
            wall = time.monotonic() - started
            removed = images.prune(engine, (), repo, everything=True)
        output = done.stdout + done.stderr
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(output)
        if done.returncode != 0:
            raise RuntimeError(f"cold provisioning failed ({done.returncode}); see {log_path}")
    steps = {m[1]: float(m[2]) for line in output.splitlines()
             if (m := _STEP.match(line.strip()))}
    say(f"bench: cold provisioning {wall:.0f}s; {len(removed)} cold images removed")
    return Cold(date=_now(),
                wall_s=round(wall, 1), steps=steps, log=str(log_path))


def task_body_us(directory: Path, executions: int = 5_000) -> float:
    """Microseconds the instrumented task body adds to one execution, in this process: the
    whole body (``started``, the crash-marker check, ``completed``) with a zero duration, less
    the bare body (only the zero sleep): the body's own cost, beside what the throughput rounds
    and the workers' runtimes show it costs in a worker."""
    from queue_chaos_agent import taskbody

    writer = LedgerWriter(directory, "bench-body")
    started = time.perf_counter()
    for n in range(executions):
        taskbody.perform(writer, str(directory), f"bench.body.{n:05d}", 0.0)
    body = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(executions):
        time.sleep(0.0)
    bare = time.perf_counter() - started
    return max(0.0, (body - bare) / executions * 1e6)


def _matrix_figures(path: Path) -> dict[str, Any]:
    """The full-matrix run's wall time and per-scenario overhead, from its report."""
    try:
        report = RunReport.load(path)
    except ReportError as exc:
        return {"error": str(exc)}
    # A run of several trials is several matrices: the target is one's wall time, so each
    # trial's own ("trial k") is what is held against it.
    several = re.compile(r"trial \d+$")
    whole = {k: v for k, v in report.timings.items() if several.match(k)} or {
        k: v for k, v in report.timings.items() if k.startswith("whole run")}
    ups = [r.phase_s.get("services_up", 0.0) for r in report.scenarios]
    distinct = len({r.scenario for r in report.scenarios})
    trials = max((r.trial for r in report.scenarios), default=1)
    cost = [r.phase_s.get("cost", 0.0) for r in report.scenarios if r.fault == "none"]
    return {"report": str(path), "run_id": report.run_id, "scenarios": distinct,
            "cost_phase_s": round(sum(cost) / trials, 1),
            "cost_phase_mean_s": round(sum(cost) / len(cost), 2) if cost else None,
            "whole_run_s": whole,
            "services_up_mean_s": round(sum(ups) / len(ups), 2) if ups else None}


def run(sizes: tuple[int, ...] = SIZES, matrix_report: Path = Path("reports/durability.json"),
        say: Callable[[str], None] = print, cold: Cold | None = None) -> Bench:
    from harness.scenario import run_scenario  # the scenario machinery, only when measuring

    engine = containers.client()
    configuration = CONFIGURATIONS[CONFIGURATION]
    started = time.monotonic()
    variables, timings = images.provision(engine, image_mode(),
                                    [], {configuration.owner.image})
    provision_cached_s = time.monotonic() - started
    run_id = new_run_id()
    directory = RUNS / run_id
    world = World(engine, run_id, variables, Ports.from_env())
    measured: list[Size] = []
    rounds: list[Throughput] = []
    try:
        world.up()
        for attempt, tasks in enumerate(sizes, 1):
            # No cost phase (harness/cost.py): the bench measures what the harness spends on a
            # scenario's own tasks.
            settings = Settings(tasks=tasks, submit_rate=min(400.0, tasks / 2), task_min_s=0.0,
                                task_max_s=0.005, fault_after_started=1, quiet_s=1.0,
                                drain_s=600.0, late_after_s=600.0, cost_tasks=0,
                                cost_latency_tasks=0)
            say(f"bench: {tasks} tasks ...")
            cpu, wall = _cpu_s(), time.monotonic()
            # One run directory for every size, as a run has: the services started for the first
            # size are reused by the next, as the matrix reuses them between scenarios. Each size
            # is an attempt of its own, so its task ids are its own.
            result = run_scenario(world, configuration, "none", settings, seed=tasks,
                                  run_dir=directory, replay="make bench", attempt=attempt)
            prefix = attempt_prefix(result.scenario, attempt) + "."
            wall, cpu = time.monotonic() - wall, _cpu_s() - cpu
            gc.collect()  # what the harness keeps, not garbage not yet collected
            rss = _rss_mib()
            up = result.phase_s.get("services_up", 0.0)
            records = read_ledger([result.ledger_dir], task_prefix=prefix).records
            size = Size(tasks=tasks, wall_s=round(wall, 2), cpu_s=round(cpu, 3),
                        cpu_ms_per_task=round(cpu / tasks * 1000, 3), rss_mib=round(rss, 1),
                        peak_mib=round(_peak_mib(), 1),
                        completed=result.counts["completed"],
                        overhead_s=round(_overhead(records, wall - up, settings.quiet_s), 2),
                        services_up_s=up, phase_s=result.phase_s)
            say(f"bench: {tasks} tasks: {size.cpu_ms_per_task} ms CPU a task, "
                f"{size.rss_mib} MiB resident, {size.wall_s}s")
            measured.append(size)
        for n in range(THROUGHPUT_ROUNDS * 2):
            bare = n % 2 == 1
            say(f"bench: throughput round {n + 1}, {'bare' if bare else 'instrumented'} ...")
            rounds.append(throughput_round(world, bare, THROUGHPUT_TASKS, seed=n,
                                           run_dir=directory, attempt=n + 1))
            say(f"bench: {rounds[-1].tasks_per_s} tasks/s")
    finally:
        world.down()
    write_us = ledger_write_us(directory / "ledger-write")
    body_us = task_body_us(directory / "task-body")
    return Bench(date=_now(), run_id=run_id,
                 sizes=measured, provision_cached_s=round(provision_cached_s, 2),
                 provision_built=[t.step for t in timings if not t.cached], cold=cold,
                 ledger_write_us=round(write_us, 1), task_body_us=round(body_us, 1),
                 instrumented_ratio=ratio(rounds),
                 matrix=_matrix_figures(matrix_report), throughput=rounds)


def _target(target: str, met: bool, why: str = "") -> str:
    """A target and whether the figure meets it; what stands in its way when not."""
    return f"{target}: {'met' if met else 'not met'}" + (f" ({why})" if why else "")


def _matrix_why(matrix: dict[str, Any]) -> str:
    """What the matrix's wall time holds beyond its scenarios' tasks: the cost of safety,
    measured in every control (a backlog drained, latency at a steady load)."""
    spent = matrix.get("cost_phase_s")
    if not spent:
        return ""
    return (f"it includes the cost of safety, measured in every control: {spent:.0f} s of "
            f"scenario time a matrix ({matrix.get('cost_phase_mean_s')} s a control), spread "
            "over the worlds")


def _cpu_target(sizes: list[Size]) -> str:
    over = [s for s in sizes if s.cpu_ms_per_task > 1.0]
    if not sizes:
        return _target("<= 1 ms, flat", False, "not measured")
    if not over:
        return _target("<= 1 ms, flat", True)
    small = ", ".join(f"{s.tasks:,} tasks: {s.cpu_s:.2f} s" for s in over)
    return _target("<= 1 ms, flat", False,
                   f"a scenario's fixed CPU (services, check) over few tasks ({small}); flat "
                   "from there on")


def _cached_figure(bench: Bench) -> str:
    if bench.provision_built:
        return (f"not measured this run: {bench.provision_cached_s:.2f} s, which built "
                f"{', '.join(bench.provision_built)} (their inputs changed)")
    return f"{bench.provision_cached_s:.2f} s"


def _cold_figure(cold: Cold | None) -> str:
    if cold is None:
        return "not measured (run `queue-chaos bench --cold`)"
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in cold.steps.items())
    return f"{cold.wall_s / 60:.1f} min ({steps}; measured {cold.date})"


def _body_share(bench: Bench) -> str:
    """The ratio the body's own cost implies for the bench's slot time per task."""
    ledger = [r for r in bench.throughput if not r.bare]
    if not ledger or not bench.task_body_us:
        return "no rounds to compare with"
    slots = 4  # two workers, two pool processes each (acks-late-prefetch-4's pool)
    slot_s = slots / max(r.tasks_per_s for r in ledger)
    implied = slot_s / (slot_s + bench.task_body_us / 1e6)
    return f"{implied:.3f} for a slot time of {slot_s * 1000:.1f} ms a task"


def _ratio_why(bench: Bench) -> str:
    """What the workers' own runtimes say about a ratio below target."""
    if bench.instrumented_ratio >= 0.95 or not bench.throughput:
        return ""
    mean = {bare: [r.runtime_ms for r in bench.throughput if r.bare == bare and r.runtime_ms]
            for bare in (False, True)}
    if not mean[False] or not mean[True]:
        return "no runtimes in the workers' logs to say where the time went"
    extra = fmean(mean[False]) - fmean(mean[True])
    return (f"Celery's own runtimes put the difference inside the task call: "
            f"{fmean(mean[False]):.2f} ms instrumented against {fmean(mean[True]):.2f} ms "
            f"bare (+{extra * 1000:.0f} µs a task), against tasks of 0-5 ms; for tasks of 50 ms "
            f"that is {extra / 50:.1%} of a task")


def _ratio_figure(bench: Bench) -> str:
    if not bench.throughput:
        return "not measured"
    rates = {bare: [r.tasks_per_s for r in bench.throughput if r.bare == bare]
             for bare in (False, True)}
    spread = ", ".join(f"{'bare' if bare else 'ledger'} {min(v):,.0f}-{max(v):,.0f} tasks/s"
                       for bare, v in rates.items() if v)
    return f"{bench.instrumented_ratio:.3f} ({spread})"


def render(bench: Bench) -> str:
    by = {s.tasks: s for s in bench.sizes}
    cpu = " / ".join(f"{by[n].cpu_ms_per_task:.2f}" if n in by else "-" for n in SIZES)
    growth = (f"{by[10_000].rss_mib - by[1_000].rss_mib:+.1f} MB after the scenario, "
              f"{by[10_000].peak_mib - by[1_000].peak_mib:+.1f} MB at its peak"
              if 1_000 in by and 10_000 in by else "not measured (needs sizes 1,000 and 10,000)")
    overheads = [s.overhead_s for s in bench.sizes]
    matrix = bench.matrix
    whole = ", ".join(f"{k}: {v / 60:.1f} min" for k, v in matrix.get("whole_run_s", {}).items())
    if "error" in matrix:
        whole = f"not read: {matrix['error']}"
    whole_s = max(matrix.get("whole_run_s", {}).values(), default=None)
    kept = (by[10_000].rss_mib - by[1_000].rss_mib
            if 1_000 in by and 10_000 in by else None)
    rows = [
        ("default matrix, wall", whole or "no timing in the report",
         _target("<= 10 min", whole_s is not None and whole_s <= 600, _matrix_why(matrix)),
         f"from {matrix.get('report')} (run {matrix.get('run_id')}, "
         f"{matrix.get('scenarios')} scenarios)"),
        ("harness CPU per task, 100 / 1,000 / 10,000 tasks", f"{cpu} ms",
         _cpu_target(bench.sizes),
         "this process's user + system CPU over the scenario, divided by its tasks"),
        ("harness memory, 1,000 -> 10,000 tasks", growth,
         _target("grows <= 20 MB", kept is not None and kept <= 20,
                 "after the scenario; its peak is the check holding the scenario's records "
                 "whole" if kept is not None and kept <= 20 else ""),
         "resident set after each scenario (what the harness keeps), and the process's highest "
         "resident set (ru_maxrss; the check holds one scenario's whole records at once)"),
        ("per-scenario overhead beyond tasks and deliberate waits",
         " / ".join(f"{o:.2f}" for o in overheads) + " s",
         _target("<= 1 s", bool(overheads) and max(overheads) <= 1.0,
                 "services up apart: a fresh Celery worker's start (imports, pool, broker "
                 "connection, ~1.2 s) is the floor when a configuration's settings change; "
                 "a scenario reusing its services pays 0.02 s"),
         "wall minus first-submission-to-last-completion, the quiet period and services up. "
         "Services up (containers started afresh because a configuration's settings changed): "
         + " / ".join(f"{s.services_up_s:.2f}" for s in bench.sizes) + " s here, "
         f"{matrix.get('services_up_mean_s')} s a scenario on average over the matrix report"),
        ("instrumented vs bare throughput", _ratio_figure(bench),
         _target(">= 0.95", bench.instrumented_ratio >= 0.95, _ratio_why(bench)),
         f"the same workers draining a backlog of {THROUGHPUT_TASKS:,} tasks of 0-5 ms with the "
         "task body writing the ledger, then only sleeping (CHAOS_BARE), alternating; medians "
         "of the rounds below. In one process, without the rounds' noise, the instrumented "
         f"body adds {bench.task_body_us} µs to an execution (a ledger record "
         f"{bench.ledger_write_us} µs): " + _body_share(bench)),
        ("provisioning, cached", _cached_figure(bench),
         _target("<= 1 s", not bench.provision_built and bench.provision_cached_s <= 1.0),
         "every image found by its content hash"),
        ("provisioning, cold", _cold_figure(bench.cold),
         _target("<= 3 min", bench.cold is not None and bench.cold.wall_s <= 180),
         "`queue-chaos bench --cold`: `queue-chaos images` in a child process with an empty "
         "build directory, no pip or Go cache and image names of their own (removed after); "
         "apt and PyPI over the network"),
    ]
    lines = [
        "# What the harness costs",
        "",
        f"Measured {bench.date}, run `{bench.run_id}`, by `make bench` (harness/bench.py): "
        f"Celery on Redis ({CONFIGURATION}), no fault, tasks of 0-5 ms, one world, this "
        "process's CPU from the kernel.",
        "",
        "| measure | figure | target | how |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {t} | {c} |" for a, b, t, c in rows],
        "",
        "## Per size",
        "",
        "| tasks | wall | CPU | CPU a task | resident | peak | completed | overhead | "
        "phases (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *[f"| {s.tasks:,} | {s.wall_s:.1f} s | {s.cpu_s:.2f} s | {s.cpu_ms_per_task:.2f} ms | "
          f"{s.rss_mib:.0f} MiB | {s.peak_mib:.0f} MiB | {s.completed:,} | {s.overhead_s:.2f} s | "
          + ", ".join(f"{k} {v:.1f}" for k, v in s.phase_s.items()) + " |"
          for s in bench.sizes],
        "",
        "## Throughput, instrumented and bare",
        "",
        "Workers stopped while the backlog is submitted, then resumed; the stopwatch stops when "
        "the broker holds nothing, queued or unacknowledged (acks late: every task returned). "
        "In the instrumented rounds the ledger checks it: its completed records, and its last "
        "completion after resuming.",
        "",
        "| round | task body | tasks | drain | tasks/s | completed in the ledger | "
        "last completion | mean task runtime (worker logs) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
        *[f"| {n} | {'bare' if r.bare else 'ledger'} | {r.tasks:,} | {r.drain_s:.2f} s | "
          f"{r.tasks_per_s:,.0f} | "
          + ("-" if r.completed_in_ledger is None else f"{r.completed_in_ledger:,}") + " | "
          + ("-" if r.ledger_last_s is None else f"{r.ledger_last_s:.2f} s") + " | "
          + ("-" if r.runtime_ms is None else f"{r.runtime_ms:.2f} ms") + " |"
          for n, r in enumerate(bench.throughput, 1)],
        "",
    ]
    return "\n".join(lines)


def last_cold(directory: Path) -> Cold | None:
    """The cold provisioning of the last bench written here: measured rarely (minutes of both
    cores), carried over with its date until measured again."""
    try:
        found = json.loads((directory / "bench.json").read_text()).get("cold")
    except (OSError, ValueError):
        return None
    try:
        return Cold(**found) if isinstance(found, dict) else None
    except TypeError:
        return None


def write(bench: Bench, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "bench.json").write_text(json.dumps(asdict(bench), indent=2) + "\n")
    path = directory / "bench.md"
    path.write_text(render(bench))
    return path
