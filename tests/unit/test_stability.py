"""harness/stability.py: compare's table over earlier reports, each report's scenarios further
trials of trials.cells; verdicts that change are flagged, counts show their spread."""

from __future__ import annotations

from harness.result import RunReport
from harness.stability import cells, render
from tests.unit.build import run_report, scenario_result


def _run(seed: int, verdict: str, lost: int, valid: bool = True) -> RunReport:
    counts = {"lost": lost, "duplicated": 0, "re_executed": 0, "redelivered": 1, "stuck": 0,
              "late": 2}
    return run_report(
        scenario_result(scenario="a", verdict="holds", counts=counts, recovery_s=1.5, seed=seed),
        scenario_result(scenario="b", verdict=verdict, valid=valid, counts=counts, seed=seed),
        seed=seed)


def test_stable_verdicts_and_spread() -> None:
    found = cells([_run(1, "holds", 2), _run(2, "holds", 3)])
    assert not any(c.changed for c in found)
    assert found[0].ranges["lost"] == (2, 3)
    assert [r.trial for r in found[0].results] == [1, 2]  # each report one more trial
    text = render([_run(1, "holds", 2), _run(2, "holds", 3)])
    assert "0 verdicts changed" in text
    assert "| 2-3 |" in text
    assert "2 trials from 2 reports of the matrix (seeds 1, 2)" in text


def test_changed_verdict_is_flagged() -> None:
    runs = [_run(1, "holds", 0), _run(2, "VIOLATED", 1)]
    found = {c.scenario: c for c in cells(runs)}
    assert not found["a"].changed and found["b"].changed
    text = render(runs)
    assert "1 verdict changed" in text
    assert "**changed**: holds, VIOLATED" in text


def test_an_invalid_run_counts_as_a_change() -> None:
    runs = [_run(1, "holds", 0), _run(2, "holds", 0, valid=False)]
    assert {c.scenario: c for c in cells(runs)}["b"].changed
    assert "**changed**: holds, INVALID" in render(runs)


def test_runs_of_different_matrices_say_where_a_scenario_is_missing() -> None:
    shorter = _run(2, "holds", 0)
    shorter.scenarios = shorter.scenarios[:1]
    text = render([_run(1, "holds", 0), shorter])
    assert "2 scenarios, 1 of them in every trial" in text
    assert "| b | holds (1 of 2 trials) |" in text
    assert "2 scenarios each" in render([_run(1, "holds", 0), _run(2, "holds", 0)])


def test_a_report_of_several_trials_counts_as_that_many() -> None:
    two = _run(1, "holds", 0)
    two.scenarios += [scenario_result(scenario="a", verdict="holds", trial=2),
                      scenario_result(scenario="b", verdict="VIOLATED", trial=2)]
    found = {c.scenario: c for c in cells([two, _run(3, "holds", 0)])}
    assert [r.trial for r in found["b"].results] == [1, 2, 3]
    text = render([two, _run(3, "holds", 0)])
    assert "3 trials from 2 reports of the matrix (seeds 1, 1, 3)" in text  # each trial's own
    assert found["b"].verdicts == ["holds", "VIOLATED", "holds"]
