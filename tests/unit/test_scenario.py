"""harness/scenario.py's re-run rule: an invalid attempt is re-run, never reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import scenario
from harness.matrix import CONFIGURATIONS, Settings
from harness.result import ScenarioResult
from harness.scenario import run_valid_scenario


def _result(valid: bool, attempt: int) -> ScenarioResult:
    return ScenarioResult(
        scenario="s", backend="celery-redis", configuration="c", configuration_summary="",
        guarantee="at-most-once", fault="sigkill-worker", fault_description="", seed=1,
        valid=valid, validity="ok" if valid else "the fault fired while its target ran no task",
        verdict="holds", reason="", counts={}, recovery_s=None, stuck_locations={},
        attempt=attempt,
    )


@pytest.mark.parametrize(("validity", "calls", "valid"), [
    ([True], 1, True),
    ([False, True], 2, True),
    ([False, False, True], 3, True),
    ([False, False, False], 3, False),
])
def test_invalid_attempts_are_rerun(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, validity: list[bool], calls: int,
    valid: bool,
) -> None:
    attempts: list[int] = []

    def fake(*args: Any, attempt: int = 1, **kwargs: Any) -> ScenarioResult:
        attempts.append(attempt)
        return _result(validity[attempt - 1], attempt)

    monkeypatch.setattr(scenario, "run_scenario", fake)
    result = run_valid_scenario(None, CONFIGURATIONS["acks-early-prefetch-1"],  # type: ignore[arg-type]
                                "sigkill-worker", Settings(), 1, tmp_path, "replay")
    assert attempts == list(range(1, calls + 1))
    assert result.valid is valid
    assert result.attempt == calls
