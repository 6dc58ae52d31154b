"""Pytest wiring shared by the scenarios (the main job) and the harness's own tests.

Options are checked in ``pytest_configure``, before any container starts, so bad input ends in one
clear error naming what is valid.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from harness import containers, images, matrix
from harness.run import Run, new_run_id, new_seed
from harness.world import Ports, PortTaken, World


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("queue-chaos")
    group.addoption("--seed", type=int, default=None, help="fault-schedule seed (default: random)")
    group.addoption("--backends", default="", help="comma-separated backends (default: all)")
    group.addoption("--configs", default="",
                    help="comma-separated configurations (default: the default matrix)")
    group.addoption("--faults", default="",
                    help="comma-separated faults (default: the default matrix)")
    group.addoption("--set", dest="overrides", default="",
                    help="scenario settings as name=value,name=value (e.g. tasks=20)")
    group.addoption("--report-dir", default="reports", type=Path,
                    help="where the main job writes durability.md/.json (default: reports)")


def _overrides(text: str) -> dict[str, str]:
    pairs = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep:
            raise matrix.MatrixError(f"setting {item!r}: expected name=value")
        pairs[name.strip()] = value.strip()
    return pairs


def pytest_configure(config: pytest.Config) -> None:
    try:
        settings = matrix.Settings().with_overrides(_overrides(config.getoption("overrides")))
        backends = matrix.select(config.getoption("backends"), matrix.BACKENDS, "backend")
        configs = config.getoption("configs")
        faults = config.getoption("faults")
        config.chaos_cases = matrix.cases(  # type: ignore[attr-defined]
            backends,
            matrix.select(configs, list(matrix.CONFIGURATIONS), "configuration") if configs
            else None,
            matrix.select(faults, matrix.fault_names(), "fault") if faults else None,
        )
        for name in dict.fromkeys(c for c, _ in config.chaos_cases):  # type: ignore[attr-defined]
            matrix.CONFIGURATIONS[name].settings(settings)  # its own overrides hold with SET's
        Ports.from_env()
    except (matrix.MatrixError, ValueError) as exc:
        raise pytest.UsageError(str(exc)) from None
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so fixtures remove what they started.
    signal.signal(signal.SIGTERM, _interrupt)
    seed = config.getoption("seed")
    config.chaos_run = Run(  # type: ignore[attr-defined]
        run_id=new_run_id(), seed=new_seed() if seed is None else seed, settings=settings)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def chaos_run(request: pytest.FixtureRequest) -> Run:
    run: Run = request.config.chaos_run  # type: ignore[attr-defined]
    return run


@pytest.fixture(scope="session")
def engine() -> object:
    try:
        return containers.client()
    except containers.EngineUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def world(request: pytest.FixtureRequest, chaos_run: Run) -> Iterator[World]:
    """The shared services up and ready for the whole session; everything removed after."""
    ports = Ports.from_env()
    try:
        ports.check_free()
    except PortTaken as exc:
        pytest.fail(str(exc), pytrace=False)
    engine = request.getfixturevalue("engine")
    started = time.monotonic()
    variables, _ = images.provision(engine, os.environ.get("CHAOS_IMAGES", "local"))
    chaos_run.timings["provisioning (images)"] = time.monotonic() - started
    started = time.monotonic()
    the_world = World(engine, chaos_run.run_id, variables, ports,
                      ready_s=chaos_run.settings.ready_s)
    try:
        the_world.up()
        chaos_run.timings["shared services up"] = time.monotonic() - started
        yield the_world
    finally:
        the_world.down()
