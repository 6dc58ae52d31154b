"""Progress of a long run: which scenario, how many are left, and about how long they will take.

A full matrix runs for half an hour, so the plugin prints one line before each scenario and one
after it (harness/plugin.py), and ``parallel.run_worlds`` adds one line across the worlds. This
module is the pure part: counting, the estimate, the lines' text, and reading them back. No
clock (callers pass the time), no terminal.

The lines, a stable form that ``parallel.py`` (and anyone grepping a CI log) parses::

    [12/112] arq.arq-max-tries-5.sigkill-worker (eta 6m40s)
    [12/112] arq.arq-max-tries-5.sigkill-worker: clean; 2 re-executed in 14.2s (eta 6m20s)

``[I/N] SCENARIO`` at the start of the line, then ``:`` and what it ended in once it finished;
``(eta ...)`` last, the time the run still needs, left out while nothing can be estimated.

A run of several trials (``--trials N``) is N whole runs one after another, each its own pytest
session (or worlds of them) with its own ``[I/N]`` lines; the command adds a line before and
after each trial, whose estimate covers the trials left (``trial_line``)::

    trial 2/3, seed 43 (eta 12m40s)
    trial 2/3, seed 43: exit 0 in 6m20s (eta 6m20s)

The estimate: each scenario left is expected to take what it took in the committed report
(``shard.durations``, the same numbers shards are weighed by), scaled by how this run compares
so far (observed over expected, over the finished scenarios the report has). A scenario the
report lacks (a new configuration, a team's target) is expected to take the mean of this run's
finished scenarios, or, before any has finished, the mean of the report's. (The split's own
guess for such a case, 14 s plus the fault's window, is a closure inside
``matrix.shard_cases``; rather than copy it here, the estimate uses what this run measures,
which is closer anyway once one scenario has finished.)

Plain lines everywhere, not ``rich``, by decision: the main job is pytest with ``-s``, so the
scenarios' own prints and the harness's logging reach the same terminal between our lines, and a
live region redrawn under them would tear them or be torn; a world's output is a pipe read line
by line by its parent, and N worlds interleave there; CI logs want lines. One plain form is
readable, greppable and parseable in all of them, flushed as it is written, and costs no
dependency. On a terminal the finished line is coloured by its verdict through pytest's own
terminal writer, which turns colour off by itself for pipes, ``NO_COLOR`` and ``TERM=dumb``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import fmean

from harness.result import ScenarioResult
from harness.trials import outcome_words

# Shown after "N lost" when not zero: what else a reader of a long run wants to see at once.
SHOWN = (("re_executed", "re-executed"), ("late", "late"))  # besides lost, duplicated, stuck

LINE = re.compile(r"\[(?P<index>\d+)/(?P<total>\d+)\] (?P<scenario>[^\s:]+)(?P<finished>:)?"
                  r".*?(?: \(eta (?P<eta>(?:\d+h)?(?:\d+m)?(?:\d+s)?)\))?\s*$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
ETA = re.compile(r"(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?")


def format_eta(seconds: float) -> str:
    """``45s``, ``6m40s``, ``1h05m``: past a minute to 10 s, past an hour to the minute, since
    an estimate is not more precise than that and a steadier number is easier to read."""
    if round(seconds) < 60:
        return f"{round(seconds)}s"
    if seconds < 3600:
        minutes, rest = divmod(round(seconds / 10) * 10, 60)
        return f"{minutes}m{rest:02d}s" if minutes < 60 else "1h00m"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours}h{minutes:02d}m"


def parse_eta(text: str) -> float | None:
    """The seconds ``format_eta`` wrote (None when ``text`` is not of its form)."""
    match = ETA.fullmatch(text)
    if not text or match is None:
        return None
    return sum(int(match[unit] or 0) * scale for unit, scale in (("h", 3600), ("m", 60),
                                                                  ("s", 1)))


def eta_s(remaining: Iterable[str], finished: Sequence[tuple[str, float]],
          expected: Mapping[str, float]) -> float | None:
    """Seconds the ``remaining`` scenarios should take, from their ``expected`` seconds scaled by
    this run's pace; None when there is nothing to go on (no report, nothing finished)."""
    known = [(expected[s], seconds) for s, seconds in finished if expected.get(s)]
    pace = sum(seconds for _, seconds in known) / sum(e for e, _ in known) if known else 1.0
    if finished:
        unknown: float | None = fmean(seconds for _, seconds in finished)
    else:
        unknown = fmean(expected.values()) if expected else None
    total = 0.0
    for scenario in remaining:
        if expected.get(scenario):
            total += expected[scenario] * pace
        elif unknown is None:
            return None
        else:
            total += unknown
    return total


