"""The broker-version report: one selection run once per pass of broker releases
(``queue-chaos versions``), each cell side by side across the passes, and what changed.

Pure: the passes' run reports in, markdown and a JSON document out. A pass is a whole run of its
own (its own self-proof, its own ledgers under ``runs/<id>/<pass>``), with the same seed as the
others, so the fault schedules match and a difference is the release's, not the schedule's.

What counts as a change is said in the report, because a count that differs once can be noise
(a kill lands a little earlier or later; ``reports/stability-worlds.md``):

* a *verdict change*: the cell's worst verdict differs between passes (a claim that held on one
  release broke on another). With one trial per pass it is a finding to confirm with
  ``--trials``; with several, every trial of each pass stands behind it;
* a *count change*: the verdicts agree, but one release lost (or ran twice) some tasks where
  another lost none; or, with two or more trials in every pass, the ranges of those counts do
  not overlap. With one trial per pass, 7 lost against 8 is where the kill landed, not the
  release (the committed durability report's three trials of one release vary that much), so
  it shows in the tables and is not called a change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from harness import trials as trials_
from harness.backends import REGISTRY
from harness.brokerversions import PASSES
from harness.matrix import order_key
from harness.result import RunReport, measured_with

# The counts whose ranges decide a count change: what a team loses or runs twice.
CHANGE_KEYS = ("lost", "duplicated")


@dataclass
class Pass:
    """One pass's run: its name (a key of PASSES), the releases it ran and its report."""

    name: str
    report: RunReport
    run: str  # where its report and ledgers are, relative to the work directory

    @property
    def brokers(self) -> str:
        """The releases the pass names (a broker it does not name ran no scenario)."""
        return " + ".join(PASSES[self.name]) if self.name in PASSES else (
            self.report.provenance.brokers)

    def servers(self) -> dict[str, str]:
        """Every server version its scenarios ran on (redis-server 8.0.2, rabbitmq-server
        4.0.5, erlang ...), Toxiproxy's left out: it is the same in every pass."""
        found: dict[str, str] = {}
        for versions in measured_with(self.report.scenarios).values():
            for name, value in versions["servers"].items():
                if name != "toxiproxy":
                    found.setdefault(name, value)
        return found


def joined(earlier: Pass, later: Pass) -> Pass:
    """One pass from two runs of it (``versions --extend``: the later adds backends to the
    earlier, with the same seed): the earlier's scenarios, then each of the later's that the
    earlier lacks (the self-proof's cases both ran stay the earlier's), valid only if both were,
    and both runs named."""
    seen = {r.key for r in earlier.report.scenarios}
    report = replace(
        earlier.report,
        scenarios=[*earlier.report.scenarios,
                   *(r for r in later.report.scenarios if r.key not in seen)],
        measurement_valid=earlier.report.measurement_valid and later.report.measurement_valid,
        self_proof=[*earlier.report.self_proof, *later.report.self_proof])
    return Pass(earlier.name, report, f"{earlier.run}, {later.run}")


@dataclass
class Row:
    """A configuration under a fault in each pass that ran it (absent: the pass did not)."""

    backend: str
    configuration: str
    fault: str
    claim: str
    cells: dict[str, trials_.Cell]

    @property
    def verdict_changed(self) -> bool:
        return len({c.verdict for c in self.cells.values()}) > 1

    @property
    def counts_changed(self) -> list[str]:
        """The counts (of CHANGE_KEYS) that changed between two passes: none in one, some in
        the other; or, when every pass ran two or more trials, ranges that do not overlap."""
        repeated = all(c.trials > 1 for c in self.cells.values())
        out = []
        for key in CHANGE_KEYS:
            ranges = [c.ranges[key] for c in self.cells.values() if key in c.ranges]
            if any(a[1] == 0 < b[0] or (repeated and (a[1] < b[0] or b[1] < a[0]))
                   for a in ranges for b in ranges):
                out.append(key)
        return out

    def change(self, order: Sequence[str]) -> str:
        """What changed between passes, in words ("" when nothing did)."""
        shown = [p for p in order if p in self.cells]
        if self.verdict_changed:
            what = "verdict"
        elif self.counts_changed:
            what = " and ".join(self.counts_changed)
        else:
            return ""
        said = "; ".join(f"{p}: {trials_.cell_words(self.cells[p], emphasis='')}" for p in shown)
        return f"{what} changed ({said})"


