"""harness/gate.py: the CI gate over a durability report's JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from harness.checker import Counts
from harness.gate import gate, gate_file
from harness.matrix import Settings, configuration, must_lose
from harness.report import write
from harness.result import RunReport, ScenarioResult
from tests.unit.build import run_report, scenario_result

EARLY, LATE = "acks-early-prefetch-1", "acks-late-prefetch-1"


def scenario(config: str, fault: str, verdict: str = "holds", *, valid: bool = True,
             reason: str = "") -> ScenarioResult:
    return scenario_result(
        scenario=f"celery-redis.{config}.{fault}", configuration=config, fault=fault,
        valid=valid, validity="fired" if valid else "the fault fired while its target ran "
        "no task", verdict=verdict, reason=reason)


def report(*scenarios: ScenarioResult, valid: bool = True) -> RunReport:
    return run_report(*scenarios, valid=valid)


def dump(data: RunReport) -> str:
    return json.dumps({"measurement_valid": data.measurement_valid,
                       "scenarios": [s.as_dict() for s in data.scenarios]})


def good() -> RunReport:
    return report(scenario(EARLY, "none"), scenario(LATE, "none"),
                  scenario(EARLY, "sigkill-worker"), scenario(LATE, "sigkill-worker"))


def test_a_valid_report_without_violations_passes() -> None:
    assert gate(good()) == (True, [])
    assert gate(good(), [LATE]) == (True, [])
    assert gate(good(), None, ["sigkill-worker"]) == (True, [])
    assert gate(good(), [LATE], ["none"]) == (True, [])


def test_an_inconclusive_scenario_does_not_fail_the_gate() -> None:
    data = report(scenario(LATE, "sigkill-worker", "inconclusive"))
    assert gate(data) == (True, [])


def test_an_invalid_measurement_fails() -> None:
    data = good()
    data.measurement_valid = False
    passes, reasons = gate(data, [LATE])
    assert not passes
    assert reasons == ["the run's self-proof failed: its numbers are not a measurement"]
    assert not gate(RunReport.from_dict({"scenarios": []}))[0]  # no flag at all is no proof


def test_a_violated_chosen_scenario_fails_with_its_reason() -> None:
    data = good()
    data.scenarios[3] = scenario(LATE, "sigkill-worker", "VIOLATED",
                                    reason="at-least-once claimed, 2 lost")
    passes, reasons = gate(data, [LATE])
    assert not passes
    assert reasons == [f"celery-redis.{LATE}.sigkill-worker: VIOLATED: at-least-once claimed, "
                       "2 lost"]
    assert not gate(data)[0]  # no selection: every configuration is held


def test_an_invalid_verdict_fails() -> None:
    data = report(scenario(LATE, "none", "INVALID", reason="1 corrupt ledger records"))
    passes, reasons = gate(data)
    assert not passes
    assert reasons == [f"celery-redis.{LATE}.none: INVALID: 1 corrupt ledger records"]


def test_an_invalid_chosen_scenario_fails() -> None:
    data = good()
    data.scenarios[3] = scenario(LATE, "sigkill-worker", valid=False)
    passes, reasons = gate(data, [LATE])
    assert not passes
    assert reasons == [f"celery-redis.{LATE}.sigkill-worker: invalid (the fault fired while its "
                       "target ran no task)"]


def test_a_selection_that_names_nothing_in_the_report_fails() -> None:
    passes, reasons = gate(good(), ["arq-defaults"])
    assert not passes
    assert reasons == ["the report has no scenario of configurations ['arq-defaults'] / faults "
                       "None"]
    assert not gate(good(), None, ["broker-sigkill"])[0]
    assert not gate(good(), [EARLY], ["cut-worker-broker"])[0]


def test_each_named_configuration_must_be_in_the_report() -> None:
    passes, reasons = gate(good(), [LATE, "acks-late-idempotent"])
    assert not passes
    assert any("acks-late-idempotent" in reason for reason in reasons)


def test_violations_of_configurations_not_chosen_are_ignored() -> None:
    data = good()
    data.scenarios[2] = scenario(EARLY, "sigkill-worker", "VIOLATED", reason="x")
    data.scenarios.append(scenario("acks-late-prefetch-4", "sigkill-worker", valid=False))
    assert gate(data, [LATE]) == (True, [])
    assert gate(data, None, ["none"]) == (True, [])
    assert not gate(data)[0]
    assert not gate(data, [EARLY])[0]


def test_gate_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gate_file(tmp_path / "missing.json", None, None) == 2
    assert "does not exist" in capsys.readouterr().out
    path = tmp_path / "durability.json"
    path.write_text(dump(good()))
    assert gate_file(path, [LATE], None) == 0
    assert capsys.readouterr().out == "gate: pass\n"
    data = good()
    data.scenarios[3] = scenario(LATE, "sigkill-worker", "VIOLATED", reason="2 lost")
    path.write_text(dump(data))
    assert gate_file(path, [LATE], None) == 1
    assert capsys.readouterr().out == (f"FAIL celery-redis.{LATE}.sigkill-worker: VIOLATED: "
                                       "2 lost\ngate: fail (1 reasons)\n")


def test_gate_reads_what_the_report_writes(tmp_path: Path) -> None:
    def result(config: str, fault: str, verdict: str, **counts: int) -> ScenarioResult:
        conf = configuration(config)
        return ScenarioResult(
            scenario=f"{conf.backend}.{config}.{fault}", backend=conf.backend,
            configuration=config, configuration_summary=conf.summary,
            guarantee=conf.guarantee.value, fault=fault, fault_description="d", seed=1,
            valid=True, validity="ok", verdict=verdict, reason="r",
            counts=Counts(submitted=40, acknowledged=40, **counts).as_dict(), recovery_s=None,
            stuck_locations={}, settings=asdict(Settings()),
            must_lose=must_lose(config, fault))

    results = [result(EARLY, "none", "holds", completed=40),
               result(LATE, "none", "holds", completed=40),
               result(EARLY, "sigkill-worker", "holds", completed=38, lost=2),
               result(LATE, "sigkill-worker", "VIOLATED", completed=39, lost=1)]
    write(results, tmp_path, run_id="r", date="d", seed=1, replay="x")
    data = RunReport.load(tmp_path / "durability.json")
    assert data.measurement_valid is True
    assert gate(data, [EARLY]) == (True, [])
    assert gate(data, [LATE]) == (False, [f"celery-redis.{LATE}.sigkill-worker: VIOLATED: r"])
