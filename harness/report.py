"""The durability report: markdown a team reads, JSON a CI job gates on.

Pure rendering from scenario results (which hold the checker's counts), plus the self-proof: a run
is only a measurement if its no-fault controls show no loss and no duplicate, and a configuration
known to lose work under a kill (Celery acks early + SIGKILL) shows loss.

The markdown's layout is a template (harness/templates/durability.md.j2): what comes first is
decided there, what each sentence says is decided here and in the pure modules it calls
(recommend, trials, latency, production, cost). The JSON is not templated: it is the schema's
dict serialized (a text template could emit invalid JSON on one stray comma), and carries the
same decisions (``recommendations``, ``comparison``) a machine needs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import jinja2

from harness import cost, latency, production, recommend, reproductions, trials, versionsreport
from harness.backends import REGISTRY
from harness.explain import explain
from harness.faults import FAULTS
from harness.result import SCHEMA, Provenance, ScenarioResult, measured_with

# Distributions whose names say less than the projects' own (redis is the client, beside
# redis-server; amqp is py-amqp).
LIBRARY_NAMES = {"redis": "redis-py", "amqp": "py-amqp"}
SHORT_ID = 12  # hex digits of an image id, as `docker images` shows them


@dataclass
class Proof:
    valid: bool
    lines: list[str]


def _common_settings(results: list[ScenarioResult]) -> dict[str, Any]:
    """The settings most of a backend's scenarios ran with (a configuration may override some of
    them, e.g. its own visibility timeout, and says so in its summary)."""
    texts = [json.dumps(r.settings, sort_keys=True) for r in results]
    return cast(dict[str, Any], json.loads(max(texts, key=texts.count)))

def self_proof(results: Iterable[ScenarioResult]) -> Proof:
    """Every control clean, every case known to lose work losing it; a line per cell (with
    trials, one line for all of a cell's trials: each must pass, the counts as ranges)."""
    results = list(results)
    lines: list[str] = []
    ok = True
    cells = trials.cells(results)
    controls = [c for c in cells if c.fault == "none"]
    lossy = [c for c in cells if any(r.must_lose for r in c.results)]
    if not controls:
        ok = False
        lines.append("no no-fault control ran: the run cannot show it measures without bias")
    for c in controls:
        clean = all(r.counts["lost"] == 0 and r.counts["duplicated"] == 0
                    and r.counts["stuck"] == 0 for r in c.results)
        ok &= clean
        lines.append(
            f"control {c.configuration}{_of_trials(c)}: {_counted(c, 'lost')} lost, "
            f"{_counted(c, 'duplicated')} duplicated, {_counted(c, 'stuck')} stuck — "
            f"{'as required' if clean else 'NOT ZERO'}"
        )
    if not lossy:
        ok = False
        lines.append("no scenario known to lose work ran (such as Celery acks early + SIGKILL): "
                     "the run cannot show it sees loss")
    for c in lossy:
        seen = all(r.counts["lost"] > 0 for r in c.results if r.must_lose)
        ok &= seen
        lines.append(
            f"known to lose, {c.configuration} under {c.fault}{_of_trials(c)}: "
            f"{_counted(c, 'lost')} lost — {'loss seen, as required' if seen else 'NO LOSS SEEN'}"
        )
    invalid = [r for r in results if not r.valid]
    for r in invalid:
        ok = False
        lines.append(f"scenario {r.key} is invalid: {r.validity}")
    return Proof(ok, lines)


def _of_trials(cell: trials.Cell) -> str:
    return f", {cell.trials} trials" if cell.trials > 1 else ""


def _counted(cell: trials.Cell, key: str) -> str:
    """A count over a cell's trials: the number, or its range ("0-2")."""
    return trials.span(*cell.ranges[key])


def _cell(counts: dict[str, int], key: str) -> str:
    value = counts[key]
    if key == "duplicated" and value:
        return f"{value} (+{counts['extra_executions']})"
    return str(value)


def _title(backend: str) -> str:
    return REGISTRY[backend].title if backend in REGISTRY else backend


def _note(backend: str, settings: dict[str, Any]) -> str:
    note = REGISTRY[backend].note(settings) if backend in REGISTRY else ""
    return f" {note}" if note else ""


COLUMNS = (
    ("submitted", "submitted"),
    ("acknowledged", "acked"),
    ("completed", "completed once"),
    ("lost", "lost"),
    ("duplicated", "duplicated (+extra runs)"),
    ("re_executed", "re-executed"),
    ("redelivered", "redelivered"),
    ("stuck", "stuck"),
)


def _libraries(backend: str, found: dict[str, str]) -> str:
    """The libraries that decide what the backend measures (its ``libraries``), in that
    order; every library found when the backend names none (or is not registered)."""
    key = REGISTRY[backend].libraries if backend in REGISTRY else ()
    shown = [n for n in key if n in found] or sorted(found)
    return ", ".join(f"{LIBRARY_NAMES.get(n, n)} {found[n]}" for n in shown)


def _images(provenance: Provenance) -> str:
    shown = ", ".join(
        f"{i['tag']} ({i['id'].removeprefix('sha256:')[:SHORT_ID] or 'id unknown'})"
        for i in provenance.images)
    return f"images {provenance.image_mode or '?'}" + (f": {shown}" if shown else "")


def measured_with_lines(results: list[ScenarioResult],
                        provenance: Provenance | None = None) -> list[str]:
    """The "Measured with" section: one line per backend (its key libraries; its servers), and
    one for the harness and its images. Compact: every version and full image id is in the
    JSON."""
    lines = ["## Measured with", "",
             "Read from what ran: libraries from each backend's workers (their `worker_ready` "
             "record), servers from the running services (Redis `INFO server`, RabbitMQ "
             "`/api/overview`, Toxiproxy `/version` or its binary's build information). Every "
             "version and full image id is in the JSON.",
             ""]
    for backend, parts in measured_with(results).items():
        libraries = _libraries(backend, parts["libraries"]) or "libraries not reported"
        servers = ", ".join(f"{n} {v}" for n, v in parts["servers"].items())
        lines.append(f"- {backend}: {libraries}" + (f"; {servers}" if servers else ""))
    if provenance is not None and (provenance.harness or provenance.images):
        lines.append(f"- queue-chaos {provenance.harness or '?'}; {_images(provenance)}")
    if provenance is not None and provenance.brokers:
        lines.append(f"- broker releases chosen (`--brokers`): {provenance.brokers}")
    return lines


def ordered_timings(timings: Mapping[str, float]) -> list[tuple[str, float]]:
    """The timings as the report lists them: the whole run's first, then the rest by name. One
    order whether they come from the run itself or from its JSON (written with sorted keys),
    so a report re-rendered from its JSON is the report the run wrote."""
    return sorted(timings.items(), key=lambda kv: (not kv[0].startswith("whole run"), kv[0]))


def reproductions_lines(directory: Path) -> list[str]:
    """The upstream reproductions as this report shows them: the verdicts of the last
    ``queue-chaos reproduce`` beside it (``reproductions.json`` in the same directory), one
    column per pass of broker releases; nothing when there is none. Its numbers and versions
    are in ``reproductions.md``."""
    document = _beside(directory, "reproductions.json")
    if not document or not document.get("reproductions"):
        return []
    return [f"Measured by `{document.get('replay', 'queue-chaos reproduce')}` "
            f"({document.get('date', '?')}; `reproductions.md` has each case's numbers, "
            "configuration and versions): each upstream report recreated and judged from its "
            "counts.", "", *reproductions.verdict_table(document)]


def _beside(directory: Path, name: str) -> dict[str, Any] | None:
    """Another command's JSON report beside this one (``versions.json``,
    ``reproductions.json``), or None when there is none (or it does not parse)."""
    try:
        document = json.loads((directory / name).read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def versions_lines(directory: Path) -> list[str]:
    """The broker-version axis as this report shows it: what ``queue-chaos versions`` last
    measured beside it (``versions.json`` in the same directory), and what changed between
    releases; nothing when there is no such report. The numbers are that report's own runs,
    named there, not this run's."""
    document = _beside(directory, "versions.json")
    if document is None:
        return []
    passes = document.get("passes") or []
    lines = [f"Measured by `{document.get('command', 'queue-chaos versions')}` "
             f"({document.get('date', '?')}; `versions.md`): the same faults on each release."]
    for p in passes:
        servers = ", ".join(f"{k} {v}" for k, v in (p.get("servers") or {}).items())
        proof = "valid" if p.get("valid") else "INVALID"
        lines.append(f"- {p.get('name')}: {servers or p.get('brokers', '?')} "
                     f"({len(p.get('scenarios') or [])} scenarios, self-proof {proof})")
    changes = versionsreport.summary(document)
    lines += ["", "What changed between releases:" if changes
              else "No cell changed verdict or counts between releases.", ""]
    lines += [f"- {line}" for line in changes]
    return lines


FAILOVER_HEADER = ("configuration", "fault", "fault target", "new leader after (s)",
                   "submit outage (s)", "submissions failed", "consume outage (s)",
                   "whole again after heal (s)", "acknowledged before the fault and lost",
                   "acknowledged during the fault and lost", "verdict")


def failover_lines(results: list[ScenarioResult]) -> list[str]:
    """The "Failover" section: a row per result that measured failover (harness/failover.py),
    in the results' order; nothing when none did, so a report without it is unchanged. The lost
    tasks are counted here; their ids are in the JSON."""
    shown = [r for r in results if r.failover]
    if not shown:
        return []
    several = len({r.trial for r in shown}) > 1
    lines = ["## Failover", "",
             "From the ledger, on the clock the fault was fired by: the longest stretch after "
             "the fault in which the producer acknowledged no submission, the submissions "
             "answered after it that were not acknowledged (failed or indeterminate), the "
             "longest stretch in which tasks waited and no worker started any, and the lost "
             "tasks whose submission had been acknowledged before the fault, or while it "
             "lasted (their ids are in the JSON). The cluster's own answers: the node it named "
             "leader of the task queue once the fault was in, and how long after the heal it "
             "said it was whole again (every node running, no partition, one leader its "
             "replicas follow; the longest step of a rolling restart). A dash: nothing to "
             "measure (nothing answered or started after the fault; no new leader named).",
             "",
             f"| {' | '.join(FAILOVER_HEADER)} |",
             f"|{'---|' * len(FAILOVER_HEADER)}"]
    for r in shown:
        f = r.failover
        leader = (f"{f['new_leader']} after {f['elected_s']}" if f.get("new_leader")
                  else "-")
        whole = ("never (bound)" if f.get("unsettled") else _seconds(f.get("settled_s")))
        cells = [_label(r, several), r.fault, r.fault_target or "-", leader,
                 _seconds(f.get("submit_outage_s")), str(f.get("submit_failed", 0)),
                 _seconds(f.get("consume_outage_s")), whole,
                 str(len(f.get("acked_before_lost") or [])),
                 str(len(f.get("acked_during_lost") or [])), _verdict(r)]
        lines.append(f"| {' | '.join(cells)} |")
    return lines


def promise_lines(results: list[ScenarioResult]) -> list[str]:
    """The section holding each broker's documented promise against what was measured, for
    the backends that state one (the cluster profile's); nothing otherwise."""
    lines: list[str] = []
    for name, backend in REGISTRY.items():
        said = backend.promise([r for r in results if r.backend == name])
        if said:
            lines += ["", f"### {backend.title}", "", *said]
    return ["## What each broker promises, and whether it held", *lines] if lines else []


def _seconds(value: Any) -> str:
    return "-" if value is None else f"{value}"


def _environment() -> jinja2.Environment:
    """The templates beside this module (harness/templates/), markdown: nothing escaped, every
    name a template uses must exist (a typo fails the tests, not the reader)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=False, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined)


def render(results: list[ScenarioResult], *, run_id: str, date: str, seed: int,
           replay: str, timings: dict[str, float] | None = None,
           proof: Proof | None = None, provenance: Provenance | None = None,
           pictures: Mapping[str, str] | None = None,
           decisions: Decisions | None = None, versions: Sequence[str] = (),
           reproduced: Sequence[str] = ()) -> str:
    """The markdown, from harness/templates/durability.md.j2. ``pictures``: the PNGs to embed
    (``timeline.report_pictures``), by result key, "" for the summary figure; ``decisions``:
    ``decide(results)``, when the caller has it already."""
    proof = self_proof(results) if proof is None else proof
    pictures = pictures or {}
    decided = decide(results) if decisions is None else decisions
    cells, controls = decided.cells, decided.controls
    backends = list(dict.fromkeys(r.backend for r in results))
    view = {
        "run_id": run_id, "date": date, "seed": seed, "replay": replay,
        "trials": trials.count(results),
        "proof_line": _proof_line(proof, results),
        "rule": recommend.RULE,
        "choices": decided.choices,
        "comparison_faults": decided.faults,
        "comparison_rows": [{**vars(row), "title": _title(row.backend)} for row in decided.rows],
        "measured_with": measured_with_lines(results, provenance),
        "versions": list(versions),
        "reproduced": list(reproduced),
        "summary_picture": pictures.get(""),
        "summaries": [_summary(b, [c for c in cells if c.backend == b]) for b in backends],
        "cost_tables": cost.tables(results),
        "backends": [_section(b, [r for r in results if r.backend == b], controls, pictures)
                     for b in backends],
        "configurations": [
            {"name": r.configuration, "summary": r.configuration_summary, "claim": r.guarantee,
             "effective": ", ".join(f"{k}={v}" for k, v in sorted(r.effective.items()))}
            for r in {r.configuration: r for r in results}.values()],
        "failover": failover_lines(results),
        "promises": promise_lines(results),
        "proof_lines": proof.lines,
        "timings": ordered_timings(timings or {}),
    }
    return _environment().get_template("durability.md.j2").render(view)


@dataclass
class Decisions:
    """What the report decides from a run's results, computed once for the markdown and the
    JSON: the cells (a configuration under a fault over its trials), the no-fault controls each
    scenario is held against, what to choose per backend, and the comparison across backends
    (its faults and rows)."""

    cells: list[trials.Cell]
    controls: latency.Controls
    choices: list[recommend.Choice]
    faults: list[str]
    rows: list[recommend.Row]


def decide(results: list[ScenarioResult]) -> Decisions:
    """What to choose per backend, and the comparison across backends: what the markdown
    shows first and the JSON carries for machines (``recommendations``, ``comparison``)."""
    cells, controls = trials.cells(results), latency.controls(results)
    choices = recommend.choose(
        cells, throughput=cost.throughputs(results),
        risk_of=lambda c: _delay_risk(c, controls),
        recovery_of=_production_recovery, cost_of=lambda name: cost.words(results, name))
    faults, rows = recommend.comparison(cells, choices)
    return Decisions(cells, controls, choices, faults, rows)


def _delay_risk(cell: trials.Cell, controls: latency.Controls) -> str | None:
    """Tasks the fault delayed beyond anything the control saw (the worst trial)."""
    if cell.fault == "none":
        return None
    counts = [n for r in cell.results if (n := latency.delayed(r, controls.of(r)))]
    if not counts:
        return None
    tolerance = cell.results[0].settings.get("late_after_s")
    most = max(counts)
    return (f"{most} {'task' if most == 1 else 'tasks'} delayed (completed over {tolerance}s "
            "later than any task of its no-fault control)")


def _production_recovery(cell: trials.Cell) -> str | None:
    """The cell's slowest recovery, in production terms where a compressed clock governed it."""
    slowest = max(cell.results, key=lambda r: r.recovery_s or 0.0)
    if not slowest.recovery_s or slowest.recovery_s < 0:
        return None
    said = production.production_recovery(slowest)
    return f"{cell.fault}: {said}" if said else \
        f"{cell.fault}: {slowest.recovery_s}s after healing (no compressed clock governed it)"


def _section(backend: str, chosen: list[ScenarioResult],
             controls: latency.Controls,
             pictures: Mapping[str, str]) -> dict[str, Any]:
    """A backend's section: its scenario settings, its compressed clocks, and per fault (in
    the catalogue's order) the counts of every configuration (every trial)."""
    settings = _common_settings(chosen)
    line = (f"{settings['tasks']} tasks per scenario at {settings['submit_rate']}/s, each "
            f"{settings['task_min_s']}-{settings['task_max_s']}s long; faults fire once "
            f"{settings['fault_after_started']} executions have started and the target has "
            f"tasks in flight, and heal {settings['fault_window_s']}s later "
            f"({settings['stop_window_s']}s for SIGSTOP); delayed = completed more than "
            f"{settings['late_after_s']}s later than the slowest task of the configuration's "
            f"no-fault control; drain deadline {settings['drain_s']}s." + _note(backend, settings))
    blocks = []
    for fault in _in_catalogue_order({r.fault for r in chosen}):
        rows = [r for r in chosen if r.fault == fault]
        several = len({r.trial for r in rows}) > 1
        notes = []
        for r in rows:
            said = explain(r)
            target = f" (target {r.fault_target}, {len(r.in_flight_at_fault)} in flight)" \
                if r.fault_target else ""
            if said:
                notes.append(f"**{_label(r, several)}**{target}: " + " ".join(said))
        blocks.append({
            "fault": fault, "description": rows[0].fault_description,
            "header": ["configuration", "claims", *[c[1] for c in COLUMNS], "delayed",
                       "latency p50 / p99 (control)", "recovery", "verdict"],
            "rows": [[_label(r, several), r.guarantee, *[_cell(r.counts, k) for k, _ in COLUMNS],
                      _delayed(r, controls), _latency(r, controls), _recovery(r),
                      _verdict(r)] for r in rows],
            "notes": notes,
            "pictures": [(_label(r, several), pictures[r.key]) for r in rows
                         if r.key in pictures],
        })
    return {"title": _title(backend), "settings_line": line,
            "clocks": production.clock_lines(backend, settings), "faults": blocks}


def _in_catalogue_order(faults: Iterable[str]) -> list[str]:
    """Faults in the catalogue's order (the same for every backend), unknown names last."""
    faults = set(faults)
    return [f for f in FAULTS if f in faults] + sorted(faults - set(FAULTS))


def _label(r: ScenarioResult, several: bool) -> str:
    return f"{r.configuration} (trial {r.trial})" if several else r.configuration


def _delayed(r: ScenarioResult, controls: latency.Controls) -> str:
    n = latency.delayed(r, controls.of(r))
    return "-" if n is None else str(n)


def _latency(r: ScenarioResult, controls: latency.Controls) -> str:
    """Completion latency (submission to first completion), beside its control's."""
    own = latency.percentiles(r.latencies_s)
    if not own:
        return "-"
    text = f"{own['p50']} / {own['p99']}s"
    control = controls.of(r)
    base = latency.percentiles(control.latencies_s) if control and control is not r else {}
    return f"{text} ({base['p50']} / {base['p99']}s)" if base else text


def _recovery(r: ScenarioResult) -> str:
    """Heal to the last redelivered task's completion; in production terms too where a
    compressed clock governed it."""
    seconds = r.recovery_s
    if seconds is None:
        return "-"
    if seconds < 0:
        return f"{-seconds}s before heal"
    return production.production_recovery(r) or f"{seconds}s"


def _summary(backend: str, cells: list[trials.Cell]) -> dict[str, Any]:
    """A backend's summary table: a row per configuration, a column per fault it met, in the
    catalogue's order (the same order for every backend)."""
    faults = [f for f in FAULTS if any(c.fault == f for c in cells)]
    rows = []
    for configuration in dict.fromkeys(c.configuration for c in cells):
        own = {c.fault: trials.cell_words(c) for c in cells if c.configuration == configuration}
        claims = next(c.claim for c in cells if c.configuration == configuration)
        rows.append([configuration, claims, *[own.get(f, "·") for f in faults]])
    return {"title": _title(backend), "faults": faults, "rows": rows}


def _proof_line(proof: Proof, results: list[ScenarioResult]) -> str:
    """The self-proof in one line; its every check is listed further down."""
    controls = sum(1 for r in results if r.fault == "none")
    lossy = sum(1 for r in results if r.must_lose)
    if proof.valid:
        return (f"**VALID**: {controls} no-fault controls lost and duplicated nothing, and "
                f"{lossy} configurations known to lose work under a fault lost it "
                "([every check](#self-proof-in-detail)).")
    failed = [line for line in proof.lines if not line.endswith("as required")]
    return ("**INVALID: do not trust the numbers below**: " + "; ".join(failed)
            + " ([every check](#self-proof-in-detail)).")


def _verdict(r: ScenarioResult) -> str:
    if not r.valid:
        return f"invalid run ({r.validity})"
    return f"**{r.verdict}**" if r.verdict != "holds" else "holds"


def write(results: list[ScenarioResult], directory: Path, *, name: str = "durability",
          timings: dict[str, float] | None = None, proof: Proof | None = None,
          provenance: Provenance | None = None, pictures: bool = False,
          **meta: object) -> tuple[Path, Proof]:
    """Write ``<name>.md`` and ``<name>.json``; the JSON is what a CI gate reads. ``proof``:
    the self-proof when more than these results decide it (a merge of shards); ``provenance``:
    what the run as a whole ran (harness, images). The JSON's provenance also holds each
    backend's versions, gathered from its scenarios."""
    directory.mkdir(parents=True, exist_ok=True)
    markdown = directory / f"{name}.md"
    proof = self_proof(results) if proof is None else proof
    provenance = Provenance() if provenance is None else provenance
    drawn: dict[str, str] = {}
    if pictures:  # matplotlib only when a report people read is written
        from harness.timeline import report_pictures

        drawn = report_pictures(results, directory / f"{name}-pictures",
                                str(meta.get("run_id", "")))
    decided = decide(results)
    markdown.write_text(render(results, timings=timings, proof=proof, provenance=provenance,
                               pictures=drawn, decisions=decided,
                               versions=versions_lines(directory),
                               reproduced=reproductions_lines(directory), **meta))  # type: ignore[arg-type]
    (directory / f"{name}.json").write_text(json.dumps({
        "schema": SCHEMA,
        "measurement_valid": proof.valid,
        "self_proof": proof.lines,
        "violations": [r.scenario for r in results if r.violated],
        "trials": trials.count(results),
        "recommendations": [asdict(c) for c in decided.choices],
        "comparison": {"faults": decided.faults, "rows": [asdict(row) for row in decided.rows]},
        **{k: v for k, v in meta.items() if isinstance(v, str | int | float)},
        "provenance": {**asdict(provenance), "backends": measured_with(results)},
        "timings": {k: round(v, 2) for k, v in (timings or {}).items()},
        "scenarios": [r.as_dict() for r in results],
    }, indent=2, sort_keys=True) + "\n")
    return markdown, proof
