"""harness/trials.py: cells over trials, their worst verdict, outcomes, ranges and words."""

from __future__ import annotations

import doctest
from typing import Any

import pytest

from harness import trials
from harness.result import ScenarioResult
from harness.trials import Cell, cell_words, cells, changed, numbered, outcome_words
from tests.unit.build import scenario_result


def trial(n: int, scenario: str = "celery-redis.acks-late-prefetch-1.sigkill-worker",
          **fields: Any) -> ScenarioResult:
    return scenario_result(scenario=scenario, fault="sigkill-worker", trial=n, **fields)


def cell(*results: ScenarioResult) -> Cell:
    [only] = cells(results)
    return only


def test_the_docstring_examples_hold() -> None:
    """The wording is documented by example in the module; those examples are run here."""
    failed, tried = doctest.testmod(trials)
    assert tried >= 9 and failed == 0


def test_cells_group_by_scenario_in_first_seen_order() -> None:
    results = [trial(1, "x"), trial(1, "y"), trial(2, "x"), trial(2, "y"), trial(1, "z")]
    found = cells(results)
    assert [c.scenario for c in found] == ["x", "y", "z"]
    assert [r.trial for r in found[0].results] == [1, 2]
    first = found[0]
    assert (first.backend, first.configuration, first.fault, first.claim) == (
        "celery-redis", "acks-late-prefetch-1", "sigkill-worker", "at-least-once")


@pytest.mark.parametrize(("verdicts", "worst"), [
    (["holds", "holds"], "holds"),
    (["holds", "inconclusive", "holds"], "inconclusive"),
    (["inconclusive", "VIOLATED", "holds"], "VIOLATED"),
    (["VIOLATED", "INVALID", "inconclusive"], "INVALID"),
    (["INVALID", "maybe"], "maybe"),  # a verdict nobody knows is never better than a known one
])
def test_a_cell_is_as_bad_as_its_worst_trial(verdicts: list[str], worst: str) -> None:
    assert cell(*(trial(k, verdict=v) for k, v in enumerate(verdicts, 1))).verdict == worst


def test_an_invalid_trial_counts_as_invalid() -> None:
    found = cell(trial(1, verdict="VIOLATED"), trial(2, valid=False, verdict="holds"))
    assert found.verdict == "INVALID"
    assert found.verdicts == ["VIOLATED", "INVALID"]
    assert found.worst.trial == 2


def test_the_first_trial_with_the_worst_verdict_decides() -> None:
    found = cell(trial(1), trial(2, verdict="VIOLATED"), trial(3, verdict="VIOLATED"))
    assert found.worst.trial == 2


def test_outcomes_say_how_often_each_happened() -> None:
    found = cell(trial(1), trial(2, counts={"lost": 1}, verdict="VIOLATED"), trial(3),
                 trial(4, counts={"lost": 2, "duplicated": 1}, verdict="VIOLATED"),
                 trial(5, valid=False), trial(6, verdict="INVALID"))
    assert found.outcomes == {"clean": 2, "lost": 1, "lost, duplicated": 1, "invalid": 1,
                              "INVALID": 1}


def test_ranges_are_min_max_over_every_trial() -> None:
    found = cell(trial(1, counts={"lost": 0, "redelivered": 3}), trial(2, counts={"lost": 2}))
    assert found.ranges["lost"] == (0, 2)
    assert found.ranges["redelivered"] == (0, 3)
    assert found.ranges["stuck"] == (0, 0)
    assert set(found.ranges) == set(trials.RANGE_KEYS)


def test_changed_lists_the_cells_whose_trials_disagree() -> None:
    steady = [trial(1, "a"), trial(2, "a")]
    flips = [trial(1, "b"), trial(2, "b", verdict="VIOLATED", counts={"lost": 1})]
    assert [c.scenario for c in changed(cells([*steady, *flips]))] == ["b"]


@pytest.mark.parametrize(("results", "words"), [
    ([trial(1)], "clean"),
    ([trial(1, counts={"lost": 2})], "2 lost (allowed)"),
    ([trial(1, counts={"lost": 7}, verdict="VIOLATED")], "**7 lost: VIOLATED**"),
    ([trial(1, valid=False)], "invalid"),
    ([trial(1), trial(2)], "clean in 2 of 2 trials"),
    ([trial(1, counts={"lost": 1}, verdict="VIOLATED"), trial(2, counts={"lost": 2},
      verdict="VIOLATED"), trial(3, counts={"lost": 1}, verdict="VIOLATED"), trial(4),
      trial(5)], "**1-2 lost in 3 of 5 trials: VIOLATED**"),
    ([trial(1, counts={"lost": 2}), trial(2, counts={"lost": 2}), trial(3)],
     "2 lost in 2 of 3 trials (allowed)"),
    ([trial(1, counts={"lost": 1, "duplicated": 3}), trial(2, counts={"duplicated": 1},
      verdict="VIOLATED")], "**1 lost in 1 of 2 trials, 1-3 duplicated in 2 of 2 trials: "
     "VIOLATED**"),
    ([trial(1), trial(2, verdict="VIOLATED")], "**VIOLATED in 1 of 2 trials**"),
    ([trial(1, counts={"stuck": 2}, verdict="inconclusive"), trial(2),
      trial(3, valid=False)], "2 stuck, invalid in 1 of 3 trials: INVALID"),
])
def test_cell_words_say_how_often_how_much_and_the_worst_verdict(
    results: list[ScenarioResult], words: str,
) -> None:
    assert cell_words(cell(*results)) == words


def test_one_trial_says_exactly_what_outcome_words_says() -> None:
    for r in (trial(1), trial(1, counts={"lost": 3}, verdict="VIOLATED"),
              trial(1, counts={"stuck": 1}, verdict="inconclusive"), trial(1, valid=False)):
        assert cell_words(cell(r), emphasis="") == outcome_words(r, emphasis="")


def test_numbered_runs_follow_each_other_as_trials() -> None:
    one = [trial(1, "a"), trial(1, "b")]
    two = [trial(1, "a"), trial(2, "a")]
    joined = numbered([one, two, one])
    assert [(r.scenario, r.trial) for r in joined] == [
        ("a", 1), ("b", 1), ("a", 2), ("a", 3), ("a", 4), ("b", 4)]
    assert one[0].trial == 1  # copies: the runs given keep their numbers
    assert trials.count(joined) == 4 and trials.count([]) == 1


def test_a_result_key_names_its_trial() -> None:
    assert trial(1, "s").key == "s"
    assert trial(3, "s").key == "s~trial-3"


@pytest.mark.parametrize("text", ["0", "21", "x", "", "-1", "2.5"])
def test_a_count_of_trials_that_cannot_be_is_refused_naming_the_valid_ones(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected a count 1\.\.20"):
        trials.parse_count(text)


def test_trial_seeds_and_run_ids() -> None:
    assert trials.parse_count("20") == 20
    assert [trials.trial_seed(42, k) for k in (1, 2, 3)] == [42, 43, 44]
    assert trials.trial_run_id("r", 1, 1) == "r"  # one trial: the run as before trials
    assert [trials.trial_run_id("r", k, 2) for k in (1, 2)] == ["r-t1", "r-t2"]
