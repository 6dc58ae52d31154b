"""The agent on a real Celery worker and producer against a real redis-server.

Runs only where Celery is installed (never in the harness's environment, where it is skipped):

    python3 -m venv /tmp/agentvenv
    /tmp/agentvenv/bin/pip install 'celery[redis]==5.7.0' fastapi==0.165.0 uvicorn==0.54.0 \\
        pytest -e ./agent
    /tmp/agentvenv/bin/python -m pytest tests/agent --noconftest -p no:cacheprovider

(``--noconftest``: the repository's conftest.py needs the harness's own dependencies.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("celery")
pytest.importorskip("fastapi")

from tests.agent.support import (
    agent,
    agent_process,
    free_port,
    healthy,
    post,
    records,
    redis_server,
    wait_for,
    worker_and_producers,
)

BASE = {"QUEUE_CHAOS_KIND": "celery", "QUEUE_CHAOS_APP": "sample_celery:app",
        "QUEUE_CHAOS_QUEUE": "measured"}
WORKER_ARGS = "--hostname agenttest@%h --pool threads --concurrency 2 -Q measured --loglevel INFO"


def test_worker_and_producer_record_probe_and_their_task(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    with redis_server() as url:
        env = {**BASE, "QUEUE_CHAOS_BROKER_URL": url, "CHAOS_LEDGER_DIR": str(ledger),
               "QUEUE_CHAOS_WORKER_ARGS": WORKER_ARGS, "QUEUE_CHAOS_TASK": "sample.add",
               "QUEUE_CHAOS_TASK_ARGS": "[2, 3]"}
        checked = agent("check", env)
        assert checked.returncode == 0, checked.stderr
        with worker_and_producers(env, ledger, tmp_path) as (ready, probe_port, their_port):
            assert post(probe_port, "/tasks", {"task_id": "probe-1", "duration": 0.2}) == (
                200, {"outcome": "ok"})
            assert post(their_port, "/tasks", {"task_id": "theirs-1", "duration": 0})[1] == {
                "outcome": "ok"}
            wait_for(lambda: all(records(ledger, "completed", task=t)
                                 for t in ("probe-1", "theirs-1")), 30, "both completed")
    effective = ready["effective"]
    assert effective["task_acks_late"] is True
    assert effective["task_reject_on_worker_lost"] is True
    assert effective["worker_prefetch_multiplier"] == 1
    assert (effective["pool"], effective["concurrency"]) == ("thread", 2)
    assert effective["broker_transport"] == "redis"
    assert effective["visibility_timeout"] == 42
    assert effective["queues_consumed"] == ["measured"]
    assert effective["queue_types"] == {"default": "classic", "measured": "classic"}
    assert effective["task"] == "sample.add"
    assert {"celery", "kombu", "redis", "fastapi"} <= set(ready["versions"])
    assert ready["worker"] and ready["main_pid"] and ready["t"]
    for task in ("probe-1", "theirs-1"):
        (started,) = records(ledger, "started", task=task)
        (completed,) = records(ledger, "completed", task=task)
        assert started["execution"] == completed["execution"]
        assert started["worker"] == completed["worker"] == ready["worker"]
        assert started["redelivered"] in (False, None)


def test_their_failing_task_is_recorded_failed(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    with redis_server() as url:
        env = {**BASE, "QUEUE_CHAOS_BROKER_URL": url, "CHAOS_LEDGER_DIR": str(ledger),
               "QUEUE_CHAOS_WORKER_ARGS": WORKER_ARGS, "QUEUE_CHAOS_TASK": "sample.boom"}
        port = free_port()
        with agent_process("worker", env, tmp_path / "worker.log"), \
                agent_process("producer", env, tmp_path / "producer.log",
                              "--host", "127.0.0.1", "--port", str(port)):
            wait_for(lambda: records(ledger, "worker_ready"), 30, "worker_ready")
            wait_for(lambda: healthy(port), 30, "producer")
            assert post(port, "/tasks", {"task_id": "boom-1", "duration": 0})[1] == {
                "outcome": "ok"}
            (failed,) = wait_for(lambda: records(ledger, "failed", task="boom-1"), 30, "failed")
    assert "their task failed" in failed["error"]
    (started,) = records(ledger, "started", task="boom-1")
    assert started["execution"] == failed["execution"]
    assert records(ledger, "completed", task="boom-1") == []


@pytest.mark.parametrize(("change", "message"), [
    ({"QUEUE_CHAOS_APP": "sample_celery:nope"},
     "sample_celery has no attribute 'nope'; a Celery app in it: sample_celery:app"),
    ({"QUEUE_CHAOS_APP": "sample_celery:add"}, "not a Celery app"),
    ({"QUEUE_CHAOS_APP": "no_such_module:app"}, "module 'no_such_module' does not import"),
    ({"QUEUE_CHAOS_WORKER_ARGS": "-Q default"},
     "QUEUE_CHAOS_QUEUE='measured' is not consumed by the worker: -Q in QUEUE_CHAOS_WORKER_ARGS "
     "names default"),
    ({"QUEUE_CHAOS_TASK": "sample.nope"},
     "QUEUE_CHAOS_TASK='sample.nope' is not a registered task; registered: sample.add, "
     "sample.boom"),
    ({"QUEUE_CHAOS_QUEUE": "elsewhere", "QUEUE_CHAOS_WORKER_ARGS": ""},
     "it consumes default, measured"),
])
def test_check_names_what_is_wrong_in_one_line(change: dict[str, str], message: str) -> None:
    result = agent("check", {**BASE, "QUEUE_CHAOS_WORKER_ARGS": "-Q measured", **change})
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