def verdict_text(result: ScenarioResult) -> str:
    """What a scenario ended in, in a few words: as the report's summary says it (what
    happened, then what it means for the claim), and what else happened to its tasks."""
    if not result.valid:
        return f"invalid ({result.validity})"
    counts = result.counts
    also = [f"{counts[key]} {label}" for key, label in SHOWN if counts.get(key)]
    return outcome_words(result, emphasis="") + (f"; {', '.join(also)}" if also else "")


def _eta_part(seconds: float | None) -> str:
    return "" if seconds is None else f" (eta {format_eta(seconds)})"


def trial_line(trial: int, trials: int, seed: int, done_s: Sequence[float],
               ended: str | None = None) -> str:
    """The line before trial ``trial`` of ``trials`` (``ended`` None) or after it (``ended``:
    what it ended in, its seconds the last of ``done_s``). The estimate is the trials not yet
    finished at the mean pace of those that did (``done_s``: each finished trial's seconds),
    left out before any finished and after the last: a trial is a whole run, so the scenario
    lines' own estimate says how long the first one takes."""
    left = trials - len(done_s)
    eta = fmean(done_s) * left if done_s and left > 0 else None
    said = "" if ended is None else f": {ended} in {format_eta(done_s[-1])}"
    return f"trial {trial}/{trials}, seed {seed}{said}{_eta_part(eta)}"


@dataclass
class Progress:
    """One session's scenarios (ids in run order) and what each took so far."""

    planned: list[str]
    expected: Mapping[str, float]
    started: int = 0
    finished: list[tuple[str, float]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.planned)

    def remaining(self) -> list[str]:
        """The planned scenarios not finished yet (by count, so the order pytest runs them in
        does not matter)."""
        return list((Counter(self.planned) - Counter(s for s, _ in self.finished)).elements())

    def start(self, scenario: str) -> str:
        """The line before ``scenario`` runs; the estimate counts it among those left."""
        self.started += 1
        eta = eta_s(self.remaining(), self.finished, self.expected)
        return f"[{self.started}/{self.total}] {scenario}{_eta_part(eta)}"

    def finish(self, scenario: str, outcome: str, seconds: float) -> str:
        """The line after ``scenario`` ran for ``seconds`` and ended in ``outcome``."""
        self.finished.append((scenario, seconds))
        eta = eta_s(self.remaining(), self.finished, self.expected)
        return (f"[{len(self.finished)}/{self.total}] {scenario}: {outcome} in {seconds:.1f}s"
                f"{_eta_part(eta)}")


@dataclass(frozen=True)
class Tick:
    """A progress line read back."""

    index: int
    total: int
    scenario: str
    finished: bool
    eta_s: float | None

    @property
    def done(self) -> int:
        """Scenarios finished when the line was written (a start line's own is not yet)."""
        return self.index if self.finished else self.index - 1


def parse(line: str) -> Tick | None:
    """A progress line (as written, colour or not) read back; None for any other line."""
    match = LINE.match(ANSI.sub("", line).strip())
    if match is None:
        return None
    return Tick(int(match["index"]), int(match["total"]), match["scenario"],
                match["finished"] is not None, parse_eta(match["eta"] or ""))


@dataclass
class Overall:
    """Progress across ``worlds`` worlds side by side, from the lines each prints: the run ends
    when its slowest world does, so its estimate is the largest of theirs, each counted down
    from when it was written."""

    worlds: int
    seen: dict[int, tuple[Tick, float]] = field(default_factory=dict)

    def update(self, world: int, line: str, now: float) -> str | None:
        """Read one line of ``world``'s output at time ``now``; the overall line when it says a
        scenario finished, None otherwise."""
        tick = parse(line)
        if tick is None:
            return None
        self.seen[world] = (tick, now)
        return self.line(now) if tick.finished else None

    def line(self, now: float) -> str:
        done = sum(tick.done for tick, _ in self.seen.values())
        total = (str(sum(tick.total for tick, _ in self.seen.values()))
                 if len(self.seen) == self.worlds else "?")
        return f"[all worlds] {done}/{total} scenarios done{_eta_part(self.eta_s(now))}"

    def eta_s(self, now: float) -> float | None:
        """None until every world has said how far it is and how long it still needs."""
        if len(self.seen) < self.worlds:
            return None
        left = [0.0]
        for tick, at in self.seen.values():
            if tick.done >= tick.total:
                continue
            if tick.eta_s is None:
                return None
            left.append(max(0.0, tick.eta_s - (now - at)))
        return max(left)
