"""A target its app cannot measure fails at image build or at the agent's check, before any
scenario, with one line in the words of the target file: a requirement that does not resolve,
an app attribute that does not exist, a task that is not registered, a queue not consumed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.paths import ROOT
from harness.topology import port_variables

pytestmark = pytest.mark.container

CHILD_PORTS = {name: str(port + 400) for name, port in port_variables().items()}


@pytest.mark.parametrize(("old", "new", "said"), [
    ('app = "shop.celery_app:app"', 'app = "shop.celery_app:appp"',
     "[target] app = 'shop.celery_app:appp': shop.celery_app has no attribute 'appp'"),
    ('name = "shop.tasks.record_order"', 'name = "shop.tasks.record_ordr"',
     "[task] name = 'shop.tasks.record_ordr' is not a registered task"),
], ids=["attribute", "task"])
def test_the_agent_check_speaks_in_the_target_files_words(
    tmp_path: Path, old: str, new: str, said: str,
) -> None:
    project = tmp_path / "shop"
    shutil.copytree(ROOT / "examples" / "celery-shop", project)
    toml = project / "queue-chaos.toml"
    assert old in toml.read_text()
    toml.write_text(toml.read_text().replace(old, new))
    run = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--target", str(toml), "--faults", "none",
         "--set", "tasks=8", "--report-dir", str(tmp_path / "reports")],
        cwd=ROOT, env={**os.environ, **CHILD_PORTS}, capture_output=True, text=True,
        timeout=900)
    assert run.returncode != 0
    assert said in run.stdout, run.stdout[-3000:]


def test_requirements_that_do_not_resolve_fail_at_the_build(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    shutil.copytree(ROOT / "examples" / "celery-shop", project)
    (project / "requirements.txt").write_text("celery[redis]==5.7.0\nno-such-package-qc==0.0.1\n")
    run = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--target", str(project / "queue-chaos.toml"),
         "--faults", "none", "--report-dir", str(tmp_path / "reports")],
        cwd=ROOT, env={**os.environ, **CHILD_PORTS}, capture_output=True, text=True,
        timeout=900)
    assert run.returncode != 0
    assert "the requirements do not resolve or build" in run.stdout, run.stdout[-3000:]
    assert "no-such-package-qc" in run.stdout
