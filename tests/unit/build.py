"""Builders for result-model objects in unit tests: only the fields a test is about are named."""

from __future__ import annotations

from typing import Any

from harness.result import RunReport, ScenarioResult

BLANK: dict[str, Any] = {
    "scenario": "celery-redis.acks-late-prefetch-1.none", "backend": "celery-redis",
    "configuration": "acks-late-prefetch-1", "configuration_summary": "", "guarantee":
    "at-least-once", "fault": "none", "fault_description": "", "seed": 1, "valid": True,
    "validity": "", "verdict": "holds", "reason": "", "counts": {}, "recovery_s": None,
    "stuck_locations": {},
}


def scenario_result(**fields: Any) -> ScenarioResult:
    return ScenarioResult.from_dict({**BLANK, **fields})


def run_report(*scenarios: ScenarioResult, valid: bool = True, seed: int | None = None
               ) -> RunReport:
    return RunReport(measurement_valid=valid, scenarios=list(scenarios), seed=seed)
