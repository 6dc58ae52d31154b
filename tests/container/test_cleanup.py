"""Nothing the harness starts outlives it: labelled objects are removed by label, orphans reaped."""

from __future__ import annotations

import os
import subprocess
import sys

import docker

from harness import containers
from harness.topology import MANAGED


def test_orphans_of_a_dead_harness_are_reaped(engine: docker.DockerClient) -> None:
    # A harness process that dies without cleaning up: its objects carry its owner token.
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    dead_pid = int(child.stdout)
    token = f"{dead_pid}:0"  # that pid is gone (or reused with another start time)
    assert not containers.owner_alive(token)
    network = engine.networks.create(
        f"qc-orphan-{os.getpid()}",
        labels={MANAGED: "true", containers.OWNER: token, containers.RUN: "orphan-test"},
    )
    try:
        assert containers.reap_orphans(engine) >= 1
        assert not engine.networks.list(names=[network.name])
    finally:
        containers.remove_labelled(engine, {containers.RUN: "orphan-test"})


def test_live_owner_is_not_reaped(engine: docker.DockerClient) -> None:
    token = containers.owner_token()
    network = engine.networks.create(
        f"qc-live-{os.getpid()}",
        labels={MANAGED: "true", containers.OWNER: token, containers.RUN: "live-test"},
    )
    try:
        containers.reap_orphans(engine)
        assert engine.networks.list(names=[network.name])
    finally:
        assert containers.remove_labelled(engine, {containers.RUN: "live-test"}) == 1
