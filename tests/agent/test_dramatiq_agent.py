"""The agent on a real Dramatiq worker and producer against a real redis-server.

Runs only where Dramatiq is installed (never in the harness's environment, where it is skipped):
``make test-agent`` builds that environment from backends/dramatiq/requirements.txt.

What it shows of Dramatiq itself, beyond the agent's plumbing: a worker SIGKILLed mid-message
leaves it in its acks set, and another worker's maintenance (run on every command here) pushes
it back onto the queue once the dead worker's heartbeat is older than heartbeat_timeout (2 s
here), so it runs again: at least once.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

pytest.importorskip("dramatiq")
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
)

BASE = {"QUEUE_CHAOS_KIND": "dramatiq", "QUEUE_CHAOS_APP": "sample_dramatiq:DramatiqSettings"}


def test_a_killed_workers_message_comes_back_through_maintenance(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    with redis_server() as url:
        env = {**BASE, "QUEUE_CHAOS_BROKER_URL": url, "CHAOS_LEDGER_DIR": str(ledger)}
        checked = agent("check", env)
        assert checked.returncode == 0, checked.stderr
        assert "queue 'sample'" in checked.stdout
        port = free_port()
        with agent_process("producer", env, tmp_path / "producer.log",
                           "--host", "127.0.0.1", "--port", str(port)):
            wait_for(lambda: healthy(port), 30, "the producer")
            with agent_process("worker", env, tmp_path / "worker1.log"):
                (ready,) = wait_for(lambda: records(ledger, "worker_ready"), 30, "worker_ready")
                assert post(port, "/tasks", {"task_id": "t.1", "duration": 0.1}) == (
                    200, {"outcome": "ok"})
                wait_for(lambda: records(ledger, "completed", task="t.1"), 30, "t.1 completed")
                assert post(port, "/tasks", {"task_id": "t.2", "duration": 30})[0] == 200
                (first,) = wait_for(lambda: records(ledger, "started", task="t.2"), 30,
                                    "t.2 runs")
                os.kill(first["pid"], signal.SIGKILL)  # the whole worker: its threads run it
            with agent_process("worker", env, tmp_path / "worker2.log"):
                wait_for(lambda: len(records(ledger, "started", task="t.2")) == 2, 30,
                         "t.2 requeued by maintenance and run again")
    assert ready["effective"] == {"broker": "redis", "threads": 3, "heartbeat_timeout": 2000,
                                  "maintenance_chance": 1000000, "queue": "sample",
                                  "task": "queue_chaos_probe"}
    assert {"dramatiq", "redis", "fastapi"} <= set(ready["versions"])
    assert first["pid"] == ready["pid"], "the message ran in the worker's own process"
    (once,) = records(ledger, "started", task="t.1")
    assert (once["redelivered"], once["job_try"]) == (False, 1)


@pytest.mark.parametrize(("change", "message"), [
    ({"QUEUE_CHAOS_APP": "sample_dramatiq:Nope"},
     "sample_dramatiq has no attribute 'Nope'; a Dramatiq settings class in it: "
     "sample_dramatiq:DramatiqSettings"),
    ({"QUEUE_CHAOS_APP": "sample_dramatiq:NotSettings"}, "not a Dramatiq settings class"),
    ({"QUEUE_CHAOS_QUEUE": "default"},
     "QUEUE_CHAOS_QUEUE='default' is not one of the worker's queues: sample, other"),
    ({"QUEUE_CHAOS_TASK": "sample_dramatiq.add"},
     "the dramatiq agent measures its probe actor only"),
    ({"QUEUE_CHAOS_WORKER_ARGS": "--threads 2"},
     "dramatiq takes its settings from its settings class"),
])
def test_check_names_what_is_wrong_in_one_line(change: dict[str, str], message: str) -> None:
    result = agent("check", {**BASE, **change})
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
