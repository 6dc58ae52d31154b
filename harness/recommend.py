"""What to choose: per backend, the configuration a team should run, read from the run's cells.

Pure: cells (``harness.trials``: a configuration under a fault, over every trial, judged by the
worst trial) in, choices out. The rule is written here once and printed with the report, so a
reader can check it:

1. A configuration is a candidate when every cell it ran held its claim (no VIOLATED, no
   inconclusive, no invalid run) and it met at least one fault (a control alone proves nothing).
2. Candidates rank by the strength of their claim (effectively-once, then at-least-once, then
   at-most-once), then by how many faults they met (more evidence), then by how few tasks they
   lost or ran twice (what the claim allows still costs), then by throughput without faults.
3. A fault the chosen configuration did not meet, but others of its backend did, is not left
   silent: the report says which of them held there and how their settings differ, so the
   reader sees e.g. that broker faults need Redis persistence on top of acks late.

A backend whose best candidate only claims at-most-once (FastAPI's BackgroundTasks) gets that
said plainly: it keeps its claim by losing work, and no setting of it avoids that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.backends import REGISTRY
from harness.checker import Guarantee, Verdict
from harness.faults import FAULTS
from harness.result import ScenarioResult
from harness.trials import Cell, cell_words

STRENGTH = {Guarantee.AT_MOST_ONCE.value: 1, Guarantee.AT_LEAST_ONCE.value: 2,
            Guarantee.EFFECTIVELY_ONCE.value: 3}
NOT_TRIED = "not tried"

RULE = ("A configuration is recommended when every fault it met left its claim intact (no "
        "VIOLATED, inconclusive or invalid cell), ranked by the strength of its claim, then by "
        "how many faults it met, then by how few tasks it lost or ran twice, then by its "
        "throughput without faults.")


@dataclass
class Choice:
    """One backend's recommendation, in the words and numbers the report prints."""

    backend: str
    title: str
    configuration: str | None  # None: no configuration kept its claim under every fault it met
    claim: str = ""
    summary: str = ""  # the configuration's settings, as its workers reported them
    held: list[str] = field(default_factory=list)  # the faults it met and held under
    risks: list[str] = field(default_factory=list)  # what its claim still lets happen
    gaps: list[str] = field(default_factory=list)  # faults it did not meet that decide
    also: list[str] = field(default_factory=list)  # faults it did not meet, every other held
    recovery: str = ""  # its slowest recovery, in production time where a clock governed it
    cost: str = ""  # its throughput and latency without faults, against its backend's fastest
    weak: bool = False  # the best it offers is at-most-once: it keeps its claim by losing work


@dataclass(frozen=True)
class Row:
    """A row of the comparison across backends: a configuration and its cell words per
    fault, in the catalogue's order."""

    backend: str
    label: str  # "recommended" or "as shipped"
    configuration: str
    claim: str
    cells: list[str]


def _by_configuration(cells: Iterable[Cell]) -> dict[str, list[Cell]]:
    grouped: dict[str, list[Cell]] = {}
    for cell in cells:
        grouped.setdefault(cell.configuration, []).append(cell)
    return grouped


def _kept(cells: Sequence[Cell]) -> bool:
    return all(c.verdict == Verdict.HOLDS.value for c in cells)


def _met(cells: Sequence[Cell]) -> list[str]:
    return [c.fault for c in cells if c.fault != "none"]


def _worst(cell: Cell, key: str) -> int:
    """The most any trial of the cell counted."""
    return cell.ranges[key][1]


def _harm(cells: Sequence[Cell]) -> int:
    return sum(_worst(c, "lost") + _worst(c, "duplicated") for c in cells)


def changed_from(knobs: Mapping[str, Any], base: Mapping[str, Any]) -> str:
    """How ``knobs`` differ from ``base``, in the knobs' own names (``redis_appendonly=yes``)."""
    return ", ".join(f"{k}={_text(v)}" for k, v in knobs.items() if base.get(k) != v)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _first(cells: Sequence[Cell]) -> ScenarioResult:
    return cells[0].results[0]


