"""One scenario: backend x configuration x fault, through every run phase to a verdict.

Phases: services up (reused where nothing changed) -> workload + fault (fired from observed
state, healed after its window; dead workers started again) -> drain (until nothing runs and
the broker is empty, or a bounded deadline) -> forensics (where is each unfinished task) ->
check -> result, saved as JSON beside the ledger so every number in the report can be traced
back to ledger records.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness import cost, failover
from harness.backend import Configuration, Knobs
from harness.checker import CheckResult, Outcome, check, verdict
from harness.fault import Fault
from harness.faults import FAULTS, sleep_window
from harness.matrix import Settings, scenario_id
from harness.observe import Running, forget, of_scenario, running, snapshot
from harness.result import ScenarioResult, attempt_prefix
from harness.schedule import FaultPlan, Trigger, plan_fault, seeded, wait_for_trigger
from harness.waits import WaitTimeout, until
from harness.workload import Workload, plan_tasks
from harness.world import World
from queue_chaos_agent.ledger import LedgerWriter, read_ledger


class ScenarioError(RuntimeError):
    """A scenario could not be run to its end; the message carries the containers' logs."""


@dataclass
class _Context:
    """What one attempt of a scenario knows while it runs."""

    world: World
    configuration: Configuration
    fault: Fault
    settings: Settings
    seed: int
    name: str
    prefix: str  # every task id of this attempt starts with it
    directory: Path
    replay: str
    ledger_dir: Path = Path()
    phases: dict[str, float] = field(default_factory=dict)
    mark: float = field(default_factory=time.monotonic)
    touched: set[str] = field(default_factory=set)

    def phase(self, label: str) -> None:
        now = time.monotonic()
        self.phases[label] = round(now - self.mark, 2)
        self.mark = now


def run_scenario(
    world: World,
    configuration: Configuration,
    fault_name: str,
    settings: Settings,
    seed: int,
    run_dir: Path,
    replay: str,
    attempt: int = 1,
) -> ScenarioResult:
    name = scenario_id(configuration, fault_name)
    settings = configuration.settings(settings)
    ctx = _Context(
        world, configuration, FAULTS[fault_name], settings, seed, name,
        attempt_prefix(name, attempt),
        run_dir / name if attempt == 1 else run_dir / name / f"attempt-{attempt}", replay,
    )
    ctx.directory.mkdir(parents=True, exist_ok=True)
    try:
        ctx.ledger_dir = world.begin_scenario(
            configuration.backend,
            configuration.variables(settings, world.variables),
            run_dir,
        )
        ctx.phase("services_up")
        # Each attempt draws its own schedule, still a function of the seed alone.
        result = _measure(ctx, seeded(seed, ctx.prefix))
        if ctx.fault.control and result.valid:
            # The cost of its settings, on the same containers, after its own check: its counts
            # are its own tasks' alone (the cost tasks are tagged <prefix>~cost-...).
            result.cost = cost.measure(world, ctx.ledger_dir, settings,
                                       seeded(seed, f"{ctx.prefix}~cost"), ctx.prefix,
                                       configuration.capabilities)
            if result.cost:
                ctx.phase("cost")
            if not result.cost.get("valid", True):  # what it left running starts afresh
                ctx.touched |= set(world.workers)
    except Exception as exc:
        # Whatever broke (a stuck broker, proxy or worker; a Docker call), say it with the
        # containers' own last words, never as a bare timeout.
        ctx.touched |= {s.name for s in world.topology.of_backend(configuration.backend)}
        raise ScenarioError(
            f"scenario {name} failed: {exc!r}\nreplay: {replay}\n{world.cluster.all_logs()}"
        ) from exc
    finally:
        world.end_scenario(ctx.directory / "logs", ctx.touched)
        forget(ctx.ledger_dir, ctx.prefix)
    result.attempt = attempt
    result.save(ctx.directory / "result.json")
    return result


def _fault_plan(ctx: _Context, rng: random.Random) -> FaultPlan:
    world, fault = ctx.world, ctx.fault
    fixed = {"broker": world.broker_service, "producer": world.producer_service,
             "leader": world.leader}.get(fault.target)
    return plan_fault(rng, fault.name, world.workers, ctx.settings.fault_after_started,
                      fault.window(ctx.settings), fixed() if fixed else None)


