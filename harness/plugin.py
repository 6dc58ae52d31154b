"""The pytest plugin (entry point ``pytest11: queue_chaos``): options, fixtures and the report.

Every part is an overridable fixture, as in pytest-celery: a team's own durability tests use
``chaos_world`` (the services up and ready for the session), ``chaos_run`` (seed, settings,
results) and ``chaos_scenario`` (run one configuration under one fault and get its result), and
may override any of them in their conftest.py. The main job (``scenarios/``, or
``queue-chaos run``) is a test that asks for ``configuration`` and ``fault``, which this plugin
parametrizes from the matrix.

Options are checked in ``pytest_configure``, before any container starts, so bad input ends in
one clear error naming what is valid. Plugin state lives in ``config.stash``.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from harness import containers, images, matrix, report
from harness.backend import Configuration
from harness.parallel import xdist_offset
from harness.result import ScenarioResult
from harness.run import Run, new_run_id, new_seed
from harness.selection import select
from harness.target import Target
from harness.world import Ports, PortTaken, World

RUN = pytest.StashKey[Run]()
CASES = pytest.StashKey[list[tuple[str, str]]]()
STARTED = pytest.StashKey[float]()
MAIN_JOB = pytest.StashKey[bool]()  # the session runs the matrix: its report is the report
TARGET = pytest.StashKey[Target | None]()


ScenarioRunner = Callable[[str, str], ScenarioResult]


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
    group.addoption("--shard", default=None,
                    help="K/N: run shard K of N of the selected scenarios (each with its own "
                         "self-proof); `queue-chaos merge` joins the shards' reports")
    group.addoption("--run-id", default=None,
                    help="the run's id (default: a new one); its ledgers go to runs/<id>")
    group.addoption("--target", default=None, type=Path,
                    help="a team's target file (queue-chaos.toml): measure their app instead "
                         "of the built-in matrix")


def pytest_configure(config: pytest.Config) -> None:
    for marker in ("container: needs the Docker engine and the built images (slow)",
                   "scenario: one durability scenario of the matrix (the main job)"):
        config.addinivalue_line("markers", marker)
    try:
        chosen = select(config.getoption("target"), config.getoption("backends"),
                        config.getoption("configs"), config.getoption("faults"),
                        config.getoption("overrides"), config.getoption("shard"))
        target, settings, cases = chosen.target, chosen.settings, chosen.cases
        Ports.from_env()
    except (matrix.MatrixError, ValueError) as exc:
        raise pytest.UsageError(str(exc)) from None
    run_id = config.getoption("run_id") or new_run_id()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", run_id):
        raise pytest.UsageError(f"--run-id {run_id!r}: expected letters, digits, '.', '_' or "
                                "'-' (at most 63, a letter or digit first)")
    config.stash[TARGET] = target
    config.stash[CASES] = cases
    seed = config.getoption("seed")
    config.stash[RUN] = Run(run_id=run_id, seed=new_seed() if seed is None else seed,
                            settings=settings)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The main job's parametrization: one test per (configuration, fault) case, grouped by
    backend so each backend's containers start once."""
    if {"configuration", "fault"} <= set(metafunc.fixturenames):
        cases = [
            pytest.param(matrix.CONFIGURATIONS[c], f,
                         id=f"{matrix.CONFIGURATIONS[c].backend}:{c}:{f}")
            for c, f in metafunc.config.stash[CASES]
        ]
        metafunc.parametrize(("configuration", "fault"), cases)
        metafunc.config.stash[MAIN_JOB] = True


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def chaos_run(request: pytest.FixtureRequest) -> Run:
    """The run: id, seed, settings, and the results its scenarios add."""
    return request.config.stash[RUN]


@pytest.fixture(scope="session")
def engine() -> object:
    try:
        return containers.client()
    except containers.EngineUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def chaos_world(request: pytest.FixtureRequest, chaos_run: Run) -> Iterator[World]:
    """The shared services up and ready for the whole session; everything removed after."""
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so fixtures remove what they started.
    signal.signal(signal.SIGTERM, _interrupt)
    worker = getattr(request.config, "workerinput", {}).get("workerid")  # set by pytest-xdist
    ports = Ports.from_env().moved(xdist_offset(worker))
    try:
        ports.check_free()
    except PortTaken as exc:
        pytest.fail(str(exc), pytrace=False)
    engine = request.getfixturevalue("engine")
    started = time.monotonic()
    target = request.config.stash.get(TARGET, None)
    try:
        needed = {matrix.CONFIGURATIONS[c].owner.image for c, _ in request.config.stash[CASES]}
        variables, _ = images.provision(engine, os.environ.get("CHAOS_IMAGES", "local"),
                                        [target] if target else [], needed)
    except images.ProvisionError as exc:
        pytest.fail(str(exc), pytrace=False)
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


@pytest.fixture(scope="session")
def world(chaos_world: World) -> World:
    """The same world under its short name."""
    return chaos_world


@pytest.fixture
def chaos_scenario(chaos_world: World, chaos_run: Run) -> ScenarioRunner:
    """Run (configuration, fault) with the run's settings until valid; the result joins the
    run's report. A team's test holds the result to what it expects. The first call also runs
    what the session's self-proof needs (the control, a case known to lose work)."""
    from harness.scenario import run_valid_scenario

    def one(configuration: str, fault: str) -> ScenarioResult:
        config: Configuration = matrix.configuration(configuration)
        result = run_valid_scenario(chaos_world, config, fault, chaos_run.settings,
                                    chaos_run.seed, chaos_run.directory,
                                    chaos_run.replay(configuration, fault))
        chaos_run.results.append(result)
        return result

    def run(configuration: str, fault: str) -> ScenarioResult:
        matrix.configuration(configuration)
        matrix.fault(fault)
        # The session proves it measures, as every run does: the configuration's no-fault
        # control and a case known to lose work run first, once each per session.
        done = {(r.configuration, r.fault) for r in chaos_run.results}
        for case in matrix.with_self_proof([(configuration, fault)]):
            if case != (configuration, fault) and case not in done:
                one(*case)
        return one(configuration, fault)

    return run


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[STARTED] = time.monotonic()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The report of whatever scenarios ran; an invalid measurement fails the session."""
    config = session.config
    if RUN not in config.stash:
        return
    run = config.stash[RUN]
    if not run.results:
        return
    run.timings[f"whole run ({len(run.results)} scenarios)"] = (
        time.monotonic() - config.stash[STARTED])
    for result in run.results:
        run.timings[f"scenario {result.configuration} / {result.fault}"] = sum(
            result.phase_s.values())
    meta: dict[str, Any] = {"run_id": run.run_id, "date": run.started, "seed": run.seed,
                            "replay": run.replay()}
    # Every session leaves its report beside its ledgers; only the main job's replaces the one
    # in the report directory (a team's or the harness's own tests must not overwrite it).
    path, proof = report.write(run.results, run.directory, timings=run.timings, **meta)
    if config.stash.get(MAIN_JOB, False):
        path, proof = report.write(run.results, config.getoption("report_dir"),
                                   timings=run.timings, **meta)
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if terminal is not None:
        terminal.write_sep("=", f"durability report: {path}")
        for line in proof.lines:
            terminal.write_line(line)
        for key, seconds in run.timings.items():
            terminal.write_line(f"{key}: {seconds:.1f}s")
    if not proof.valid:
        if terminal is not None:
            terminal.write_line("MEASUREMENT INVALID: the self-proof does not hold", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
