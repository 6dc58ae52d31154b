"""Trials: each cell (a configuration under a fault) run several times, and what the runs say
together.

One run of a few dozen tasks per cell is one draw: the moment a kill lands decides how many
tasks were in flight, and a window as narrow as kombu's BRPOP gap loses a task in one run and
none in the next (``reports/stability-worlds.md``). ``queue-chaos run --trials N`` therefore
runs the whole selection N times, trial k with seed ``seed + k - 1`` (so the whole run replays
from one seed, and trial k alone from its own), and writes one report whose scenarios hold every
trial's results, each marked with its ``trial``. ``compare`` reads earlier runs' reports the
same way: each report's scenarios are further trials.

Pure: results in, cells and words out. A cell's verdict is its WORST trial's (INVALID >
VIOLATED > inconclusive > holds; an invalid scenario counts as INVALID, a verdict this module
does not know as worse than all of them), since a claim broken once is broken; the words say
how often and how much, so a cell that broke in one trial of five does not read like one that
broke in all. The report, the gate, the recommendations and ``compare`` all read cells from
here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from harness.result import ScenarioResult, Verdict

MAX_TRIALS = 20
# The counts a cell gives ranges of (min-max over its trials): what the stability table shows.
RANGE_KEYS = ("lost", "duplicated", "stuck", "re_executed", "redelivered", "late")
# The counts a cell's words name: what a reader of the claim must see, in this order.
SEEN = ("lost", "duplicated", "stuck")
# Worse is higher. A verdict not listed ranks above them all (``rank``): never a pass.
RANK = {Verdict.HOLDS.value: 0, Verdict.INCONCLUSIVE.value: 1, Verdict.VIOLATED.value: 2,
        Verdict.INVALID.value: 3}


def parse_count(text: str) -> int:
    """``--trials``: a count 1..MAX_TRIALS (each trial a whole run of the selection)."""
    if not text.isdigit() or not 1 <= int(text) <= MAX_TRIALS:
        raise ValueError(f"--trials {text!r}: expected a count 1..{MAX_TRIALS} (each trial "
                         "runs the whole selection once more, with the next seed)")
    return int(text)


def trial_seed(seed: int, trial: int) -> int:
    """Trial ``trial``'s (1-based) seed: the run's, counted up, so one seed replays them all."""
    return seed + trial - 1


def trial_run_id(run_id: str, trial: int, trials: int) -> str:
    """Trial ``trial`` of ``trials``' run id (its containers, network, and its ledgers under
    ``runs/<id>``, or ``runs/<id>-wK`` per world): the whole run's marked with the trial, so
    each trial's ledgers sit beside the run's directory (``runs/<run id>``, which holds each
    trial's report under ``trial-K/`` and the whole report); a run of one trial keeps its own
    id, as before trials. A run id names containers and networks, so it takes no ``/``."""
    return run_id if trials <= 1 else f"{run_id}-t{trial}"


def count(results: Iterable[ScenarioResult]) -> int:
    """How many trials ``results`` hold (1 for a run without trials): the JSON's ``trials``."""
    return max((r.trial for r in results), default=1)


def verdict_of(r: ScenarioResult) -> str:
    """A trial's verdict as a cell weighs it: an invalid scenario measured nothing it can vouch
    for, so it counts as INVALID whatever its checker said."""
    return r.verdict if r.valid else Verdict.INVALID.value


def rank(verdict: str) -> int:
    """How bad ``verdict`` is (higher is worse); one this module does not know is the worst."""
    return RANK.get(verdict, len(RANK))


def outcome_of(r: ScenarioResult) -> str:
    """What happened to a trial's tasks, in one word or a few: ``invalid`` (the scenario
    measured nothing), the counts it saw among lost, duplicated and stuck (``lost``,
    ``lost, duplicated``), its verdict when none of those explains it (an INVALID checker
    verdict), else ``clean``."""
    if not r.valid:
        return "invalid"
    seen = [k for k in SEEN if r.counts.get(k, 0)]
    if seen:
        return ", ".join(seen)
    return "clean" if r.verdict == Verdict.HOLDS.value else r.verdict


@dataclass
class Cell:
    """A configuration under a fault, over every trial that ran it (in trial order)."""

    scenario: str
    backend: str
    configuration: str
    fault: str
    claim: str
    results: list[ScenarioResult] = field(default_factory=list)

    @property
    def trials(self) -> int:
        return len(self.results)

    @property
    def verdicts(self) -> list[str]:
        """Each trial's verdict as weighed here (``verdict_of``), in trial order."""
        return [verdict_of(r) for r in self.results]

    @property
    def worst(self) -> ScenarioResult:
        """The first trial with the worst verdict: the one that decides the cell."""
        return max(self.results, key=lambda r: rank(verdict_of(r)))

    @property
    def verdict(self) -> str:
        """The worst trial's verdict: a claim broken in one trial is broken."""
        return verdict_of(self.worst)

    @property
    def changed(self) -> bool:
        """Whether the trials disagree on the verdict: noise a single run would have hidden."""
        return len(set(self.verdicts)) > 1

    @property
    def outcomes(self) -> dict[str, int]:
        """How often each outcome (``outcome_of``) happened, most frequent first (ties: first
        seen), e.g. ``{"clean": 3, "lost": 2}``."""
        return dict(Counter(outcome_of(r) for r in self.results).most_common())

    @property
    def ranges(self) -> dict[str, tuple[int, int]]:
        """Per count of RANGE_KEYS, its (min, max) over every trial, zeros included."""
        return {key: (min(values), max(values)) for key in RANGE_KEYS
                if (values := [int(r.counts.get(key, 0)) for r in self.results])}


def cells(results: Iterable[ScenarioResult]) -> list[Cell]:
    """The results grouped by scenario id, cells in first-seen order, each cell's results in
    the order given (a report holds them in trial order)."""
    found: dict[str, Cell] = {}
    for r in results:
        cell = found.get(r.scenario)
        if cell is None:
            cell = found[r.scenario] = Cell(r.scenario, r.backend, r.configuration, r.fault,
                                            r.guarantee)
        cell.results.append(r)
    return list(found.values())


def changed(found: Iterable[Cell]) -> list[Cell]:
    """The cells whose trials disagree on the verdict, in the order given."""
    return [c for c in found if c.changed]


def numbered(runs: Iterable[Sequence[ScenarioResult]]) -> list[ScenarioResult]:
    """Several runs' results as the trials of one: run i's results follow run i-1's trials
    (a run of one trial becomes the next trial; a run with trials 1..t becomes the next t).
    Copies: the results given keep their own numbers."""
    joined: list[ScenarioResult] = []
    offset = 0
    for run in runs:
        joined.extend(replace(r, trial=offset + r.trial) for r in run)
        offset += count(run)
    return joined


def span(low: int, high: int) -> str:
    """A range as the report prints it: ``2`` when both ends agree, else ``1-3``."""
    return str(low) if low == high else f"{low}-{high}"


def outcome_words(r: ScenarioResult, emphasis: str = "**") -> str:
    """A scenario's outcome in words nobody misreads: what happened, then what it means for the
    claim (a loss the claim allows is never shown as "holds" alone). The summary's cells and
    the progress lines (``emphasis`` "") both say it this way.

    >>> from tests.unit.build import scenario_result as s
    >>> outcome_words(s(counts={"lost": 3}, verdict="VIOLATED"))
    '**3 lost: VIOLATED**'
    >>> outcome_words(s(counts={"lost": 2}))
    '2 lost (allowed)'
    >>> outcome_words(s(counts={"stuck": 2}, verdict="inconclusive"))
    '2 stuck: inconclusive'
    >>> outcome_words(s())
    'clean'
    """
    if not r.valid:
        return "invalid"
    seen = ", ".join(f"{r.counts.get(k, 0)} {k}" for k in SEEN if r.counts.get(k, 0))
    if r.verdict == Verdict.VIOLATED:
        text = f"{seen}: VIOLATED" if seen else "VIOLATED"
        return f"{emphasis}{text}{emphasis}"
    if r.verdict != Verdict.HOLDS:
        return f"{seen}: {r.verdict}" if seen else r.verdict
    return f"{seen} (allowed)" if seen else "clean"


def cell_words(cell: Cell, emphasis: str = "**") -> str:
    """A cell's outcome in words: how often, how much, and the worst verdict.

    One trial: exactly ``outcome_words`` (``clean``, ``2 lost (allowed)``, ``**7 lost:
    VIOLATED**``, ``2 stuck: inconclusive``, ``invalid``). Several: for each of lost,
    duplicated and stuck that any trial saw, ``<range> <count> in <m> of <n> trials``, where
    the range is over the m trials that saw it (so "1-2 lost in 3 of 5 trials": three trials
    lost one or two tasks, the other two lost none), neighbours seen in as many trials
    sharing one "in m of n trials" ("1 lost, 1 duplicated in 3 of 3 trials"); then ``invalid
    in <m> of <n> trials`` for trials that measured nothing, and a verdict the counts do not
    explain the same way; then
    what the worst trial means for the claim, as for one trial: `` (allowed)`` when every trial
    held, ``: inconclusive``, ``: INVALID``, or ``: VIOLATED`` (the whole text in ``emphasis``).
    A cell where no trial saw anything is ``clean in <n> of <n> trials``.

    >>> from tests.unit.build import scenario_result as s
    >>> def cell(*trials): return cells(numbered([t] for t in trials))[0]
    >>> cell_words(cell(s(counts={"lost": 1}, verdict="VIOLATED"), s(),
    ...                 s(counts={"lost": 2}, verdict="VIOLATED")))
    '**1-2 lost in 2 of 3 trials: VIOLATED**'
    >>> cell_words(cell(s(), s(), s()))
    'clean in 3 of 3 trials'
    >>> cell_words(cell(s(counts={"duplicated": 2}), s(counts={"duplicated": 4}), s()))
    '2-4 duplicated in 2 of 3 trials (allowed)'
    >>> cell_words(cell(s(), s(counts={"stuck": 2}, verdict="inconclusive"), s()))
    '2 stuck in 1 of 3 trials: inconclusive'
    >>> cell_words(cell(s(counts={"lost": 3}), s(valid=False)), emphasis="")
    '3 lost, invalid in 1 of 2 trials: INVALID'
    >>> cell_words(cell(*[s(counts={"lost": 1, "duplicated": 1}, verdict="VIOLATED")] * 3))
    '**1 lost, 1 duplicated in 3 of 3 trials: VIOLATED**'
    """
    if cell.trials == 1:
        return outcome_words(cell.results[0], emphasis)
    n = cell.trials
    valid = [r for r in cell.results if r.valid]
    seen: list[tuple[str, int]] = []  # (what, in how many trials)
    for key in SEEN:
        values = [r.counts[key] for r in valid if r.counts.get(key, 0)]
        if values:
            seen.append((f"{span(min(values), max(values))} {key}", len(values)))
    invalid = n - len(valid)
    if invalid:
        seen.append(("invalid", invalid))
    unexplained = Counter(r.verdict for r in valid
                          if r.verdict != Verdict.HOLDS and not any(r.counts.get(k, 0)
                                                                    for k in SEEN))
    seen.extend(unexplained.items())
    if not seen:
        return f"clean in {n} of {n} trials"
    # Neighbours seen in as many trials share one "in m of n trials".
    parts: list[tuple[list[str], int]] = []
    for what, m in seen:
        if parts and parts[-1][1] == m:
            parts[-1][0].append(what)
        else:
            parts.append(([what], m))
    text = ", ".join(f"{', '.join(whats)} in {m} of {n} trials" for whats, m in parts)
    worst = cell.verdict
    if worst == Verdict.HOLDS:
        return f"{text} (allowed)"
    if worst not in unexplained:  # said already when nothing counted explains it
        text = f"{text}: {worst}"
    return f"{emphasis}{text}{emphasis}" if worst == Verdict.VIOLATED else text