def choose(cells: Iterable[Cell], *,
           throughput: Mapping[str, float] | None = None,
           risk_of: Callable[[Cell], str | None] | None = None,
           recovery_of: Callable[[Cell], str | None] | None = None,
           cost_of: Callable[[str], str | None] | None = None) -> list[Choice]:
    """The choice per backend, in the order the backends ran.

    ``throughput``: tasks/s without faults by configuration (the last tie-break);
    ``risk_of``: a cell's remaining risk beyond its counts (e.g. delay against the control);
    ``recovery_of``: a cell's recovery in production terms; ``cost_of``: a configuration's cost
    in words. Each is optional: what the run did not measure is simply not said.
    """
    cells = list(cells)
    throughput = throughput or {}
    choices = []
    for backend in dict.fromkeys(c.backend for c in cells):
        mine = _by_configuration(c for c in cells if c.backend == backend)
        title = REGISTRY[backend].title if backend in REGISTRY else backend
        candidates = [name for name, own in mine.items() if _kept(own) and _met(own)]
        if not candidates:
            choices.append(Choice(backend, title, None))
            continue
        best = max(candidates, key=lambda n: (
            STRENGTH.get(mine[n][0].claim, 0), len(_met(mine[n])), -_harm(mine[n]),
            throughput.get(n, 0.0)))
        own = mine[best]
        choice = Choice(backend, title, best, own[0].claim, _first(own).configuration_summary,
                        held=_met(own), weak=STRENGTH.get(own[0].claim, 0) <= 1)
        choice.risks = [risk for c in own for risk in _risks(c, risk_of)]
        choice.gaps, choice.also = _gaps(best, mine)
        slowest = max(own, key=lambda c: max((r.recovery_s or 0.0) for r in c.results))
        if recovery_of is not None and any(r.recovery_s for r in slowest.results):
            choice.recovery = recovery_of(slowest) or ""
        if cost_of is not None:
            choice.cost = cost_of(best) or ""
        choices.append(choice)
    return choices


def _risks(cell: Cell, risk_of: Callable[[Cell], str | None] | None) -> list[str]:
    """What the claim let happen in this cell (allowed loss or duplicates), then the caller's
    own (delay against the control)."""
    risks = []
    if _worst(cell, "lost") or _worst(cell, "duplicated"):
        risks.append(f"{cell.fault}: {cell_words(cell, emphasis='')}")
    said = risk_of(cell) if risk_of is not None else None
    if said:
        risks.append(f"{cell.fault}: {said}")
    return risks


def _gaps(best: str, mine: Mapping[str, list[Cell]]) -> tuple[list[str], list[str]]:
    """The faults the chosen configuration did not meet but others of its backend did. Where
    some held and some broke, the fault decides between settings: which broke, and which held
    with which settings changed from the first that broke (what made the difference). Where
    none held it is an open risk, said as such. Where all held, only the fault's name
    (``also``): nothing to choose there."""
    own = {c.fault for c in mine[best]}
    gaps, also = [], []
    for fault in FAULTS:
        there = [c for cells in mine.values() for c in cells if c.fault == fault]
        if fault in own or not there:
            continue
        held = [c for c in there if c.verdict == Verdict.HOLDS.value]
        broke = [c for c in there if c.verdict != Verdict.HOLDS.value]
        if not broke:
            also.append(fault)
            continue
        broken = "; ".join(f"{c.configuration} ({cell_words(c, emphasis='')})" for c in broke)
        if not held:
            gaps.append(f"{fault}: broken for every configuration tried: {broken}")
            continue
        knobs = _first(broke).knobs
        gaps.append(f"{fault}: broken for {broken}; held with " + " and with ".join(
            f"{changed_from(_first([c]).knobs, knobs) or 'the same settings'} "
            f"({c.configuration}: {cell_words(c, emphasis='')})" for c in held))
    return gaps, also


def shipped(backend: str, cells: Iterable[Cell]) -> str | None:
    """The configuration whose knobs are the library's own defaults (what a team gets by
    changing nothing), if the run had one."""
    if backend not in REGISTRY:
        return None
    defaults = asdict(REGISTRY[backend].knobs_class())
    for cell in cells:
        if cell.backend == backend and _first([cell]).knobs == defaults:
            return cell.configuration
    return None


def comparison(cells: Iterable[Cell], choices: Sequence[Choice]) -> tuple[list[str], list[Row]]:
    """One table across backends: each backend's recommended configuration and, where the run
    had it, the one as shipped; the faults in the catalogue's order (the same columns for every
    backend), "not tried" where a configuration did not meet a fault."""
    cells = list(cells)
    wanted: list[tuple[str, str, str]] = []
    for choice in choices:
        if choice.configuration:
            wanted.append((choice.backend, "recommended", choice.configuration))
        default = shipped(choice.backend, cells)
        if default and default != choice.configuration:
            wanted.append((choice.backend, "as shipped", default))
    index = {(c.configuration, c.fault): c for c in cells}
    faults = [f for f in FAULTS if any((name, f) in index for _, _, name in wanted)]
    rows = []
    for backend, label, name in wanted:
        claim = next(c.claim for c in cells if c.configuration == name)
        rows.append(Row(backend, label, name, claim,
                        [cell_words(index[(name, f)]) if (name, f) in index else NOT_TRIED
                         for f in faults]))
    return faults, rows
