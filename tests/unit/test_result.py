"""harness/result.py: the result model reads reports of this harness and of older ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.paths import ROOT
from harness.result import ReportError, RunReport, ScenarioResult
from tests.unit.build import BLANK, scenario_result

COMMITTED = ROOT / "reports" / "durability.json"


def test_the_committed_report_loads_through_the_model() -> None:
    report = RunReport.load(COMMITTED)
    assert report.measurement_valid
    assert len(report.scenarios) >= 100
    assert all(isinstance(s, ScenarioResult) for s in report.scenarios)
    assert {s.backend for s in report.scenarios} == {
        "celery-redis", "celery-rabbitmq", "arq", "fastapi"}


def test_fields_a_report_lacks_take_defaults_and_unknown_ones_are_ignored() -> None:
    result = ScenarioResult.from_dict({**BLANK, "from_the_future": 1})
    assert result.knobs == {} and result.must_lose is False and result.fault_kind == ""


def test_a_result_survives_a_round_trip(tmp_path: Path) -> None:
    result = scenario_result(knobs={"acks_late": True}, fault_kind="worker-death",
                             must_lose=False, counts={"lost": 2})
    result.save(tmp_path / "result.json")
    assert ScenarioResult.load(tmp_path / "result.json") == result


def test_violated_is_a_violation_or_an_invalid_verdict() -> None:
    assert scenario_result(verdict="VIOLATED").violated
    assert scenario_result(verdict="INVALID").violated
    assert not scenario_result(verdict="inconclusive").violated


@pytest.mark.parametrize(("text", "expected"), [
    ("[]", "no list of scenarios"),
    ('{"scenarios": 3}', "no list of scenarios"),
    ('{"scenarios": [{"scenario": "x"}]}', "missing"),
    ("{", "Expecting"),
])
def test_what_is_not_a_report_is_one_clear_error(tmp_path: Path, text: str,
                                                 expected: str) -> None:
    path = tmp_path / "durability.json"
    path.write_text(text)
    with pytest.raises(ReportError, match=expected):
        RunReport.load(path)


def test_a_missing_report_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="run `make durability` first"):
        RunReport.load(tmp_path / "nope.json")


def test_the_schema_version_is_read() -> None:
    data = json.loads(COMMITTED.read_text())
    assert RunReport.from_dict({**data, "schema": 2}).schema == 2
