"""harness/latency.py: percentiles, the controls, and "delayed" against the control."""

from __future__ import annotations

from typing import Any

import pytest

from harness.latency import controls, delayed, latency_words, percentile, percentiles
from harness.result import ScenarioResult


def result(configuration: str = "c", fault: str = "none", latencies: list[float] | None = None,
           valid: bool = True, **settings: Any) -> ScenarioResult:
    return ScenarioResult(
        scenario=f"b.{configuration}.{fault}", backend="b", configuration=configuration,
        configuration_summary="", guarantee="at-least-once", fault=fault, fault_description="",
        seed=1, valid=valid, validity="", verdict="holds", reason="", counts={},
        recovery_s=None, stuck_locations={}, settings={"late_after_s": 5.0, **settings},
        latencies_s=sorted(latencies or []))


def test_percentiles_are_nearest_rank_and_rounded() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentiles(values) == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
    # 40 tasks: p99 is the slowest one, never a value between two measured ones.
    assert percentiles([1.0] * 39 + [9.876]) == {"p50": 1.0, "p95": 1.0, "p99": 9.88,
                                                 "max": 9.88}
    assert percentiles([3.0, 1.0, 2.0])["p50"] == 2.0  # unsorted input
    assert percentiles([]) == {}
    with pytest.raises(ValueError, match="need values"):
        percentile([], 50)


def test_controls_are_the_first_valid_no_fault_run_per_configuration() -> None:
    invalid = result("a", valid=False)
    first, second = result("a", latencies=[1.0]), result("a", latencies=[2.0])
    other = result("b")
    found = controls([result("a", "sigkill-worker"), invalid, first, second, other])
    assert found.first == {"a": first, "b": other}
    assert found.of(result("a", "sigkill-worker")) is first


def test_each_trial_is_held_against_its_own_control() -> None:
    first, later = result("a", latencies=[1.0]), result("a", latencies=[2.0])
    later.trial = 2
    found = controls([first, later])
    faulted = result("a", "sigkill-worker")
    assert found.of(faulted) is first
    faulted.trial = 2
    assert found.of(faulted) is later
    faulted.trial = 3  # its trial's control was invalid or missing: the first one
    assert found.of(faulted) is first


def test_delayed_counts_tasks_beyond_the_controls_slowest_plus_the_tolerance() -> None:
    control = result(latencies=[1.0, 2.0, 4.0])  # the backlog: up to 4 s with no fault
    faulted = result(fault="sigkill-worker", latencies=[1.0, 8.0, 9.0, 9.5, 20.0])
    assert delayed(faulted, control) == 2  # over 4 + 5 s: 9.5 and 20; 9.0 is not over
    assert delayed(result(fault="x", latencies=[8.9], late_after_s=1.0), control) == 1


def test_delayed_for_the_control_itself_is_zero() -> None:
    control = result(latencies=[1.0, 50.0])
    assert delayed(control, control) == 0


@pytest.mark.parametrize(("faulted", "control"), [
    (result(fault="x", latencies=[9.0]), None),
    (result(fault="x", latencies=[9.0]), result()),  # a control without latencies (old report)
    (result(fault="x"), result(latencies=[1.0])),
])
def test_delayed_is_unknown_without_something_to_compare(
        faulted: ScenarioResult, control: ScenarioResult | None) -> None:
    assert delayed(faulted, control) is None


def test_delayed_is_unknown_without_a_tolerance() -> None:
    faulted = result(fault="x", latencies=[9.0])
    faulted.settings = {}
    assert delayed(faulted, result(latencies=[1.0])) is None


def test_latency_words_beside_the_control() -> None:
    control = result(latencies=[1.8, 4.1])
    faulted = result(fault="x", latencies=[1.91, 6.2])
    assert latency_words(faulted, control) == "p50 1.9 s, p99 6.2 s (control p50 1.8 s, p99 4.1 s)"
    assert latency_words(faulted, None) == "p50 1.9 s, p99 6.2 s"
    assert latency_words(control, control) == "p50 1.8 s, p99 4.1 s"
    assert latency_words(faulted, result()) == "p50 1.9 s, p99 6.2 s"
    assert latency_words(result(fault="x"), control) == "no task completed"


def test_a_percentile_is_a_measured_value_never_an_interpolated_one() -> None:
    values = [n / 1000 for n in range(100, 0, -1)]  # 1 ms .. 100 ms, unordered
    assert percentile(values, 50) == 0.05
    assert percentile(values, 99) == 0.099
    assert percentile([0.2], 99) == 0.2
    assert percentile([0.1, 0.2, 0.3], 50) == 0.2