def _measure(ctx: _Context, rng: random.Random) -> ScenarioResult:
    world, settings, fault = ctx.world, ctx.settings, ctx.fault
    harness_ledger = LedgerWriter(ctx.ledger_dir, "harness")
    plans = plan_tasks(ctx.prefix, settings.tasks, settings.submit_rate, settings.task_min_s,
                       settings.task_max_s, rng)
    fault_plan = _fault_plan(ctx, rng)
    workload = Workload(world.producer_url, plans, harness_ledger)
    started_at = world.clock()
    workload.start()
    trigger: Trigger | None = None
    fired_t = healed_t = None
    revived: list[str] = []
    try:
        if not fault.control:
            trigger = wait_for_trigger(fault_plan, ctx.ledger_dir, settings.ready_s, ctx.prefix)
            fired_t = world.clock()
            ctx.touched |= fault.touches(world, trigger.target)
            fault.inject(world, trigger.target)
            # Written once the fault is in place (its ``t``); ``fired`` is when injecting began,
            # which matters when the backend reacts before ``inject`` returns (RabbitMQ requeues
            # a killed worker's deliveries within milliseconds).
            harness_ledger.write("fault", fault=fault.name, target=trigger.target,
                                 in_flight=trigger.in_flight, task=None, fired=fired_t)
            sleep_window(fault_plan.window_s)
            fault.heal(world, trigger.target)
            # A supervisor starts dead workers again; after a cluster fault one that cannot
            # start is what the cluster did to it, measured, not a harness failure.
            revived = world.revive(tolerant=fault.kind == "cluster")
            healed_t = world.clock()
            harness_ledger.write("healed", fault=fault.name, target=trigger.target,
                                 revived=revived)
    finally:
        workload_bound = len(plans) / settings.submit_rate + 60
        if not workload.join(workload_bound):
            workload.stop()
            raise WaitTimeout(f"submissions did not finish within {workload_bound:.0f}s")
    ctx.phase("workload_and_fault")

    drained = _drain(ctx)
    if not drained:
        ctx.touched |= set(world.workers)
    ctx.phase("drain")
    assert world.broker is not None
    held = world.broker.holdings(settings)
    contents = read_ledger([ctx.ledger_dir], task_prefix=ctx.prefix + ".")
    records = of_scenario(contents.records, ctx.prefix)

    def checked(in_broker: dict[str, str]) -> CheckResult:
        return check(records, healed_t=healed_t, late_after_s=settings.late_after_s,
                     in_broker=in_broker, truncated=contents.truncated, corrupt=contents.corrupt)

    result = checked(held)
    inferred, unmapped = world.broker.account(
        [t.task for t in result.tasks if t.outcome is Outcome.LOST])
    if inferred:
        result = checked({**held, **inferred})
    lost = [t.task for t in result.tasks if t.outcome is Outcome.LOST]
    ctx.phase("check")
    # The claim is what the workers run, not what was asked for: their effective settings.
    configuration, owner = ctx.configuration, ctx.configuration.owner
    reported = running(records, world.workers)
    knobs = configuration.running(reported.effective, reported.idempotent)
    claim = owner.guarantee(knobs)
    judged, reason = verdict(result.counts, claim)
    in_flight: list[str] = []
    if trigger is not None and fired_t is not None:
        in_flight = fault.interrupted(records, None if fault_plan.fixed else trigger.target,
                                      fired_t)
    valid, validity = _validity(fault, trigger, in_flight, result.counts.as_dict(),
                                settings.tasks, records, fired_t)
    problem = _settings_problem(configuration, knobs, reported)
    if problem:
        valid, validity = False, problem
    anomalies: dict[str, list[str]] = {}
    for task in result.tasks:
        if task.outcome not in (Outcome.COMPLETED, Outcome.NOT_ENQUEUED):
            anomalies.setdefault(task.outcome.value, []).append(task.task)
        for flag in ("late", "re_executed", "redelivered"):
            if getattr(task, flag):
                anomalies.setdefault(flag.replace("_", "-"), []).append(task.task)
    return ScenarioResult(
        scenario=ctx.name,
        backend=configuration.backend,
        configuration=configuration.name,
        configuration_summary=configuration.describe(knobs),
        guarantee=claim.value,
        fault=fault.name,
        fault_description=fault.description,
        seed=ctx.seed,
        valid=valid,
        validity=validity,
        verdict=judged.value,
        reason=reason,
        counts=result.counts.as_dict(),
        recovery_s=None if result.recovery_s is None else round(result.recovery_s, 2),
        stuck_locations=result.stuck_locations,
        fault_target=trigger.target if trigger else None,
        in_flight_at_fault=in_flight,
        fault_at_s=None if fired_t is None else round(fired_t - started_at, 2),
        healed_at_s=None if healed_t is None else round(healed_t - started_at, 2),
        drained=drained,
        phase_s=ctx.phases,
        anomalies=anomalies,
        ledger_dir=str(ctx.ledger_dir),
        replay=ctx.replay,
        settings=asdict(settings),
        revived=revived,
        unmapped_in_broker=unmapped,
        knobs=knobs.as_dict(),
        fault_kind=fault.kind,
        must_lose=owner.must_lose(knobs, fault.kind, fault.name),
        effective=reported.effective,
        versions=reported.versions,
        servers=world.servers,
        latencies_s=result.latencies(),
        # How long submitting and consuming stopped, and which acknowledged tasks a failover
        # lost: measured for the cluster faults, whose report has a section of them.
        failover=failover.measure(records, fired_t, healed_t, lost)
        if fault.kind == "cluster" else {},
    )


