"""The broker-version report: cells side by side across passes, and what counts as a change."""

from __future__ import annotations

from collections.abc import Mapping

from harness import versionsreport as vr
from harness.result import Provenance
from tests.unit.build import run_report, scenario_result

KILL = {"scenario": "celery-redis.acks-late-prefetch-1.broker-sigkill",
        "fault": "broker-sigkill"}


def _pass(name: str, *scenarios: Mapping[str, object], valid: bool = True) -> vr.Pass:
    report = run_report(*(scenario_result(**s) for s in scenarios), valid=valid)
    report.provenance = Provenance(brokers=name + "-brokers")
    return vr.Pass(name, report, f"runs/x/{name}")


def test_a_verdict_that_differs_between_passes_is_a_change() -> None:
    passes = [_pass("bookworm", {**KILL, "counts": {"lost": 6}, "verdict": "VIOLATED"}),
              _pass("trixie", KILL)]
    (row,) = vr.rows(passes)
    assert row.verdict_changed
    assert row.change(["bookworm", "trixie"]) == (
        "verdict changed (bookworm: 6 lost: VIOLATED; trixie: clean)")


def test_some_against_none_is_a_change_but_one_trial_of_7_against_8_is_not() -> None:
    near = [_pass("a", {**KILL, "counts": {"duplicated": 7}}),
            _pass("b", {**KILL, "counts": {"duplicated": 8}})]
    assert vr.rows(near)[0].change(["a", "b"]) == ""
    appeared = [_pass("a", KILL), _pass("b", {**KILL, "counts": {"duplicated": 5}})]
    assert vr.rows(appeared)[0].counts_changed == ["duplicated"]
    assert vr.rows(appeared)[0].change(["a", "b"]).startswith("duplicated changed")


def test_with_trials_ranges_that_do_not_overlap_are_a_change() -> None:
    def trials(name: str, *lost: int) -> vr.Pass:
        return _pass(name, *({**KILL, "counts": {"lost": n}, "trial": k}
                             for k, n in enumerate(lost, 1)))

    assert vr.rows([trials("a", 2, 3), trials("b", 3, 4)])[0].counts_changed == []
    assert vr.rows([trials("a", 2, 3), trials("b", 5, 6)])[0].counts_changed == ["lost"]


def test_render_shows_passes_changes_and_cells_not_run() -> None:
    passes = [_pass("bookworm", {}, {**KILL, "counts": {"lost": 6}, "verdict": "VIOLATED"}),
              _pass("valkey", {})]
    text = vr.render(passes, date="d", seed=7, command="queue-chaos versions --seed 7")
    assert "| bookworm | redis-7.0 + rabbitmq-3.10 |" in text
    assert "## What changes between versions" in text
    assert "One trial per pass" in text
    assert "| acks-late-prefetch-1 | broker-sigkill | at-least-once | **6 lost: VIOLATED** | " \
           "not run |" in text


def test_an_invalid_pass_says_so_with_its_self_proof() -> None:
    bad = _pass("trixie", {}, valid=False)
    bad.report.self_proof = ["the control lost 1"]
    text = vr.render([bad], date="d", seed=7, command="c")
    assert "**INVALID**" in text and "- the control lost 1" in text


def test_json_keeps_every_scenario_and_the_summary_reads_the_changes() -> None:
    passes = [_pass("bookworm", {**KILL, "counts": {"lost": 6}, "verdict": "VIOLATED"}),
              _pass("trixie", KILL)]
    document = vr.as_json(passes, date="d", seed=7, command="c")
    assert [len(p["scenarios"]) for p in document["passes"]] == [1, 1]
    assert document["rows"][0]["cells"]["bookworm"]["ranges"]["lost"] == [6, 6]
    assert vr.summary(document) == [
        "`acks-late-prefetch-1` under `broker-sigkill`: verdict changed (bookworm: 6 lost: "
        "VIOLATED; trixie: clean)"]


def test_a_run_that_extends_another_adds_only_what_that_one_lacks() -> None:
    dramatiq = {"scenario": "dramatiq-redis.dramatiq-redis.none", "backend": "dramatiq-redis",
                "configuration": "dramatiq-redis"}
    earlier = _pass("trixie", {})
    later = _pass("trixie", {}, dramatiq, valid=False)
    both = vr.joined(earlier, later)
    assert [r.scenario for r in both.report.scenarios] == [
        "celery-redis.acks-late-prefetch-1.none", "dramatiq-redis.dramatiq-redis.none"]
    assert both.report.measurement_valid is False
    assert both.run == "runs/x/trixie, runs/x/trixie"
