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

import re
import signal
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from harness import brokerversions, containers, images, matrix, provenance, report
from harness.backend import Configuration
from harness.brokerversions import BrokerVersion
from harness.parallel import xdist_offset
from harness.paths import ROOT
from harness.progress import Progress, verdict_text
from harness.result import ScenarioResult, Verdict
from harness.run import Run, new_run_id, new_seed
from harness.selection import select
from harness.shard import durations
from harness.target import Target
from harness.world import Ports, PortTaken, World

RUN = pytest.StashKey[Run]()
CASES = pytest.StashKey[list[tuple[str, str]]]()
STARTED = pytest.StashKey[float]()
MAIN_JOB = pytest.StashKey[bool]()  # the session runs the matrix: its report is the report
TARGET = pytest.StashKey[Target | None]()
# The broker releases the run chose (--brokers), by broker; None: each broker's default.
BROKERS = pytest.StashKey[dict[str, BrokerVersion] | None]()
PROGRESS = pytest.StashKey[Progress]()  # the main job's scenarios: one line before, one after
REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()  # an item's reports, by phase


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
    group.addoption("--brokers", default="",
                    help="broker releases, e.g. redis-8.0,rabbitmq-4.0 or a pass's name "
                         "(trixie); default: each broker's default release")
    group.addoption("--profile", default="default",
                    help="the matrix profile when no backend is named: default, or clusters "
                         "(the clustered brokers)")
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
                        config.getoption("overrides"), config.getoption("shard"),
                        config.getoption("profile"))
        target, settings, cases = chosen.target, chosen.settings, chosen.cases
        Ports.from_env()
        brokers = (brokerversions.parse(config.getoption("brokers"))
                   if config.getoption("brokers") else None)
    except (matrix.MatrixError, ValueError) as exc:
        raise pytest.UsageError(str(exc)) from None
    run_id = config.getoption("run_id") or new_run_id()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", run_id):
        raise pytest.UsageError(f"--run-id {run_id!r}: expected letters, digits, '.', '_' or "
                                "'-' (at most 63, a letter or digit first)")
    config.stash[TARGET] = target
    config.stash[CASES] = cases
    config.stash[BROKERS] = brokers
    seed = config.getoption("seed")
    config.stash[RUN] = Run(run_id=run_id, seed=new_seed() if seed is None else seed,
                            settings=settings,
                            brokers=brokerversions.label(brokers) if brokers else "",
                            profile=config.getoption("profile"))


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
        variables, _ = images.provision(engine, provenance.image_mode(),
                                        [target] if target else [], needed,
                                        request.config.stash[BROKERS])
    except images.ProvisionError as exc:
        pytest.fail(str(exc), pytrace=False)
    chaos_run.timings["provisioning (images)"] = time.monotonic() - started
    started = time.monotonic()
    the_world = World(engine, chaos_run.run_id, variables, ports,
                      ready_s=chaos_run.settings.ready_s)
    chaos_run.images = the_world.images
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


def _scenario_of(item: pytest.Item) -> str | None:
    """The scenario id of a main-job item (one the plugin parametrized), None for any other."""
    params = getattr(item, "callspec", None)
    configuration = params.params.get("configuration") if params else None
    fault = params.params.get("fault") if params else None
    if isinstance(configuration, Configuration) and isinstance(fault, str):
        return matrix.scenario_id(configuration, fault)
    return None


def pytest_collection_finish(session: pytest.Session) -> None:
    """Count the scenarios this session runs (after -k and deselection), so each line can say
    how many are left. An xdist worker runs only part of them and its output is not shown: the
    controller's own report is the progress there."""
    planned = [s for s in map(_scenario_of, session.items) if s is not None]
    if planned and not hasattr(session.config, "workerinput"):
        session.config.stash[PROGRESS] = Progress(
            planned, durations(ROOT / "reports" / "durability.json"))


def _say(config: pytest.Config, line: str, **markup: bool) -> None:
    """A line through pytest's terminal reporter, on a line of its own; flushed at once, since a
    world's output is a pipe its parent reads line by line.

    ``write_line`` ends a line -v's test name left open, but not -q's dots (pytest does not
    mark those): a line the writer left open is marked as pytest marks its own (xdist's), so it
    is ended once, either way."""
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if terminal is None:  # -p no:terminal: pytest prints nothing, and neither do we
        return
    if getattr(getattr(terminal, "_tw", None), "width_of_current_line", 0):
        terminal.currentfspath = -2
    terminal.write_line(line, **markup)
    terminal.flush()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep a scenario's reports: how its test ended, and how long its body ran."""
    made = yield
    if PROGRESS in item.config.stash:
        item.stash.setdefault(REPORTS, {})[made.when] = made
    return made


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None
                            ) -> Generator[None, object, object]:
    """A line before each scenario and one after it, with what it ended in and how long it
    took (its test body's time: the session's one-off provisioning is not a scenario's)."""
    progress = item.config.stash.get(PROGRESS, None)
    scenario = _scenario_of(item)
    if progress is None or scenario is None:
        return (yield)
    _say(item.config, progress.start(scenario), bold=True)
    results = item.config.stash[RUN].results
    before = len(results)
    outcome = yield
    result = next((r for r in reversed(results[before:]) if r.scenario == scenario), None)
    reports = item.stash.get(REPORTS, {})
    seconds = (reports["call"].duration if "call" in reports
               else sum(r.duration for r in reports.values()))
    text = verdict_text(result) if result is not None else _test_outcome(reports)
    _say(item.config, progress.finish(scenario, text, seconds), **_colour(result, reports))
    return outcome


def _test_outcome(reports: dict[str, pytest.TestReport]) -> str:
    """What a scenario that left no result ended in: the first phase that did not pass."""
    for when in ("setup", "call", "teardown"):
        phase = reports.get(when)
        if phase is not None and not phase.passed:
            return phase.outcome if when == "call" else f"{phase.outcome} in {when}"
    return "no result"


def _colour(result: ScenarioResult | None, reports: dict[str, pytest.TestReport]
            ) -> dict[str, bool]:
    """Green for a claim that holds, yellow for inconclusive, red for anything else (pytest's
    writer drops the colour where the output is no terminal)."""
    if result is not None and result.valid and result.verdict == Verdict.HOLDS:
        return {"green": True}
    if result is not None and result.valid and result.verdict == Verdict.INCONCLUSIVE:
        return {"yellow": True}
    if result is None and all(r.skipped or r.passed for r in reports.values()):
        return {"yellow": True}
    return {"red": True}


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
    # Every session leaves its report beside its ledgers; only the main job's replaces the one
    # in the report directory (a team's or the harness's own tests must not overwrite it).
    meta: dict[str, Any] = {"run_id": run.run_id, "date": run.started, "seed": run.seed,
                            "replay": run.replay(),
                            "provenance": provenance.of_run(run.images, brokers=run.brokers)}
    path, proof = report.write(run.results, run.directory, timings=run.timings, **meta)
    if config.stash.get(MAIN_JOB, False):
        path, proof = report.write(run.results, config.getoption("report_dir"),
                                   timings=run.timings, pictures=True, **meta)
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
