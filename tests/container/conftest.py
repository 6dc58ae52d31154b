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


def run_until_valid(world: World, chaos_run: Run, settings: Settings, configuration: str,
                    fault: str) -> ScenarioResult:
    """Run (configuration, fault) with ``settings`` until valid; the result joins the run."""
    result = run_valid_scenario(world, CONFIGURATIONS[configuration], fault, settings,
                                chaos_run.seed, chaos_run.directory,
                                chaos_run.replay(configuration, fault))
    chaos_run.results.append(result)
    print(f"\n{result.scenario}: {result.counts} -> {result.verdict}; {result.phase_s}; "
          f"{result.failover}")
    assert result.valid, result.validity
    return result


@pytest.fixture
def run_small(world: World, chaos_run: Run) -> SmallRun:
    """Run (configuration, fault) with SMALL settings until valid; the result joins the run."""

    def run(configuration: str, fault: str) -> ScenarioResult:
        return run_until_valid(world, chaos_run, SMALL, configuration, fault)

    return run


# The longest files first. With a file per world at a time (`make test-container`: pytest-xdist,
# --dist loadfile) the run ends when its last file does, so the files that take minutes start
# at once instead of last. Tests keep their order within a file (the sort is stable).
LONGEST_FIRST = ("test_install.py", "test_worlds.py", "test_examples.py", "test_interruptions.py",
                 "test_clusters.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)
