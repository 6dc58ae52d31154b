"""Shared by the container tests: a small scenario on the session's world, recorded in the run."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.matrix import CONFIGURATIONS, Settings
from harness.result import ScenarioResult
from harness.run import Run
from harness.scenario import run_valid_scenario
from harness.world import World

SMALL = Settings(tasks=24, submit_rate=12.0, fault_after_started=6, fault_window_s=3.0)

SmallRun = Callable[[str, str], ScenarioResult]


@pytest.fixture
def run_small(world: World, chaos_run: Run) -> SmallRun:
    """Run (configuration, fault) with SMALL settings until valid; the result joins the run."""

    def run(configuration: str, fault: str) -> ScenarioResult:
        result = run_valid_scenario(world, CONFIGURATIONS[configuration], fault, SMALL,
                                    chaos_run.seed, chaos_run.directory,
                                    chaos_run.replay(configuration, fault))
        chaos_run.results.append(result)
        print(f"\n{result.scenario}: {result.counts} -> {result.verdict}; {result.phase_s}")
        assert result.valid, result.validity
        return result

    return run
