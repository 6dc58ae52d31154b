"""The CI gate: read a durability report and fail when the chosen configurations break what they
claim, when the run could not prove it measures, or when the report cannot vouch for them.

    python -m harness gate --report reports/durability.json --configs rabbit-acks-late-quorum
    python -m harness gate --configs acks-late-prefetch-1          # exit 1: VIOLATED
    python -m harness gate --configs acks-late-vt-120              # exit 1: inconclusive
    python -m harness gate --configs acks-late-vt-120 --allow inconclusive
    python -m harness gate --configs rabbit-acks-late-quorum --junit reports/gate.xml

Against the committed ``reports/durability.json``, the first, fourth and fifth pass; the second
fails because Redis without persistence loses acknowledged work when the broker is killed
(``broker-sigkill``, ``broker-restart``), and the third because two tasks were still held by the
broker at the drain deadline. tests/unit/test_gate.py runs these lines as written.

A chosen scenario passes only when it is valid and its verdict is ``holds``; in a report of
several trials (``run --trials N``) a scenario is a cell (harness/trials.py) and every trial
must pass: its verdict is its worst trial's, and it is one check (one JUnit testcase per
configuration x fault, not per trial) whose message names the trials that decided it.
``inconclusive``
(tasks still stuck at the deadline, so the claim was neither kept nor broken) fails too, unless
the user accepts it with ``--allow inconclusive``; VIOLATED and INVALID can never be accepted.
The run's self-proof is held whatever is chosen: without it no number in the report is a
measurement. And what was chosen must have run: a built-in configuration or fault that is not in
the report (a shard that died, a run with other ``--configs``) fails the gate, since a report
cannot vouch for what it never measured; a name that is neither in the report nor built in is a
typo, refused before anything is gated.

The exit codes (``EXIT_CODES`` below) end this docstring and the `gate --help` epilog alike.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from xml.etree import ElementTree

from harness.result import ReportError, RunReport, ScenarioResult, Verdict
from harness.trials import Cell, cells, count, outcome_words, verdict_of

EXIT_PASS, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2
# The `gate --help` epilog, and the end of the module docstring: written once, shown in both.
EXIT_CODES = """exit codes:
  0  pass: every chosen scenario holds (or is inconclusive and allowed), self-proof valid
  1  gate failed: a chosen scenario is VIOLATED, INVALID or inconclusive (not allowed), the
     run's self-proof failed, or a chosen configuration or fault never ran
  2  bad input: the report is missing or not a durability report, a configuration or fault
     name is unknown, an option is wrong, or the JUnit file cannot be written (no JUnit
     XML is written for bad input)
