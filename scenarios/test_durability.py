"""The matrix: backend x configuration x fault, each held against what the configuration claims.

Cases come from harness/matrix.py (the default matrix, or what --backends/--configs/--faults
select), grouped by backend so each backend's containers start once."""

from __future__ import annotations

import pytest

from harness.backend import Configuration
from harness.run import Run
from harness.scenario import run_valid_scenario
from harness.world import World

pytestmark = [pytest.mark.scenario, pytest.mark.container]


def test_durability(world: World, chaos_run: Run, configuration: Configuration, fault: str) -> None:
    replay = chaos_run.replay(configuration.name, fault)
    result = run_valid_scenario(world, configuration, fault, chaos_run.settings,
                                chaos_run.seed, chaos_run.directory, replay)
    chaos_run.results.append(result)
    shown = {k: v for k, v in result.counts.items() if v and k not in ("submitted", "acknowledged")}
    print(f"\n{result.scenario}: {shown} -> {result.verdict} ({result.reason}); "
          f"{sum(result.phase_s.values()):.1f}s {result.phase_s}")
    # A broken claim is a finding, reported and gated on (python -m harness gate), not a failure
    # of the measurement; an invalid scenario or an instrument error is.
    assert result.valid, f"invalid scenario: {result.validity}. Replay: {replay}"
    assert result.verdict != "INVALID", f"{result.reason}. Replay: {replay}"
