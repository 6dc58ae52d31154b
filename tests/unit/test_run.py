"""The run's replay command names everything that chose its scenarios."""

from __future__ import annotations

from harness.matrix import Settings
from harness.run import Run


def test_replay_names_the_profile_unless_it_is_the_default() -> None:
    default = Run(run_id="r", seed=7, settings=Settings())
    assert default.replay() == "make durability SEED=7"
    clusters = Run(run_id="r", seed=7, settings=Settings(), profile="clusters")
    assert clusters.replay("sentinel-acks-late", "leader-sigkill") == (
        "make durability SEED=7 PROFILE=clusters CONFIGS=sentinel-acks-late "
        "FAULTS=leader-sigkill")