"""
__doc__ = f"{__doc__}\n{EXIT_CODES}"

# Verdicts a user may accept. Only inconclusive: VIOLATED is a broken claim and INVALID a broken
# instrument, and a gate that could be told to accept either would prove nothing.
ALLOWABLE: tuple[str, ...] = (Verdict.INCONCLUSIVE.value,)

RUN = "queue-chaos"  # the JUnit classname of checks about the run as a whole, not one scenario
SUITE = "queue-chaos gate"


class GateInputError(ValueError):
    """A name on the command line that is neither in the report nor built in: a typo."""


class Outcome(StrEnum):
    """A check's result, in JUnit's words: a failure is a broken claim, an error a measurement
    that cannot be trusted, skipped an undecided verdict the user accepted."""

    PASSED = "passed"
    FAILURE = "failure"
    ERROR = "error"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    """One thing the gate holds: a chosen scenario, or something of the run as a whole."""

    classname: str  # backend.configuration, or RUN
    name: str  # the fault, or what of the run is checked
    outcome: Outcome = Outcome.PASSED
    kind: str = ""  # the JUnit type: the verdict, "invalid", "self-proof", "never ran"
    message: str = ""  # one line: why it failed (or was allowed)
    detail: str = ""  # the element's text: what to read or run next
    time: float = 0.0

    @property
    def fails(self) -> bool:
        return self.outcome in (Outcome.FAILURE, Outcome.ERROR)

    @property
    def reason(self) -> str:
        """The line printed for it: the scenario (or run check) and why."""
        return f"{self.subject}: {self.message}"

    @property
    def subject(self) -> str:
        return self.name if self.classname == RUN else f"{self.classname}.{self.name}"


def chosen(report: RunReport, configs: Collection[str] | None,
           faults: Collection[str] | None) -> list[ScenarioResult]:
    """The scenarios a selection names, in report order; no selection chooses every one."""
    return [s for s in report.scenarios
            if (not configs or s.configuration in configs) and (not faults or s.fault in faults)]


def checks(report: RunReport, configs: Collection[str] | None = None,
           faults: Collection[str] | None = None, allow: Iterable[str] = ()) -> list[Check]:
    """Everything the gate holds, in a fixed order: the self-proof, what never ran, then each
    chosen scenario (a cell of all its trials) in report order (so the same report gives the
    same checks)."""
    scenarios = chosen(report, configs, faults)
    allowed = frozenset(allow)
    return [self_proof(report), *never_ran(report, scenarios, configs, faults),
            *(cell_check(c, allowed) for c in cells(scenarios))]


def gate(report: RunReport, configs: Collection[str] | None = None,
         faults: Collection[str] | None = None, allow: Iterable[str] = ()
         ) -> tuple[bool, list[str]]:
    """(passes, reasons): one reason per failing check."""
    reasons = [c.reason for c in checks(report, configs, faults, allow) if c.fails]
    return not reasons, reasons


def self_proof(report: RunReport) -> Check:
    """The run's own proof that it measures: a report without it holds no measurement at all,
    so it is an error of every gate on that report, whatever is chosen."""
    if report.measurement_valid:
        return Check(RUN, "self-proof")
    failed = [line for line in report.self_proof if "as required" not in line]
    return Check(RUN, "self-proof", Outcome.ERROR, "self-proof",
                 "the run's self-proof failed: its numbers are not a measurement",
                 "\n".join(failed or report.self_proof or ["the report has no self-proof"]))


def never_ran(report: RunReport, scenarios: list[ScenarioResult],
              configs: Collection[str] | None, faults: Collection[str] | None) -> list[Check]:
    """A failure for each part of the selection the report has no scenario of: a gate that
    passed on nothing would pass a run that measured nothing. With configurations and faults both
    named, every pair must have run (as `run` runs every named pair); a configuration missing
    altogether is one failure, not one per fault."""
    backend = {s.configuration: s.backend for s in report.scenarios}
    ran = {(s.configuration, s.fault) for s in scenarios}
    missing = ("is not in the report: it never ran (a shard that died, or a run of other "
               "configurations or faults)")
    found: list[Check] = []
    if not scenarios and not configs and not faults:
        found.append(Check(RUN, "scenarios", Outcome.FAILURE, "never ran",
                           "the report has no scenarios: nothing was measured"))
    for config in dict.fromkeys(configs or ()):  # each name once, in the order given
        if config not in backend:
            found.append(Check(RUN, f"configuration {config}", Outcome.FAILURE, "never ran",
                               f"configuration {config} {missing}"))
        for fault in dict.fromkeys(faults or ()):
            if config in backend and (config, fault) not in ran:
                found.append(Check(f"{backend[config]}.{config}", fault, Outcome.FAILURE,
                                   "never ran", f"{config} under {fault} {missing}"))
    if not configs:
        present = {s.fault for s in scenarios}
        found.extend(Check(RUN, f"fault {fault}", Outcome.FAILURE, "never ran",
                           f"fault {fault} {missing}")
                     for fault in dict.fromkeys(faults or ()) if fault not in present)
    return found


def cell_check(cell: Cell, allow: frozenset[str]) -> Check:
    """One chosen scenario over all its trials as a check, named where CI shows it:
    backend.configuration, fault. Its worst trial decides (``Cell.worst``); with several
    trials the message says in which trials of how many that verdict came, and the detail
    lists every trial with its seed, what it ended in and the command that replays it."""
    s = cell.worst
    decided = [r.trial for r in cell.results if verdict_of(r) == verdict_of(s)]
    outcome, kind, message = judge(s, allow, _which(decided, cell.trials))
    if outcome == Outcome.PASSED:
        detail = ""
    elif cell.trials == 1:
        counts = ", ".join(f"{name} {n}" for name, n in sorted(s.counts.items()) if n)
        replay = f"\nreplay: {s.replay}" if s.replay else ""
        detail = f"{s.scenario}: {s.guarantee} claimed; {counts or 'no counts'}{replay}"
    else:
        detail = "\n".join([f"{s.scenario}: {s.guarantee} claimed; {cell.trials} trials"] + [
            f"trial {r.trial} (seed {r.seed}): {outcome_words(r, emphasis='')}"
            + (f"; replay: {r.replay}" if r.replay else "") for r in cell.results])
    seconds = sum(sum(r.phase_s.values()) for r in cell.results)
    return Check(f"{s.backend}.{s.configuration}", s.fault, outcome, kind, message, detail,
                 round(seconds, 3))


def _which(trials: list[int], of: int) -> str:
    """Where in the message a verdict of several trials says which: " in trial 2 of 3",
    " in trials 1, 3 of 3"; nothing for a report of one trial."""
    if of <= 1:
        return ""
    return f" in trial{'s' if len(trials) > 1 else ''} {', '.join(map(str, trials))} of {of}"


def judge(s: ScenarioResult, allow: frozenset[str], where: str = ""
          ) -> tuple[Outcome, str, str]:
    """(outcome, kind, message) of one scenario: only a valid ``holds`` passes, an allowed
    inconclusive is skipped, and a verdict this gate does not know is an error, never a pass.
    ``where`` follows the verdict's word (which trials, ``_which``)."""
    if not s.valid:
        return Outcome.ERROR, "invalid", f"invalid{where} ({s.validity})"
    if s.verdict == Verdict.HOLDS:
        return Outcome.PASSED, "", ""
    if s.verdict == Verdict.INCONCLUSIVE and s.verdict in allow:
        return (Outcome.SKIPPED, s.verdict,
                f"{s.verdict}{where}, allowed by --allow {s.verdict}: {s.reason}")
    if s.verdict == Verdict.INCONCLUSIVE:
        return (Outcome.FAILURE, s.verdict,
                f"{s.verdict}{where}: {s.reason} (accept with --allow {s.verdict})")
    if s.verdict == Verdict.VIOLATED:
        return Outcome.FAILURE, s.verdict, f"{s.verdict}{where}: {s.reason}"
    if s.verdict == Verdict.INVALID:
        return Outcome.ERROR, s.verdict, f"{s.verdict}{where}: {s.reason}"
    return (Outcome.ERROR, "unknown verdict",
            f"verdict {s.verdict!r}{where} is not one this gate knows: {s.reason}")