def _drain(ctx: _Context) -> bool:
    """Until nothing runs and the broker holds nothing, continuously for ``quiet_s``.

    Lost tasks never complete, so "every task completed" cannot be the condition. Quiet is: no
    execution in flight on a live worker and no message in the broker. It must last ``quiet_s``
    because a message briefly lives only in a worker's memory (between BRPOP and its unacked
    entry, or between an early ack and the task's start).
    """
    broker = ctx.world.broker
    assert broker is not None
    quiet_since: list[float] = []

    def settled() -> bool:
        snap = snapshot(ctx.ledger_dir, ctx.prefix)
        quiet = not any(snap.running.values()) and broker.empty()
        now = time.monotonic()
        if not quiet:
            quiet_since.clear()
            return False
        if not quiet_since:
            quiet_since.append(now)
        return now - quiet_since[0] >= ctx.settings.quiet_s

    try:
        until(settled, what="the drain", timeout_s=ctx.settings.drain_s, interval_s=0.2)
    except WaitTimeout:
        return False
    return True


def _settings_problem(configuration: Configuration, knobs: Knobs,
                      reported: Running) -> str | None:
    """A run whose workers disagree, or run other settings than the configuration declares,
    measured something else: it is invalid."""
    if not reported.agree:
        return "the workers reported different effective settings"
    mismatch = configuration.mismatch(knobs)
    return f"the workers do not run the configuration: {mismatch}" if mismatch else None


def _validity(
    fault: Fault, trigger: Trigger | None, in_flight: list[str], counts: dict[str, int],
    planned: int, records: list[dict[str, Any]], fired_t: float | None,
) -> tuple[bool, str]:
    """A scenario whose fault hit no running task measured nothing: it is invalid, re-run."""
    if counts["submitted"] != planned:
        return False, f"{counts['submitted']} of {planned} planned submissions have an outcome"
    if fault.control:
        return True, "control run"
    if trigger is None or not in_flight:
        return False, "the fault fired while its target ran no task"
    problem = fault.validity(counts, records, fired_t)
    if problem:
        return False, problem
    return True, f"fired at {trigger.target} with {len(in_flight)} tasks in flight"


def run_valid_scenario(
    world: World,
    configuration: Configuration,
    fault_name: str,
    settings: Settings,
    seed: int,
    run_dir: Path,
    replay: str,
    attempts: int = 3,
) -> ScenarioResult:
    """Run until valid, at most ``attempts`` times; an invalid attempt is never reported.

    Each attempt keeps its own directory (``<scenario>/attempt-N``) for re-analysis.
    """
    result: ScenarioResult | None = None
    for attempt in range(1, attempts + 1):
        result = run_scenario(world, configuration, fault_name, settings, seed,
                              run_dir, replay, attempt=attempt)
        if result.valid:
            break
    assert result is not None
    return result
