"""The main job's session: parametrize the matrix, then write reports/durability.md.

The run fails (non-zero exit) when a claimed guarantee is violated, when a scenario is invalid,
or when the self-proof does not hold: that exit code, and reports/durability.json, are what a CI
job gates on.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from harness import report
from harness.matrix import CONFIGURATIONS
from harness.run import Run


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if {"configuration", "fault"} <= set(metafunc.fixturenames):
        cases = [
            pytest.param(CONFIGURATIONS[c], f, id=f"{CONFIGURATIONS[c].backend}:{c}:{f}")
            for c, f in metafunc.config.chaos_cases  # type: ignore[attr-defined]
        ]
        metafunc.parametrize(("configuration", "fault"), cases)


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.chaos_started = time.monotonic()  # type: ignore[attr-defined]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    run: Run = session.config.chaos_run  # type: ignore[attr-defined]
    if not run.results:
        return
    started: float = session.config.chaos_started  # type: ignore[attr-defined]
    run.timings[f"whole run ({len(run.results)} scenarios)"] = time.monotonic() - started
    for result in run.results:
        run.timings[f"scenario {result.configuration} / {result.fault}"] = sum(
            result.phase_s.values())
    meta: dict[str, Any] = {"run_id": run.run_id, "date": run.started, "seed": run.seed,
                            "replay": run.replay()}
    path, proof = report.write(run.results, session.config.getoption("report_dir"),
                               timings=run.timings, **meta)
    report.write(run.results, run.directory, timings=run.timings, **meta)
    terminal = session.config.pluginmanager.get_plugin("terminalreporter")
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
