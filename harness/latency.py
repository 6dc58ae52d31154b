"""Completion latency per scenario, and "delayed": what a fault added beyond the backlog.

A task's latency is its submission (``t_sent``) to its first completion (the checker's
``TaskResult.latency_s``; ``ScenarioResult.latencies_s`` keeps them sorted). The checker's
``late`` ("first completed more than ``late_after_s`` after the fault healed") cannot tell a fault
from a queue: 40 tasks submitted at 10/s onto 4 slots build a backlog whatever happens, and a task
submitted after the heal that waits its turn is "late" too.

The no-fault control of the same configuration is the yardstick: it runs the same number of
tasks at the same rate onto the same slots, so its latencies ARE that backlog. A task of a
faulted scenario is **delayed** when it took longer than the control's slowest task plus a
tolerance (the scenario's ``late_after_s``). Why that bar:

- Per task is impossible: each scenario draws its task durations from its own seed, so task 17
  of the fault run and task 17 of the control are different amounts of work.
- The slowest control task, not a percentile: anything up to it is a latency the queue produced
  with no fault at all, so a task beyond it cannot be blamed on the backlog alone. A percentile
  would count the control's own tail as the fault's doing.
- Plus a tolerance: the control is one sample; its slowest task varies from run to run with the
  seeded durations (0.6-1.4 s each, several queued per slot) and the scheduler. ``late_after_s``
  is the harness's existing "noticeably later" threshold, so the two counts speak one unit.

The count is therefore a lower bound: a fault that slowed a task which would otherwise have been
quick, but not past the control's slowest, is not counted. What it does count is unambiguous:
tasks that finished later than anything the queue does on its own.

Pure: no Docker, no clock; it reads the result model only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from harness.result import ScenarioResult

QUANTILES = (("p50", 50.0), ("p95", 95.0), ("p99", 99.0), ("max", 100.0))
CONTROL = "none"  # the control's fault name


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100): a value that was measured, never one
    interpolated between two (p99 of 40 tasks is the slowest one)."""
    if not values or not 0 < q <= 100:
        raise ValueError(f"percentile {q} of {len(values)} values: need values and 0 < q <= 100")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99 and max of ``values`` (nearest rank), seconds to 2 decimals; {} for none."""
    if not values:
        return {}
    return {name: round(percentile(values, q), 2) for name, q in QUANTILES}


@dataclass(frozen=True)
class Controls:
    """The no-fault controls of a run, to hold each faulted scenario against. With trials each
    trial has its own control (same seed neighbourhood, same moment of the run): a scenario is
    compared with its own trial's, else with the configuration's first valid one (merged
    shards, a trial whose control was invalid). An invalid control measured nothing."""

    first: dict[str, ScenarioResult] = field(default_factory=dict)
    by_trial: dict[tuple[str, int], ScenarioResult] = field(default_factory=dict)

    def of(self, r: ScenarioResult) -> ScenarioResult | None:
        return self.by_trial.get((r.configuration, r.trial)) or self.first.get(r.configuration)


def controls(results: Iterable[ScenarioResult]) -> Controls:
    """The valid no-fault controls, per configuration (the first) and per trial."""
    found = Controls()
    for r in results:
        if r.fault == CONTROL and r.valid:
            found.first.setdefault(r.configuration, r)
            found.by_trial.setdefault((r.configuration, r.trial), r)
    return found


def delayed(r: ScenarioResult, control: ScenarioResult | None) -> int | None:
    """How many of ``r``'s tasks took longer than the control's slowest task plus
    ``late_after_s``: what the fault added beyond the backlog the control had too. None without
    a control, or when either has no latencies (a report from before they were kept) or ``r``
    has no ``late_after_s`` setting; 0 for the control itself."""
    tolerance = r.settings.get("late_after_s")
    if control is None or not r.latencies_s or not control.latencies_s or tolerance is None:
        return None
    if r is control:
        return 0
    bar = max(control.latencies_s) + float(tolerance)
    return sum(1 for t in r.latencies_s if t > bar)


def latency_words(r: ScenarioResult, control: ScenarioResult | None) -> str:
    """``r``'s latency in a few words, beside its control's when it has one (and is not it):
    "p50 1.9 s, p99 6.2 s (control p50 1.8 s, p99 4.1 s)"."""
    own = _words(percentiles(r.latencies_s))
    if not own:
        return "no task completed"
    base = _words(percentiles(control.latencies_s)) if control and control is not r else ""
    return f"{own} (control {base})" if base else own


def _words(found: dict[str, float]) -> str:
    return f"p50 {found['p50']:.1f} s, p99 {found['p99']:.1f} s" if found else ""
