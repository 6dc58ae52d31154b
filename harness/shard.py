"""Shards: a run's scenarios split over several runners or worlds, and their reports merged.

A split must be the same on every runner that computes it (CI runners of one job matrix each
compute their own part), so it is a pure function of the selected cases, the settings and the
committed report's durations: no clock, no randomness, no machine. Each case weighs what it took
in the committed report, or an estimate from its fault's window when the report lacks it.
Cases are split by configuration, so a configuration's control and faults stay on one runner
and reuse its containers; a run with fewer configurations than shards (a team's target) is split
by case. Each shard then gets what every run needs to prove
itself (a control per configuration, a case known to lose work), so each shard's own report is a
valid measurement, and the merge keeps one copy of each scenario: the merged report has the
same scenarios as the unsharded run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.result import ReportError, RunReport, ScenarioResult

Case = tuple[str, str]  # (configuration, fault)


class ShardError(ValueError):
    """A shard that cannot be: its text, or shards that cannot be merged."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        index, sep, count = text.partition("/")
        if not (sep and index.isdigit() and count.isdigit()
                and 1 <= int(index) <= int(count) <= 64):
            raise ShardError(f"shard {text!r}: expected K/N with 1 <= K <= N <= 64 (e.g. 2/4)")
        return cls(int(index), int(count))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def split(cases: list[Case], count: int, weight: Callable[[Case], float]) -> list[list[Case]]:
    """``cases`` in ``count`` parts of nearly equal weight, each in the order ``cases`` had.

    Longest first, each unit to the lightest part so far (ties: the lowest part): the classic
    greedy bound, within 4/3 of the best split.
    """
    units: dict[str, list[Case]] = {}
    by_configuration = len({c for c, _ in cases}) >= count
    for case in cases:
        units.setdefault(case[0] if by_configuration else f"{case[0]}/{case[1]}", []).append(case)
    loads = [0.0] * count
    parts: list[set[Case]] = [set() for _ in range(count)]
    ranked = sorted(units.items(), key=lambda kv: (-sum(map(weight, kv[1])), kv[0]))
    for _, unit in ranked:
        lightest = min(range(count), key=lambda i: (loads[i], i))
        loads[lightest] += sum(map(weight, unit))
        parts[lightest].update(unit)
    return [[c for c in cases if c in part] for part in parts]


def most_parts(cases: list[Case]) -> int:
    """How many parts ``split`` can make of ``cases`` that are not empty (one per case)."""
    return max(1, len(cases))


def merge(reports: Iterable[RunReport]) -> list[ScenarioResult]:
    """One list of results from the shards' reports: one copy of each scenario (the first
    shard's, in the order given), in the order the shards ran them. A scenario's trials
    (``ScenarioResult.key``) are kept apart: one copy of each trial.

    Shards of one run share its seed: reports of different seeds are different runs, and
    merging them would present two schedules as one.
    """
    reports = list(reports)
    if not reports:
        raise ShardError("merge needs at least one shard report")
    seeds = {r.seed for r in reports}
    if len(seeds) != 1:
        raise ShardError(f"the shards ran with different seeds ({sorted(map(str, seeds))}): "
                         "they are not one run; run every shard with the same --seed")
    merged: dict[str, ScenarioResult] = {}
    for report in reports:
        for result in report.scenarios:
            merged.setdefault(result.key, result)
    return list(merged.values())


def durations(path: Path) -> dict[str, float]:
    """Seconds each scenario took in an earlier run's report (``path``), to weigh the split by;
    empty when there is none. Runners of one CI job check out the same report, so they still
    compute the same split (as pytest-split does with its stored durations)."""
    try:
        report = RunReport.load(path)
    except ReportError:
        return {}
    return {r.scenario: sum(r.phase_s.values()) for r in report.scenarios if r.phase_s}


def load_all(paths: Iterable[Path]) -> list[RunReport]:
    """Each shard's ``durability.json``; a missing or broken one is named."""
    loaded = []
    for path in paths:
        try:
            loaded.append(RunReport.load(path))
        except ReportError as exc:
            raise ShardError(str(exc)) from None
    return loaded
