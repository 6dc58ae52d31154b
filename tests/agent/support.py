"""Running the agent for real: a throwaway redis-server, the agent's commands as processes, the
ledger polled until the records appear. Used by the tests in this folder, which run in an
environment holding Celery or arq (not the harness's): see test_celery_agent.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from queue_chaos_agent.ledger import read_ledger

HERE = Path(__file__).parent
AGENT = Path(sys.executable).parent / "queue-chaos-agent"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server of our own on a free high port; ended by its pid."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: _answers(port), 10, "redis-server to answer")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def agent(command: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(AGENT), command, *args], env={**os.environ, **env}, cwd=HERE,
                          capture_output=True, text=True, timeout=60)


@contextmanager
def agent_process(command: str, env: dict[str, str], log: Path, *args: str) -> Iterator[None]:
    """The agent command running in the background (its own process group); stopped after."""
    with log.open("w") as out:
        process = subprocess.Popen([str(AGENT), command, *args], env={**os.environ, **env},
                                   cwd=HERE, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def records(ledger: Path, kind: str, **match: Any) -> list[dict[str, Any]]:
    return [r for r in read_ledger([ledger]).of_kind(kind)
            if all(r.get(k) == v for k, v in match.items())]


def post(port: int, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status: int = response.status
            return status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


def healthy(port: int) -> bool:
    return post(port, "/health")[0] == 200


@contextmanager
def worker_and_producers(env: dict[str, str], ledger: Path,
                         logs: Path) -> Iterator[tuple[dict[str, Any], int, int]]:
    """A worker, a producer of the probe and a producer of their task, all ready: yields the
    worker's ready record and the two producers' ports."""
    probe_port, their_port = free_port(), free_port()
    probe_env = {k: v for k, v in env.items() if not k.startswith("QUEUE_CHAOS_TASK")}
    with agent_process("worker", env, logs / "worker.log"), \
            agent_process("producer", probe_env, logs / "probe.log",
                          "--host", "127.0.0.1", "--port", str(probe_port)), \
            agent_process("producer", env, logs / "their.log",
                          "--host", "127.0.0.1", "--port", str(their_port)):
        (ready,) = wait_for(lambda: records(ledger, "worker_ready"), 30, "worker_ready")
        wait_for(lambda: healthy(probe_port) and healthy(their_port), 30, "producers")
        yield ready, probe_port, their_port
