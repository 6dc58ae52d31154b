"""Stability over earlier runs: ``queue-chaos compare --reports A.json B.json``.

Repeating a run is ``run --trials N`` now (harness/trials.py), one report holding every trial.
Runs already made (full matrices of different sessions, before and after a change) are compared
the same way: each report's scenarios are further trials (``trials.numbered``), grouped into
cells (``trials.cells``), and this module only lays the cells out as the table of
``reports/stability.md``. A verdict that flips between trials is not a finding, it is noise;
counts are allowed to vary (the moment a kill lands decides how many tasks were in flight), and
their spread is shown.
"""

from __future__ import annotations

from pathlib import Path

from harness import trials
from harness.result import RunReport


def cells(runs: list[RunReport]) -> list[trials.Cell]:
    """The runs' scenarios as cells, each run's scenarios the next trials."""
    return trials.cells(trials.numbered(r.scenarios for r in runs))


def _recovery(cell: trials.Cell) -> str:
    values = [float(r.recovery_s) for r in cell.results if r.recovery_s is not None]
    if not values:
        return "-"
    low, high = min(values), max(values)
    return f"{low}" if low == high else f"{low}-{high}"


def render(runs: list[RunReport]) -> str:
    """The spread table. Runs of different matrices may be compared: a scenario that only some
    of the trials held says in how many it ran, so no count hides a missing run."""
    joined = trials.numbered(r.scenarios for r in runs)
    found = trials.cells(joined)
    total = trials.count(joined)
    flipped = trials.changed(found)
    # Each trial's own seed (a report of several trials ran seed, seed+1, ...).
    seeds = ", ".join(str(seed) for seed in {r.trial: r.seed for r in joined}.values())
    reports = f"{len(runs)} report{'s' if len(runs) != 1 else ''}"
    in_all = sum(c.trials == total for c in found)
    held = (f"{len(found)} scenarios each" if in_all == len(found) else
            f"{len(found)} scenarios, {in_all} of them in every trial")
    noun = "verdict" if len(flipped) == 1 else "verdicts"
    lines = [
        "# Stability of the durability verdicts",
        "",
        f"{total} trials from {reports} of the matrix (seeds {seeds}); {held}. "
        f"**{len(flipped)} {noun} changed between trials.** Counts are shown as min-max over "
        "the trials.",
        "",
        "| scenario | verdicts | " + " | ".join(trials.RANGE_KEYS) + " | recovery s |",
        "|---|---|" + "---|" * len(trials.RANGE_KEYS) + "---|",
    ]
    for c in found:
        verdicts = "**changed**: " + ", ".join(c.verdicts) if c.changed else c.verdicts[0]
        if c.trials < total:
            verdicts += f" ({c.trials} of {total} trials)"
        spans = [trials.span(*c.ranges[k]) for k in trials.RANGE_KEYS]
        lines.append(f"| {c.scenario} | {verdicts} | " + " | ".join(spans)
                     + f" | {_recovery(c)} |")
    lines.append("")
    return "\n".join(lines)


def load_runs(paths: list[Path]) -> list[RunReport]:
    return [RunReport.load(p) for p in paths]
