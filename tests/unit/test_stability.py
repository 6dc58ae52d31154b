"""harness/stability.py: verdicts that change between runs are flagged; counts show their spread."""

from __future__ import annotations

from harness.result import RunReport
from harness.stability import aggregate, render
from tests.unit.build import run_report, scenario_result


def _run(seed: int, verdict: str, lost: int, valid: bool = True) -> RunReport:
    counts = {"lost": lost, "duplicated": 0, "re_executed": 0, "redelivered": 1, "stuck": 0,
              "late": 2}
    return run_report(
        scenario_result(scenario="a", verdict="holds", counts=counts, recovery_s=1.5),
        scenario_result(scenario="b", verdict=verdict, valid=valid, counts=counts),
        seed=seed)


def test_stable_verdicts_and_spread() -> None:
    spreads = aggregate([_run(1, "holds", 2), _run(2, "holds", 3)])
    assert all(s.stable for s in spreads)
    assert spreads[0].counts["lost"] == [2, 3]
    text = render([_run(1, "holds", 2), _run(2, "holds", 3)])
    assert "0 verdicts changed" in text
    assert "| 2–3 |" in text
    assert "seeds 1, 2" in text


def test_changed_verdict_is_flagged() -> None:
    runs = [_run(1, "holds", 0), _run(2, "VIOLATED", 1)]
    spreads = {s.scenario: s for s in aggregate(runs)}
    assert spreads["a"].stable and not spreads["b"].stable
    text = render(runs)
    assert "1 verdict changed" in text
    assert "**changed**: holds, VIOLATED" in text


def test_an_invalid_run_counts_as_a_change() -> None:
    runs = [_run(1, "holds", 0), _run(2, "holds", 0, valid=False)]
    assert not {s.scenario: s for s in aggregate(runs)}["b"].stable


def test_runs_of_different_matrices_say_where_a_scenario_is_missing() -> None:
    shorter = _run(2, "holds", 0)
    shorter.scenarios = shorter.scenarios[:1]
    text = render([_run(1, "holds", 0), shorter])
    assert "2 scenarios, 1 of them in every run" in text
    assert "| b | holds (1 of 2 runs) |" in text
    assert "2 scenarios each" in render([_run(1, "holds", 0), _run(2, "holds", 0)])
