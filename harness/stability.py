"""Stability: the same matrix run several times, each with its own seed; do verdicts hold still?

A verdict that flips between runs is not a finding, it is noise; counts are allowed to vary (the
moment a kill lands decides how many tasks were in flight), and their spread is reported.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from harness.result import RunReport

SPREAD_KEYS = ("lost", "duplicated", "re_executed", "redelivered", "stuck", "late")


@dataclass
class Spread:
    scenario: str
    verdicts: list[str] = field(default_factory=list)
    counts: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    recovery: list[float] = field(default_factory=list)

    @property
    def stable(self) -> bool:
        return len(set(self.verdicts)) == 1


def aggregate(runs: list[RunReport]) -> list[Spread]:
    """Per scenario, every run's verdict and counts (from each run's durability.json)."""
    spreads: dict[str, Spread] = {}
    for run in runs:
        for scenario in run.scenarios:
            spread = spreads.setdefault(scenario.scenario, Spread(scenario.scenario))
            spread.verdicts.append(scenario.verdict if scenario.valid else "invalid")
            for key in SPREAD_KEYS:
                spread.counts[key].append(int(scenario.counts.get(key, 0)))
            if scenario.recovery_s is not None:
                spread.recovery.append(float(scenario.recovery_s))
    return list(spreads.values())


def _range(values: list[int] | list[float]) -> str:
    if not values:
        return "-"
    low, high = min(values), max(values)
    return f"{low}" if low == high else f"{low}–{high}"


def render(runs: list[RunReport]) -> str:
    """The spread table. Runs of different matrices may be compared: a scenario that only some
    of them held says in how many it ran, so no count hides a missing run."""
    spreads = aggregate(runs)
    changed = [s for s in spreads if not s.stable]
    seeds = ", ".join(str(r.seed) for r in runs)
    in_all = sum(len(s.verdicts) == len(runs) for s in spreads)
    held = (f"{len(spreads)} scenarios each" if in_all == len(spreads) else
            f"{len(spreads)} scenarios, {in_all} of them in every run")
    noun = "verdict" if len(changed) == 1 else "verdicts"
    lines = [
        "# Stability of the durability verdicts",
        "",
        f"{len(runs)} full runs of the matrix (seeds {seeds}); {held}. "
        f"**{len(changed)} {noun} changed between runs.** Counts are shown as min–max over "
        "the runs.",
        "",
        "| scenario | verdicts | " + " | ".join(SPREAD_KEYS) + " | recovery s |",
        "|---|---|" + "---|" * len(SPREAD_KEYS) + "---|",
    ]
    for s in spreads:
        verdicts = s.verdicts[0] if s.stable else "**changed**: " + ", ".join(s.verdicts)
        if len(s.verdicts) < len(runs):
            verdicts += f" ({len(s.verdicts)} of {len(runs)} runs)"
        cells = [_range(s.counts[k]) for k in SPREAD_KEYS]
        lines.append(f"| {s.scenario} | {verdicts} | " + " | ".join(cells)
                     + f" | {_range(s.recovery)} |")
    lines.append("")
    return "\n".join(lines)


def load_runs(paths: list[Path]) -> list[RunReport]:
    return [RunReport.load(p) for p in paths]
