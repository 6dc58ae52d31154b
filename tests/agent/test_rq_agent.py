"""The agent on a real RQ worker and producer against a real redis-server.

Runs only where RQ is installed (never in the harness's environment, where it is skipped):
``make test-agent`` builds that environment from backends/rq/requirements.txt.

What it shows of RQ itself, beyond the agent's plumbing: a work horse SIGKILLed mid-job is
seen by its worker at once and, with ``Retry``, the job runs again (its ``retries_left`` one
lower, which the probe records as a redelivery); a job id already in Redis is refused.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

pytest.importorskip("rq")
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

BASE = {"QUEUE_CHAOS_KIND": "rq", "QUEUE_CHAOS_APP": "sample_rq:RqSettings"}


def test_a_killed_work_horse_is_retried_and_a_duplicate_id_refused(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    with redis_server() as url:
        env = {**BASE, "QUEUE_CHAOS_BROKER_URL": url, "CHAOS_LEDGER_DIR": str(ledger)}
        checked = agent("check", env)
        assert checked.returncode == 0, checked.stderr
        assert "queue 'sample'" in checked.stdout
        port = free_port()
        with agent_process("worker", env, tmp_path / "worker.log"), \
                agent_process("producer", env, tmp_path / "producer.log",
                              "--host", "127.0.0.1", "--port", str(port)):
            (ready,) = wait_for(lambda: records(ledger, "worker_ready"), 30, "worker_ready")
            wait_for(lambda: healthy(port), 30, "the producer")
            assert post(port, "/tasks", {"task_id": "t.1", "duration": 0.1}) == (
                200, {"outcome": "ok"})
            wait_for(lambda: records(ledger, "completed", task="t.1"), 30, "t.1 completed")
            assert post(port, "/tasks", {"task_id": "t.1", "duration": 0.1})[1]["outcome"] == (
                "failed")
            assert post(port, "/tasks", {"task_id": "t.2", "duration": 30})[0] == 200
            (first,) = wait_for(lambda: records(ledger, "started", task="t.2"), 30, "t.2 runs")
            os.kill(first["pid"], signal.SIGKILL)  # the work horse, not the worker
            wait_for(lambda: len(records(ledger, "started", task="t.2")) == 2, 30,
                     "t.2 retried")
    assert ready["effective"] == {
        "retry_max": 2, "retry_intervals": [0], "job_timeout": 17, "worker_class": "Worker",
        "worker_class_name": "rq.worker.worker_classes.Worker", "worker_ttl": 420,
        "job_monitoring_interval": 2, "maintenance_interval": 3, "result_ttl": 500,
        "queue": "sample", "task": "queue_chaos_agent.rq.probe"}
    assert {"rq", "redis", "fastapi"} <= set(ready["versions"])
    assert first["pid"] != ready["pid"], "the job ran in a forked work horse"
    (once,) = records(ledger, "started", task="t.1")
    assert (once["redelivered"], once["job_try"], once["retries_left"]) == (False, 1, 2)
    again = [r for r in records(ledger, "started", task="t.2") if r is not first]
    assert [(r["redelivered"], r["job_try"]) for r in again][-1] == (True, 2)


@pytest.mark.parametrize(("change", "message"), [
    ({"QUEUE_CHAOS_APP": "sample_rq:Nope"},
     "sample_rq has no attribute 'Nope'; an RQ settings class in it: sample_rq:RqSettings"),
    ({"QUEUE_CHAOS_APP": "sample_rq:NotSettings"}, "not an RQ settings class"),
    ({"QUEUE_CHAOS_QUEUE": "default"},
     "QUEUE_CHAOS_QUEUE='default' is not one of the worker's queues: sample, other"),
    ({"QUEUE_CHAOS_TASK": "sample_rq.add"}, "the rq agent measures its probe function only"),
    ({"QUEUE_CHAOS_WORKER_ARGS": "--burst"}, "rq takes its settings from its settings class"),
])
def test_check_names_what_is_wrong_in_one_line(change: dict[str, str], message: str) -> None:
    result = agent("check", {**BASE, **change})
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
