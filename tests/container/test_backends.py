"""Each backend and the fault mechanics beyond the spine, on real containers, in small scenarios:
what each one must show if the harness sees what it claims to see."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.observe import of_scenario
from harness.world import World
from queue_chaos_agent.ledger import read_ledger
from queue_chaos_agent.versions import parse
from tests.container.conftest import SMALL, SmallRun

pytestmark = pytest.mark.container



def test_pool_child_kill_with_reject_on_worker_lost_requeues(run_small: SmallRun) -> None:
    result = run_small("acks-late-prefetch-1", "sigkill-pool-child")
    assert result.counts["lost"] == 0
    assert result.counts["re_executed"] >= 1
    assert result.revived == [], "the worker's main process lived on"
    assert result.drained


def test_crash_after_effect_with_acks_late_duplicates(run_small: SmallRun) -> None:
    result = run_small("acks-late-prefetch-1", "crash-after-effect")
    assert result.counts["crashed_runs"] == 1
    assert result.counts["duplicated"] == 1


def test_idempotency_key_absorbs_the_repeat(run_small: SmallRun) -> None:
    result = run_small("acks-late-idempotent", "crash-after-effect")
    assert result.counts["crashed_runs"] == 1
    assert result.counts["duplicated"] == 0
    assert result.counts["deduplicated_runs"] == 1
    assert result.verdict == "holds"


def test_arq_retries_a_killed_workers_jobs(run_small: SmallRun) -> None:
    result = run_small("arq-max-tries-5", "sigkill-worker")
    assert result.counts["lost"] == 0
    assert result.counts["re_executed"] >= 1
    assert result.revived == [result.fault_target]
    # What ran, read from the running services: Redis's INFO server, Toxiproxy's own version
    # (the local build says "git"; its binary's build information says which release).
    assert set(result.servers) == {"redis-server", "toxiproxy"}, result.servers
    assert all(parse(v) for v in result.servers.values()), result.servers


def test_rq_retries_a_killed_work_horses_job_at_once(run_small: SmallRun) -> None:
    """RQ's forking Worker sees its work horse die and, with Retry, enqueues the job again at
    once (no registry entry to wait for); the worker itself lives on."""
    result = run_small("rq-retry-3", "sigkill-pool-child")
    assert result.counts["lost"] == 0
    assert result.counts["re_executed"] >= 1
    assert result.revived == [], "the worker lived on; only its work horse died"
    assert result.drained
    assert set(result.servers) == {"redis-server", "toxiproxy"}, result.servers
    assert {"rq", "redis"} <= set(result.versions), result.versions



def test_dramatiq_on_redis_requeues_a_killed_workers_messages_by_heartbeat(
        run_small: SmallRun) -> None:
    """A SIGKILLed Dramatiq worker leaves its fetched messages in its acks set; another worker's
    maintenance requeues them once its heartbeat is older than heartbeat_timeout (compressed to
    10 s), so nothing is lost and the dead worker's runs happen again."""
    result = run_small("dramatiq-redis", "sigkill-worker")
    assert result.counts["lost"] == 0
    assert result.counts["re_executed"] >= 1
    assert result.revived == [result.fault_target]
    assert result.drained
    assert set(result.servers) == {"redis-server", "toxiproxy"}, result.servers
    assert {"dramatiq", "redis"} <= set(result.versions), result.versions


def test_dramatiq_on_rabbitmq_requeues_a_killed_workers_messages_at_once(
        run_small: SmallRun) -> None:
    """RabbitMQ requeues a dead Dramatiq worker's unacknowledged deliveries when its connection
    closes: nothing lost, the runs happen again, no clock to wait for."""
    result = run_small("dramatiq-rabbitmq", "sigkill-worker")
    assert result.counts["lost"] == 0
    assert result.counts["re_executed"] >= 1
    assert result.drained
    assert {"rabbitmq-server", "toxiproxy"} <= set(result.servers), result.servers
    assert {"dramatiq", "pika"} <= set(result.versions), result.versions

def test_fastapi_background_tasks_die_with_the_app(run_small: SmallRun) -> None:
    result = run_small("fastapi-graceful-10", "sigkill-worker")
    assert result.counts["lost"] >= 1
    assert result.verdict == "holds"  # at-most-once is all BackgroundTasks claims


def test_graceful_timeout_cuts_async_background_tasks_but_not_sync_ones(
        run_small: SmallRun) -> None:
    """uvicorn cancels what is still running when --timeout-graceful-shutdown (1 s, tasks 2-4 s)
    runs out: an ``async def`` task dies at its await; a sync task's threadpool thread runs on,
    and the process exits only after it finishes."""
    cut = run_small("fastapi-async-graceful-1", "sigterm-worker")
    assert cut.counts["lost"] >= 1
    kept = run_small("fastapi-graceful-1", "sigterm-worker")
    assert kept.counts["lost"] == 0
    assert kept.counts["completed"] >= 1


def test_rabbitmq_requeues_a_killed_workers_tasks_at_once(run_small: SmallRun) -> None:
    """acks late on RabbitMQ: the killed worker's deliveries (running and prefetched) go back to
    the queue the moment its connection closes, and the other worker runs them while the killed
    one is still down: no visibility timeout, no wait for the supervisor."""
    result = run_small("rabbit-acks-late", "sigkill-worker")
    assert set(result.servers) == {"rabbitmq-server", "erlang", "toxiproxy"}, result.servers
    assert all(parse(v) for v in result.servers.values()), result.servers  # read, not "git"
    assert result.counts["lost"] == 0
    assert result.counts["re_executed"] >= 1
    assert result.revived == [result.fault_target]
    assert result.drained
    prefix = result.scenario + ("" if result.attempt == 1 else f"~attempt-{result.attempt}")
    records = of_scenario(read_ledger([result.ledger_dir]).records, prefix)
    (fault,) = [r for r in records if r["kind"] == "fault"]
    again = [r for r in records if r["kind"] == "started" and r.get("redelivered") is True
             and r["t"] > fault["fired"]]
    assert again, "no execution flagged as a redelivery after the kill"
    elsewhere = [r for r in again if r["worker"] != result.fault_target]
    assert elsewhere, "every redelivery waited for the killed worker to come back"
    # Before the fault window ends, i.e. before the supervisor even starts the killed worker
    # again (Redis would wait for its visibility timeout).
    first = min(r["t"] for r in elsewhere) - fault["fired"]
    assert first < SMALL.fault_window_s, f"first redelivery {first:.1f}s after the kill"


def test_rabbitmq_runs_unprivileged(world: World, tmp_path: Path) -> None:
    """The broker drops every capability (compose adds back only what the official image's
    entrypoint needs), and the Erlang VM does not run as root."""
    world.begin_scenario("celery-rabbitmq", {}, tmp_path)
    container = world.cluster.container("rabbitmq")
    assert container is not None
    host = container.attrs["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert set(host.get("CapAdd") or []) <= {"CHOWN", "SETUID", "SETGID"}
    assert "no-new-privileges" in host["SecurityOpt"]
    rows = container.top(ps_args="-o pid,uid,comm")["Processes"]  # docker top needs the pid
    beam = [row for row in rows if row[2].startswith("beam")]
    assert beam, rows
    assert all(int(row[1]) != 0 for row in beam), rows
