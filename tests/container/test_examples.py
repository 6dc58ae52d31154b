"""The examples, measured as a team measures its own app: `queue-chaos run --target` on their
target file, in a child process on ports of its own. What the counts must show is derived from
the settings their workers reported, never written down per example."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.backends import REGISTRY
from harness.checker import Guarantee
from harness.paths import ROOT
from harness.result import RunReport
from harness.topology import port_variables

pytestmark = pytest.mark.container

# The child's own ports: clear of this session's world and of the interruption tests' children.
CHILD_PORTS = {name: str(port + 200) for name, port in port_variables().items()}


@pytest.mark.parametrize(("example", "broker"), [
    ("celery-shop", None), ("arq-shop", None), ("celery-shop", "rabbitmq"),
], ids=["celery-shop", "arq-shop", "celery-shop-on-rabbitmq"])
def test_an_example_app_is_measured_from_its_target_file(example: str, broker: str | None,
                                                         tmp_path: Path) -> None:
    target = ROOT / "examples" / example / "queue-chaos.toml"
    if broker is not None:  # the same app on another broker: only the target file changes
        shutil.copytree(target.parent, tmp_path / example)
        target = tmp_path / example / "queue-chaos.toml"
        text = target.read_text()
        example = f"{example}-{broker}"
        target.write_text(text.replace('broker = "redis"', f'broker = "{broker}"').replace(
            'name = "celery-shop"', f'name = "{example}"'))
    child = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--target", str(target),
         "--faults", "sigkill-worker", "--seed", "11", "--set", "tasks=16",
         "--report-dir", str(tmp_path / "reports")],
        cwd=ROOT, env={**os.environ, **CHILD_PORTS}, capture_output=True, text=True,
        timeout=900)
    assert child.returncode == 0, child.stdout[-3000:] + child.stderr[-3000:]
    report = RunReport.load(tmp_path / "reports" / "durability.json")
    assert report.measurement_valid, report.self_proof
    theirs = {s.fault: s for s in report.scenarios if s.configuration == example}
    assert set(theirs) == {"none", "sigkill-worker"}
    control, kill = theirs["none"], theirs["sigkill-worker"]
    assert (control.counts["lost"], control.counts["duplicated"]) == (0, 0)

    # What their workers run, read from them: settings, versions, and the claim they imply.
    backend = REGISTRY[kill.backend]
    assert kill.effective and kill.versions, "the workers reported no settings"
    claimed = backend.guarantee(backend.knobs_class(**kill.knobs))
    assert kill.guarantee == claimed.value
    assert example.split("-")[0] in kill.versions  # celery or arq, with its version

    # Under SIGKILL, the tasks the kill cut must come back where the settings redeliver, and
    # be gone where they do not.
    cut = set(kill.in_flight_at_fault)
    assert cut, "the kill interrupted nothing"
    if claimed in (Guarantee.AT_LEAST_ONCE, Guarantee.EFFECTIVELY_ONCE):
        assert cut <= set(kill.anomalies.get("re-executed", [])), kill.anomalies
        assert not cut & set(kill.anomalies.get("lost", []))
    else:
        assert cut <= set(kill.anomalies.get("lost", [])), kill.anomalies
