"""Nothing outlives the harness: after a normal run, Ctrl-C or SIGTERM mid-scenario, an exception
inside a fault, and SIGKILL of the harness itself (the next run reaps what the dead one left).

Each interruption runs the real main job (pytest scenarios/) in a child process, on ports of its
own so it does not collide with this session's world, and counts the Docker objects the child
owned once it is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from harness import containers
from harness.fault import Fault
from harness.faults import FAULTS
from harness.matrix import CONFIGURATIONS, Settings
from harness.paths import ROOT
from harness.scenario import ScenarioError, run_scenario
from harness.topology import port_variables
from harness.waits import until
from harness.world import World
from queue_chaos_agent.ledger import read_ledger

pytestmark = pytest.mark.container

# The child's own ports: next to the defaults, clear of this session's.
CHILD_PORTS = {name: str(port + 100) for name, port in port_variables().items()}


def _main_job(tmp_path: Path, faults: str = "none") -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "scenarios", "-q", "-p", "no:cacheprovider",
         "--configs", "acks-early-prefetch-1", "--faults", faults, "--seed", "7",
         "--set", "tasks=30,submit_rate=5", "--report-dir", str(tmp_path)],
        cwd=ROOT, env={**os.environ, **CHILD_PORTS},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    """Python turns SIGINT into KeyboardInterrupt only if SIGINT is not ignored when it starts,
    and a shell's background job (``cmd &``) starts with it ignored: reset it so that Ctrl-C
    reaches the child as it would a user's terminal, however this test was launched."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_mid_scenario(engine: docker.DockerClient, child: subprocess.Popen[bytes]) -> None:
    """Until the child's workers run and its ledger shows an execution started."""

    def started() -> bool:
        assert child.poll() is None, f"the main job exited early ({child.returncode})"
        for obj in containers.owned_by_process(engine, child.pid):
            for mount in obj.attrs.get("Mounts", []):
                if mount.get("Destination") == "/ledger":
                    contents = read_ledger([mount["Source"]])
                    if contents.of_kind("started"):
                        return True
        return False

    until(started, what="the child's scenario to start executing tasks", timeout_s=180,
          interval_s=0.2)


def _finish(child: subprocess.Popen[bytes]) -> int:
    try:
        return child.wait(timeout=120)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=30)


@pytest.fixture
def engine_() -> Iterator[docker.DockerClient]:
    client = containers.client()
    yield client
    client.close()


def test_normal_run_leaves_nothing(engine_: docker.DockerClient, tmp_path: Path) -> None:
    child = _main_job(tmp_path)
    assert _finish(child) == 0
    assert containers.owned_by_process(engine_, child.pid) == []
    assert (tmp_path / "durability.md").is_file()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_mid_scenario_leaves_nothing(
    engine_: docker.DockerClient, tmp_path: Path, sig: signal.Signals
) -> None:
    child = _main_job(tmp_path, faults="sigkill-worker")
    _wait_mid_scenario(engine_, child)
    assert containers.owned_by_process(engine_, child.pid), "the child started containers"
    child.send_signal(sig)
    assert _finish(child) != 0
    assert containers.owned_by_process(engine_, child.pid) == []


def test_sigkilled_harness_is_reaped_by_the_next_run(
    engine_: docker.DockerClient, tmp_path: Path
) -> None:
    child = _main_job(tmp_path)
    _wait_mid_scenario(engine_, child)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    left = containers.owned_by_process(engine_, child.pid)
    assert left, "a SIGKILLed harness cannot clean up: its objects are still there"
    containers.reap_orphans(engine_)  # what the next run's World.up() does first
    assert containers.owned_by_process(engine_, child.pid) == []


class _Boom(Fault):
    name = "boom"
    description = "a fault whose injection raises"

    def inject(self, world: World, target: str) -> None:
        raise RuntimeError("injected failure inside a fault")

    def heal(self, world: World, target: str) -> None:
        return None


def test_exception_inside_a_fault_fails_clearly_and_the_next_scenario_starts_afresh(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(FAULTS, "boom", _Boom())
    configuration = CONFIGURATIONS["acks-early-prefetch-1"]
    started = time.monotonic()
    with pytest.raises(ScenarioError, match="injected failure") as failure:
        run_scenario(world, configuration, "boom", Settings(tasks=12, fault_after_started=2), 1,
                     tmp_path, "n/a")
    assert "last 30 log lines of worker1" in str(failure.value)
    assert time.monotonic() - started < 120
    before = {w: world.cluster.container(w).id for w in world.workers}  # type: ignore[union-attr]
    result = run_scenario(world, configuration, "none", Settings(tasks=6, fault_after_started=1),
                          1, tmp_path, "n/a")
    assert result.valid and result.counts["completed"] == 6
    after = {w: world.cluster.container(w).id for w in world.workers}  # type: ignore[union-attr]
    assert all(before[w] != after[w] for w in before), "workers a failed fault touched are new"
