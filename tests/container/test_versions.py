"""The broker release as an axis (harness/brokerversions.py), as a user runs it: `queue-chaos
versions` over trixie's Redis 8.0 and RabbitMQ 4.0 and over Valkey 8.1, on ports clear of this
session's world. Each pass must be a valid measurement on the release it names, read from the
running server, and see what that release does with a broker kill."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.paths import ROOT
from harness.topology import port_variables

pytestmark = pytest.mark.container

# Clear of this session's ports, of the other tests' children and of test_worlds (+500, +600).
PORTS = {name: str(port + 800) for name, port in port_variables().items()}


def test_each_pass_runs_on_its_release_and_the_report_sets_them_side_by_side(
        tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness", "versions", "--passes", "trixie,valkey",
         "--backends", "celery-redis,celery-rabbitmq",
         "--configs", "acks-late-prefetch-1,rabbit-acks-late-confirms", "--faults",
         "broker-sigkill", "--seed", "13", "--worlds", "2", "--set",
         "tasks=24,submit_rate=12,fault_after_started=6,fault_window_s=3,cost_tasks=0,"
         "cost_latency_tasks=0", "--report-dir", str(tmp_path)],
        cwd=ROOT, env={**os.environ, **PORTS}, capture_output=True, text=True, timeout=1200,
        check=False)
    tail = done.stdout[-4000:] + done.stderr[-2000:]
    assert done.returncode == 0, tail
    document = json.loads((tmp_path / "versions.json").read_text())
    passes = {p["name"]: p for p in document["passes"]}
    assert list(passes) == ["trixie", "valkey"]
    assert all(p["valid"] for p in passes.values()), tail
    assert passes["trixie"]["servers"]["redis-server"].startswith("8.0."), passes["trixie"]
    assert passes["trixie"]["servers"]["rabbitmq-server"].startswith("4.0."), passes["trixie"]
    assert passes["valkey"]["servers"]["valkey-server"].startswith("8.1."), passes["valkey"]
    # Valkey's pass measures only the backends on Redis.
    assert {s["backend"] for s in passes["valkey"]["scenarios"]} == {"celery-redis"}
    rows = {(r["configuration"], r["fault"]): r["cells"] for r in document["rows"]}
    # Redis without persistence loses what it held on every release; RabbitMQ with publisher
    # confirms loses nothing it acknowledged to the producer. (A quorum queue without confirms
    # is no such case: its publish returns before the broker has the message, and it lost one
    # in some runs, reports/versions.md.)
    for release, cell in rows[("acks-late-prefetch-1", "broker-sigkill")].items():
        assert cell["ranges"]["lost"][0] > 0, (release, cell)
    assert rows[("rabbit-acks-late-confirms", "broker-sigkill")]["trixie"]["ranges"]["lost"] \
        == [0, 0]
    assert "| acks-late-prefetch-1 | broker-sigkill |" in (tmp_path / "versions.md").read_text()
