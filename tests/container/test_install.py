"""As a new user: `pip install` the harness (not editable) into a fresh environment, write
nothing but the example's target file, and measure the app from its own folder. Nothing of the
checkout is used at run time: what the harness ships comes from the installed package, what it
makes goes to the project's .queue-chaos/ (or QUEUE_CHAOS_HOME)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.paths import ROOT
from harness.result import RunReport
from harness.topology import port_variables

pytestmark = pytest.mark.container

# The child's own ports: clear of this session's world and of the other tests' children.
CHILD_PORTS = {name: str(port + 300) for name, port in port_variables().items()}


def test_an_installed_harness_measures_a_project_from_its_folder(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
         str(ROOT)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    project = tmp_path / "shop"
    shutil.copytree(ROOT / "examples" / "celery-shop", project)
    cli = str(venv / "bin" / "queue-chaos")
    assert subprocess.run([cli, "--version"], capture_output=True, text=True,
                          timeout=60).stdout.startswith("queue-chaos 0.")
    env = {**os.environ, **CHILD_PORTS, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    run = subprocess.run(
        [cli, "run", "--target", "queue-chaos.toml", "--faults", "sigkill-worker", "--seed", "5",
         "--set", "tasks=12"],
        cwd=project, env=env, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = RunReport.load(project / "reports" / "durability.json")
    assert report.measurement_valid
    assert {s.fault for s in report.scenarios if s.configuration == "celery-shop"} == {
        "none", "sigkill-worker"}
    # What it made stayed in the project; the package shipped the rest.
    assert (project / ".queue-chaos" / "runs").is_dir()
    assert (venv / "share" / "queue-chaos" / "docker-compose.chaos.yml").is_file()

    # The team's own durability test, beside their other tests, with the plugin's fixtures.
    (project / "tests").mkdir()
    (project / "tests" / "test_durability_shop.py").write_text(
        "def test_orders_survive_a_worker_kill(chaos_scenario):\n"
        "    result = chaos_scenario('celery-shop', 'sigkill-worker')\n"
        "    assert result.valid and result.guarantee == 'at-least-once'\n"
        "    assert result.counts['re_executed'] >= 1\n")
    own = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider",
         "--target", "queue-chaos.toml", "--set", "tasks=12", "--seed", "5"],
        cwd=project, env=env, capture_output=True, text=True, timeout=900)
    assert own.returncode == 0, own.stdout[-3000:] + own.stderr[-3000:]
    assert "1 passed" in own.stdout
