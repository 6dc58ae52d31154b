"""The durability report: markdown a team reads, JSON a CI job gates on.

Pure rendering from scenario results (which hold the checker's counts), plus the self-proof: a run
is only a measurement if its no-fault controls show no loss and no duplicate, and a configuration
known to lose work under a kill (Celery acks early + SIGKILL) shows loss.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

from harness.backends import REGISTRY
from harness.explain import explain
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
    results = list(results)
    lines: list[str] = []
    ok = True
    controls = [r for r in results if r.fault == "none"]
    lossy = [r for r in results if r.must_lose]
    if not controls:
        ok = False
        lines.append("no no-fault control ran: the run cannot show it measures without bias")
    for r in controls:
        clean = r.counts["lost"] == 0 and r.counts["duplicated"] == 0 and r.counts["stuck"] == 0
        ok &= clean
        lines.append(
            f"control {r.configuration}: {r.counts['lost']} lost, {r.counts['duplicated']} "
            f"duplicated, {r.counts['stuck']} stuck — {'as required' if clean else 'NOT ZERO'}"
        )
    if not lossy:
        ok = False
        lines.append("no scenario known to lose work ran (such as Celery acks early + SIGKILL): "
                     "the run cannot show it sees loss")
    for r in lossy:
        seen = r.counts["lost"] > 0
        ok &= seen
        lines.append(
            f"known to lose, {r.configuration} under {r.fault}: {r.counts['lost']} lost — "
            f"{'loss seen, as required' if seen else 'NO LOSS SEEN'}"
        )
    invalid = [r for r in results if not r.valid]
    for r in invalid:
        ok = False
        lines.append(f"scenario {r.scenario} is invalid: {r.validity}")
    return Proof(ok, lines)


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
    ("late", "late"),
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
    return lines


def render(results: list[ScenarioResult], *, run_id: str, date: str, seed: int,
           replay: str, timings: dict[str, float] | None = None,
           proof: Proof | None = None, provenance: Provenance | None = None,
           pictures: Mapping[str, str] | None = None) -> str:
    """The markdown. ``pictures``: the PNGs to embed (``timeline.report_pictures``), by
    scenario id, "" for the summary figure."""
    proof = self_proof(results) if proof is None else proof
    pictures = pictures or {}
    lines = [
        "# Durability report",
        "",
        f"Run `{run_id}`, {date}, seed **{seed}**. Replay: `{replay}`",
        "",
        "Every number below is counted by the checker from the run's ledger (one record per "
        "submission and per started/completed execution, written outside every fault's reach). "
        f"The ledgers and per-scenario `result.json` files are under `runs/{run_id}/`.",
        "",
        "## Is this a measurement?",
        "",
        _proof_line(proof, results),
        "",
        *measured_with_lines(results, provenance),
        "",
        "## Summary",
        "",
        "Each cell: what happened to the tasks of that configuration under that fault (lost, "
        "duplicated, stuck: still in the broker at the deadline; clean: none of these), then "
        "what that means for the guarantee it claims: allowed by it, **VIOLATED**, or "
        "inconclusive (stuck tasks: neither kept nor broken yet).",
        *(["", f"![Loss and duplication per configuration and fault]({pictures['']})"]
          if "" in pictures else []),
    ]
    for backend in dict.fromkeys(r.backend for r in results):
        lines += ["", *_summary(backend, [r for r in results if r.backend == backend])]
    for backend in dict.fromkeys(r.backend for r in results):
        chosen = [r for r in results if r.backend == backend]
        lines += ["", f"## {_title(backend)}", ""]
        settings = _common_settings(chosen)
        lines.append(
            f"{settings['tasks']} tasks per scenario at {settings['submit_rate']}/s, each "
            f"{settings['task_min_s']}-{settings['task_max_s']}s long; faults fire once "
            f"{settings['fault_after_started']} executions have started and the target has tasks "
            f"in flight, and heal {settings['fault_window_s']}s later "
            f"({settings['stop_window_s']}s for SIGSTOP); late = completed over "
            f"{settings['late_after_s']}s after healing; drain deadline {settings['drain_s']}s."
            + _note(backend, settings)
        )
        for fault in dict.fromkeys(r.fault for r in chosen):
            rows = [r for r in chosen if r.fault == fault]
            lines += ["", f"### Fault: {fault}", "", rows[0].fault_description + ".", ""]
            header = ["configuration", "claims", *[c[1] for c in COLUMNS], "recovery", "verdict"]
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            for r in rows:
                cells = [r.configuration, r.guarantee, *[_cell(r.counts, k) for k, _ in COLUMNS],
                         _recovery(r.recovery_s), _verdict(r)]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
            for r in rows:
                notes = explain(r)
                target = f" (target {r.fault_target}, {len(r.in_flight_at_fault)} in flight)" \
                    if r.fault_target else ""
                if notes:
                    lines.append(f"- **{r.configuration}**{target}: " + " ".join(notes))
            lines += _timelines([r for r in rows if r.scenario in pictures], pictures)
    lines += ["", "## Configurations", "",
              "Each configuration's settings as its running workers reported them (read from the "
              "app inside the worker, not from a file), and the claim they imply.", ""]
    for r in {r.configuration: r for r in results}.values():
        lines.append(f"- `{r.configuration}`: {r.configuration_summary}; claims {r.guarantee}.")
        if r.effective:
            shown = ", ".join(f"{k}={v}" for k, v in sorted(r.effective.items()))
            lines.append(f"  - effective: {shown}")
    lines += ["", "## Self-proof in detail", "",
              "The no-fault controls must show no loss and no duplicate, and a configuration "
              "known to lose work under a fault (Celery acks early + SIGKILL) must show loss.", "",
              *[f"- {line}" for line in proof.lines]]
    if timings:
        lines += ["", "## Timings", "", "<details><summary>Seconds per phase of the run and "
                  "per scenario</summary>", ""]
        lines += [f"- {k}: {v:.1f}s" for k, v in timings.items()]
        lines += ["", "</details>"]
    lines.append("")
    return "\n".join(lines)


def _timelines(rows: list[ScenarioResult], pictures: Mapping[str, str]) -> list[str]:
    """The fault's timelines, folded: a lane per worker process, a bar per execution, the fault
    window shaded, lost and duplicated tasks marked (docs/timeline.md)."""
    if not rows:
        return []
    lines = ["", "<details><summary>Timelines: "
             + ", ".join(r.configuration for r in rows) + "</summary>", ""]
    for r in rows:
        lines += [f"![{r.scenario}]({pictures[r.scenario]})", ""]
    return [*lines, "</details>"]


def _recovery(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds}s" if seconds >= 0 else f"{-seconds}s before heal"


def _summary(backend: str, results: list[ScenarioResult]) -> list[str]:
    faults = list(dict.fromkeys(r.fault for r in results))
    lines = [f"**{_title(backend)}**", "",
             "| configuration | claims | " + " | ".join(faults) + " |",
             "|---|---|" + "---|" * len(faults)]
    for configuration in dict.fromkeys(r.configuration for r in results):
        cells = {r.fault: outcome_words(r) for r in results if r.configuration == configuration}
        claims = next(r.guarantee for r in results if r.configuration == configuration)
        lines.append(f"| {configuration} | {claims} | "
                     + " | ".join(cells.get(f, "·") for f in faults) + " |")
    return lines


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


def outcome_words(r: ScenarioResult, emphasis: str = "**") -> str:
    """A scenario's outcome in words nobody misreads: what happened, then what it means for the
    claim (a loss the claim allows is never shown as "holds" alone). The summary's cells and
    the progress lines (``emphasis`` "") both say it this way."""
    if not r.valid:
        return "invalid"
    seen = ", ".join(f"{r.counts.get(k, 0)} {k}" for k in ("lost", "duplicated", "stuck")
                     if r.counts.get(k, 0))
    if r.verdict == "VIOLATED":
        text = f"{seen}: VIOLATED" if seen else "VIOLATED"
        return f"{emphasis}{text}{emphasis}"
    if r.verdict != "holds":
        return f"{seen}: {r.verdict}" if seen else r.verdict
    return f"{seen} (allowed)" if seen else "clean"


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
    markdown.write_text(render(results, timings=timings, proof=proof, provenance=provenance,
                               pictures=drawn, **meta))  # type: ignore[arg-type]
    (directory / f"{name}.json").write_text(json.dumps({
        "schema": SCHEMA,
        "measurement_valid": proof.valid,
        "self_proof": proof.lines,
        "violations": [r.scenario for r in results if r.violated],
        **{k: v for k, v in meta.items() if isinstance(v, str | int | float)},
        "provenance": {**asdict(provenance), "backends": measured_with(results)},
        "timings": {k: round(v, 2) for k, v in (timings or {}).items()},
        "scenarios": [r.as_dict() for r in results],
    }, indent=2, sort_keys=True) + "\n")
    return markdown, proof
