"""One scenario: backend x configuration x fault, through every run phase to a verdict.

Phases: fresh workers -> workload + fault (fired from observed state, healed after its window)
-> drain (until every task is accounted for and the broker is empty, or a bounded deadline) ->
forensics (where is each unfinished task) -> check -> result, saved as JSON beside the ledger so
every number in the report can be traced back to ledger records.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness import forensics
from harness.checker import Outcome, check, verdict
from harness.faults import FAULTS
from harness.ledger import LedgerWriter, read_ledger
from harness.matrix import Configuration, Settings
from harness.observe import in_flight_at, snapshot
from harness.schedule import Trigger, plan_fault, seeded, wait_for_trigger
from harness.waits import WaitTimeout, until
from harness.workload import Workload, plan_tasks
from harness.world import World


class ScenarioError(RuntimeError):
    """A scenario could not be run to its end; the message carries the containers' logs."""


@dataclass
class ScenarioResult:
    scenario: str
    backend: str
    configuration: str
    configuration_summary: str
    guarantee: str
    fault: str
    fault_description: str
    seed: int
    valid: bool
    validity: str
    verdict: str
    reason: str
    counts: dict[str, int]
    recovery_s: float | None
    stuck_locations: dict[str, int]
    fault_target: str | None = None
    in_flight_at_fault: list[str] = field(default_factory=list)
    fault_at_s: float | None = None  # seconds after the workload started
    healed_at_s: float | None = None
    drained: bool = True
    phase_s: dict[str, float] = field(default_factory=dict)
    anomalies: dict[str, list[str]] = field(default_factory=dict)
    ledger_dir: str = ""
    replay: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1  # the first valid attempt (invalid ones are re-run, never reported)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> ScenarioResult:
        return cls(**json.loads(path.read_text()))


def scenario_id(configuration: Configuration, fault: str) -> str:
    return f"{configuration.backend}.{configuration.name}.{fault}"


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
    fault = FAULTS[fault_name]
    # Each attempt draws its own schedule, still a function of the seed alone.
    rng = seeded(seed, name if attempt == 1 else f"{name}/attempt-{attempt}")
    directory = run_dir / name if attempt == 1 else run_dir / name / f"attempt-{attempt}"
    ledger_dir = directory / "ledger"
    phases: dict[str, float] = {}
    mark = time.monotonic()

    def phase(label: str) -> None:
        nonlocal mark
        now = time.monotonic()
        phases[label] = round(now - mark, 2)
        mark = now

    try:
        world.begin_scenario(
            ledger_dir,
            {
                **configuration.env(),
                "CHAOS_VISIBILITY_TIMEOUT": str(settings.visibility_timeout_s),
                "CHAOS_RESTORE_INTERVAL": str(settings.restore_interval_s),
            },
        )
        phase("workers_up")
        result = _measure(world, configuration, fault, settings, seed, rng, name, ledger_dir,
                          directory, phases, phase, replay)
    except Exception as exc:
        # Whatever broke (a stuck broker, proxy or worker; a Docker call), say it with the
        # containers' own last words, never as a bare timeout.
        raise ScenarioError(
            f"scenario {name} failed: {exc!r}\nreplay: {replay}\n{world.cluster.all_logs()}"
        ) from exc
    finally:
        world.end_scenario(directory / "logs")
    result.attempt = attempt
    result.save(directory / "result.json")
    return result


