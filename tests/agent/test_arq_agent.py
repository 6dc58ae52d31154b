"""The agent on a real arq worker and producer against a real redis-server.

Runs only where arq is installed (never in the harness's environment, where it is skipped):

    python3 -m venv /tmp/arqvenv
    /tmp/arqvenv/bin/pip install arq==0.28.0 'redis[hiredis]==5.3.1' fastapi==0.165.0 \\
        uvicorn==0.54.0 pytest -e ./agent
    /tmp/arqvenv/bin/python -m pytest tests/agent --noconftest -p no:cacheprovider
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("arq")
pytest.importorskip("fastapi")

from tests.agent.support import (
    agent,
    post,
    records,
    redis_server,
    wait_for,
    worker_and_producers,
)

BASE = {"QUEUE_CHAOS_KIND": "arq", "QUEUE_CHAOS_APP": "sample_arq:WorkerSettings"}


def test_worker_and_producer_record_probe_and_their_function(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    with redis_server() as url:
        env = {**BASE, "QUEUE_CHAOS_BROKER_URL": url, "CHAOS_LEDGER_DIR": str(ledger),
               "QUEUE_CHAOS_TASK": "add", "QUEUE_CHAOS_TASK_ARGS": "[2]",
               "QUEUE_CHAOS_TASK_KWARGS": '{"y": 3}'}
        checked = agent("check", env)
        assert checked.returncode == 0, checked.stderr
        assert "queue 'sample:queue'" in checked.stdout
        with worker_and_producers(env, ledger, tmp_path) as (ready, probe_port, their_port):
            assert post(probe_port, "/tasks", {"task_id": "probe-1", "duration": 0.2}) == (
                200, {"outcome": "ok"})
            assert post(their_port, "/tasks", {"task_id": "theirs-1", "duration": 0})[1] == {
                "outcome": "ok"}
            # The same id again: arq refuses it while the job or its result exists.
            assert post(their_port, "/tasks", {"task_id": "theirs-1", "duration": 0})[0] in (
                409, 200)
            wait_for(lambda: all(records(ledger, "completed", task=t)
                                 for t in ("probe-1", "theirs-1")), 30, "both completed")
    assert ready["effective"] == {"job_timeout": 17, "max_tries": 3, "max_jobs": 4,
                                  "keep_result": 5, "allow_abort_jobs": False,
                                  "queue_name": "sample:queue", "task": "add"}
    assert {"arq", "redis", "fastapi"} <= set(ready["versions"])
    for task in ("probe-1", "theirs-1"):
        (started,) = records(ledger, "started", task=task)
        (completed,) = records(ledger, "completed", task=task)
        assert started["execution"] == completed["execution"]
        assert (started["redelivered"], started["job_try"]) == (False, 1)


def test_their_settings_class_is_not_mutated() -> None:
    from queue_chaos_agent.arq import PROBE, instrument
    from tests.agent import sample_arq

    before = dict(vars(sample_arq.WorkerSettings))
    new = instrument(sample_arq.WorkerSettings, "sample:queue", "add", ledger_dir="/tmp/x")
    assert dict(vars(sample_arq.WorkerSettings)) == before
    names = [getattr(f, "__qualname__", None) for f in vars(new)["functions"]]
    assert names == ["add", PROBE]
    assert vars(new)["job_timeout"] == 17


@pytest.mark.parametrize(("change", "message"), [
    ({"QUEUE_CHAOS_APP": "sample_arq:Nope"},
     "sample_arq has no attribute 'Nope'; an arq WorkerSettings class in it: "
     "sample_arq:WorkerSettings"),
    ({"QUEUE_CHAOS_APP": "sample_arq:add"}, "not an arq WorkerSettings class"),
    ({"QUEUE_CHAOS_QUEUE": "arq:queue"},
     "the arq worker consumes only its queue_name 'sample:queue'"),
    ({"QUEUE_CHAOS_TASK": "nope"},
     "QUEUE_CHAOS_TASK='nope' is not one of the worker's functions: add"),
    ({"QUEUE_CHAOS_WORKER_ARGS": "--burst"}, "arq takes its settings from the WorkerSettings"),
])
def test_check_names_what_is_wrong_in_one_line(change: dict[str, str], message: str) -> None:
    result = agent("check", {**BASE, **change})
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_sentinel_urls_become_arqs_sentinel_settings() -> None:
    """kombu's way of writing Sentinels, which arq's from_dsn refuses, becomes arq's Sentinel
    settings: the Sentinels as (host, port) and the primary's name apart."""
    from queue_chaos_agent.arq import from_url

    settings = from_url("sentinel://s1:26379;sentinel://s2;sentinel://s3:26380", "chaos")
    assert settings.sentinel is True
    assert settings.host == [("s1", 26379), ("s2", 26379), ("s3", 26380)]
    assert settings.sentinel_master == "chaos"
    plain = from_url("redis://r:6380/2")
    assert (plain.sentinel, plain.host, plain.port, plain.database) == (False, "r", 6380, 2)