def check_names(report: RunReport, configs: Collection[str] | None,
                faults: Collection[str] | None) -> None:
    """Refuse a typo before gating: a name must be in the report or built in. A built-in name
    the report lacks is let through, and fails the gate as never run."""
    from harness.matrix import CONFIGURATIONS, fault_names  # the registry, for built-in names

    _known("configuration", configs, [s.configuration for s in report.scenarios],
           CONFIGURATIONS)
    _known("fault", faults, [s.fault for s in report.scenarios], fault_names())


def _known(kind: str, names: Collection[str] | None, in_report: list[str],
           built_in: Collection[str]) -> None:
    valid = list(dict.fromkeys(in_report))
    unknown = [n for n in names or () if n not in valid and n not in built_in]
    if not unknown:
        return
    hints = [f"{n!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(
        n, [*valid, *built_in], n=1)) else repr(n) for n in unknown]
    raise GateInputError(f"unknown {kind}{'s' if len(unknown) > 1 else ''} {', '.join(hints)}; "
                         f"the report's {kind}s: {', '.join(valid) or 'none'}")


def junit(found: list[Check], properties: dict[str, str]) -> ElementTree.Element:
    """JUnit XML as GitHub, GitLab and Jenkins read it: <testsuites> around one <testsuite>,
    one <testcase> per check. No timestamp or host, so the same report gives the same bytes."""
    totals = {"tests": str(len(found)),
              "failures": str(sum(c.outcome == Outcome.FAILURE for c in found)),
              "errors": str(sum(c.outcome == Outcome.ERROR for c in found)),
              "skipped": str(sum(c.outcome == Outcome.SKIPPED for c in found)),
              "time": f"{sum(c.time for c in found):.3f}"}
    root = ElementTree.Element("testsuites", {"name": SUITE, **totals})
    suite = ElementTree.SubElement(root, "testsuite", {"name": SUITE, **totals})
    props = ElementTree.SubElement(suite, "properties")
    for name, value in properties.items():
        ElementTree.SubElement(props, "property", {"name": name, "value": value})
    for check in found:
        case = ElementTree.SubElement(suite, "testcase", {
            "classname": check.classname, "name": check.name, "time": f"{check.time:.3f}"})
        if check.outcome != Outcome.PASSED:
            attributes = {"message": check.message}
            if check.outcome != Outcome.SKIPPED:
                attributes["type"] = check.kind
            element = ElementTree.SubElement(case, check.outcome.value, attributes)
            element.text = check.detail or None
    ElementTree.indent(root)
    return root


def write_junit(path: Path, root: ElementTree.Element) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ElementTree.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def gate_file(path: Path, configs: list[str] | None, faults: list[str] | None,
              allow: Iterable[str] = (), junit_path: Path | None = None) -> int:
    """The ``gate`` command: bad input is one ``error:`` line and exit 2, before any gating."""
    allowed = sorted(set(allow))
    try:
        report = RunReport.load(path)
        check_names(report, configs, faults)
    except (ReportError, GateInputError) as exc:
        print(f"error: {exc}")
        return EXIT_BAD_INPUT
    found = checks(report, configs, faults, allowed)
    if junit_path is not None:
        try:
            write_junit(junit_path, junit(found, {
                "report": str(path), "run_id": report.run_id,
                "seed": "" if report.seed is None else str(report.seed),
                "configs": ",".join(configs or []), "faults": ",".join(faults or []),
                "allow": ",".join(allowed),
                **({"trials": str(trials)} if (trials := count(report.scenarios)) > 1 else {})}))
        except OSError as exc:
            print(f"error: cannot write JUnit XML to {junit_path}: {exc.strerror or exc}")
            return EXIT_BAD_INPUT
    return _summary(found)


def _summary(found: list[Check]) -> int:
    for check in found:
        if check.fails:
            print(f"FAIL {check.reason}")
        elif check.outcome == Outcome.SKIPPED:
            print(f"ALLOW {check.reason}")
    failing = sum(c.fails for c in found)
    allowed = sum(c.outcome == Outcome.SKIPPED for c in found)
    if failing:
        print(f"gate: fail ({failing} reasons)")
        return EXIT_FAIL
    print(f"gate: pass ({allowed} allowed)" if allowed else "gate: pass")
    return EXIT_PASS
