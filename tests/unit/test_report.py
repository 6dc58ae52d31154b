"""harness/report.py: the self-proof, the markdown and the JSON a CI job gates on.

The explanations the report quotes are tested in test_explain.py.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.checker import Counts
from harness.faults import FAULTS
from harness.matrix import Settings, configuration, must_lose
from harness.report import (
    COLUMNS,
    Proof,
    failover_lines,
    measured_with_lines,
    render,
    self_proof,
    write,
)
from harness.result import SCHEMA, Provenance, RunReport, ScenarioResult

EARLY = "acks-early-prefetch-1"
EARLY4 = "acks-early-prefetch-4"
LATE = "acks-late-prefetch-1"

DESCRIPTIONS = {name: fault.description for name, fault in FAULTS.items()}


def result(
    config: str = EARLY,
    fault: str = "none",
    *,
    valid: bool = True,
    validity: str = "control run",
    verdict: str = "holds",
    target: str | None = None,
    recovery_s: float | None = None,
    stuck_locations: dict[str, int] | None = None,
    **counts: int,
) -> ScenarioResult:
    conf = configuration(config)
    base: dict[str, int] = {"submitted": 40, "acknowledged": 40}
    return ScenarioResult(
        scenario=f"{conf.backend}.{config}.{fault}",
        backend=conf.backend,
        configuration=config,
        configuration_summary=conf.summary,
        guarantee=conf.guarantee.value,
        fault=fault,
        fault_description=DESCRIPTIONS[fault],
        seed=1234,
        valid=valid,
        validity=validity,
        verdict=verdict,
        reason="",
        counts=Counts(**{**base, **counts}).as_dict(),
        recovery_s=recovery_s,
        stuck_locations=stuck_locations or {},
        fault_target=target,
        in_flight_at_fault=["t1", "t2"] if target else [],
        settings=asdict(Settings()),
        knobs=conf.knobs.as_dict(),
        fault_kind=FAULTS[fault].kind,
        must_lose=must_lose(config, fault),
    )


def good_run() -> list[ScenarioResult]:
    return [
        result(EARLY, "none", completed=40),
        result(LATE, "none", completed=40),
        result(EARLY, "sigkill-worker", validity="fired", target="worker1", completed=37,
               lost=3),
        result(LATE, "sigkill-worker", validity="fired", target="worker2", completed=38,
               duplicated=2, extra_executions=3, re_executed=4, redelivered=5, recovery_s=12.5),
    ]


META: dict[str, Any] = {
    "run_id": "20250101-abcdef",
    "date": "2025-01-01",
    "seed": 1234,
    "replay": "make durability SEED=1234",
}


# -- self-proof -------------------------------------------------------------------------------


def test_proof_valid_when_controls_clean_and_acks_early_kill_loses() -> None:
    proof = self_proof(good_run())
    assert proof.valid, proof.lines
    text = "\n".join(proof.lines)
    assert f"control {EARLY}: 0 lost, 0 duplicated, 0 stuck — as required" in text
    assert f"control {LATE}: 0 lost, 0 duplicated, 0 stuck — as required" in text
    assert f"known to lose, {EARLY} under sigkill-worker: 3 lost — loss seen, as required" in text


def test_proof_accepts_a_generator() -> None:
    assert self_proof(r for r in good_run()).valid


def test_proof_invalid_when_a_control_loses() -> None:
    results = good_run()
    results[1] = result(LATE, "none", completed=39, lost=1)
    proof = self_proof(results)
    assert not proof.valid
    assert f"control {LATE}: 1 lost, 0 duplicated, 0 stuck — NOT ZERO" in proof.lines


def test_proof_invalid_when_a_control_duplicates_or_leaves_stuck() -> None:
    bads: list[dict[str, Any]] = [{"duplicated": 1, "extra_executions": 1}, {"stuck": 2}]
    for bad in bads:
        results = good_run()
        results[0] = result(EARLY, "none", **bad)
        proof = self_proof(results)
        assert not proof.valid, bad
        assert any(line.startswith(f"control {EARLY}:") and "NOT ZERO" in line
                   for line in proof.lines)


def test_proof_invalid_when_acks_early_kill_shows_no_loss() -> None:
    results = good_run()
    results[2] = result(EARLY, "sigkill-worker", validity="fired", target="worker1",
                        completed=40)
    proof = self_proof(results)
    assert not proof.valid
    assert f"known to lose, {EARLY} under sigkill-worker: 0 lost — NO LOSS SEEN" in proof.lines


def test_proof_needs_every_acks_early_kill_to_lose() -> None:
    results = [*good_run(), result(EARLY4, "sigkill-worker", completed=40)]
    assert not self_proof(results).valid


def test_proof_invalid_when_no_acks_early_kill_ran() -> None:
    # An acks-late kill with loss does not prove the instrument sees loss where it must.
    results = [r for r in good_run() if not (r.configuration == EARLY and r.fault != "none")]
    results.append(result(LATE, "cut-worker-broker", lost=5))
    proof = self_proof(results)
    assert not proof.valid
    assert ("no scenario known to lose work ran (such as Celery acks early + SIGKILL): "
            "the run cannot show it sees loss") in proof.lines


def test_proof_invalid_when_a_scenario_is_invalid() -> None:
    results = good_run()
    results[3] = result(LATE, "sigkill-worker", valid=False,
                        validity="the fault fired while its target ran no task", verdict="holds")
    proof = self_proof(results)
    assert not proof.valid
    assert (f"scenario celery-redis.{LATE}.sigkill-worker is invalid: the fault fired while its "
            "target ran no task") in proof.lines


def test_proof_invalid_when_no_control_ran() -> None:
    results = [r for r in good_run() if r.fault != "none"]
    proof = self_proof(results)
    assert not proof.valid
    assert proof.lines[0] == (
        "no no-fault control ran: the run cannot show it measures without bias"
    )


def test_proof_of_nothing_is_invalid() -> None:
    assert self_proof([]) == Proof(False, [
        "no no-fault control ran: the run cannot show it measures without bias",
        "no scenario known to lose work ran (such as Celery acks early + SIGKILL): "
        "the run cannot show it sees loss",
    ])


# -- markdown ---------------------------------------------------------------------------------


def test_render_has_header_seed_replay_and_valid_banner() -> None:
    text = render(good_run(), **META)
    assert text.startswith("# Durability report\n")
    assert "Run `20250101-abcdef`, 2025-01-01, seed **1234**. Replay: `make durability SEED=1234`" \
        in text
    assert "runs/20250101-abcdef/" in text
    assert "**VALID**" in text
    assert "INVALID" not in text


def test_render_summary_is_a_grid_per_backend() -> None:
    results = good_run()
    results[3].verdict = "VIOLATED"
    text = render(results, **META)
    lines = text.splitlines()
    title = lines.index("**Celery on Redis**")
    assert lines.index("## Summary") < title < lines.index("## Celery on Redis")
    header = lines.index("| configuration | claims | none | sigkill-worker |")
    assert header == title + 2
    assert lines[header + 1] == "|---|---|---|---|"
    # one row per configuration, one column per fault, in run order
    assert lines[header + 2: header + 4] == [
        f"| {EARLY} | at-most-once | clean | 3 lost (allowed) |",
        f"| {LATE} | at-least-once | clean | **2 duplicated: VIOLATED** |",
    ]
    assert lines[header + 4] == ""


def test_render_summary_marks_pairs_that_did_not_run() -> None:
    results = [*good_run(), result(LATE, "cut-worker-broker", validity="fired", target="worker1",
                                   completed=40)]
    lines = render(results, **META).splitlines()
    header = lines.index("| configuration | claims | none | sigkill-worker | cut-worker-broker |")
    assert lines[header + 2] == f"| {EARLY} | at-most-once | clean | 3 lost (allowed) | · |"


def test_render_a_section_per_backend_with_its_notes() -> None:
    results = [
        *good_run(),
        result("arq-max-tries-5", "none", completed=40),
        result("fastapi-graceful-10", "none", completed=40),
    ]
    text = render(results, **META)
    lines = text.splitlines()
    sections = [line for line in lines if line.startswith("## ")]
    assert sections == ["## What to choose", "## Backends side by side", "## Measured with",
                        "## Summary",
                        "## Celery on Redis", "## arq on Redis", "## FastAPI BackgroundTasks",
                        "## Configurations", "## Self-proof in detail"]
    for title in ("**Celery on Redis**", "**arq on Redis**", "**FastAPI BackgroundTasks**"):
        assert title in lines
    assert "in-progress key expires (job_timeout plus 10s)" in text
    assert "No broker: the app runs its tasks in its own process after responding." in text
    # the Redis visibility timeout is Celery's note, not arq's or FastAPI's
    at_arq = text.index("\n## arq on Redis\n")
    assert "visibility timeout" not in text[at_arq:text.index("## Configurations")]


def test_render_fault_sections_and_count_tables() -> None:
    text = render(good_run(), **META)
    lines = text.splitlines()
    assert "## Celery on Redis" in lines
    for fault in ("none", "sigkill-worker"):
        at = lines.index(f"### Fault: {fault}")
        assert lines[at + 2] == DESCRIPTIONS[fault] + "."
    header = ["configuration", "claims", *[c[1] for c in COLUMNS], "delayed",
              "latency p50 / p99 (control)", "recovery", "verdict"]
    assert text.count("| " + " | ".join(header) + " |") == 2
    # duplicated shows the extra runs; recovery in seconds (in production terms where a
    # compressed clock governed it); a dash without recovery or latencies
    row = (f"| {LATE} | at-least-once | 40 | 40 | 38 | 0 | 2 (+3) | 4 | 5 | 0 | - | - | 12.5 s "
           "here; about 1 h 0 min in production (visibility timeout 3600 s, not 15 s) | holds |")
    assert row in lines
    assert f"| {EARLY} | at-most-once | 40 | 40 | 37 | 3 | 0 | 0 | 0 | 0 | - | - | - | holds |" \
        in lines
    assert f"- **{EARLY}** (target worker1, 2 in flight): 3 lost:" in text
    assert "40 tasks per scenario at 10.0/s" in text
    assert "Redis visibility timeout 15s, swept every 2s" in text
    assert "(25.0s for SIGSTOP)" in text


def test_recovery_before_the_heal_is_not_a_negative_time() -> None:
    results = good_run()
    results[-1].recovery_s = -3.5
    lines = render(results, **META).splitlines()
    assert any(line.endswith("| 3.5s before heal | holds |") for line in lines)
    assert not any("| -3.5s |" in line for line in lines)


def test_render_lists_each_configuration_once() -> None:
    text = render(good_run(), **META)
    for name in (EARLY, LATE):
        assert text.count(f"- `{name}`: ") == 1
    assert f"- `{LATE}`: {configuration(LATE).summary}; claims at-least-once." in text


def test_render_timings_only_when_given() -> None:
    assert "## Timings" not in render(good_run(), **META)
    text = render(good_run(), **META, timings={"drain": 12.34})
    assert "## Timings" in text
    assert "- drain: 12.3s" in text
    assert text.index("<details><summary>Seconds per phase") < text.index("- drain: 12.3s")


def test_render_invalid_banner_when_proof_fails() -> None:
    results = good_run()
    results[0] = result(EARLY, "none", completed=39, lost=1)
    text = render(results, **META)
    assert "**INVALID: do not trust the numbers below**" in text
    assert "**VALID**" not in text
    assert "- control acks-early-prefetch-1: 1 lost, 0 duplicated, 0 stuck — NOT ZERO" in text


def test_render_marks_invalid_scenarios_in_the_tables() -> None:
    results = good_run()
    results[2] = result(EARLY, "sigkill-worker", valid=False, validity="fired at an idle worker",
                        lost=3)
    text = render(results, **META)
    lines = text.splitlines()
    assert f"| {EARLY} | at-most-once | clean | invalid |" in lines  # the summary grid
    assert f"| {EARLY} | at-most-once | 40 | 40 | 0 | 3 | 0 | 0 | 0 | 0 | - | - | - | " \
           "invalid run (fired at an idle worker) |" in lines  # the fault's table
    assert "INVALID: do not trust" in text


# -- files ------------------------------------------------------------------------------------


def test_write_produces_markdown_and_json(tmp_path: Path) -> None:
    results = good_run()
    results[3].verdict = "VIOLATED"
    results[2].verdict = "INVALID"
    out = tmp_path / "reports" / "nested"
    markdown, proof = write(results, out, name="durability", **META, timings={"x": 1.0})
    assert markdown == out / "durability.md"
    assert markdown.read_text() == render(results, **META, timings={"x": 1.0})
    assert proof == self_proof(results)
    data = json.loads((out / "durability.json").read_text())
    assert data["measurement_valid"] is True
    assert data["self_proof"] == proof.lines
    assert data["violations"] == [results[2].scenario, results[3].scenario]
    assert (data["run_id"], data["seed"], data["replay"]) == (
        META["run_id"], META["seed"], META["replay"])
    assert data["timings"] == {"x": 1.0}  # where the run's time went, for the merge of shards
    assert [ScenarioResult(**s) for s in data["scenarios"]] == results


def test_write_json_says_invalid_when_proof_fails(tmp_path: Path) -> None:
    results = [r for r in good_run() if r.fault != "none"]
    _, proof = write(results, tmp_path, name="r", **META)
    data = json.loads((tmp_path / "r.json").read_text())
    assert proof.valid is False
    assert data["measurement_valid"] is False
    assert data["violations"] == []
    assert "INVALID" in (tmp_path / "r.md").read_text()


def test_the_broker_versions_beside_the_report_are_shown_with_what_changed(
        tmp_path: Path) -> None:
    results = good_run()
    write(results, tmp_path, name="durability", **META)
    assert "## Broker versions" not in (tmp_path / "durability.md").read_text()
    (tmp_path / "versions.json").write_text(json.dumps({
        "command": "queue-chaos versions --seed 7", "date": "d",
        "passes": [{"name": "trixie", "servers": {"redis-server": "8.0.2"}, "valid": True,
                    "scenarios": [{}, {}]}],
        "rows": [{"configuration": "c", "fault": "broker-sigkill", "change": "verdict changed "
                  "(bookworm: clean; trixie: 1 lost: VIOLATED)"},
                 {"configuration": "d", "fault": "none", "change": ""}]}))
    write(results, tmp_path, name="durability", **META)
    text = (tmp_path / "durability.md").read_text()
    assert "## Broker versions" in text
    assert "- trixie: redis-server 8.0.2 (2 scenarios, self-proof valid)" in text
    assert ("- `c` under `broker-sigkill`: verdict changed (bookworm: clean; trixie: 1 lost: "
            "VIOLATED)") in text
    assert "`d` under `none`" not in text


def test_the_reproductions_beside_the_report_are_shown_per_release(tmp_path: Path) -> None:
    results = good_run()
    (tmp_path / "reproductions.json").write_text(json.dumps({
        "date": "d", "replay": "queue-chaos reproduce a --passes bookworm,trixie",
        "reproductions": [
            {"name": "a", "thread": "x/y#1", "release": "bookworm", "verdict": "reproduces",
             "versions": {"celery": "5.7.0", "redis-server": "7.0.15"}},
            {"name": "a", "thread": "x/y#1", "release": "trixie",
             "verdict": "does not reproduce", "versions": {"redis-server": "8.0.2"}}]}))
    write(results, tmp_path, name="durability", **META)
    text = (tmp_path / "durability.md").read_text()
    assert "## Upstream bugs, reproduced" in text
    assert "| reproduction | bookworm (redis-server 7.0.15) | trixie (redis-server 8.0.2) |" in text
    assert "| a (x/y#1) | reproduces | does not reproduce |" in text


def test_a_report_re_rendered_from_its_json_is_the_report_the_run_wrote(tmp_path: Path) -> None:
    results = good_run()
    timings = {"whole run (3 scenarios)": 3.0, "scenario b / none": 1.0, "scenario a / x": 2.0}
    write(results, tmp_path, name="durability", **META, timings=timings)
    first = (tmp_path / "durability.md").read_text()
    run = RunReport.load(tmp_path / "durability.json")
    write(run.scenarios, tmp_path, name="durability", **META, timings=run.timings)
    assert (tmp_path / "durability.md").read_text() == first
    assert first.index("whole run") < first.index("scenario a / x") < first.index("scenario b")


# -- provenance -------------------------------------------------------------------------------

CELERY_IMAGE = {"variable": "CHAOS_CELERY_IMAGE", "tag": "queue-chaos/celery:29d4c1d452406d39",
                "id": "sha256:0123456789abcdef0123"}
PROVENANCE = Provenance("0.1.0", "local", [CELERY_IMAGE])


def measured(results: list[ScenarioResult]) -> list[ScenarioResult]:
    for r in results:
        r.versions = {"celery": "5.7.0", "kombu": "5.7.0", "billiard": "4.3.2", "redis": "8.2.0",
                      "amqp": "5.4.2", "fastapi": "0.165.0", "pydantic": "2.14.4"}
        r.servers = {"redis-server": "7.0.15", "toxiproxy": "2.12.0"}
    return results


def test_measured_with_is_one_compact_line_per_backend_and_one_for_the_harness() -> None:
    lines = measured_with_lines(measured(good_run()), PROVENANCE)
    assert lines[0] == "## Measured with"
    assert lines[-2:] == [
        # Its key libraries (the JSON keeps every one), the client named apart from the server.
        "- celery-redis: celery 5.7.0, kombu 5.7.0, billiard 4.3.2, redis-py 8.2.0; "
        "redis-server 7.0.15, toxiproxy 2.12.0",
        "- queue-chaos 0.1.0; images local: queue-chaos/celery:29d4c1d452406d39 (0123456789ab)",
    ]


def test_measured_with_shows_what_an_older_report_has_and_says_what_it_lacks() -> None:
    results = good_run()
    results[0].versions = {"celery": "5.7.0"}  # no servers read, no provenance
    assert measured_with_lines(results)[-1] == "- celery-redis: celery 5.7.0"
    arq = result("arq-max-tries-5", "none", completed=40)
    assert measured_with_lines([arq])[-1] == "- arq: libraries not reported"


def test_measured_with_is_near_the_top_and_replaces_the_versions_list() -> None:
    text = render(measured(good_run()), **META, provenance=PROVENANCE)
    assert text.index("## Measured with") < text.index("## Summary")
    assert "## Versions measured" not in text and "pydantic" not in text


def test_the_json_holds_the_schema_and_the_runs_provenance(tmp_path: Path) -> None:
    results = measured(good_run())
    results[0].ledger_dir = str(tmp_path / "runs" / "r" / "ledger" / "celery-redis-1")
    write(results, tmp_path, name="r", **META, provenance=PROVENANCE)
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["schema"] == SCHEMA
    assert data["provenance"]["harness"] == "0.1.0"
    assert data["provenance"]["images"] == [CELERY_IMAGE]
    libraries = data["provenance"]["backends"]["celery-redis"]["libraries"]
    assert libraries["pydantic"] == "2.14.4"  # every library reported, not only the key ones
    assert not data["scenarios"][0]["ledger_dir"].startswith("/")  # no absolute path
    loaded = RunReport.load(tmp_path / "r.json")
    assert loaded.provenance == PROVENANCE
    assert loaded.scenarios[0].servers == {"redis-server": "7.0.15", "toxiproxy": "2.12.0"}


def test_the_self_proof_is_one_line_on_top_and_every_check_further_down() -> None:
    text = render(good_run(), **META)
    lines = text.splitlines()
    top = lines[4]  # under the run's line, before anything else
    assert top.startswith("**VALID**: 2 no-fault controls lost and duplicated nothing, and 1 ")
    detail = lines.index("## Self-proof in detail")
    assert detail > lines.index("## Configurations")
    assert all(f"- {line}" in lines[detail:] for line in self_proof(good_run()).lines)
    bad = good_run()
    bad[0].counts["lost"] = 1  # a control that lost a task
    top = render(bad, **META).splitlines()[4]
    assert top.startswith("**INVALID: do not trust the numbers below**: control ")
    assert "NOT ZERO" in top


def test_a_cell_says_what_happened_then_what_it_means_for_the_claim() -> None:
    from harness.trials import outcome_words as _short

    assert _short(result(EARLY, "none", completed=40)) == "clean"
    assert _short(result(EARLY, "sigkill-worker", lost=3)) == "3 lost (allowed)"
    violated = result(LATE, "broker-sigkill", verdict="VIOLATED", lost=7)
    assert _short(violated) == "**7 lost: VIOLATED**"
    stuck = result(LATE, "sigstop-worker", verdict="inconclusive", stuck=2)
    assert _short(stuck) == "2 stuck: inconclusive"
    assert _short(result(LATE, "none", valid=False)) == "invalid"


def test_the_self_proof_says_a_cells_trials_in_one_line_each_of_which_must_pass() -> None:
    from dataclasses import replace

    run = good_run()
    again = [replace(r, trial=2) for r in run]
    again[2] = replace(again[2], counts={**again[2].counts, "lost": 1})
    proof = self_proof([*run, *again])
    assert proof.valid, proof.lines
    assert f"control {EARLY}, 2 trials: 0 lost, 0 duplicated, 0 stuck — as required" \
        in proof.lines
    assert (f"known to lose, {EARLY} under sigkill-worker, 2 trials: 1-3 lost — loss seen, "
            "as required") in proof.lines
    again[2] = replace(again[2], counts={**again[2].counts, "lost": 0})
    failed = self_proof([*run, *again])
    assert not failed.valid
    assert (f"known to lose, {EARLY} under sigkill-worker, 2 trials: 0-3 lost — NO LOSS SEEN"
            in failed.lines)


# -- failover ---------------------------------------------------------------------------------

FAILOVER_HEADER = ("| configuration | fault | fault target | new leader after (s) | submit "
                   "outage (s) | submissions failed | consume outage (s) | whole again after "
                   "heal (s) | acknowledged before the fault and lost | acknowledged during the "
                   "fault and lost | verdict |")


def failed_over() -> list[ScenarioResult]:
    """good_run with failover figures on its two faulted scenarios (harness/failover.py)."""
    run = good_run()
    run[2].failover = {"submit_outage_s": 4.25, "submit_failed": 6, "consume_outage_s": 7.5,
                       "acked_before_lost": ["a.00001", "a.00002"],
                       "acked_during_lost": ["a.00009"], "new_leader": "rabbitmq2",
                       "elected_s": 0.21, "settled_s": 10.5, "unsettled": 0}
    run[3].failover = {"submit_outage_s": None, "submit_failed": 0, "consume_outage_s": 0.3,
                       "acked_before_lost": [], "acked_during_lost": [], "new_leader": None,
                       "elected_s": None, "settled_s": None, "unsettled": 1}
    run[3].verdict = "VIOLATED"
    return run


def test_no_failover_figures_no_failover_section() -> None:
    assert failover_lines(good_run()) == []
    assert "## Failover" not in render(good_run(), **META)


def test_the_failover_section_has_a_row_per_result_that_measured_it_in_order() -> None:
    lines = failover_lines(failed_over())
    assert lines[:2] == ["## Failover", ""]
    header = lines.index(FAILOVER_HEADER)
    assert lines[header + 1] == "|---|---|---|---|---|---|---|---|---|---|---|"
    assert lines[header + 2:] == [
        f"| {EARLY} | sigkill-worker | worker1 | rabbitmq2 after 0.21 | 4.25 | 6 | 7.5 | 10.5 "
        "| 2 | 1 | holds |",
        f"| {LATE} | sigkill-worker | worker2 | - | - | 0 | 0.3 | never (bound) | 0 | 0 "
        "| **VIOLATED** |",
    ]


def test_the_failover_section_names_the_trials_when_there_are_several() -> None:
    from dataclasses import replace

    run = failed_over()
    again = replace(run[2], trial=2, failover={**run[2].failover, "submit_failed": 1})
    rows = [line for line in failover_lines([*run, again]) if line.startswith(f"| {EARLY}")]
    assert rows == [
        f"| {EARLY} (trial 1) | sigkill-worker | worker1 | rabbitmq2 after 0.21 | 4.25 | 6 | 7.5 "
        "| 10.5 | 2 | 1 | holds |",
        f"| {EARLY} (trial 2) | sigkill-worker | worker1 | rabbitmq2 after 0.21 | 4.25 | 1 | 7.5 "
        "| 10.5 | 2 | 1 | holds |",
    ]


def test_the_failover_section_follows_the_backends_and_survives_the_json(tmp_path: Path) -> None:
    results = failed_over()
    text = render(results, **META)
    lines = text.splitlines()
    sections = [line for line in lines if line.startswith("## ")]
    assert sections[-4:] == ["## Celery on Redis", "## Failover", "## Configurations",
                             "## Self-proof in detail"]
    assert "\n\n## Failover\n\n" in text and "|\n\n## Configurations\n" in text
    write(results, tmp_path, name="durability", **META)
    first = (tmp_path / "durability.md").read_text()
    run = RunReport.load(tmp_path / "durability.json")
    assert [r.failover for r in run.scenarios] == [r.failover for r in results]
    write(run.scenarios, tmp_path, name="durability", **META)
    assert (tmp_path / "durability.md").read_text() == first
