"""Worlds side by side (harness/parallel.py) and shards merged (harness/shard.py), as a user
runs them: `queue-chaos run --worlds 2`, on ports clear of this session's world."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import containers, matrix
from harness.containers import RUN
from harness.paths import ROOT
from harness.result import RunReport
from harness.topology import MANAGED, port_variables

pytestmark = pytest.mark.container

# Clear of this session's ports and of the other tests' children (+100 to +300); worlds add 100.
PORTS = {name: str(port + 500) for name, port in port_variables().items()}
CONFIGS, FAULTS = "acks-late-prefetch-1,arq-max-tries-5", "sigkill-worker"


def test_two_worlds_make_one_valid_report_of_the_whole_selection(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--configs", CONFIGS, "--faults", FAULTS,
         "--seed", "11", "--set", "tasks=24,submit_rate=12,fault_after_started=6,fault_window_s=3",
         "--worlds", "2", "--report-dir", str(tmp_path)],
        cwd=ROOT, env={**os.environ, **PORTS}, capture_output=True, text=True, timeout=900,
        check=False)
    tail = done.stdout[-4000:] + done.stderr[-2000:]
    assert done.returncode == 0, tail
    assert "[world 1]" in done.stdout and "[world 2]" in done.stdout, tail
    report = RunReport.load(tmp_path / "durability.json")
    assert report.measurement_valid, report.self_proof
    unsharded = matrix.cases(list(matrix.BACKENDS), CONFIGS.split(","), FAULTS.split(","))
    wanted = [matrix.scenario_id(matrix.CONFIGURATIONS[c], f) for c, f in unsharded]
    assert [r.scenario for r in report.scenarios] == wanted  # one copy each, in run order
    assert {r.seed for r in report.scenarios} == {11}
    run_id = report.run_id
    assert any(k.startswith("shard 2: whole run") for k in report.timings), report.timings
    # Each world removed what it started.
    engine = containers.client()
    left = [c.name for c in engine.containers.list(all=True, filters={"label": MANAGED})
            if str(containers.labels_of(c).get(RUN, "")).startswith(run_id)]
    assert left == []