def rows(passes: Sequence[Pass]) -> list[Row]:
    """Every cell of every pass, joined by scenario, in the catalogue's order."""
    found: dict[str, Row] = {}
    for p in passes:
        for cell in trials_.cells(p.report.scenarios):
            row = found.setdefault(cell.scenario, Row(cell.backend, cell.configuration,
                                                      cell.fault, cell.claim, {}))
            row.cells[p.name] = cell
    return sorted(found.values(), key=lambda r: order_key(r.configuration, r.fault))


def _title(backend: str) -> str:
    return REGISTRY[backend].title if backend in REGISTRY else backend


def render(passes: Sequence[Pass], *, date: str, seed: int, command: str) -> str:
    """The report: the releases each pass ran, whether each pass proved it measures, what
    changed between releases, then every cell side by side per backend."""
    order = [p.name for p in passes]
    table = rows(passes)
    changes = [(r, r.change(order)) for r in table if r.change(order)]
    trials = max((trials_.count(p.report.scenarios) for p in passes), default=1)
    lines = [
        "# Broker versions: the same faults on each release",
        "",
        f"Run {date}, seed {seed} in every pass, {trials} trial{'s' if trials > 1 else ''} "
        f"per pass. Reproduce: `{command}`.",
        "",
        "Each pass is a whole run of the selection on one set of broker releases, with its own "
        "self-proof; the same seed gives every pass the same fault schedule, so a difference "
        "is the release's. A pass that names only one broker measures only the backends on it.",
        "",
        "| pass | releases | servers measured | self-proof | run |",
        "|---|---|---|---|---|",
    ]
    for p in passes:
        servers = ", ".join(f"{k} {v}" for k, v in p.servers().items())
        proof = "valid" if p.report.measurement_valid else "**INVALID**"
        lines.append(f"| {p.name} | {p.brokers} | {servers} | {proof} "
                     f"({len(p.report.scenarios)} scenarios) | `{p.run}` |")
    lines += ["", "## What changes between versions", ""]
    if trials == 1:
        lines += ["One trial per pass: a verdict that changed is a finding to confirm with "
                  "more trials (`--trials`); counts that differ while both are nonzero (7 lost "
                  "against 8) are where a kill landed as much as the release, so they are in "
                  "the tables below and not listed here.", ""]
    if changes:
        lines += [f"- **{_title(r.backend)}**, `{r.configuration}` under `{r.fault}`: {said}"
                  for r, said in changes]
    else:
        lines.append("Nothing: every cell has the same verdict in every pass, and no release "
                     "lost or duplicated tasks where another did not.")
    for backend in dict.fromkeys(r.backend for r in table):
        shown = [p for p in order if any(p in r.cells for r in table if r.backend == backend)]
        lines += ["", f"## {_title(backend)}", "",
                  "| configuration | fault | claim | " + " | ".join(shown) + " |",
                  "|---|---|---|" + "---|" * len(shown)]
        for r in (r for r in table if r.backend == backend):
            words = [trials_.cell_words(r.cells[p]) if p in r.cells else "not run"
                     for p in shown]
            lines.append(f"| {r.configuration} | {r.fault} | {r.claim} | "
                         + " | ".join(words) + " |")
    for p in passes:
        if not p.report.measurement_valid:
            lines += ["", f"Pass {p.name}'s self-proof:", "",
                      *(f"- {line}" for line in p.report.self_proof)]
    return "\n".join(lines) + "\n"


def as_json(passes: Sequence[Pass], *, date: str, seed: int, command: str
            ) -> dict[str, Any]:
    """The same as data: each pass with its scenarios' full results (every count traces back to
    its ledgers in the pass's run directory), and the rows with what changed."""
    order = [p.name for p in passes]
    return {
        "schema": 1, "date": date, "seed": seed, "command": command,
        "passes": [{"name": p.name, "brokers": p.brokers, "servers": p.servers(),
                    "run": p.run, "valid": p.report.measurement_valid,
                    "self_proof": list(p.report.self_proof),
                    "scenarios": [r.as_dict() for r in p.report.scenarios]} for p in passes],
        "rows": [{"backend": r.backend, "configuration": r.configuration, "fault": r.fault,
                  "claim": r.claim, "change": r.change(order),
                  "cells": {name: {"verdict": c.verdict,
                                   "words": trials_.cell_words(c, emphasis=""),
                                   "ranges": {k: list(v) for k, v in c.ranges.items()}}
                            for name, c in r.cells.items()}}
                 for r in rows(passes)],
    }


def summary(document: Mapping[str, Any]) -> list[str]:
    """The lines the durability report shows of a versions report: what changed."""
    return [f"`{r['configuration']}` under `{r['fault']}`: {r['change']}"
            for r in document.get("rows", []) if r.get("change")]
