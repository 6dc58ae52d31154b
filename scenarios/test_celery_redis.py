"""Celery on Redis: every configuration under every fault, held against what it claims."""

from __future__ import annotations

import pytest

from harness.matrix import Configuration
from harness.run import Run
from harness.scenario import run_valid_scenario
from harness.world import World

pytestmark = [pytest.mark.scenario, pytest.mark.container]


def test_durability(world: World, chaos_run: Run, configuration: Configuration, fault: str) -> None:
    replay = chaos_run.replay(configuration.name, fault)
    result = run_valid_scenario(world, configuration, fault, chaos_run.settings,
                                chaos_run.seed, chaos_run.directory, replay)
    chaos_run.results.append(result)
    counts = result.counts
    print(f"\n{result.scenario}: {counts} -> {result.verdict} ({result.reason}); "
          f"phases {result.phase_s}")
    assert result.valid, f"invalid scenario: {result.validity}. Replay: {replay}"
    assert result.verdict not in ("VIOLATED", "INVALID"), f"{result.reason}. Replay: {replay}"
