"""harness/shard.py and matrix.shard_cases: a run split the same way everywhere, merged back."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import matrix
from harness.shard import Shard, ShardError, durations, merge, split
from tests.unit.build import run_report, scenario_result


@pytest.mark.parametrize("text", ["", "1", "0/2", "3/2", "a/b", "1/65", "1/2/3", "-1/2"])
def test_a_shard_that_cannot_be_is_refused_naming_the_form(text: str) -> None:
    with pytest.raises(ShardError, match=r"expected K/N with 1 <= K <= N <= 64"):
        Shard.parse(text)


def test_a_shard_reads_and_prints_as_k_of_n() -> None:
    assert Shard.parse("2/4") == Shard(2, 4)
    assert str(Shard(2, 4)) == "2/4"


def test_split_keeps_a_configuration_on_one_shard_and_balances_the_weight() -> None:
    cases = [("a", "none"), ("a", "kill"), ("a", "stop"), ("b", "none"), ("b", "kill"),
             ("c", "none"), ("d", "none")]
    parts = split(cases, 2, lambda case: 1.0)
    assert sorted(c for part in parts for c in part) == sorted(cases)  # each case once
    for config in "abcd":
        assert sum(any(c == config for c, _ in part) for part in parts) == 1
    assert sorted(len(part) for part in parts) == [3, 4]
    for part in parts:  # each part in the order the run had
        assert part == [c for c in cases if c in part]


def test_with_fewer_configurations_than_shards_the_split_is_by_case() -> None:
    cases = [("team", "none"), ("team", "kill"), ("team", "stop")]
    parts = split(cases, 3, lambda case: 1.0)
    assert [len(part) for part in parts] == [1, 1, 1]


def test_split_is_a_function_of_its_input_alone() -> None:
    cases = matrix.cases(list(matrix.BACKENDS), None, None)
    weight = lambda case: 14.0 + len(case[1])  # noqa: E731
    assert split(cases, 4, weight) == split(list(cases), 4, weight)


def test_shards_of_the_default_matrix_cover_it_and_each_proves_itself() -> None:
    settings = matrix.Settings()
    cases = matrix.cases(list(matrix.BACKENDS), None, None)
    shards = [matrix.shard_cases(cases, k, 4, settings) for k in range(1, 5)]
    assert set().union(*map(set, shards)) == set(cases)
    for part in shards:
        assert any(matrix.must_lose(c, f) for c, f in part)
        assert {(c, "none") for c, _ in part} <= set(part)
    assert sum(map(len, shards)) - len(cases) <= 4 * 2  # at most a proof pair added per shard


def test_merge_keeps_one_copy_of_each_scenario_in_shard_order() -> None:
    first = run_report(scenario_result(scenario="x.none", verdict="holds"),
                       scenario_result(scenario="x.kill", verdict="VIOLATED"), seed=5)
    second = run_report(scenario_result(scenario="x.none", verdict="VIOLATED"),
                        scenario_result(scenario="y.none", verdict="holds"), seed=5)
    merged = merge([first, second])
    assert [(r.scenario, r.verdict) for r in merged] == [
        ("x.none", "holds"), ("x.kill", "VIOLATED"), ("y.none", "holds")]


def test_merge_keeps_one_copy_of_each_trial_of_a_scenario() -> None:
    first = run_report(scenario_result(scenario="x.kill", trial=1),
                       scenario_result(scenario="x.kill", trial=2, verdict="VIOLATED"), seed=5)
    second = run_report(scenario_result(scenario="x.kill", trial=2), seed=5)
    assert [(r.trial, r.verdict) for r in merge([first, second])] == [
        (1, "holds"), (2, "VIOLATED")]


def test_shards_of_different_seeds_are_not_one_run() -> None:
    with pytest.raises(ShardError, match="different seeds"):
        merge([run_report(seed=1), run_report(seed=2)])
    with pytest.raises(ShardError, match="at least one"):
        merge([])


def test_durations_of_an_earlier_report_weigh_the_split(tmp_path: Path) -> None:
    from harness import report
    from tests.unit.test_report import good_run

    results = good_run()
    results[0].phase_s = {"drain": 30.0, "services_up": 5.0}
    report.write(results, tmp_path, run_id="r", date="d", seed=1, replay="x")
    assert durations(tmp_path / "durability.json")[results[0].scenario] == 35.0
    assert durations(tmp_path / "missing.json") == {}
    cases = [("acks-early-prefetch-1", "none"), ("acks-late-prefetch-1", "none"),
             ("acks-late-prefetch-1", "sigkill-worker")]
    heavy = {"celery-redis.acks-early-prefetch-1.none": 100.0}
    light = matrix.shard_cases(cases, 1, 2, matrix.Settings(), heavy)
    assert ("acks-late-prefetch-1", "sigkill-worker") not in light  # the heavy one stands alone