def _measure(
    world: World,
    configuration: Configuration,
    fault: Any,
    settings: Settings,
    seed: int,
    rng: Any,
    name: str,
    ledger_dir: Path,
    directory: Path,
    phases: dict[str, float],
    phase: Any,
    replay: str,
) -> ScenarioResult:
    harness_ledger = LedgerWriter(ledger_dir, "harness")
    plans = plan_tasks(name, settings.tasks, settings.submit_rate, settings.task_min_s,
                       settings.task_max_s, rng)
    fault_plan = plan_fault(rng, fault.name, world.workers, settings.fault_after_started,
                            settings.fault_window_s)
    workload = Workload(world.producer_url, plans, harness_ledger)
    started_at = world.clock()
    workload.start()
    trigger: Trigger | None = None
    fired_t = healed_t = None
    try:
        if fault.name != "none":
            trigger = wait_for_trigger(fault_plan, ledger_dir, settings.ready_s)
            fired_t = world.clock()
            fault.inject(world, trigger.target)
            harness_ledger.write("fault", fault=fault.name, target=trigger.target,
                                 in_flight=trigger.in_flight)
            time.sleep(settings.fault_window_s)  # the fault window is the scenario's setting
            fault.heal(world, trigger.target)
            healed_t = world.clock()
            harness_ledger.write("healed", fault=fault.name, target=trigger.target)
    finally:
        workload_bound = len(plans) / settings.submit_rate + 60
        if not workload.join(workload_bound):
            workload.stop()
            raise WaitTimeout(f"submissions did not finish within {workload_bound:.0f}s")
    phase("workload_and_fault")

    drained = _drain(world, ledger_dir, settings.drain_s, settings.quiet_s)
    phase("drain")
    held = forensics.celery_redis_holdings(world.redis, settings.visibility_timeout_s)
    contents = read_ledger([ledger_dir])
    result = check(
        contents.records, healed_t=healed_t, late_after_s=settings.late_after_s, in_broker=held,
        truncated=contents.truncated, corrupt=contents.corrupt,
    )
    phase("check")
    judged, reason = verdict(result.counts, configuration.guarantee)
    in_flight = (
        in_flight_at(contents.records, trigger.target, fired_t)
        if trigger is not None and fired_t is not None else []
    )
    valid, validity = _validity(fault.name, trigger, in_flight, result.counts.submitted,
                                settings.tasks)
    anomalies: dict[str, list[str]] = {}
    for task in result.tasks:
        if task.outcome not in (Outcome.COMPLETED, Outcome.NOT_ENQUEUED):
            anomalies.setdefault(task.outcome.value, []).append(task.task)
        if task.late:
            anomalies.setdefault("late", []).append(task.task)
        if task.re_executed:
            anomalies.setdefault("re-executed", []).append(task.task)
        if task.redelivered:
            anomalies.setdefault("redelivered", []).append(task.task)
    scenario = ScenarioResult(
        scenario=name,
        backend=configuration.backend,
        configuration=configuration.name,
        configuration_summary=configuration.summary,
        guarantee=configuration.guarantee.value,
        fault=fault.name,
        fault_description=fault.description,
        seed=seed,
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
        phase_s=phases,
        anomalies=anomalies,
        ledger_dir=str(ledger_dir),
        replay=replay,
        settings=asdict(settings),
    )
    return scenario


def _drain(world: World, ledger_dir: Path, deadline_s: float, quiet_s: float) -> bool:
    """Until nothing runs and the broker holds nothing, continuously for ``quiet_s``.

    Lost tasks never complete, so "every task completed" cannot be the condition. Quiet is: no
    execution in flight on a live worker and no message in the broker. It must last ``quiet_s``
    because a message briefly lives only in a worker's memory (between BRPOP and its unacked
    entry, or between an early ack and the task's start).
    """
    quiet_since: list[float] = []

    def settled() -> bool:
        snap = snapshot(ledger_dir)
        quiet = not any(snap.running.values()) and forensics.celery_redis_empty(world.redis)
        now = time.monotonic()
        if not quiet:
            quiet_since.clear()
            return False
        if not quiet_since:
            quiet_since.append(now)
        return now - quiet_since[0] >= quiet_s

    try:
        until(settled, what="the drain", timeout_s=deadline_s, interval_s=0.2)
    except WaitTimeout:
        return False
    return True


def _validity(
    fault: str, trigger: Trigger | None, in_flight: list[str], submitted: int, planned: int
) -> tuple[bool, str]:
    """A scenario whose fault hit no running task measured nothing: it is invalid, re-run."""
    if submitted != planned:
        return False, f"{submitted} of {planned} planned submissions have an outcome"
    if fault == "none":
        return True, "control run"
    if trigger is None or not in_flight:
        return False, "the fault fired while its target ran no task"
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
