"""Bad input ends in one clear error naming what is wrong and what is valid, before anything
starts: the main job is run as a user would run it, and must stop before any container exists."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.paths import ROOT
from harness.topology import port_variables


def _main_job(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "scenarios", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "wrong", "valid"),
    [
        (["--backends", "sidekiq"], "unknown backend sidekiq", "celery-redis"),
        (["--faults", "meteor"], "unknown fault meteor", "sigkill-worker"),
        (["--configs", "acks-sideways"], "unknown configuration acks-sideways",
         "acks-late-prefetch-1"),
        (["--set", "colour=blue"], "unknown setting 'colour'", "visibility_timeout_s"),
        (["--set", "tasks=0"], "tasks=0", "valid: 1..10000"),
        (["--set", "tasks=many"], "tasks='many'", "expected int"),
        (["--set", "drain_s"], "expected name=value", "name=value"),
        (["--target", "nowhere.toml"], "nowhere.toml: no such target file", "queue-chaos.toml"),
        (["--target", "examples/celery-shop/queue-chaos.toml", "--configs",
          "acks-late-prefetch-1"], "--target measures the target file's app", "one or the other"),
        (["--target", "examples/celery-shop/queue-chaos.toml", "--faults", "broker-restart,x"],
         "unknown fault x", "sigkill-worker"),
        (["--brokers", "redis-9"], "unknown broker version redis-9", "redis-8.0"),
        (["--brokers", "redis-8.0,valkey-8.1"], "both releases of redis", "one per broker"),
    ],
)
def test_unknown_names_and_impossible_values(args: list[str], wrong: str, valid: str) -> None:
    result = _main_job(*args)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert wrong in result.stderr and valid in result.stderr, result.stderr


def test_bad_port_number() -> None:
    result = _main_job(env={"CHAOS_REDIS_PORT": "80"})
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "CHAOS_REDIS_PORT='80'" in result.stderr and "1024..65535" in result.stderr


def _free_ports() -> dict[str, str]:
    """Ports free right now, for every published port, so the engine check is not pre-empted
    by a taken default port (another run on this machine)."""
    names = sorted(port_variables())
    sockets = [socket.socket() for _ in names]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return {n: str(s.getsockname()[1]) for n, s in zip(names, sockets, strict=True)}
    finally:
        for s in sockets:
            s.close()


def test_missing_docker_engine() -> None:
    result = _main_job("--faults", "none", env={
        "DOCKER_HOST": "unix:///nonexistent/docker.sock", **_free_ports()})
    assert result.returncode != 0
    assert "no Docker engine answers" in result.stdout
    assert "make engine" in result.stdout


def test_port_already_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {**_free_ports(), "CHAOS_PRODUCER_PORT": str(port)}
        result = _main_job("--faults", "none", env=ports)
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 (CHAOS_PRODUCER_PORT) is already taken" in result.stdout


def test_images_command_without_engine() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "harness", "images"], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}, timeout=60,
    )
    assert result.returncode == 2
    assert "no Docker engine answers" in result.stderr


def test_compare_names_the_missing_reports(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "harness", "compare", "--reports", str(tmp_path / "a.json"),
         str(tmp_path / "b.json")], cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "compare needs 2 or more existing durability.json files" in result.stderr
    assert "a.json" in result.stderr and "b.json" in result.stderr


@pytest.mark.parametrize(
    ("args", "wrong", "valid"),
    [
        (["run", "--brokers", "rabbitmq-5"], "unknown broker version rabbitmq-5", "rabbitmq-4.0"),
        (["versions", "--passes", "sid"], "unknown pass sid", "trixie (redis-8.0 + rabbitmq-4.0)"),
        (["versions", "--backends", "sidekiq"], "unknown backend 'sidekiq'", "celery-redis"),
        (["versions", "--passes", "valkey", "--backends", "celery-rabbitmq"],
         "no pass measures any of them", "--backends celery-rabbitmq"),
        (["versions", "--extend", "runs/nowhere"], "--extend runs/nowhere: no pass report",
         "runs/nowhere/<pass>/durability.json"),
    ],
)
def test_bad_broker_releases_stop_the_command_before_anything_starts(
        args: list[str], wrong: str, valid: str) -> None:
    result = subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert wrong in result.stderr and valid in result.stderr, result.stderr
